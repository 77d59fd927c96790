-- The resend probe: a non-idempotent call on a reused keep-alive connection
-- whose answer never comes (the service ran it, then dropped the connection)
-- must run once: libcurl resends such a request on a fresh connection unless
-- told not to.
local db = require "alex.db"
local bl = require "benchlib"
local faults = require "soak.faults"
local state = require "soak.state"

local probe = {}

-- run(ctx): sets ctx.probe_result; a second execution is a violation.
function probe.run(ctx)
  -- what the children see: the stack's settings, nothing of the caller's AWS setup
  local conn = assert(db.connect { env = bl.getenv_for(ctx.stack), quiet = true, max_attempts = 3 })
  state.psql(ctx, "DROP TABLE IF EXISTS soak_probe; CREATE TABLE soak_probe (n int)")
  conn:query("SELECT 1") -- the connection is now open and kept alive
  faults.set(ctx, { seed = 1, drop_after_rate = 1 })
  local ok, err = pcall(conn.execute, conn, "INSERT INTO soak_probe VALUES (1)")
  faults.clear(ctx)
  local n = tonumber(state.psql(ctx, "SELECT count(*) FROM soak_probe"))
  state.psql(ctx, "DROP TABLE soak_probe")
  conn:close()
  ctx.probe_result = ("one INSERT, its answer lost: %s, executed %d time%s"):format(
    ok and "reported success"
      or ("error " .. tostring(err.name) .. (err.outcome_unknown and " (outcome unknown)" or "")),
    n, n == 1 and "" or "s")
  if n ~= 1 or ok then
    ctx:violation("a write whose answer was lost on a reused connection ran %d times (%s)", n,
      ok and "reported success" or tostring(err))
  end
  ctx:say("probe: %s", ctx.probe_result)
end

return probe
