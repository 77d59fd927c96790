-- Fault soak: the reset, verify, migrate and ad-hoc fix scripts run as child
-- processes against a private stack whose service injects faults (throttling,
-- resuming, 5xx, connections dropped before and after executing), with varying
-- seeds, for a bounded time.  After every run the database must be exactly the
-- state before it or the complete new one: no duplicates, no partial seed.
--
--   make soak                 (or: alexlua bench/soak.lua)
--   SOAK_SECONDS=180          time budget (scenarios are not started after it)
--   SOAK_SEED=<n>             master seed (default: the clock); printed, so a run can be repeated
--   SOAK_REPORT=bench/SOAK.md where the report goes
--
-- Scenarios, in a fixed rotation (each in bench/soak/scenarios/):
--   reset     perturb the database (psql), reset.lua --with-test-data under faults
--             (up to 30% of calls combined), then verify.lua under the same faults
--   exhaust   the same with AWS_MAX_ATTEMPTS=1 and 30-60% faults: retries run out
--             mid-reset; the database must be exactly as before
--   migrate   a fresh database, three migrate.lua at once (light faults): every
--             migration applied once, in order, the schema the canonical one
--   prices    3-4 reprice.lua at once on one instrument: the final price is
--             one a successful child wrote (a serial outcome), one applied run in
--             the data-fix ledger per successful child, nothing else changed
--   moves     3-4 move_position.lua at once on one symbol of the test user: total
--             quantity conserved, the final holdings a serial outcome of the moves
--   kill      reset.lua killed (kill -9 or SIGTERM) at a random moment: the state is
--             the old or the new one, SIGTERM exits 143 having rolled back, and the
--             next run and the next reset each finish within 5 s (the journal's
--             orphans rolled back)
-- A state is compared by fingerprint: for each table its row count and the md5 of
-- its rows without the volatile columns (ids, timestamps), positions keyed by
-- their account's owner and name; plus the schema (relations, columns,
-- constraints, triggers, functions).  Any violation makes the exit status 1;
-- a soak cut short by an error (a reset without faults failing, psql failing)
-- exits 2.
--
-- The parts, in bench/soak/: settings, context (what they share), tally,
-- faults, children, state (psql, fingerprints, perturbations), canonical,
-- probe, scenarios/*, report.
-- benchlib finds the root and puts spec/support/ on the path; the soak's parts
-- (bench/soak/*) require "benchlib" and get this one.
local bl = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "bench") .. "/benchlib.lua")
package.loaded.benchlib = bl
package.path = bl.bench_dir .. "/?.lua;" .. package.path

local stack = require "stack"
local clock = require "alex.clock"
local servers = require "servers"
local dbops = require "dbops"
local settings = require "soak.settings"
local context = require "soak.context"
local faults = require "soak.faults"
local canonical = require "soak.canonical"
local probe = require "soak.probe"
local report = require "soak.report"
local reset = require "soak.scenarios.reset"
local kill = require "soak.scenarios.kill"
local migrate = require "soak.scenarios.migrate"
local prices = require "soak.scenarios.prices"
local moves = require "soak.scenarios.moves"

local ROTATION = { "reset", "exhaust", "kill", "reset", "prices", "kill", "reset", "exhaust", "moves", "kill",
                   "reset", "migrate" }
local RUN = {
  reset = function(ctx) reset.run(ctx, false) end,
  exhaust = function(ctx) reset.run(ctx, true) end,
  kill = kill.run, migrate = migrate.run, prices = prices.run, moves = moves.run,
}

local read_ok, cfg = pcall(settings.read, bl.root)
if not read_ok then -- a setting to fix: one line
  io.stderr:write("soak: ", tostring(cfg), "\n")
  os.exit(2)
end
math.randomseed(cfg.seed)

-- Transactions idle for 60 s expire: far above the kill scenario's 5 s bound,
-- so an orphan is cleared by the next run's recovery or not at all in time.
local s = stack.start { bin = cfg.dataapi, tx_idle_timeout = 60 }
local ctx = context.new(cfg, s)

local started = clock.monotonic()
local ok, err = pcall(function()
  ctx.logdir = dbops.tmpdir()
  ctx:say("seed %d, %d s, stack on 127.0.0.1:%d, logs in %s", cfg.seed, cfg.seconds, s.api_port, ctx.logdir)
  assert(s:reset_stats())
  ctx.current = { name = "probe", n = 0 }
  probe.run(ctx)
  canonical.establish(ctx)
  local i = 0
  while clock.monotonic() - started < cfg.seconds do
    i = i + 1
    RUN[ROTATION[(i - 1) % #ROTATION + 1]](ctx)
  end
end)
pcall(faults.clear, ctx)
local counted, total_faults = pcall(faults.counts, ctx)
if not counted then total_faults = { ops = 0 } end
for _, k in ipairs(faults.KINDS) do total_faults[k] = total_faults[k] or 0 end
local open_tx = (s:stats() or {}).open_transactions
s:stop()
if not ok then
  io.stderr:write("soak: aborted: ", tostring(err), "\n")
  if ctx.logdir then io.stderr:write("soak: logs kept in ", ctx.logdir, "\n") end
  os.exit(2)
end
local elapsed = clock.monotonic() - started
if open_tx and open_tx > 0 then
  ctx:note(("%d transaction(s) still open at the end (a begin or rollback whose answer was lost;" ..
    " the service expires them after tx_idle_timeout)"):format(open_tx))
end

local text = report.markdown(ctx, elapsed, total_faults)
servers.write_file(cfg.report, text)
io.stdout:write("\n", text)
if #ctx.violations > 0 then
  io.stdout:write(("soak: %d violation(s); the children's logs are kept in %s\n"):format(#ctx.violations, ctx.logdir))
  for _, l in ipairs(ctx.kept_logs) do io.stdout:write("  ", l, "\n") end
  os.exit(1)
end
dbops.rmdir(ctx.logdir)
ctx:say("report written to %s", cfg.report)
os.exit(0)
