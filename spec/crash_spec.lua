-- A crash blocks nothing: kill -9 at any point of a reset leaves a journal
-- entry the next run rolls back; SIGTERM, SIGHUP and SIGINT roll back at once
-- and exit 128 + signal; a statement waiting for another transaction's lock
-- fails after the lock timeout, saying so; a rollback is retried like any
-- repeatable call.  Against a private local stack, with alexlua as a child
-- process where a signal is involved.
local stack = require "stack"
local servers = require "servers"
local journal = require "alex.journal"
local db = require "alex.db"
local ops = require "dbops"

local q = servers.q

local EXPECTED_COUNTS = "22|1|3|5"

describe("a crash blocks nothing", function()
  local s, tmp, jdir

  local function counts()
    return assert(s:psql([[SELECT (SELECT count(*) FROM instruments) || '|' || (SELECT count(*) FROM users) || '|' ||
      (SELECT count(*) FROM accounts) || '|' || (SELECT count(*) FROM positions)]]))
  end

  local function journal_files()
    local ok, out = servers.run("ls -A " .. q(jdir) .. " 2>/dev/null")
    local list = {}
    if ok then for name in out:gmatch("[^\n]+") do list[#list + 1] = name end end
    return list
  end

  -- Transactions the service holds open (each one holds its locks).
  local function open_transactions() return assert(s:stats()).open_transactions end

  -- Starts a reset in the background with the stack's settings; returns its
  -- handle (servers.spawn) to signal it and wait for it.
  local function start_reset()
    return servers.spawn(ops.command(s, "scripts/reset.lua", { "--with-test-data" }, { ALEX_JOURNAL_DIR = jdir }))
  end

  local function reset(extra)
    local vars = { ALEX_JOURNAL_DIR = jdir }
    for k, v in pairs(extra or {}) do vars[k] = v end
    return ops.run(s, "scripts/reset.lua", { "--with-test-data" }, vars)
  end

  stack.shared({}, function(started)
    s = started
    tmp = ops.tmpdir()
    jdir = s.env.ALEX_JOURNAL_DIR -- local.env keeps the journal in the stack's folder
    return function() ops.rmdir(tmp) end
  end)

  before_each(function()
    s:clear_faults()
  end)

  describe("kill -9 in the middle of a reset", function()
    -- each step of the reset, so the kill lands before, inside and after the
    -- DROP that locks every table
    for _, step in ipairs { "dropping", "applying 001", "applying 002", "seeding", "creating test user" } do
      it("at '" .. step .. "': the next reset rolls the orphan back and succeeds within 5 s", function()
        assert.equal(0, reset().code)
        assert(s:set_faults { latency_ms = 300 })
        local h = start_reset()
        finally(h.cleanup)
        assert.is_true(h.wait_for(step), "the reset never reached '" .. step .. "': " .. h.out() .. h.err())
        servers.sleep(0.35) -- the step's call is in flight or done
        h.signal("KILL")
        assert.equal(137, h.wait(10))
        s:clear_faults()
        assert.equal(1, #journal_files(), "the killed run left no journal entry")
        local t0 = servers.now()
        local r = reset()
        local elapsed = servers.now() - t0
        assert.equal(0, r.code, r.all)
        assert.is_true(elapsed < 5, ("the next reset took %.1f s"):format(elapsed))
        assert.matches("rolled back 1 transaction left open by a run that ended without closing it", r.err)
        assert.equal(EXPECTED_COUNTS, counts())
        assert.same({}, journal_files())
        assert.equal(0, open_transactions())
      end)
    end

    it("while its statement still runs: the next run waits for the statement, then rolls back", function()
      assert.equal(0, reset().code)
      local script = tmp .. "/sleeper.lua"
      ops.write(script, [[
        local db = assert(require("alex.db").connect { quiet = true })
        db:transaction(function(tx)
          tx:execute("LOCK TABLE instruments IN ACCESS EXCLUSIVE MODE")
          io.stdout:write("locked\n") io.stdout:flush()
          tx:execute("SELECT pg_sleep(3)")
        end)
      ]])
      local h = servers.spawn(("env %s %s --no-env-file %s"):format(
        servers.assignments(servers.with(s.env, { ALEX_JOURNAL_DIR = jdir })), q(ops.ALEXLUA), q(script)))
      finally(h.cleanup)
      h.wait_for("locked", 10)
      servers.sleep(0.3) -- pg_sleep is running
      h.signal("KILL")
      local t0 = servers.now()
      local r = reset()
      assert.equal(0, r.code, r.all)
      assert.is_true(servers.now() - t0 < 8)
      assert.matches("rolled back 1 transaction", r.err)
      assert.same({}, journal_files())
    end)
  end)

  describe("SIGTERM, SIGHUP and SIGINT in the middle of a reset", function()
    for _, case in ipairs { { "TERM", 15, "terminated" }, { "HUP", 1, "hangup" }, { "INT", 2, "interrupted" } } do
      local sig, n, text = case[1], case[2], case[3]
      it(("SIG%s rolls back at once and exits %d"):format(sig, 128 + n), function()
        assert.equal(0, reset().code)
        local before = ops.fingerprint(s)
        assert(s:set_faults { latency_ms = 300 })
        local h = start_reset()
        finally(h.cleanup)
        assert.is_true(h.wait_for("applying 001"), h.out() .. h.err())
        servers.sleep(0.1)
        h.signal(sig)
        local rc = h.wait(60)
        s:clear_faults()
        assert.equal(128 + n, rc, h.err())
        assert.matches("reset failed, nothing was changed: " .. text, h.err(), 1, true)
        assert.not_matches("stack traceback", h.err())
        -- rolled back by the run itself: nothing open, nothing left to recover
        assert.equal(0, open_transactions())
        assert.same({}, journal_files())
        assert.equal(before, ops.fingerprint(s))
      end)
    end
  end)

  describe("a stop while the commit is in flight", function()
    it("says the outcome is unknown, most likely applied, and exits 143", function()
      assert.equal(0, reset().code)
      local log = tmp .. "/proxy-commit.log"
      local port = s.endpoint:match(":(%d+)$")
      local p = assert(io.popen(("exec %s %s --upstream 127.0.0.1:%s --op CommitTransaction --times 1" ..
        " --status 0 --delay 3 --when after --log %s"):format(servers.PYTHON, q(servers.support_dir ..
        "/fault_proxy.py"), port, q(log))))
      local pport, ppid = (p:read("l") or ""):match("^READY (%d+) (%d+)$")
      assert(pport, "fault_proxy did not start")
      local h
      -- busted keeps one finally per test: this one ends the child and the proxy
      finally(function()
        if h then h.cleanup() end
        os.execute("kill " .. ppid)
        p:close()
      end)
      local script = tmp .. "/commit.lua"
      ops.write(script, [[
        local cli = require "alex.cli"
        cli.run(function()
          local db = cli.connect { quiet = true }
          db:transaction(function(tx)
            tx:execute("UPDATE instruments SET current_price = 4.25 WHERE symbol = 'SPY'")
          end)
        end)
      ]])
      local vars = servers.with(s.env, { ALEX_JOURNAL_DIR = jdir,
                                         AWS_ENDPOINT_URL_RDS_DATA = "http://127.0.0.1:" .. pport })
      h = servers.spawn(("env %s %s --no-env-file %s"):format(servers.assignments(vars), q(ops.ALEXLUA),
        q(script)))
      -- the commit reached the proxy, which holds its answer back for 3 s
      servers.wait_until(function() return (ops.read(log) or ""):find("CommitTransaction", 1, true) end, 30, 0.05)
      servers.sleep(0.5)
      h.signal("TERM")
      local rc = h.wait(30)
      local text = h.out() .. h.err() .. "rc=" .. tostring(rc) .. "\n"
      assert.matches("rc=143", text, 1, true)
      assert.matches("terminated while the commit was in flight", text, 1, true)
      assert.matches("most likely applied", text, 1, true)
      assert.matches("outcome unknown", text, 1, true)
      -- it was applied: the commit ran before the answer was held back
      assert.equal("4.2500", assert(s:psql("SELECT current_price FROM instruments WHERE symbol = 'SPY'")))
      assert.same({}, journal_files())
    end)
  end)

  describe("a lock held by another live transaction", function()
    it("makes a reset fail after the lock timeout, with a message that says so", function()
      assert.equal(0, reset().code)
      local before = ops.fingerprint(s)
      -- a psql session holds a lock on instruments for 30 s
      local holder = tmp .. "/holder"
      ops.write(holder .. ".sql", "BEGIN; LOCK TABLE instruments IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30);\n")
      assert(os.execute(("PGPASSFILE=%s psql -X -q -h 127.0.0.1 -p %d -U alex_app -d alex -f %s >/dev/null 2>&1 &")
        :format(q(s.dir .. "/pgpass"), s.pg_port, q(holder .. ".sql"))))
      finally(function()
        s:psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%'" ..
          " AND pid <> pg_backend_pid()")
      end)
      local deadline = servers.now() + 10
      local held = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation" ..
        " WHERE c.relname = 'instruments' AND l.mode = 'AccessExclusiveLock' AND l.granted"
      while servers.now() < deadline and s:psql(held) ~= "1" do
        servers.sleep(0.05)
      end
      local t0 = servers.now()
      local r = reset { ALEX_LOCK_TIMEOUT = "1000" }
      local elapsed = servers.now() - t0
      assert.equal(1, r.code, r.all)
      assert.matches("waited 1000 ms for a lock that another transaction holds", r.err, 1, true)
      assert.matches("55P03", r.err, 1, true)
      assert.is_true(elapsed < 10, ("failed after %.1f s"):format(elapsed))
      assert.equal(0, open_transactions())
      assert.same({}, journal_files())
      s:psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%'" ..
        " AND pid <> pg_backend_pid()")
      assert.equal(before, ops.fingerprint(s))
    end)

    it("ALEX_LOCK_TIMEOUT must be a whole number of milliseconds", function()
      local r = reset { ALEX_LOCK_TIMEOUT = "5s" }
      assert.equal(2, r.code) -- a setting to fix, as every configuration error
      assert.matches("ALEX_LOCK_TIMEOUT must be a whole number of milliseconds", r.all)
    end)
  end)

  describe("a rollback that fails", function()
    local proxy

    -- A proxy in front of the stack's service failing the first
    -- RollbackTransaction as told; returns a connection through it.
    local function through_proxy(when, extra)
      local log = tmp .. "/proxy-" .. when .. ".log"
      os.remove(log)
      local port = s.endpoint:match(":(%d+)$")
      local p = assert(io.popen(("exec %s %s --upstream 127.0.0.1:%s --op RollbackTransaction --times 1" ..
        " --status 500 --when %s --log %s"):format(servers.PYTHON, q(servers.support_dir .. "/fault_proxy.py"),
        port, when, q(log))))
      local line = p:read("l") or ""
      local pport, pid = line:match("^READY (%d+) (%d+)$")
      assert(pport, "fault_proxy did not start: " .. line)
      proxy = { proc = p, pid = pid, log = log }
      local env = {}
      for k, v in pairs(s.env) do env[k] = v end
      env.AWS_ENDPOINT_URL_RDS_DATA = "http://127.0.0.1:" .. pport
      env.ALEX_JOURNAL_DIR = jdir
      local opts = { env = function(k) return env[k] end, quiet = true, retry_base = 0.01 }
      for k, v in pairs(extra or {}) do opts[k] = v end
      return assert(db.connect(opts))
    end

    after_each(function()
      if proxy then
        os.execute("kill " .. proxy.pid)
        proxy.proc:close()
        proxy = nil
      end
    end)

    for _, when in ipairs { "before", "after" } do
      it(("with a 500 %s it ran is retried, even with AWS_MAX_ATTEMPTS=1, and ends the transaction")
        :format(when == "before" and "before" or "after"), function()
        local conn = through_proxy(when, { max_attempts = 1 })
        assert.has_error(function()
          conn:transaction(function(tx)
            tx:execute("UPDATE instruments SET current_price = current_price + 1")
            error("the block fails", 0)
          end)
        end, "the block fails")
        local log = ops.read(proxy.log)
        assert.matches("RollbackTransaction failed%-" .. when, log)
        if when == "before" then
          assert.matches("RollbackTransaction forwarded 200", log)
        else
          -- the retry finds it gone: the lost attempt ended it
          assert.matches("RollbackTransaction forwarded 404", log)
        end
        assert.equal(0, open_transactions())
        assert.same({}, journal_files())
        conn:close()
      end)
    end
  end)
end)

