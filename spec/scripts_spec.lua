-- The scripts users run (scripts/*.lua, scripts/fixes/*.lua), as child
-- processes of alexlua against a private local stack: usage, reset (counts,
-- calls, idempotence, atomicity under a failure half-way), verify, seed,
-- the connection check and the example fixes.
local stack = require "stack"
local cjson = require "cjson"
local ops = require "dbops"

local INJ = ops.INJECTIONS

local SCRIPTS = { "scripts/aurora.lua", "scripts/migrate.lua", "scripts/reset.lua", "scripts/seed.lua",
  "scripts/test_data_api.lua", "scripts/verify.lua", "scripts/console.lua", "scripts/fixes.lua",
  "scripts/fixes/move_position.lua", "scripts/fixes/retag_allocations.lua", "scripts/fixes/reprice.lua",
  "scripts/fixes/split_adjust.lua" }

local GOOD_SEED = {
  { symbol = "NEWA", name = INJ[1], instrument_type = "etf", current_price = "10.5",
    allocation_regions = { europe = 100 }, allocation_sectors = { technology = 100 },
    allocation_asset_class = { equity = 100 } },
  { symbol = "NEW-B.X", name = "New B", instrument_type = "bond_fund", current_price = 0.0001,
    allocation_regions = { north_america = 50, global = 50 }, allocation_sectors = { government_related = 100 },
    allocation_asset_class = { fixed_income = 100 } },
}

describe("scripts", function()
  local s, tmp

  -- a fix is a dry run unless told to apply: these runs apply
  local function run(script, args, extra)
    if script:find("^scripts/fixes/") then
      args = table.move(args or {}, 1, #(args or {}), 1, {})
      table.insert(args, 1, "--apply")
    end
    return ops.run(s, script, args, extra)
  end

  local function reset(args, extra)
    local list = { "--with-test-data" }
    for _, a in ipairs(args or {}) do list[#list + 1] = a end
    return run("scripts/reset.lua", list, extra)
  end

  local function counts()
    local out = assert(s:psql([[SELECT (SELECT count(*) FROM instruments), (SELECT count(*) FROM users),
      (SELECT count(*) FROM accounts), (SELECT count(*) FROM positions), (SELECT count(*) FROM jobs)]]))
    local c = {}
    for n in out:gmatch("%d+") do c[#c + 1] = tonumber(n) end
    return { instruments = c[1], users = c[2], accounts = c[3], positions = c[4], jobs = c[5] }
  end
  local EXPECTED = { instruments = 22, users = 1, accounts = 3, positions = 5, jobs = 0 }

  local function value(sql) return (assert(s:psql(sql))) end

  local function held(account, symbol)
    return value(([[SELECT coalesce((SELECT p.quantity::text FROM positions p JOIN accounts a ON a.id = p.account_id
      WHERE a.account_name = '%s' AND p.symbol = '%s'), 'none')]]):format(account:gsub("'", "''"), symbol))
  end

  -- Waits until the service holds no open transaction (an orphan holds locks).
  local function no_open_transactions()
    local clock = require "alex.clock"
    local deadline = clock.monotonic() + 10
    while s:stats().open_transactions > 0 and clock.monotonic() < deadline do clock.sleep(0.1) end
    assert.equal(0, s:stats().open_transactions)
  end

  stack.shared({ tx_idle_timeout = 3 }, function(started)
    s = started
    tmp = ops.tmpdir()
    return function() ops.rmdir(tmp) end
  end)

  before_each(function()
    s:clear_faults()
  end)

  it("every script's --help prints its usage and exits 0", function()
    for _, script in ipairs(SCRIPTS) do
      local r = run(script, { "--help" })
      assert.equal(0, r.code, script .. ": " .. r.all)
      local name = script:match("([^/]+)$")
      assert.matches("^Usage: " .. name:gsub("%p", "%%%0"), r.out)
      assert.matches("%-%-verbose", r.out)
    end
  end)

  it("every script refuses bad arguments in one line, exit 2", function()
    for _, script in ipairs(SCRIPTS) do
      local r = run(script, { "--bogus" })
      assert.equal(2, r.code, script .. ": " .. r.all)
      assert.equal("error: unknown option '--bogus' (see " .. script:match("([^/]+)$") .. " --help)\n", r.err)
      r = run(script, { "--help" })
      assert.matches("\n\nExit codes: 0 [^\n]+; 2 [^\n]+%.\n$", r.out)
    end
  end)

  describe("when the environment fails, every script prints one line and exits 2", function()
    local CALLS = {
      { "scripts/verify.lua" }, { "scripts/verify.lua", "--json" },
      { "scripts/migrate.lua", "--status" }, { "scripts/migrate.lua" }, { "scripts/migrate.lua", "--dry-run" },
      { "scripts/seed.lua" }, { "scripts/reset.lua", "--with-test-data" }, { "scripts/reset.lua", "--skip-drop" },
      { "scripts/fixes/reprice.lua", "SPY", "1" },
      { "scripts/fixes/move_position.lua", "test_user_001", "GLD", "401(k)", "Roth IRA" },
      { "scripts/fixes/retag_allocations.lua", "VEA", "--regions", '{"europe":100}' },
    }

    -- Each call fails with code 2 and one line on stderr matching `pattern`
    -- (verify.lua's starts "cannot check"); test_data_api.lua says FAILED and
    -- how to fix it.
    local function all_fail(target, extra, pattern, advice)
      for _, call in ipairs(CALLS) do
        local args = table.move(call, 2, #call, 1, {})
        local r = ops.run(target, call[1], args, extra)
        local what = table.concat(call, " ") .. ": " .. r.all
        assert.equal(2, r.code, what)
        assert.matches("^error: [^\n]+\n$", r.err, nil, what)
        assert.matches(pattern, r.err, nil, what)
        assert.is_nil(r.err:find("traceback", 1, true), what)
        if call[1] == "scripts/verify.lua" then assert.matches("^error: cannot check: ", r.err) end
      end
      local r = ops.run(target, "scripts/test_data_api.lua", {}, extra)
      assert.equal(2, r.code, r.all)
      assert.matches("\nFAILED  [^\n]*" .. pattern .. "[^\n]*\nfix     " .. advice .. "[^\n]*\n$", r.out)
      assert.equal("", r.err)
    end

    it("the Data API unreachable", function()
      local before = ops.fingerprint(s)
      all_fail(s, { AWS_ENDPOINT_URL_RDS_DATA = "http://127.0.0.1:" .. stack.free_ports(1) },
        "TransportError: could not connect to 127%.0%.0%.1", "the endpoint cannot be reached")
      assert.equal(before, ops.fingerprint(s))
    end)

    it("PostgreSQL stopped behind a running Data API", function()
      local d = stack.start {}
      finally(function() d:stop() end)
      ops.seed(d)
      -- a fast shutdown (SIGINT) of the postmaster; the service keeps running
      local pid = assert(tonumber((ops.read(d.dir .. "/pg/postmaster.pid") or ""):match("^(%d+)")))
      assert(os.execute("kill -INT " .. pid))
      for _ = 1, 200 do
        if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
        os.execute("sleep 0.05")
      end
      assert.is_falsy(os.execute("kill -0 " .. pid .. " 2>/dev/null"), "PostgreSQL did not stop")
      assert.truthy(d:health())
      all_fail(d, nil, "DatabaseUnavailableException: The database is unavailable: ",
        "the Data API answers but cannot reach the database")
    end)
  end)

  it("a commit whose answer is lost is 'outcome unknown', exit 3", function()
    -- drop-after faults: a call runs, then its connection closes unanswered.
    -- The first seed whose draws spare the begin and the batch of seed.lua and
    -- hit its commit is the case; every other run must be a clean exit 0 or 2.
    assert.equal(0, reset().code)
    local found
    for seed = 1, 80 do
      s:reset_stats()
      assert(s:set_faults { seed = seed, drop_after_rate = 0.34 })
      local r = run("scripts/seed.lua", {}, { AWS_MAX_ATTEMPTS = "1" })
      assert(s:set_faults { drop_after_rate = 0 })
      assert.matches(r.code == 0 and "^$" or "^error: [^\n]+\n$", r.err, nil, r.all)
      if r.code == 3 then
        found = r
        break
      end
      assert.is_true(r.code == 0 or r.code == 2, r.all)
    end
    assert.truthy(found, "no seed lost a commit's answer")
    assert.matches("CommitTransaction", found.err)
    assert.matches("outcome unknown: the commit was sent and its answer lost", found.err)
  end)

  describe("reset.lua", function()
    it("--with-test-data, then verify.lua: 22 instruments, 1 user, 3 accounts, 5 positions", function()
      s:reset_stats()
      local r = reset()
      assert.equal(0, r.code, r.all)
      assert.same(EXPECTED, counts())
      -- at most 10 Data API calls, and the script counts them as the service does
      local calls = ops.calls(s)
      assert.is_true(calls <= 10, calls .. " calls")
      assert.equal(calls, tonumber(r.out:match("(%d+) Data API calls")))
      assert.matches("instruments%s+22\n%s+users%s+1\n%s+accounts%s+3\n%s+positions%s+5", r.out)
      local v = run("scripts/verify.lua")
      assert.equal(0, v.code, v.all)
      assert.matches("all checks passed", v.out)
      assert.matches("instruments%s+22 rows", v.out)
    end)

    it("gives the same result twice, with or without --skip-drop", function()
      assert.equal(0, reset().code)
      local first = value("SELECT string_agg(symbol || current_price, ',' ORDER BY symbol) FROM instruments")
      local r = reset()
      assert.equal(0, r.code, r.all)
      assert.same(EXPECTED, counts())
      assert.equal(first, value("SELECT string_agg(symbol || current_price, ',' ORDER BY symbol) FROM instruments"))
      for _ = 1, 2 do
        s:reset_stats()
        r = reset { "--skip-drop" }
        assert.equal(0, r.code, r.all)
        assert.matches("keeping existing tables", r.out)
        assert.matches("migrations: nothing pending", r.out)
        assert.same(EXPECTED, counts())
        assert.is_true(ops.calls(s) <= 10)
        assert.equal(ops.calls(s), tonumber(r.out:match("(%d+) Data API calls")))
      end
      assert.equal(first, value("SELECT string_agg(symbol || current_price, ',' ORDER BY symbol) FROM instruments"))
      assert.equal(0, run("scripts/verify.lua").code)
    end)

    it("--skip-drop on an empty database applies the migrations", function()
      ops.wipe(s)
      local r = reset { "--skip-drop" }
      assert.equal(0, r.code, r.all)
      assert.matches("applying 001_schema.sql", r.out)
      assert.same(EXPECTED, counts())
      r = reset { "--skip-drop" }
      assert.equal(0, r.code, r.all)
      assert.same(EXPECTED, counts())
      assert.equal(0, run("scripts/verify.lua").code)
    end)

    it("leaves the database exactly as before when a statement fails half-way", function()
      assert.equal(0, reset().code)
      assert.equal(0, run("scripts/fixes/reprice.lua", { "SPY", "1.5" }).code) -- differs from a fresh reset
      local before = ops.fingerprint(s)
      -- a last migration adds a rule the test data breaks (200 BND): the
      -- last call fails after the drop, every migration and the seed ran in
      -- the transaction
      local schema = ops.schema_copy()
      ops.write(schema .. "/009_small.sql", "ALTER TABLE positions ADD CONSTRAINT small CHECK (quantity < 150);\n")
      s:reset_stats()
      local r = reset { "--schema-dir", schema }
      ops.rmdir(schema)
      assert.equal(1, r.code, r.all)
      assert.matches("reset failed, nothing was changed: .*violates check constraint \"small\"", r.err)
      local st = s:stats()
      -- lock timeout, drop, four migrations, the seed's insert, the failing test data
      assert.equal(8, st.operations.ExecuteStatement)
      assert.equal(1, st.operations.RollbackTransaction)
      assert.equal(0, st.operations.CommitTransaction)
      assert.equal(before, ops.fingerprint(s))
      assert.equal("1.5000", value("SELECT current_price FROM instruments WHERE symbol = 'SPY'"))
    end)

    it("leaves the database exactly as before when the service fails half-way", function()
      -- Seeded 5xx answers, one attempt per call, and the script's two
      -- whole-transaction retries: the same seed gives the same failures.  The
      -- first seed that fails the reset after its drop and migrations ran (the
      -- seed was sent) is the case; every failing run is checked.
      assert.equal(0, reset().code)
      local before = ops.fingerprint(s)
      local found
      for seed = 1, 40 do
        no_open_transactions()
        s:reset_stats()
        assert(s:set_faults { seed = seed, ["5xx_rate"] = 0.25 })
        local r = reset({}, { AWS_MAX_ATTEMPTS = "1" })
        assert(s:set_faults { ["5xx_rate"] = 0 })
        local st = s:stats()
        if r.code == 0 then
          before = ops.fingerprint(s) -- it got through: the new state is the reference
        else
          assert.equal(2, r.code, r.all) -- the service failing: could not run
          assert.matches("reset failed, nothing was changed", r.err)
          assert.is_true(st.faults["5xx"] > 0)
          no_open_transactions()
          assert.equal(before, ops.fingerprint(s), "seed " .. seed)
          -- the seed's insert was sent: lock timeout, drop, three migrations, seed
          if st.operations.ExecuteStatement >= 6 then
            found = { seed = seed, stats = st }
            break
          end
        end
      end
      assert.truthy(found, "no seed made the reset fail half-way")
      assert.is_true(found.stats.operations.ExecuteStatement >= 3) -- drop and both migrations, at least once
      assert.same(EXPECTED, counts())
    end)

    it("takes file paths as paths, never as SQL", function()
      assert.equal(0, reset().code)
      local before = ops.fingerprint(s)
      for _, v in ipairs(INJ) do
        for _, args in ipairs { { "--seed-file", v }, { "--test-data-file", v }, { "--schema-dir", v } } do
          local r = reset(args)
          assert.equal(2, r.code, r.all)
          local said = v .. ": cannot read: No such file or directory; nothing was changed\n"
          assert.equal(said, r.err:sub(-#said))
        end
        assert.equal(2, run("scripts/verify.lua", { "--schema-dir", v }).code)
        assert.equal(2, run("scripts/seed.lua", { "--file", v }).code)
      end
      assert.equal(before, ops.fingerprint(s))
    end)
  end)

  describe("reset.lua checks every input before the first call", function()
    local before

    -- reset --with-test-data plus args must exit `code` with exactly `err` on
    -- stderr, having made no Data API call and changed nothing.
    local function refused(args, code, err)
      s:reset_stats()
      local r = reset(args)
      assert.equal(code, r.code, r.all)
      assert.equal(err, r.err)
      assert.equal("", r.out)
      assert.equal(0, ops.calls(s))
      assert.equal(before, ops.fingerprint(s))
      return r
    end

    -- Runs reset.lua bounded: killed after 20 s, and (unless ASan, which needs
    -- its own address space) with 2 GiB of memory, so that a reader without
    -- limits fails the spec instead of the machine.
    local function bounded(args)
      local asan = select(2, stack.run("nm -D " .. ops.q(ops.ALEXLUA) .. " 2>/dev/null | grep -c __asan_init"))
      local wrapper = tmp .. "/bounded.sh"
      ops.write(wrapper, ("#!/bin/sh\n%sexec timeout -s KILL 20 %s \"$@\"\n"):format(
        (tonumber(asan:match("%d+")) or 0) > 0 and "" or "ulimit -v 2097152\n", ops.q(ops.ALEXLUA)))
      assert(os.execute("chmod +x " .. ops.q(wrapper)))
      local real = ops.ALEXLUA
      ops.ALEXLUA = wrapper
      local ok, r = pcall(reset, args)
      ops.ALEXLUA = real
      assert(ok, r)
      return r
    end

    before_each(function()
      assert.equal(0, reset().code)
      assert.equal(0, run("scripts/fixes/reprice.lua", { "SPY", "1.5" }).code) -- differs from a fresh reset
      before = ops.fingerprint(s)
    end)

    it("test data: two accounts of one name, unknown symbols, every mistake listed with its path", function()
      local file = tmp .. "/test_data.json"
      ops.write(file, [[{
  "user": { "clerk_user_id": "test_user_001", "years_until_retirement": 120, "target_retirement_income": "1e5" },
  "accounts": [
    { "account_name": "401(k)", "cash_balance": 5000,
      "positions": [ { "symbol": "SPY", "quantity": 100 }, { "symbol": "ZZZZ", "quantity": 5 } ] },
    { "account_name": "401(k)", "cash_interest": 1.5,
      "positions": [ { "symbol": "QQQ", "quantity": 0 }, { "symbol": "qqq", "quantity": 1 },
                     { "symbol": "QQQ", "quantity": "12.123456789" } ] },
    { "account_purpose": "no name", "positions": [ { "quantity": 1 } ] },
    { "account_name": "Taxable", "positions": [ { "symbol": "GLD", "quantity": 1, "price": 2 } ] }
  ]
}]])
      local seed = "scripts/../seed/instruments.json"
      local lines = {
        "accounts[1].positions[2].symbol: \"ZZZZ\" is not one of the instruments seeded (" .. seed .. ")",
        "accounts[2].account_name: \"401(k)\" is also the account_name of accounts[1]",
        "accounts[2].cash_interest: must be between 0 and 1",
        "accounts[2].positions[1].quantity: must be greater than 0",
        "accounts[2].positions[2].symbol: must contain only upper-case letters, digits, '.' and '-'",
        "accounts[2].positions[3].quantity: 12.123456789 has more than 8 decimal places",
        "accounts[2].positions[3].symbol: \"QQQ\" is also the symbol of accounts[2].positions[1]",
        "accounts[3].account_name: required field missing",
        "accounts[3].positions[1].symbol: required field missing",
        "accounts[4].positions[1].price: unknown field",
        "user.target_retirement_income: \"1e5\": exponent notation is not accepted, write the number out in full",
        "user.years_until_retirement: must be between 0 and 100",
      }
      local want = { ("error: %d problems, nothing was changed:"):format(#lines) }
      for _, l in ipairs(lines) do want[#want + 1] = "  " .. file .. ": " .. l end
      refused({ "--test-data-file", file }, 1, table.concat(want, "\n") .. "\n")
      -- each alone is enough: a duplicate name, which the insert would take
      -- as one account and give it the other's positions
      ops.write(file, (ops.read("seed/test_user.json"):gsub('"Roth IRA"', '"401(k)"')))
      refused({ "--test-data-file", file }, 1, "error: " .. file .. ': accounts[2].account_name: "401(k)" is also'
        .. " the account_name of accounts[1]; nothing was changed\n")
      -- and a symbol the database would refuse only at the last call, naming none
      ops.write(file, (ops.read("seed/test_user.json"):gsub('"GLD"', '"ZZZZ"')))
      refused({ "--test-data-file", file }, 1, "error: " .. file .. ': accounts[1].positions[5].symbol: "ZZZZ" is'
        .. " not one of the instruments seeded (" .. seed .. "); nothing was changed\n")
    end)

    it("positions must name instruments of the seed file, also with --skip-drop", function()
      -- NEWA is in the database (seed.lua) but not in the seed file: after a
      -- reset without --skip-drop it would not exist, so the same files are
      -- refused with or without it
      local extra = tmp .. "/extra_seed.json"
      ops.write(extra, cjson.encode(GOOD_SEED))
      assert.equal(0, run("scripts/seed.lua", { "--file", extra }).code)
      before = ops.fingerprint(s)
      local file = tmp .. "/newa.json"
      ops.write(file, (ops.read("seed/test_user.json"):gsub('"GLD"', '"NEWA"')))
      local said = "error: " .. file .. ': accounts[1].positions[5].symbol: "NEWA" is not one of the instruments'
        .. " seeded (scripts/../seed/instruments.json); nothing was changed\n"
      refused({ "--test-data-file", file, "--skip-drop" }, 1, said)
      refused({ "--test-data-file", file }, 1, said)
      -- with a seed file that has it, both work
      local seed = tmp .. "/seed_with_newa.json"
      local list = cjson.decode(ops.read("seed/instruments.json"))
      list[#list + 1] = GOOD_SEED[1]
      ops.write(seed, cjson.encode(list))
      local r = reset { "--test-data-file", file, "--seed-file", seed, "--skip-drop" }
      assert.equal(0, r.code, r.all)
      assert.equal("25.00000000", held("401(k)", "NEWA"))
    end)

    it("a migrations folder that is empty, missing or a file, or a stray .sql file, changes nothing", function()
      local empty, schema = ops.tmpdir(), ops.schema_copy()
      finally(function() -- (busted keeps one finally per test)
        ops.rmdir(empty)
        ops.rmdir(schema)
      end)
      -- unchecked: no tables to drop, a fresh migration history, and accounts added to those there
      refused({ "--schema-dir", empty }, 2,
        "error: migrations folder " .. empty .. ": holds no migrations (NNN_name.sql files); nothing was changed\n")
      ops.write(empty .. "/README.md", "migrations go here\n")
      refused({ "--schema-dir", empty, "--skip-drop" }, 2,
        "error: migrations folder " .. empty .. ": holds no migrations (NNN_name.sql files); nothing was changed\n")
      refused({ "--schema-dir", empty .. "/none" }, 2, "error: migrations folder " .. empty
        .. "/none: cannot read: No such file or directory; nothing was changed\n")
      refused({ "--schema-dir", empty .. "/README.md" }, 2, "error: migrations folder " .. empty
        .. "/README.md: is not a folder (it is a file); nothing was changed\n")
      ops.write(schema .. "/009-extra.sql", "CREATE TABLE extra (id int);\n")
      refused({ "--schema-dir", schema }, 1, "error: " .. schema .. "/009-extra.sql: not a migration name (expected"
        .. " NNN_name.sql: digits, '_', then letters, digits, '_' or '-'); nothing was changed\n")
      assert.equal("3", value("SELECT count(*) FROM schema_migrations"))
      assert.same(EXPECTED, counts())
    end)

    it("input files: regular files of at most 16 MiB, UTF-8 JSON; else one line naming the file", function()
      local fifo = tmp .. "/fifo.json"
      assert(os.execute("mkfifo " .. ops.q(fifo)))
      local big = tmp .. "/big.json"
      assert(os.execute("truncate -s 17M " .. ops.q(big)))
      local latin1, notjson, empty = tmp .. "/latin1.json", tmp .. "/not.json", tmp .. "/empty.json"
      ops.write(latin1, '[{"symbol": "SPY", "name": "caf\233"}]')
      ops.write(notjson, "[\n  {\"symbol\": \"SPY\",\n   \"name\": 'x'}\n]\n")
      ops.write(empty, "  \n")
      local cases = {
        { "/dev/zero", "/dev/zero: is a character device, not a regular file" }, -- a read would never end
        { "/tmp", "/tmp: is a directory, not a regular file" },
        { fifo, fifo .. ": is a FIFO (named pipe), not a regular file" },          -- an open would wait for ever
        { big, big .. ": is 17.0 MiB, over the 16.0 MiB limit for input files" },
        { latin1, latin1 .. ":1:32: not valid UTF-8 (byte 0xe9)" },
        { notjson, notjson .. ":3:12: not valid JSON: Expected value but found invalid token" },
        { empty, empty .. ": is empty, expected JSON" },
      }
      for _, c in ipairs(cases) do
        for _, option in ipairs { "--seed-file", "--test-data-file" } do
          s:reset_stats()
          local r = bounded { option, c[1] }
          assert.equal(2, r.code, option .. " " .. c[1] .. ": " .. r.all)
          assert.equal("error: " .. c[2] .. "; nothing was changed\n", r.err)
          assert.equal(0, ops.calls(s))
        end
        local r = run("scripts/seed.lua", { "--file", c[1] })
        assert.equal(2, r.code, r.all)
        assert.equal("error: " .. c[2] .. "\n", r.err)
      end
      assert.equal(before, ops.fingerprint(s))
      -- several unusable files: every one named, at once
      s:reset_stats()
      local r = bounded { "--seed-file", "/tmp", "--test-data-file", latin1, "--schema-dir", "/dev/null" }
      assert.equal(2, r.code, r.all)
      assert.equal(table.concat({ "error: 3 problems, nothing was changed:",
        "  migrations folder /dev/null: is not a folder (it is a char device)",
        "  /tmp: is a directory, not a regular file",
        "  " .. latin1 .. ":1:32: not valid UTF-8 (byte 0xe9)", "" }, "\n"), r.err)
      assert.equal(0, ops.calls(s))
      assert.equal(before, ops.fingerprint(s))
    end)
  end)

  describe("verify.lua", function()
    before_each(function()
      assert.equal(0, reset().code)
    end)

    it("--json gives a report machines can read", function()
      local r = run("scripts/verify.lua", { "--json" })
      assert.equal(0, r.code, r.all)
      local report = cjson.decode(r.out)
      assert.is_true(report.ok)
      assert.equal(0, report.failed)
      assert.equal(22, report.counts.instruments)
      assert.equal(5, report.counts.positions)
      assert.equal(9, #report.tables)
      for _, c in ipairs(report.checks) do assert.is_true(c.ok, c.name) end
      assert.equal("applied", report.migrations[1].state)
    end)

    it("fails on an instrument whose allocation sums to 90, naming it", function()
      assert(s:psql([[INSERT INTO instruments (symbol, name, instrument_type, current_price, allocation_regions,
        allocation_sectors, allocation_asset_class) VALUES ('BADX', 'Corrupted', 'etf', 10, '{"europe": 90}',
        '{"technology": 100}', '{"equity": 100}')]]))
      local r = run("scripts/verify.lua")
      assert.equal(1, r.code, r.all)
      assert.matches("FAIL instruments valid", r.out)
      assert.matches("BADX.allocation_regions: values sum to 90", r.out)
      assert.matches("1 check failed", r.out)
      r = run("scripts/verify.lua", { "--json" })
      assert.equal(1, r.code, r.all)
      local report = cjson.decode(r.out)
      assert.is_false(report.ok)
      assert.equal(1, report.failed)
      local named
      for _, c in ipairs(report.checks) do
        if c.name == "instruments valid" then
          assert.is_false(c.ok)
          named = c.problems[1]
        end
      end
      assert.matches("^BADX%.allocation_regions", named)
    end)

    it("fails when a table is missing, naming it", function()
      assert(s:psql("DROP TABLE agent_logs"))
      local r = run("scripts/verify.lua")
      assert.equal(1, r.code, r.all)
      assert.matches("FAIL tables present %(8 of 9%)\n%s+agent_logs", r.out)
    end)
  end)

  describe("seed.lua", function()
    before_each(function()
      assert.equal(0, reset().code)
    end)

    it("--file with an invalid record writes nothing and lists every problem", function()
      local list = { GOOD_SEED[1],
        { symbol = "bad2", name = "Lower", instrument_type = "etf", current_price = 10,
          allocation_regions = { europe = 100 }, allocation_sectors = { technology = 100 },
          allocation_asset_class = { equity = 100 } },
        { symbol = "BAD3", name = "Two problems", instrument_type = "etf", current_price = -1,
          allocation_regions = { europe = 90 }, allocation_sectors = { technology = 100 },
          allocation_asset_class = { equity = 100 } },
        { symbol = "BAD4", name = "Mars", instrument_type = "etf", current_price = 10,
          allocation_regions = { mars = 100 }, allocation_sectors = { technology = 100 },
          allocation_asset_class = { equity = 100 } },
      }
      local file = tmp .. "/bad_seed.json"
      ops.write(file, cjson.encode(list))
      local before = ops.fingerprint(s)
      s:reset_stats()
      local r = run("scripts/seed.lua", { "--file", file })
      assert.equal(1, r.code, r.all)
      assert.equal(table.concat({
        "error: 4 problems, nothing was written:",
        "  " .. file .. ": [2].symbol: must contain only upper-case letters, digits, '.' and '-'",
        "  " .. file .. ": [3].current_price: must be between 0 and 999999",
        "  " .. file .. ": [3].allocation_regions: values sum to 90, not 100 (\u{B1}0.05)",
        "  " .. file .. ': [4].allocation_regions.mars: unknown region "mars"; expected one of "north_america", '
          .. '"europe", "asia", "latin_america", "africa", "middle_east", "oceania", "global", "international"',
        "", }, "\n"), r.err)
      assert.equal(0, ops.calls(s))
      assert.equal(before, ops.fingerprint(s))
      -- no instruments at all
      ops.write(file, "[]")
      r = run("scripts/seed.lua", { "--file", file })
      assert.equal(1, r.code, r.all)
      assert.equal("error: " .. file .. ": holds no instruments; nothing was written\n", r.err)
      -- not JSON at all: the place is given as line:column
      ops.write(file, "[\n  {\"symbol\": }\n]")
      r = run("scripts/seed.lua", { "--file", file })
      assert.equal(2, r.code, r.all)
      assert.equal("error: " .. file .. ":2:14: not valid JSON: Expected value but found T_OBJ_END\n", r.err)
      assert.equal(before, ops.fingerprint(s))
    end)

    it("--file with a valid custom file adds the instruments, stored verbatim", function()
      local file = tmp .. "/good_seed.json"
      ops.write(file, cjson.encode(GOOD_SEED))
      local r = run("scripts/seed.lua", { "--file", file, "--check" })
      assert.equal(0, r.code, r.all)
      assert.matches("2 valid instruments", r.out)
      assert.equal(22, counts().instruments)
      for _ = 1, 2 do -- an upsert: twice is the same
        r = run("scripts/seed.lua", { "--file", file })
        assert.equal(0, r.code, r.all)
        assert.matches("seeded 2 instruments", r.out)
        assert.equal(24, counts().instruments)
      end
      assert.equal(INJ[1] .. "|10.5000|etf",
        value("SELECT name || '|' || current_price || '|' || instrument_type FROM instruments WHERE symbol = 'NEWA'"))
      assert.equal("0.0001", value("SELECT current_price FROM instruments WHERE symbol = 'NEW-B.X'"))
      assert.equal(1, ops.count(s, "users"))
      assert.equal(0, run("scripts/verify.lua").code)
    end)
  end)

  it("test_data_api.lua refuses a --count that is not 1 to 1000", function()
    for _, v in ipairs { "abc", "0", "2.5", "5000" } do
      local r = run("scripts/test_data_api.lua", { "--count", v })
      assert.equal(2, r.code, r.all)
      assert.matches('^error: %-%-count: "' .. v:gsub("%p", "%%%0") .. '" is not a whole number from 1 to 1000', r.err)
    end
  end)

  it("test_data_api.lua reaches the database and prints its version", function()
    local r = run("scripts/test_data_api.lua", { "--count", "2" })
    assert.equal(0, r.code, r.all)
    assert.matches("server%s+PostgreSQL 15", r.out)
    assert.matches("connected to database alex as alex_app", r.out)
    assert.matches("round trip", r.out)
    assert.matches("\nok\n$", r.out)
    for _, secret in ipairs(s:secrets()) do assert.is_nil(r.all:find(secret, 1, true)) end
  end)

  describe("examples", function()
    local before

    before_each(function()
      assert.equal(0, reset().code)
      before = ops.fingerprint(s)
    end)

    local function refused(script, args, pattern, code)
      local r = run(script, args)
      assert.equal(code or 1, r.code, r.all)
      assert.is_nil(r.err:find("traceback", 1, true), r.err)
      if pattern then assert.matches(pattern, r.all) end
      assert.equal(before, ops.fingerprint(s), table.concat(args, " "))
    end

    it("update_price.lua sets a price and refuses bad ones", function()
      local r = run("scripts/fixes/reprice.lua", { "SPY", "601.15" })
      assert.equal(0, r.code, r.all)
      assert.matches("current_price  590.25 \u{2192} 601.15", r.out, 1, true)
      assert.equal("601.1500", value("SELECT current_price FROM instruments WHERE symbol = 'SPY'"))
      before = ops.fingerprint(s)
      local U = "scripts/fixes/reprice.lua"
      refused(U, { "SPY", "--", "-5" }, "between 0 and 999999")
      refused(U, { "SPY", "abc" }, "not a decimal number")
      refused(U, { "SPY", "1.23456" }, "more than 4 decimal places")
      refused(U, { "SPY", "1e3" }, "exponent")
      refused(U, { "NOPE", "5" }, "no instrument NOPE")
      refused(U, { "SPY" }, "missing argument", 2)
      for _, v in ipairs(INJ) do
        refused(U, { v, "5" }, "no instrument")
        refused(U, { "SPY", v }, "not a decimal number")
      end
    end)

    it("move_position.lua moves part or all of a holding and refuses bad moves", function()
      local M = "scripts/fixes/move_position.lua"
      local r = run(M, { "test_user_001", "GLD", "401(k)", "Roth IRA", "--quantity", "10" })
      assert.equal(0, r.code, r.all)
      assert.matches("Applied move_position as run %d+: changed 2 rows in positions", r.out)
      assert.equal("15.00000000", held("401(k)", "GLD"))
      assert.equal("10.00000000", held("Roth IRA", "GLD"))
      r = run(M, { "test_user_001", "GLD", "401(k)", "Roth IRA" })
      assert.equal(0, r.code, r.all)
      assert.equal("none", held("401(k)", "GLD"))
      assert.equal("25.00000000", held("Roth IRA", "GLD"))
      before = ops.fingerprint(s)
      refused(M, { "test_user_001", "SPY", "401(k)", "Roth IRA", "--quantity", "100.5" }, "account holds only 100")
      refused(M, { "test_user_001", "SPY", "401(k)", "Roth IRA", "--quantity=-3" }, "greater than 0")
      refused(M, { "test_user_001", "SPY", "401(k)", "Roth IRA", "--quantity", "abc" }, "not a decimal number")
      refused(M, { "test_user_001", "QQQ", "Roth IRA", "401(k)" }, "does not exist")
      refused(M, { "test_user_001", "SPY", "401(k)", "Nowhere" }, 'no account named "Nowhere"')
      refused(M, { "nobody", "SPY", "401(k)", "Roth IRA" }, "user nobody has no account")
      for _, v in ipairs(INJ) do
        refused(M, { v, "SPY", "401(k)", "Roth IRA" }, "has no account named")
        refused(M, { "test_user_001", v, "401(k)", "Roth IRA" }, "upper%-case")
        refused(M, { "test_user_001", "SPY", v, "Roth IRA" }, "has no account named")
        refused(M, { "test_user_001", "SPY", "401(k)", v }, "has no account named")
        refused(M, { "test_user_001", "SPY", "401(k)", "Roth IRA", "--quantity", v }, "not a decimal number")
      end
      -- two accounts of one name (written around the models): neither is picked at random
      assert(s:psql("INSERT INTO accounts (clerk_user_id, account_name) VALUES ('test_user_001', 'Roth IRA')"))
      before = ops.fingerprint(s)
      refused(M, { "test_user_001", "SPY", "401(k)", "Roth IRA" },
        'user test_user_001 has two accounts named "Roth IRA"')
    end)

    it("move_position.lua uses names that look like SQL as plain data", function()
      assert(s:psql(([[INSERT INTO users (clerk_user_id) VALUES ('%s');
        INSERT INTO accounts (clerk_user_id, account_name) VALUES ('%s', '%s'), ('%s', '%s');
        INSERT INTO positions (account_id, symbol, quantity)
          SELECT id, 'SPY', 8 FROM accounts WHERE account_name = '%s';]]):format(
        INJ[2]:gsub("'", "''"), INJ[2]:gsub("'", "''"), INJ[1]:gsub("'", "''"), INJ[2]:gsub("'", "''"),
        INJ[2]:gsub("'", "''"), INJ[1]:gsub("'", "''"))))
      local r = run("scripts/fixes/move_position.lua", { INJ[2], "SPY", INJ[1], INJ[2], "--quantity", "3" })
      assert.equal(0, r.code, r.all)
      assert.equal("5.00000000", held(INJ[1], "SPY"))
      assert.equal("3.00000000", held(INJ[2], "SPY"))
      assert.equal(2, ops.count(s, "users"))
      assert.equal("100.00000000", held("401(k)", "SPY"))
    end)

    it("retag_allocations.lua replaces allocations and refuses bad ones", function()
      local T = "scripts/fixes/retag_allocations.lua"
      local r = run(T, { "VEA", "--regions", '{"europe":60,"asia":30,"oceania":10}', "--asset-class",
        '{"equity":95,"cash":5}' })
      assert.equal(0, r.code, r.all)
      assert.matches("Applied retag_allocations as run %d+: changed 1 row in instruments", r.out)
      assert.same({ europe = 60, asia = 30, oceania = 10 },
        cjson.decode(value("SELECT allocation_regions FROM instruments WHERE symbol = 'VEA'")))
      assert.same({ equity = 95, cash = 5 },
        cjson.decode(value("SELECT allocation_asset_class FROM instruments WHERE symbol = 'VEA'")))
      before = ops.fingerprint(s)
      refused(T, { "VEA", "--regions", '{"europe":60,"asia":30}' }, "sum to 90")
      refused(T, { "VEA", "--sectors", '{"technology":100,"mars":0}' }, 'unknown sector "mars"')
      refused(T, { "VEA", "--regions", "europe" }, "not a JSON object", 2)
      refused(T, { "VEA" }, "give at least one of", 2)
      -- what verify.lua would fail is never written
      refused(T, { "VEA", "--regions", "{}" }, "allocation_regions: must not be empty")
      refused(T, { "VEA", "--sectors", "[]" }, "allocation_sectors: must not be empty")
      refused(T, { "VEA", "--asset-class", '{"equity":99.9}' }, "allocation_asset_class: values sum to 99.9")
      assert.equal(0, run("scripts/verify.lua").code)
      refused(T, { "NOPE", "--regions", '{"europe":100}' }, "NotFound")
      for _, v in ipairs(INJ) do
        refused(T, { v, "--regions", '{"europe":100}' }, "does not exist")
        refused(T, { "VEA", "--regions", cjson.encode { [v] = 100 } }, "unknown region")
      end
    end)
  end)
end)
