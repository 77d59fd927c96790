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
-- Scenarios, in a fixed rotation:
--   reset     perturb the database (psql), reset.lua --with-test-data under faults
--             (up to 30% of calls combined), then verify.lua under the same faults
--   exhaust   the same with AWS_MAX_ATTEMPTS=1 and 30-60% faults: retries run out
--             mid-reset; the database must be exactly as before
--   migrate   a fresh database, three migrate.lua at once (light faults): every
--             migration applied once, in order, the schema the canonical one
--   prices    3-4 reprice.lua at once on one instrument: the final price is
--             one a successful child wrote (a serial outcome), nothing else changed
--   moves     3-4 move_position.lua at once on one symbol of the test user: total
--             quantity conserved, the final holdings a serial outcome of the moves
--   kill      reset.lua killed (kill -9 or SIGTERM) at a random moment: the state is
--             the old or the new one, SIGTERM exits 143 having rolled back, and the
--             next reset succeeds within 5 s (the journal's orphans rolled back)
-- A state is compared by fingerprint: for each table its row count and the md5 of
-- its rows without the volatile columns (ids, timestamps), positions keyed by
-- their account's owner and name; plus the schema (relations, columns,
-- constraints, triggers, functions).  Any violation makes the exit status 1.
local script_dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "bench"
if script_dir:sub(1, 1) ~= "/" then script_dir = (os.getenv("PWD") or ".") .. "/" .. script_dir end
local root = script_dir:gsub("/bench$", "")
package.path = root .. "/spec/support/?.lua;" .. package.path

local stack = require "stack"
local clock = require "alex.clock"
local cjson = require "cjson"
local servers = require "servers"
local shell_quote, read_file, write_file = servers.q, servers.read_file, servers.write_file

local function env_number(name, default, min)
  local v = os.getenv(name)
  if not v or v == "" then return default end
  local n = tonumber(v)
  if not n or n < min then error(("%s must be a number >= %s, got %q"):format(name, min, v), 0) end
  return n
end

local SECONDS = env_number("SOAK_SECONDS", 180, 1)
local SEED = math.floor(env_number("SOAK_SEED", os.time(), 0))
local REPORT = os.getenv("SOAK_REPORT") or (root .. "/bench/SOAK.md")
local CHILD_TIMEOUT = 90 -- seconds; a child still running then is killed (and reported)
local ALEXLUA = os.getenv("ALEXLUA")
if not ALEXLUA or ALEXLUA == "" then ALEXLUA = root .. "/build/alexlua" end
local DATAAPI = os.getenv("ALEX_DATAAPI")
if not DATAAPI or DATAAPI == "" then DATAAPI = root .. "/build/alex-dataapi" end
local TEST_USER = "test_user_001"
local ACCOUNTS = { "401(k)", "Roth IRA", "Taxable Brokerage" }
local FAULT_KINDS = { "throttle", "resuming", "5xx", "drop", "drop_after" }
local RATE_NAMES = { throttle = "throttle_rate", resuming = "resuming_rate", ["5xx"] = "5xx_rate",
                     drop = "drop_rate", drop_after = "drop_after_rate" }

math.randomseed(SEED)

local function say(...)
  io.stdout:write("soak: ", string.format(...), "\n")
  io.stdout:flush()
end

local function sql_literal(s)
  return "'" .. tostring(s):gsub("'", "''") .. "'"
end

-- ---------------------------------------------------------------- the tally

local SCENARIOS = { "reset", "exhaust", "kill", "migrate", "prices", "moves" }
local tally = { children = 0, retries = 0, tx_retries = 0, resume_waits = 0, calls = 0, by = {} }
for _, name in ipairs(SCENARIOS) do
  tally.by[name] = { runs = 0, ok = 0, intact = 0, unknown_old = 0, unknown_new = 0, violations = 0,
                     faults = {}, children = 0, retries = 0, seconds = 0, slowest = 0, reasons = {} }
  for _, k in ipairs(FAULT_KINDS) do tally.by[name].faults[k] = 0 end
end
local verify_tally = { runs = 0, passed = 0, aborted = 0, failed_checks = 0 }
local violations = {}
local notes = {}
local probe_result = "not run"

local current -- the scenario running now, for violations
local logdir -- temp folder for the children's output
local kept_logs = {}