describe("alex.journal", function()
  local dir

  before_each(function()
    dir = ops.tmpdir()
  end)

  after_each(function()
    ops.rmdir(dir)
  end)

  local TARGET = { cluster_arn = "arn:aws:rds:us-east-1:000000000000:cluster:c", endpoint = "http://127.0.0.1:1" }

  local function write_entry(name, fields)
    local e = { id = "tx-" .. name, pid = 1, start = "1", boot = "", host = "",
                cluster_arn = TARGET.cluster_arn, endpoint = TARGET.endpoint }
    for k, v in pairs(fields) do e[k] = v end
    ops.write(dir .. "/" .. name .. ".json", require("cjson").encode(e))
  end

  local function self_fields()
    local st = journal.process_stat("self")
    return {
      pid = st.pid, start = st.start,
      boot = (ops.read("/proc/sys/kernel/random/boot_id") or ""):gsub("%s+$", ""),
      host = (ops.read("/proc/sys/kernel/hostname") or ""):gsub("%s+$", ""),
    }
  end

  it("records a transaction until it is forgotten", function()
    local j = journal.open(dir, TARGET)
    local path = j:record("abc", "alex")
    assert.truthy(path)
    local entries = j:entries()
    assert.equal(1, #entries)
    assert.equal("abc", entries[1].id)
    assert.equal("alex", entries[1].database)
    assert.same({}, j:stale()) -- this process is alive
    j:forget(path)
    assert.same({}, j:entries())
  end)

  it("finds stale only the entries of its own target whose process is gone", function()
    local me = self_fields()
    local dead = { pid = 999999999, start = "1", boot = me.boot, host = me.host }
    write_entry("1-1-1", dead)
    write_entry("1-1-2", { pid = me.pid, start = me.start, boot = me.boot, host = me.host }) -- alive
    write_entry("1-1-3", { pid = me.pid, start = "12345", boot = me.boot, host = me.host })  -- pid reused
    write_entry("1-1-4", { pid = me.pid, start = me.start, boot = "an-earlier-boot", host = me.host })
    write_entry("1-1-5", { pid = 999999999, start = "1", boot = "x", host = "another-machine" })
    write_entry("1-1-6", { pid = 999999999, start = "1", boot = me.boot, host = me.host,
                           endpoint = "http://127.0.0.1:2" }) -- another stack's
    ops.write(dir .. "/1-1-7.json", "{ half an entr")
    ops.write(dir .. "/notes.txt", "not an entry")
    local stale = {}
    for _, e in ipairs(journal.open(dir, TARGET):stale()) do stale[#stale + 1] = e.id end
    assert.same({ "tx-1-1-1", "tx-1-1-3", "tx-1-1-4" }, stale)
  end)

  it("recover removes what it settled and keeps what failed", function()
    local me = self_fields()
    write_entry("1-1-1", { pid = 999999999, boot = me.boot, host = me.host })
    write_entry("1-1-2", { pid = 999999998, boot = me.boot, host = me.host })
    local j = journal.open(dir, TARGET)
    local settled, failed = j:recover(function(e)
      if e.id == "tx-1-1-1" then return true end
      return nil, "refused"
    end)
    assert.equal(1, settled)
    assert.equal(1, #failed)
    assert.equal("refused", failed[1].err)
    local left = j:entries()
    assert.equal(1, #left)
    assert.equal("tx-1-1-2", left[1].id)
  end)

  it("a journal that cannot be written warns once and lets the work go on", function()
    ops.write(dir .. "/file", "x")
    local warnings = {}
    local j = journal.open(dir .. "/file/journal", TARGET, { warn = function(m) warnings[#warnings + 1] = m end })
    assert.is_nil(j:record("a", "alex"))
    assert.is_nil(j:record("b", "alex"))
    assert.equal(1, #warnings)
    assert.matches("cannot keep the transaction journal in .*/file/journal", warnings[1])
  end)

  it("lives in ALEX_JOURNAL_DIR, the local stack's state folder, or the XDG state folder", function()
    local function env(t) return function(k) return t[k] end end
    assert.equal("/j", journal.default_dir(env { ALEX_JOURNAL_DIR = "/j", HOME = "/h" }, "/state"))
    assert.equal("/state/journal", journal.default_dir(env { HOME = "/h" }, "/state"))
    assert.equal("/x/alexlua/journal", journal.default_dir(env { XDG_STATE_HOME = "/x", HOME = "/h" }))
    assert.equal("/h/.local/state/alexlua/journal", journal.default_dir(env { HOME = "/h" }))
  end)
end)
