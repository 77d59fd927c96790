-- The counters of a soak: per scenario (runs, outcomes, faults, retries,
-- time, how the children ended), over all children, and of verify.lua.
local clock = require "alex.clock"
local faults = require "soak.faults"

local tally = {}

function tally.new(scenarios)
  local t = { seq = 0, children = 0, retries = 0, tx_retries = 0, resume_waits = 0, calls = 0, by = {},
              verify = { runs = 0, passed = 0, aborted = 0, failed_checks = 0 } }
  for _, name in ipairs(scenarios) do
    t.by[name] = { runs = 0, ok = 0, intact = 0, unknown_old = 0, unknown_new = 0, violations = 0,
                   faults = {}, children = 0, retries = 0, seconds = 0, slowest = 0, reasons = {} }
    for _, k in ipairs(faults.KINDS) do t.by[name].faults[k] = 0 end
  end
  return t
end

-- Makes `name` the current scenario.
function tally.begin_scenario(ctx, name)
  local t = ctx.tally
  t.seq = t.seq + 1
  ctx.current = { name = name, n = t.seq, violated = false, started = clock.monotonic() }
  t.by[name].runs = t.by[name].runs + 1
  ctx.current.faults_before = faults.counts(ctx)
end

-- Counts the current scenario's faults and time; no faults after it.
function tally.end_scenario(ctx)
  local after = faults.counts(ctx)
  local t = ctx.tally.by[ctx.current.name]
  for _, k in ipairs(faults.KINDS) do t.faults[k] = t.faults[k] + after[k] - ctx.current.faults_before[k] end
  faults.clear(ctx)
  local took = clock.monotonic() - ctx.current.started
  t.seconds = t.seconds + took
  if took > t.slowest then t.slowest = took end
end

-- Counts a finished child (soak/children.lua's result) in the current scenario.
function tally.count_child(ctx, r)
  local all = ctx.tally
  all.children = all.children + 1
  all.calls = all.calls + r.calls
  all.retries = all.retries + r.retries
  all.tx_retries = all.tx_retries + r.tx_retries
  all.resume_waits = all.resume_waits + r.resume_waits
  local t = all.by[ctx.current.name]
  t.children = t.children + 1
  t.retries = t.retries + r.retries
  t.reasons[r.reason] = (t.reasons[r.reason] or 0) + 1
end

return tally