local function violation(fmt, ...)
  local msg = fmt:format(...)
  violations[#violations + 1] = ("[%s #%d] %s"):format(current.name, current.n, msg)
  local t = tally.by[current.name]
  if t then t.violations = t.violations + 1 end
  current.violated = true
  say("VIOLATION: %s", msg)
end

-- ---------------------------------------------------------------- the stack

-- Transactions idle for 60 s expire: far above the kill scenario's 5 s bound,
-- so an orphan is cleared by the next run's recovery or not at all in time.
local s = stack.start { bin = DATAAPI, tx_idle_timeout = 60 }

local function psql(sql)
  local out, err = s:psql(sql)
  if not out then error("psql failed: " .. tostring(err) .. "\nSQL: " .. sql:sub(1, 400), 0) end
  return out
end

local NO_FAULTS = { throttle_rate = 0, resuming_rate = 0, ["5xx_rate"] = 0, drop_rate = 0, drop_after_rate = 0,
                    latency_ms = 0 }

local function clear_faults() assert(s:set_faults(NO_FAULTS)) end

-- A fault mix: a total rate split at random over the five kinds.
local function fault_mix(total)
  local w, sum = {}, 0
  for i = 1, #FAULT_KINDS do
    w[i] = math.random() + 0.05
    sum = sum + w[i]
  end
  local f = { seed = math.random(1, 2 ^ 31), latency_ms = math.random(0, 2) }
  for i, k in ipairs(FAULT_KINDS) do f[RATE_NAMES[k]] = math.floor(total * w[i] / sum * 1000) / 1000 end
  return f
end

local function describe_faults(f)
  local parts = {}
  for _, k in ipairs(FAULT_KINDS) do
    if (f[RATE_NAMES[k]] or 0) > 0 then parts[#parts + 1] = ("%s=%.3f"):format(k, f[RATE_NAMES[k]]) end
  end
  return ("seed=%d %s"):format(f.seed or 0, #parts > 0 and table.concat(parts, " ") or "none")
end

local function fault_counts()
  local st = assert(s:stats())
  local out = { ops = 0 }
  for _, k in ipairs(FAULT_KINDS) do out[k] = st.faults[k] or 0 end
  for _, n in pairs(st.operations) do out.ops = out.ops + n end
  return out
end

-- ---------------------------------------------------------------- children

-- The environment of every child: the stack's settings, fast retries, stats
-- and the debug log (parsed for retries); nothing from the caller's AWS setup.
local function child_env(extra)
  local env = { PATH = os.getenv("PATH") or "/usr/bin:/bin", HOME = os.getenv("HOME") or "/tmp",
                TMPDIR = os.getenv("TMPDIR") or "/tmp", NO_COLOR = "1", ALEX_STATS = "1", ALEX_DEBUG = "1",
                ALEX_RETRY_BASE = "0.02", ALEX_RESUME_BASE = "0.02", ALEX_RESUME_TIMEOUT = "1",
                AWS_MAX_ATTEMPTS = "3", ALEX_JOURNAL_DIR = logdir .. "/journal" }
  for k, v in pairs(s.env) do env[k] = v end
  for k, v in pairs(extra or {}) do env[k] = v end
  local names = {}
  for k in pairs(env) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. shell_quote(env[k]) end
  return table.concat(parts, " ")
end

local child_seq = 0
local failure_reason

local function keep(r)
  kept_logs[#kept_logs + 1] = r.log
end

-- Why a child ended as it did, in a few words.
local REASONS = {
  { "deadlock", { "40P01", "deadlock detected" } },
  { "refused by the data", { "holds only", "has no account", "no instrument", "not found", "does not exist",
    "ValidationError" } },
  { "fault: throttled", { "Throttling" } },
  { "fault: resuming", { "DatabaseResumingException" } },
  { "fault: 5xx", { "InternalServerErrorException", "ServiceUnavailableError", "HTTP 500", "HTTP 503" } },
  { "fault: connection lost", { "TransportError", "connection lost", "Empty reply" } },
  { "transaction expired", { "TransactionNotFoundException" } },
}
failure_reason = function(r)
  if r.rc == 0 then return "ok" end
  if r.signalled then return r.rc == 137 and "kill -9" or "SIGTERM" end
  if r.killed then return "killed" end
  if r.commit_unknown then return "commit unknown" end
  if r.out:find('"ok":false', 1, true) then return "checks failed" end
  -- a script's own message, or the uncaught error before a traceback
  local traceback = r.err:find("stack traceback:", 1, true) ~= nil
  local line = r.error_line or (traceback and r.err:match("\n?(alexlua: [^\n]*)\nstack traceback:")) or ""
  for _, entry in ipairs(REASONS) do
    for _, needle in ipairs(entry[2]) do
      if line:find(needle, 1, true) then return entry[1] end
    end
  end
  return traceback and "crash" or "other"
end

-- Runs the jobs ({ script, args = {...}, env = {...} }) at once; returns their
-- results: rc, out, err, retries, tx_retries, resume_waits, log (stderr path).
local function run_children(jobs)
  local lines = {}
  local results = {}
  for i, job in ipairs(jobs) do
    child_seq = child_seq + 1
    local base = ("%s/%04d-%s-%s"):format(logdir, child_seq, current.name, job.script:match("([%w_]+)%.lua$"))
    local args = {}
    for _, a in ipairs(job.args or {}) do args[#args + 1] = shell_quote(a) end
    if job.kill then
      -- env execs alexlua, so $! is alexlua's pid
      local pid = shell_quote(base .. ".pid")
      lines[#lines + 1] = ("( env -i %s %s --no-env-file %s %s >%s 2>%s & echo $! >%s; wait $!; echo $? >%s ) &")
        :format(child_env(job.env), shell_quote(ALEXLUA), shell_quote(root .. "/" .. job.script),
          table.concat(args, " "), shell_quote(base .. ".out"), shell_quote(base .. ".err"), pid,
          shell_quote(base .. ".rc"))
      lines[#lines + 1] = ("( sleep %.3f; while [ ! -s %s ]; do sleep 0.01; done; kill -%s $(cat %s) ) &"):format(
        job.kill.delay, pid, job.kill.signal, pid)
    else
      lines[#lines + 1] = ("( env -i %s timeout -k 5 %d %s --no-env-file %s %s >%s 2>%s; echo $? >%s ) &"):format(
        child_env(job.env), CHILD_TIMEOUT, shell_quote(ALEXLUA), shell_quote(root .. "/" .. job.script),
        table.concat(args, " "), shell_quote(base .. ".out"), shell_quote(base .. ".err"), shell_quote(base .. ".rc"))
    end
    results[i] = { base = base, job = job }
  end
  lines[#lines + 1] = "wait"
  local script = logdir .. "/run.sh"
  write_file(script, table.concat(lines, "\n") .. "\n")
  os.execute("sh " .. shell_quote(script))
  for _, r in ipairs(results) do
    r.rc = tonumber((read_file(r.base .. ".rc") or ""):match("%d+")) or -1
    r.out = read_file(r.base .. ".out") or ""
    r.err = read_file(r.base .. ".err") or ""
    r.log = r.base .. ".err"
    local calls, retries = r.err:match("stats: (%d+) calls .-, (%d+) retries")
    r.calls, r.retries = tonumber(calls) or 0, tonumber(retries) or 0
    r.has_stats = calls ~= nil
    local _, n = r.err:gsub("retrying the whole transaction", "")
    r.tx_retries = n
    _, n = r.err:gsub("resuming from auto%-pause", "")
    r.resume_waits = n
    -- the final error line of a script (cli.die or reset's message), without the debug log
    local last
    for line in r.err:gmatch("[^\n]+") do
      if line:find("^reset ") or line:find("^error: ") or line:find("^migration failed") then last = line end
    end
    r.error_line = last
    -- a commit sent without an answer: the transaction may have committed
    r.commit_unknown = last ~= nil and last:find("CommitTransaction", 1, true) ~= nil
                       and (last:find("not retried", 1, true) ~= nil or last:find("outcome unknown", 1, true) ~= nil
                            or last:find("HTTP 500", 1, true) ~= nil)
    r.killed = not r.job.kill and (r.rc == 124 or r.rc == 137 or r.rc == -1)
    r.signalled = r.job.kill ~= nil and (r.rc == 137 or r.rc == 143)
    r.reason = failure_reason(r)
    tally.children = tally.children + 1
    tally.calls = tally.calls + r.calls
    tally.retries = tally.retries + r.retries
    tally.tx_retries = tally.tx_retries + r.tx_retries
    tally.resume_waits = tally.resume_waits + r.resume_waits
    local t = tally.by[current.name]
    t.children = t.children + 1
    t.retries = t.retries + r.retries
    t.reasons[r.reason] = (t.reasons[r.reason] or 0) + 1
    if r.reason == "other" or r.reason == "crash" then
      notes[#notes + 1] = ("%s (%s) exit %d: %s [%s]"):format(r.job.script, r.reason, r.rc,
        (r.error_line or r.err:match("[^\n]*$") or ""):sub(1, 160), r.log)
      keep(r)
    end
    if r.killed then violation("%s was killed after %d s (hung?): %s", r.job.script, CHILD_TIMEOUT, r.log) end
    if not r.has_stats and not r.killed then
      notes[#notes + 1] = ("%s: no stats line in %s"):format(r.job.script, r.log)
    end
  end
  return results
end

local function run_child(job) return run_children({ job })[1] end


-- ---------------------------------------------------------------- fingerprints

local fp_mod = require "fingerprint"
local function fingerprint() return fp_mod.content(psql) end
local diff, same = fp_mod.diff, fp_mod.same

-- Business-level duplicates, whatever the fingerprint says.
local function duplicate_check(tables)
  local problems = {}
  if tables.accounts then
    local dup = psql([[SELECT clerk_user_id || '/' || account_name || ' x' || count(*) FROM accounts
      GROUP BY clerk_user_id, account_name HAVING count(*) > 1]])
    if dup ~= "" then problems[#problems + 1] = "duplicate accounts: " .. dup:gsub("\n", ", ") end
  end
  if tables.schema_migrations then
    local dup = psql("SELECT version || ' x' || count(*) FROM schema_migrations GROUP BY version HAVING count(*) > 1")
    if dup ~= "" then problems[#problems + 1] = "migrations recorded twice: " .. dup:gsub("\n", ", ") end
  end
  return problems
end

-- ---------------------------------------------------------------- database set-ups

local DROP_ALL = [[DROP TABLE IF EXISTS agent_logs, price_history, jobs, positions, accounts, instruments, users,
  schema_migrations CASCADE; DROP FUNCTION IF EXISTS update_updated_at_column() CASCADE;]]

-- Perturbations make the state before a reset differ from the canonical one,
-- so "exactly as before" and "complete new state" can be told apart.
local PERTURBATIONS = {
  { name = "edited rows", needs = { "instruments", "users", "accounts" }, sql = function(n)
    return ([[UPDATE instruments SET current_price = current_price + 1.5
        WHERE symbol = (SELECT symbol FROM instruments ORDER BY symbol OFFSET %d LIMIT 1);
      INSERT INTO users (clerk_user_id, display_name) VALUES ('soak_%d', 'soak user');
      INSERT INTO accounts (clerk_user_id, account_name, cash_balance) VALUES ('soak_%d', 'extra', %d);]])
      :format(n % 20, n, n, n)
  end },
  { name = "deleted and added rows", needs = { "positions", "jobs", "users", "instruments", "price_history" },
    sql = function(n)
      return ([[DELETE FROM positions WHERE id = (SELECT id FROM positions ORDER BY symbol LIMIT 1);
        INSERT INTO jobs (clerk_user_id, job_type, request_payload)
          SELECT clerk_user_id, 'soak', '{"n": %d}' FROM users ORDER BY clerk_user_id LIMIT 1;
        INSERT INTO price_history (symbol, price_date, close_price)
          SELECT symbol, DATE '2024-01-01' + %d, 100 + %d FROM instruments ORDER BY symbol LIMIT 3;]])
        :format(n, n % 300, n % 50)
    end },
  { name = "a dropped table, half migrated",
    needs = { "agent_logs", "price_history", "schema_migrations", "instruments" },
    sql = function(n)
      return ([[DROP TABLE agent_logs; DROP TABLE price_history;
        DELETE FROM schema_migrations WHERE version = '002';
        INSERT INTO instruments (symbol, name) VALUES ('ZZ%d', 'soak marker');]]):format(n)
    end },
  { name = "empty database", needs = {}, sql = function() return DROP_ALL end },
  { name = "unchanged", needs = {}, sql = function() return nil end },
}

local function perturb(tables, n)
  local choices = {}
  for _, p in ipairs(PERTURBATIONS) do
    local ok = true
    for _, t in ipairs(p.needs) do if not tables[t] then ok = false end end
    if ok then choices[#choices + 1] = p end
  end
  local p = choices[math.random(#choices)]
  local sql = p.sql(n)
  if sql then psql(sql) end
  return p.name
end

-- ---------------------------------------------------------------- scenarios

local canonical -- the fingerprint after a clean reset with test data
local seq = 0

local function begin_scenario(name)
  seq = seq + 1
  current = { name = name, n = seq, violated = false, started = clock.monotonic() }
  tally.by[name].runs = tally.by[name].runs + 1
  current.faults_before = fault_counts()
end

local function end_scenario()
  local after = fault_counts()
  local t = tally.by[current.name]
  for _, k in ipairs(FAULT_KINDS) do t.faults[k] = t.faults[k] + after[k] - current.faults_before[k] end
  clear_faults()
  local took = clock.monotonic() - current.started
  t.seconds = t.seconds + took
  if took > t.slowest then t.slowest = took end
end

local function verify_json(r)
  local ok, report = pcall(cjson.decode, r.out)
  if ok and type(report) == "table" and report.checks then return report end
  return nil
end

-- verify.lua under the given faults; a canonical state must pass.  Aborted by
-- faults (no report): run again without faults.
local function check_verify(faults, env)
  verify_tally.runs = verify_tally.runs + 1
  if faults then assert(s:set_faults(faults)) end
  local r = run_child { script = "scripts/verify.lua", args = { "--json" }, env = env }
  clear_faults()
  local report = verify_json(r)
  if not report then
    verify_tally.aborted = verify_tally.aborted + 1
    r = run_child { script = "scripts/verify.lua", args = { "--json" } }
    report = verify_json(r)
  end
  if not report then
    violation("verify.lua gave no report even without faults (exit %d): %s", r.rc, r.log)
    keep(r)
    return
  end
  if report.ok then
    verify_tally.passed = verify_tally.passed + 1
  else
    verify_tally.failed_checks = verify_tally.failed_checks + 1
    local bad = {}
    for _, c in ipairs(report.checks) do if not c.ok then bad[#bad + 1] = c.name end end
    violation("verify.lua failed on the canonical state: %s (%s)", table.concat(bad, ", "), r.log)
    keep(r)
  end
end

-- A clean reset (no faults); the state must then be the canonical one.
local function clean_reset()
  local r = run_child { script = "scripts/reset.lua", args = { "--with-test-data" } }
  if r.rc ~= 0 then error("a reset without faults failed (exit " .. r.rc .. "): " .. r.err:sub(-2000), 0) end
  return fingerprint()
end

local function ensure_canonical()
  local fp = fingerprint()
  if not same(fp, canonical) then fp = clean_reset() end
  if not same(fp, canonical) then
    violation("a clean reset did not give the canonical state: %s", table.concat(diff(canonical, fp), "; "))
    return false
  end
  return true
end

local function scenario_reset(exhaust)
  local name = exhaust and "exhaust" or "reset"
  begin_scenario(name)
  local t = tally.by[name]
  local _, before_tables = fingerprint()
  local what = perturb(before_tables, current.n)
  local pre_fp = fingerprint()
  local faults, env
  if exhaust then
    faults = fault_mix(0.3 + math.random() * 0.3)
    env = { AWS_MAX_ATTEMPTS = "1", ALEX_RESUME_TIMEOUT = "0.05" }
  else
    faults = fault_mix(0.05 + math.random() * 0.25)
    env = { AWS_MAX_ATTEMPTS = tostring(math.random(3, 5)) }
  end
  assert(s:set_faults(faults))
  local r = run_child { script = "scripts/reset.lua", args = { "--with-test-data" }, env = env }
  clear_faults()
  local fp, tables = fingerprint()
  local is_canonical, is_pre = same(fp, canonical), same(fp, pre_fp)
  for _, p in ipairs(duplicate_check(tables)) do
    violation("%s after reset (%s): %s", p, describe_faults(faults), r.log)
  end
  local outcome
  if r.rc == 0 then
    if is_canonical then
      t.ok = t.ok + 1
      outcome = "ok"
    else
      violation("reset succeeded but the state is not the canonical one (from %q, %s): %s; log %s", what,
        describe_faults(faults), table.concat(diff(canonical, fp), "; "), r.log)
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
      violation("reset's commit outcome unknown and the state is neither the old nor the new one (from %q, %s):" ..
        " %s; log %s", what, describe_faults(faults), table.concat(diff(pre_fp, fp), "; "), r.log)
      outcome = "BAD STATE"
    end
  else
    if is_pre then
      t.intact = t.intact + 1
      outcome = "failed, state intact"
    else
      violation("reset failed (exit %d) and changed the state (from %q, %s): %s; log %s", r.rc, what,
        describe_faults(faults), table.concat(diff(pre_fp, fp), "; "), r.log)
      outcome = "BAD STATE"
    end
  end
  if current.violated then keep(r) end
  say("%-7s #%-3d from %-30s %-44s -> %s (%d retries, %d tx retries)", name, current.n, ("%q"):format(what),
    describe_faults(faults), outcome, r.retries, r.tx_retries)
  if is_canonical then
    if exhaust then check_verify(nil, nil) else check_verify(faults, env) end
  end
  end_scenario()
end

-- reset.lua stopped by kill -9 or SIGTERM at a random moment, under a random
-- latency so the moment falls anywhere in its calls.  Then the next reset,
-- without faults, must be unblocked: done within 5 s.
local UNBLOCKED_SECONDS = 5
local function scenario_kill()
  begin_scenario("kill")
  local t = tally.by.kill
  local _, before_tables = fingerprint()
  local what = perturb(before_tables, current.n)
  local pre_fp = fingerprint()
  local signal = math.random() < 0.5 and "KILL" or "TERM"
  local latency = math.random(20, 250)
  local delay = math.random() * 12 * latency / 1000
  assert(s:set_faults { latency_ms = latency })
  local r = run_child { script = "scripts/reset.lua", args = { "--with-test-data" },
                        kill = { delay = delay, signal = signal } }
  clear_faults()
  local fp = fingerprint()
  local outcome
  if same(fp, canonical) then
    outcome = "new state"
  elseif same(fp, pre_fp) then
    outcome = "old state"
  else
    violation("reset stopped by SIG%s after %.2f s left neither the old nor the new state (from %q): %s; log %s",
      signal, delay, what, table.concat(diff(pre_fp, fp), "; "), r.log)
    outcome = "BAD STATE"
  end
  if signal == "TERM" and r.rc ~= 0 and r.rc ~= 143 then
    violation("reset exited %d after SIGTERM (expected 143, or 0 when it had finished): %s", r.rc, r.log)
  end
  if signal == "TERM" and r.rc == 143 and outcome ~= "old state" then
    violation("reset said it was stopped by SIGTERM but the state is not the old one: %s", r.log)
  end
  local t0 = clock.monotonic()
  local r2 = run_child { script = "scripts/reset.lua", args = { "--with-test-data" } }
  local took = clock.monotonic() - t0
  if r2.rc ~= 0 then
    violation("the reset after a SIG%s exited %d: %s", signal, r2.rc, r2.log)
  elseif took > UNBLOCKED_SECONDS then
    violation("the reset after a SIG%s took %.1f s (blocked by the stopped run's locks?): %s", signal, took, r2.log)
  elseif not same(fingerprint(), canonical) then
    violation("the reset after a SIG%s did not leave the canonical state: %s", signal, r2.log)
  else
    t.ok = t.ok + 1
  end
  if outcome == "old state" then t.intact = t.intact + 1 end
  if current.violated then keep(r) keep(r2) end
  say("%-7s #%-3d from %-30s SIG%-4s after %.2f s (latency %d ms) -> %s, exit %d; next reset %.2f s%s",
    "kill", current.n, ("%q"):format(what), signal, delay, latency, outcome, r.rc, took,
    r2.err:find("rolled back 1 transaction", 1, true) and " (rolled back the orphan)" or "")
  end_scenario()
end

local function migration_versions()
  local list = {}
  for name in io.popen("ls " .. shell_quote(root .. "/schema")):lines() do
    local v = name:match("^(%d+)_[%w_%-]+%.sql$")
    if v then list[#list + 1] = v end
  end
  table.sort(list)
  return list
end

local function scenario_migrate()
  begin_scenario("migrate")
  local t = tally.by.migrate
  psql(DROP_ALL)
  local faults = fault_mix(math.random() * 0.12)
  assert(s:set_faults(faults))
  local jobs = {}
  for i = 1, 3 do jobs[i] = { script = "scripts/migrate.lua" } end
  local rs = run_children(jobs)
  clear_faults()
  local failed = 0
  for _, r in ipairs(rs) do
    if r.rc ~= 0 then failed = failed + 1 end
    if r.err:find("already exists", 1, true) or r.err:find("SQLState: 42P07", 1, true)
       or r.err:find("SQLState: 42710", 1, true) then
      violation("a migrate.lua applied a migration that was already applied (%s): %s", describe_faults(faults), r.log)
      keep(r)
    end
  end
  local expected = migration_versions()
  local function applied()
    if psql("SELECT to_regclass('schema_migrations') IS NULL") == "t" then return "" end -- no run got that far
    return psql("SELECT coalesce(string_agg(version, ',' ORDER BY version), '') FROM schema_migrations")
  end
  local got = applied()
  -- migrations run in order: what is applied must be a prefix of the list
  local prefix_ok = false
  for n = 0, #expected do
    if got == table.concat(expected, ",", 1, n) then prefix_ok = true end
  end
  if not prefix_ok then violation("migrations applied out of order or unknown: %q (files: %s)", got,
    table.concat(expected, ",")) end
  local fp, tables = fingerprint()
  for _, p in ipairs(duplicate_check(tables)) do violation("%s after concurrent migrate", p) end
  local outcome = ("%d of 3 runs failed"):format(failed)
  if got == table.concat(expected, ",") then
    local d = {}
    for _, line in ipairs(diff(canonical, fp)) do if line:find("^schema") then d[#d + 1] = line end end
    if #d > 0 then violation("concurrent migrate left a schema unlike the canonical one: %s", table.concat(d, "; ")) end
  else
    -- a run failed under the faults: one more, without faults, must finish the job
    local r = run_child { script = "scripts/migrate.lua" }
    if r.rc ~= 0 then violation("migrate.lua without faults failed after a partial concurrent run: %s", r.log) end
    got = applied()
    if got ~= table.concat(expected, ",") then violation("migrations after a final run: %q", got) end
    outcome = outcome .. ", completed by a final run"
  end
  for _, line in ipairs(diff(canonical, fingerprint())) do
    if line:find("^schema") then violation("schema after migrate: %s", line) end
  end
  if not current.violated then
    if failed == 0 then t.ok = t.ok + 1 else t.intact = t.intact + 1 end
  end
  say("migrate #%-3d %-44s -> %s", current.n, describe_faults(faults), outcome)
  end_scenario()
end

local function scenario_prices()
  begin_scenario("prices")
  local t = tally.by.prices
  if not ensure_canonical() then end_scenario() return end
  local symbols = {}
  for sym in psql("SELECT symbol FROM instruments ORDER BY symbol"):gmatch("[^\n]+") do symbols[#symbols + 1] = sym end
  local symbol = symbols[math.random(#symbols)]
  local original = psql("SELECT current_price FROM instruments WHERE symbol = " .. sql_literal(symbol))
  local k = math.random(3, 4)
  local prices, jobs = {}, {}
  for i = 1, k do
    prices[i] = ("%d.%04d"):format(math.random(1, 9999), math.random(0, 9999))
    -- --again: two children may set the same price, each a run of its own
    jobs[i] = { script = "scripts/fixes/reprice.lua", args = { symbol, prices[i], "--apply", "--again" } }
  end
  local faults = fault_mix(math.random() * 0.15)
  assert(s:set_faults(faults))
  local rs = run_children(jobs)
  clear_faults()
  local final = psql("SELECT current_price FROM instruments WHERE symbol = " .. sql_literal(symbol))
  local allowed, succeeded, names = {}, 0, {}
  for i, r in ipairs(rs) do
    if r.rc == 0 then succeeded = succeeded + 1 end
    if r.rc == 0 or r.commit_unknown then allowed[#allowed + 1] = prices[i] end
    names[i] = prices[i] .. (r.rc == 0 and "" or (r.commit_unknown and "?" or "x"))
  end
  if succeeded == 0 then allowed[#allowed + 1] = original end
  local match = false
  for _, p in ipairs(allowed) do
    if tonumber(p) == tonumber(final) then match = true end
  end
  if not match then
    violation("%s ended at %s, not a serial outcome of %s (from %s; x = failed, ? = commit unknown)", symbol, final,
      table.concat(names, ", "), original)
    for _, r in ipairs(rs) do keep(r) end
  end
  psql(("UPDATE instruments SET current_price = %s WHERE symbol = %s"):format(original, sql_literal(symbol)))
  local d = diff(canonical, fingerprint())
  if #d > 0 then violation("concurrent price updates changed something else: %s", table.concat(d, "; ")) end
  if not current.violated then
    if succeeded == k then t.ok = t.ok + 1 else t.intact = t.intact + 1 end
  end
  say("prices  #%-3d %-5s %s -> %s %-30s %s", current.n, symbol, original, final, table.concat(names, " "),
    describe_faults(faults))
  end_scenario()
end

-- Holdings of one symbol by account name, as numbers (absent = 0).
local function holdings(symbol)
  local out = {}
  for _, a in ipairs(ACCOUNTS) do out[a] = 0 end
  local rows = psql(([[SELECT a.account_name || '|' || p.quantity FROM positions p
    JOIN accounts a ON a.id = p.account_id
    WHERE a.clerk_user_id = %s AND p.symbol = %s]]):format(sql_literal(TEST_USER), sql_literal(symbol)))
  for line in rows:gmatch("[^\n]+") do
    local name, q = line:match("^(.*)|(.*)$")
    out[name] = (out[name] or 0) + tonumber(q)
  end
  return out, rows
end

-- move semantics of Positions:move: nil when the move fails in this state.
local function apply_move(state, m)
  local have = state[m.from] or 0
  if have <= 0 then return nil end
  local amount = m.quantity or have
  if amount > have then return nil end
  local new = {}
  for k, v in pairs(state) do new[k] = v end
  new[m.from] = have - amount
  new[m.to] = (new[m.to] or 0) + amount
  return new
end

local function equal_state(a, b)
  for _, name in ipairs(ACCOUNTS) do
    if math.abs((a[name] or 0) - (b[name] or 0)) > 1e-9 then return false end
  end
  return true
end

-- Is there an order of the moves that must have happened (and some of the
-- maybe-happened ones) that leads from start to final?
local function serial_outcome(start, must, maybe, final)
  local function search(state, left_must, left_maybe)
    if #left_must == 0 and equal_state(state, final) then return true end
    for i, m in ipairs(left_must) do
      local nxt = apply_move(state, m)
      if nxt then
        local rest = { table.unpack(left_must) }
        table.remove(rest, i)
        if search(nxt, rest, left_maybe) then return true end
      end
    end
    for i, m in ipairs(left_maybe) do
      local nxt = apply_move(state, m)
      if nxt then
        local rest = { table.unpack(left_maybe) }
        table.remove(rest, i)
        if search(nxt, left_must, rest) then return true end
      end
    end
    return false
  end
  return search(start, must, maybe)
end

local function scenario_moves()
  begin_scenario("moves")
  local t = tally.by.moves
  if not ensure_canonical() then end_scenario() return end
  local symbols = { "SPY", "QQQ", "BND", "VEA", "GLD" }
  local symbol = symbols[math.random(#symbols)]
  local canonical_holdings = holdings(symbol)
  local total = 0
  for _, q in pairs(canonical_holdings) do total = total + q end
  -- spread the holding over the three accounts (some may hold none)
  local a = math.random(0, total)
  local b = math.random(0, total - a)
  local start = { [ACCOUNTS[1]] = a, [ACCOUNTS[2]] = b, [ACCOUNTS[3]] = total - a - b }
  local set = { ("DELETE FROM positions WHERE symbol = %s AND account_id IN " ..
    "(SELECT id FROM accounts WHERE clerk_user_id = %s);")
    :format(sql_literal(symbol), sql_literal(TEST_USER)) }
  for _, name in ipairs(ACCOUNTS) do
    if start[name] > 0 then
      set[#set + 1] = ([[INSERT INTO positions (account_id, symbol, quantity) SELECT id, %s, %d FROM accounts
        WHERE clerk_user_id = %s AND account_name = %s;]]):format(sql_literal(symbol), start[name],
        sql_literal(TEST_USER), sql_literal(name))
    end
  end
  psql(table.concat(set, "\n"))
  local k = math.random(3, 4)
  local moves, jobs = {}, {}
  for i = 1, k do
    -- mostly from an account that holds some at the start, mostly a part of it
    local from = math.random(3)
    for _ = 1, 4 do
      if start[ACCOUNTS[from]] > 0 then break end
      from = math.random(3)
    end
    local to = (from + math.random(1, 2) - 1) % 3 + 1
    local m = { from = ACCOUNTS[from], to = ACCOUNTS[to] }
    if math.random() < 0.7 then m.quantity = math.random(1, math.max(1, start[ACCOUNTS[from]] // 2)) end
    moves[i] = m
    local args = { TEST_USER, symbol, m.from, m.to }
    if m.quantity then args[#args + 1] = "--quantity"; args[#args + 1] = tostring(m.quantity) end
    args[#args + 1] = "--apply"
    args[#args + 1] = "--again"
    jobs[i] = { script = "scripts/fixes/move_position.lua", args = args }
  end
  local faults = fault_mix(math.random() * 0.15)
  assert(s:set_faults(faults))
  local rs = run_children(jobs)
  clear_faults()
  local final, raw = holdings(symbol)
  local sum = 0
  for _, q in pairs(final) do sum = sum + q end
  local must, maybe, names, succeeded = {}, {}, {}, 0
  for i, r in ipairs(rs) do
    local m = moves[i]
    local mark = r.rc == 0 and "" or (r.commit_unknown and "?" or "x")
    names[i] = ("%s>%s:%s%s"):format(m.from:sub(1, 1), m.to:sub(1, 1), m.quantity or "all", mark)
    if r.rc == 0 then
      must[#must + 1] = m
      succeeded = succeeded + 1
    elseif r.commit_unknown then
      maybe[#maybe + 1] = m
    end
  end
  local zero = psql(([[SELECT count(*) FROM positions p JOIN accounts a ON a.id = p.account_id
    WHERE a.clerk_user_id = %s AND p.symbol = %s AND p.quantity <= 0]]):format(sql_literal(TEST_USER),
    sql_literal(symbol)))
  if math.abs(sum - total) > 1e-9 then
    violation("%s total went from %d to %s after moves %s: %s", symbol, total, tostring(sum),
      table.concat(names, " "), raw:gsub("\n", ", "))
  elseif zero ~= "0" then
    violation("%s: %s positions with a quantity <= 0 after moves %s", symbol, zero, table.concat(names, " "))
  elseif not serial_outcome(start, must, maybe, final) then
    violation("%s holdings %s are no serial outcome of moves %s from %d/%d/%d", symbol, raw:gsub("\n", ", "),
      table.concat(names, " "), start[ACCOUNTS[1]], start[ACCOUNTS[2]], start[ACCOUNTS[3]])
  end
  if current.violated then for _, r in ipairs(rs) do keep(r) end end
  -- back to the canonical holding; then nothing else may differ
  local restore = { set[1] }
  for name, q in pairs(canonical_holdings) do
    if q > 0 then
      restore[#restore + 1] = ([[INSERT INTO positions (account_id, symbol, quantity) SELECT id, %s, %s FROM accounts
        WHERE clerk_user_id = %s AND account_name = %s;]]):format(sql_literal(symbol), tostring(q),
        sql_literal(TEST_USER), sql_literal(name))
    end
  end
  psql(table.concat(restore, "\n"))
  local d = diff(canonical, fingerprint())
  if #d > 0 then violation("concurrent moves changed something else: %s", table.concat(d, "; ")) end
  if not current.violated then
    if succeeded == k then t.ok = t.ok + 1 else t.intact = t.intact + 1 end
  end
  say("moves   #%-3d %-4s %d/%d/%d -> %d/%d/%d  %-40s %s", current.n, symbol, start[ACCOUNTS[1]], start[ACCOUNTS[2]],
    start[ACCOUNTS[3]], final[ACCOUNTS[1]], final[ACCOUNTS[2]], final[ACCOUNTS[3]], table.concat(names, " "),
    describe_faults(faults))
  end_scenario()
end

-- A non-idempotent call on a reused keep-alive connection whose answer never
-- comes (the service ran it, then dropped the connection) must run once:
-- libcurl resends such a request on a fresh connection unless told not to.
local function probe_resend()
  local getenv = function(k)
    local v = s.env[k]
    if v ~= nil then return v end
    return os.getenv(k)
  end
  local db = require "alex.db"
  local conn = assert(db.connect { env = getenv, quiet = true, max_attempts = 3 })
  psql("DROP TABLE IF EXISTS soak_probe; CREATE TABLE soak_probe (n int)")
  conn:query("SELECT 1") -- the connection is now open and kept alive
  assert(s:set_faults { seed = 1, drop_after_rate = 1 })
  local ok, err = pcall(conn.execute, conn, "INSERT INTO soak_probe VALUES (1)")
  clear_faults()
  local n = tonumber(psql("SELECT count(*) FROM soak_probe"))
  psql("DROP TABLE soak_probe")
  conn:close()
  probe_result = ("one INSERT, its answer lost: %s, executed %d time%s"):format(
    ok and "reported success"
      or ("error " .. tostring(err.name) .. (err.outcome_unknown and " (outcome unknown)" or "")),
    n, n == 1 and "" or "s")
  if n ~= 1 or ok then
    violation("a write whose answer was lost on a reused connection ran %d times (%s)", n,
      ok and "reported success" or tostring(err))
  end
  say("probe: %s", probe_result)
end

-- ---------------------------------------------------------------- the report

local function git_describe()
  local p = io.popen("cd " .. shell_quote(root) .. " && git rev-parse --short HEAD 2>/dev/null && " ..
    "git status --porcelain --untracked-files=no 2>/dev/null | head -1")
  local text = p and p:read("a") or ""
  if p then p:close() end
  local head, dirty = text:match("^(%x+)\n(.*)$")
  if not head then return "unknown" end
  return head .. (dirty ~= "" and " (with uncommitted changes)" or "")
end

local function report(elapsed, total_faults)
  local out = {}
  local function w(fmt, ...) out[#out + 1] = fmt:format(...) end
  local total_runs, total_viol = 0, 0
  for _, name in ipairs(SCENARIOS) do
    total_runs = total_runs + tally.by[name].runs
    total_viol = total_viol + tally.by[name].violations
  end
  w("# Fault soak")
  w("")
  w("Generated by `make soak` (bench/soak.lua) on %s, commit %s.", os.date("!%Y-%m-%d %H:%M UTC"), git_describe())
  w("%.0f s (SOAK_SECONDS=%d), master seed %d (SOAK_SEED=%d repeats the choices; timing still varies).",
    elapsed, SECONDS, SEED, SEED)
  w("")
  w("**Result: %s** — %d scenario runs, %d child processes, %d violation%s.",
    #violations == 0 and "no violation" or "VIOLATIONS", total_runs, tally.children, #violations,
    #violations == 1 and "" or "s")
  w("")
  w("| scenario | runs | succeeded | failed, state intact | commit unknown: old / new state | violations |" ..
    " faults injected | client retries | mean / slowest run (s) |")
  w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
  for _, name in ipairs(SCENARIOS) do
    local t = tally.by[name]
    local f = 0
    for _, k in ipairs(FAULT_KINDS) do f = f + t.faults[k] end
    w("| %s | %d | %d | %d | %d / %d | %d | %d | %d | %.2f / %.2f |", name, t.runs, t.ok, t.intact, t.unknown_old,
      t.unknown_new, t.violations, f, t.retries, t.runs > 0 and t.seconds / t.runs or 0, t.slowest)
  end
  w("")
  w("How the child processes ended, by scenario:")
  w("")
  for _, name in ipairs(SCENARIOS) do
    local t, keys, parts = tally.by[name], {}, {}
    for k in pairs(t.reasons) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return t.reasons[a] > t.reasons[b] or (t.reasons[a] == t.reasons[b] and a < b) end)
    for _, k in ipairs(keys) do parts[#parts + 1] = ("%s %d"):format(k, t.reasons[k]) end
    w("- %s (%d children): %s", name, t.children, #parts > 0 and table.concat(parts, ", ") or "none")
  end
  w("")
  w("For `migrate`, `prices` and `moves`, *succeeded* means every child of the run succeeded and *failed, state")
  w("intact* that some failed under the faults while the end state was still a serial outcome.")
  w("")
  w("Faults injected (the service's counters, all scenarios): %s; %d Data API operations in all.",
    (function()
      local parts = {}
      for _, k in ipairs(FAULT_KINDS) do parts[#parts + 1] = ("%s %d"):format(k, total_faults[k]) end
      return table.concat(parts, ", ")
    end)(), total_faults.ops)
  w("")
  w("Client side (ALEX_STATS=1 and ALEX_DEBUG=1 of the children): %d calls, %d retries of single calls,",
    tally.calls, tally.retries)
  w("%d re-runs of a whole rolled-back transaction (reset's `retries = 2`), %d waits for a resuming cluster.",
    tally.tx_retries, tally.resume_waits)
  w("verify.lua: %d runs, %d passed, %d aborted by faults (then run again without), %d with failed checks.",
    verify_tally.runs, verify_tally.passed, verify_tally.aborted, verify_tally.failed_checks)
  w("")
  w("Resend probe: %s.", probe_result)
  w("")
  w("## What is checked")
  w("")
  w("- **reset** / **exhaust**: before each run the database is perturbed with psql (edited rows, deleted and")
  w("  added rows, a dropped table with its migration record removed, an empty database, or left alone). After")
  w("  the run: exit 0 requires the canonical fingerprint (and verify.lua passing, itself under the same faults);")
  w("  a failure requires exactly the previous fingerprint; a failure whose commit was sent without an answer")
  w("  may leave either. Duplicate accounts or migration records are looked for explicitly too. `reset` uses")
  w("  5-30%% faults and AWS_MAX_ATTEMPTS 3-5; `exhaust` 30-60%% with AWS_MAX_ATTEMPTS=1 and")
  w("  ALEX_RESUME_TIMEOUT=0.05.")
  w("- **migrate**: three migrate.lua at once on an empty database under 0-12%% faults; no run may meet an")
  w("  \"already exists\" error, the applied versions are a prefix of the files, and once all are applied the")
  w("  schema fingerprint is the canonical one (a last run without faults completes a partial result).")
  w("- **prices**: 3-4 reprice.lua at once on one instrument (0-15%% faults): the final price is one a")
  w("  successful (or commit-unknown) child wrote, the original only when none succeeded; restoring the price")
  w("  must give back the canonical fingerprint.")
  w("- **moves**: the test user's holding of one symbol is spread over the three accounts, then 3-4")
  w("  move_position.lua at once (all, or a quantity; 0-15%% faults): the total is conserved, no quantity <= 0,")
  w("  and some order of the successful moves (plus any commit-unknown ones) leads from the start to the end")
  w("  holdings; restoring the holding must give back the canonical fingerprint.")
  w("- **kill**: reset.lua is stopped by kill -9 or SIGTERM (even odds) after a random delay, under 20-250 ms")
  w("  of latency per call: the state must be the old or the new one, a SIGTERM'd run must exit 143 having")
  w("  rolled back, and the next reset (no faults) must succeed within %d s and leave the canonical state. With",
    UNBLOCKED_SECONDS)
  w("  the service's transaction idle timeout at 60 s, only the journal's recovery can meet that bound.")
  w("- Fingerprint: per table, row count and md5 of the rows without ids, timestamps and uuid columns")
  w("  (positions keyed by account owner and name); schema relations, columns, constraints, triggers, functions.")
  w("- Children run with ALEX_RETRY_BASE=0.02, ALEX_RESUME_BASE=0.02, ALEX_RESUME_TIMEOUT=1; the service's")
  w("  tx_idle_timeout is 60 s: a transaction a run could not roll back is left to the next run's recovery.")
  w("")
  w("## Violations")
  w("")
  if #violations == 0 then w("None.") else for _, v in ipairs(violations) do w("- %s", v) end end
  if #notes > 0 then
    w("")
    w("## Notes")
    w("")
    for i, n in ipairs(notes) do if i <= 20 then w("- %s", n) end end
  end
  w("")
  return table.concat(out, "\n")
end

-- ---------------------------------------------------------------- main

local started = clock.monotonic()
local ok, err = pcall(function()
  local dir = io.popen("mktemp -d " .. shell_quote((os.getenv("TMPDIR") or "/tmp") .. "/alex-soak.XXXXXX")):read("l")
  assert(dir and dir:sub(1, 1) == "/", "mktemp failed")
  logdir = dir
  say("seed %d, %d s, stack on 127.0.0.1:%d, logs in %s", SEED, SECONDS, s.api_port, logdir)
  assert(s:reset_stats())
  current = { name = "probe", n = 0 }
  probe_resend()
  current = { name = "reset", n = 0 }
  canonical = clean_reset()
  local base_counts = psql([[SELECT (SELECT count(*) FROM users) || '/' || (SELECT count(*) FROM accounts) || '/' ||
    (SELECT count(*) FROM positions) || '/' || (SELECT count(*) FROM instruments)]])
  say("canonical state: users/accounts/positions/instruments = %s", base_counts)
  assert(base_counts:match("^1/3/5/%d+$"), "the canonical state is not the seeded one: " .. base_counts)
  check_verify(nil, nil)
  local rotation = { "reset", "exhaust", "kill", "reset", "prices", "kill", "reset", "exhaust", "moves", "kill",
    "reset", "migrate" }
  local i = 0
  while clock.monotonic() - started < SECONDS do
    i = i + 1
    local which = rotation[(i - 1) % #rotation + 1]
    if which == "reset" then scenario_reset(false)
    elseif which == "exhaust" then scenario_reset(true)
    elseif which == "kill" then scenario_kill()
    elseif which == "migrate" then scenario_migrate()
    elseif which == "prices" then scenario_prices()
    else scenario_moves() end
  end
end)
pcall(clear_faults)
local total_faults = (pcall(fault_counts)) and fault_counts() or { ops = 0 }
for _, k in ipairs(FAULT_KINDS) do total_faults[k] = total_faults[k] or 0 end
local open_tx = (s:stats() or {}).open_transactions
s:stop()
if not ok then
  io.stderr:write("soak: aborted: ", tostring(err), "\n")
  if logdir then io.stderr:write("soak: logs kept in ", logdir, "\n") end
  os.exit(2)
end
local elapsed = clock.monotonic() - started
if open_tx and open_tx > 0 then
  notes[#notes + 1] = ("%d transaction(s) still open at the end (a begin or rollback whose answer was lost;" ..
    " the service expires them after tx_idle_timeout)"):format(open_tx)
end

local text = report(elapsed, total_faults)
write_file(REPORT, text)
io.stdout:write("\n", text)
if #violations > 0 then
  local keepdir = logdir
  io.stdout:write(("soak: %d violation(s); the children's logs are kept in %s\n"):format(#violations, keepdir))
  for _, l in ipairs(kept_logs) do io.stdout:write("  ", l, "\n") end
  os.exit(1)
end
os.execute("rm -rf " .. shell_quote(logdir))
say("report written to %s", REPORT)
os.exit(0)
