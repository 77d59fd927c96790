-- reset / exhaust: perturb the database, then reset.lua --with-test-data
-- under faults.  Exit 0 requires the canonical state (and verify.lua passing,
-- under the same faults); a failure requires exactly the state before; a
-- failure whose commit went unanswered may leave either.  exhaust: 30-60%
-- faults and a single attempt per call, so retries run out mid-reset.
local canonical = require "soak.canonical"
local children = require "soak.children"
local faults = require "soak.faults"
local state = require "soak.state"
local tally = require "soak.tally"

local reset = {}

function reset.run(ctx, exhaust)
  local name = exhaust and "exhaust" or "reset"
  tally.begin_scenario(ctx, name)
  local t = ctx.tally.by[name]
  local _, before_tables = state.fingerprint(ctx)
  local what = state.perturb(ctx, before_tables, ctx.current.n)
  local pre_fp = state.fingerprint(ctx)
  local f, env
  if exhaust then
    f = faults.mix(0.3 + math.random() * 0.3)
    env = { AWS_MAX_ATTEMPTS = "1", ALEX_RESUME_TIMEOUT = "0.05" }
  else
    f = faults.mix(0.05 + math.random() * 0.25)
    env = { AWS_MAX_ATTEMPTS = tostring(math.random(3, 5)) }
  end
  faults.set(ctx, f)
  local r = children.run_one(ctx, { script = "scripts/reset.lua", args = { "--with-test-data" }, env = env })
  faults.clear(ctx)
  local fp, tables = state.fingerprint(ctx)
  local is_canonical, is_pre = state.same(fp, ctx.canonical), state.same(fp, pre_fp)
  for _, p in ipairs(state.duplicate_check(ctx, tables)) do
    ctx:violation("%s after reset (%s): %s", p, faults.describe(f), r.log)
  end
  local outcome
  if r.rc == 0 then
    if is_canonical then
      t.ok = t.ok + 1
      outcome = "ok"
    else
      ctx:violation("reset succeeded but the state is not the canonical one (from %q, %s): %s; log %s", what,
        faults.describe(f), table.concat(state.diff(ctx.canonical, fp), "; "), r.log)
      outcome = "BAD STATE"
    end
  elseif r.commit_unknown then
    if is_pre then
      t.unknown_old = t.unknown_old + 1
      outcome = "commit unknown, old state"
    elseif is_canonical then
      t.unknown_new = t.unknown_new + 1
      outcome = "commit unknown, new state"
    else
      ctx:violation("reset's commit outcome unknown and the state is neither the old nor the new one" ..
        " (from %q, %s): %s; log %s", what, faults.describe(f), table.concat(state.diff(pre_fp, fp), "; "), r.log)
      outcome = "BAD STATE"
    end
  else
    if is_pre then
      t.intact = t.intact + 1
      outcome = "failed, state intact"
    else
      ctx:violation("reset failed (exit %d) and changed the state (from %q, %s): %s; log %s", r.rc, what,
        faults.describe(f), table.concat(state.diff(pre_fp, fp), "; "), r.log)
      outcome = "BAD STATE"
    end
  end
  if ctx.current.violated then ctx:keep(r) end
  ctx:say("%-7s #%-3d from %-30s %-44s -> %s (%d retries, %d tx retries)", name, ctx.current.n, ("%q"):format(what),
    faults.describe(f), outcome, r.retries, r.tx_retries)
  if is_canonical then
    if exhaust then canonical.check_verify(ctx, nil, nil) else canonical.check_verify(ctx, f, env) end
  end
  tally.end_scenario(ctx)
end

return reset
