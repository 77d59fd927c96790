-- kill: reset.lua stopped by kill -9 or SIGTERM at a random moment, under a
-- random latency so the moment falls anywhere in its calls.  The state must
-- be the old or the new one, a SIGTERM'd run must exit 143 having rolled
-- back, and the next run and the next reset, without faults, must be
-- unblocked: each done within cfg.unblocked_seconds.
local children = require "soak.children"
local faults = require "soak.faults"
local state = require "soak.state"
local tally = require "soak.tally"
local clock = require "alex.clock"

local kill = {}

function kill.run(ctx)
  tally.begin_scenario(ctx, "kill")
  local t = ctx.tally.by.kill
  local canonical_fp = ctx.canonical
  local _, before_tables = state.fingerprint(ctx)
  local what = state.perturb(ctx, before_tables, ctx.current.n)
  local pre_fp = state.fingerprint(ctx)
  local signal = math.random() < 0.5 and "KILL" or "TERM"
  local latency = math.random(20, 250)
  local delay = math.random() * 12 * latency / 1000
  faults.set(ctx, { latency_ms = latency })
  local r = children.run_one(ctx, { script = "scripts/reset.lua", args = { "--with-test-data" },
                                    kill = { delay = delay, signal = signal } })
  faults.clear(ctx)
  -- the next run first: an orphan a kill -9 left holds its locks, and the
  -- fingerprint's own reads would wait on them until the service expires it;
  -- any alexlua run rolls the orphans back before its own work
  local t_next = clock.monotonic()
  local recover = children.run_one(ctx, { script = "scripts/migrate.lua", args = { "--status" } })
  local recovery_took = clock.monotonic() - t_next
  if recovery_took > ctx.cfg.unblocked_seconds then
    ctx:violation("the first run after a SIG%s took %.1f s (blocked by the stopped run's locks?): %s", signal,
      recovery_took, recover.log)
  end
  local fp = state.fingerprint(ctx)
  local outcome
  if state.same(fp, pre_fp) then -- first: from "unchanged" the old state is the new one too
    outcome = "old state"
  elseif state.same(fp, canonical_fp) then
    outcome = "new state"
  else
    ctx:violation("reset stopped by SIG%s after %.2f s left neither the old nor the new state (from %q): %s; log %s",
      signal, delay, what, table.concat(state.diff(pre_fp, fp), "; "), r.log)
    outcome = "BAD STATE"
  end
  if signal == "TERM" and r.rc ~= 0 and r.rc ~= 143 then
    ctx:violation("reset exited %d after SIGTERM (expected 143, or 0 when it had finished): %s", r.rc, r.log)
  end
  -- stopped while its commit was in flight, it says the outcome is unknown
  if signal == "TERM" and r.rc == 143 and outcome ~= "old state" and not r.commit_unknown then
    ctx:violation("reset said it was stopped by SIGTERM, nothing changed, but the state is not the old one: %s",
      r.log)
  end
  local t0 = clock.monotonic()
  local r2 = children.run_one(ctx, { script = "scripts/reset.lua", args = { "--with-test-data" } })
  local took = clock.monotonic() - t0
  if r2.rc ~= 0 then
    ctx:violation("the reset after a SIG%s exited %d: %s", signal, r2.rc, r2.log)
  elseif took > ctx.cfg.unblocked_seconds then
    ctx:violation("the reset after a SIG%s took %.1f s (blocked by the stopped run's locks?): %s", signal, took,
      r2.log)
  elseif not state.same(state.fingerprint(ctx), canonical_fp) then
    ctx:violation("the reset after a SIG%s did not leave the canonical state: %s", signal, r2.log)
  else
    t.ok = t.ok + 1
  end
  if outcome == "old state" then t.intact = t.intact + 1 end
  if ctx.current.violated then ctx:keep(r) ctx:keep(r2) end
  ctx:say("%-7s #%-3d from %-30s SIG%-4s after %.2f s (latency %d ms) -> %s, exit %d; next run %.2f s%s," ..
    " next reset %.2f s", "kill", ctx.current.n, ("%q"):format(what), signal, delay, latency, outcome, r.rc,
    recovery_took, recover.err:find("rolled back 1 transaction", 1, true) and " (rolled back the orphan)" or "",
    took)
  tally.end_scenario(ctx)
end

return kill
