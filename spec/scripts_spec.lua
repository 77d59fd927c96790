-- The scripts users run (scripts/*.lua, scripts/examples/*.lua), as child
-- processes of alexlua against a private local stack: usage, reset (counts,
-- calls, idempotence, atomicity under a failure half-way), verify, seed,
-- the connection check and the example fixes.
local stack = require "stack"
local cjson = require "cjson"
local ops = require "dbops"

local INJ = ops.INJECTIONS

local SCRIPTS = { "scripts/aurora.lua", "scripts/migrate.lua", "scripts/reset.lua", "scripts/seed.lua",
  "scripts/test_data_api.lua", "scripts/verify.lua", "scripts/examples/move_position.lua",
  "scripts/examples/retag_allocations.lua", "scripts/examples/update_price.lua" }

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

  local function run(script, args, extra) return ops.run(s, script, args, extra) end

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

  lazy_setup(function()
    s = stack.start { tx_idle_timeout = 3 }
    tmp = ops.tmpdir()
  end)

  lazy_teardown(function()
    if tmp then ops.rmdir(tmp) end
    if s then s:stop() end
  end)

  before_each(function()
    ops.no_faults(s)
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
      assert.equal(0, run("scripts/examples/update_price.lua", { "SPY", "1.5" }).code) -- differs from a fresh reset
      local before = ops.fingerprint(s)
      -- a position in an instrument the seed does not have: the 6th call fails
      -- after the drop, both migrations and the seed ran in the transaction
      local bad = tmp .. "/bad_user.json"
      ops.write(bad, (ops.read("seed/test_user.json"):gsub('"GLD"', '"ZZZZ"')))
      s:reset_stats()
      local r = reset { "--test-data-file", bad }
      assert.equal(1, r.code, r.all)
      assert.matches("reset failed, nothing was changed: .*positions_symbol_fkey", r.err)
      local st = s:stats()
      assert.equal(1, st.operations.BatchExecuteStatement)
      assert.equal(1, st.operations.RollbackTransaction)
      assert.equal(0, st.operations.CommitTransaction)
      assert.equal(before, ops.fingerprint(s))
      assert.equal("1.5000", value("SELECT current_price FROM instruments WHERE symbol = 'SPY'"))
    end)

    it("leaves the database exactly as before when the service fails half-way", function()
      -- Seeded 5xx answers, one attempt per call, and the script's two
      -- whole-transaction retries: the same seed gives the same failures.  The
      -- first seed that fails the reset after its drop and migrations ran (the
      -- seed batch was sent) is the case; every failing run is checked.
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
          assert.equal(1, r.code, r.all)
          assert.matches("reset failed, nothing was changed", r.err)
          assert.is_true(st.faults["5xx"] > 0)
          no_open_transactions()
          assert.equal(before, ops.fingerprint(s), "seed " .. seed)
          if st.operations.BatchExecuteStatement > 0 then
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
          assert.equal(1, r.code, r.all)
        end
        assert.equal(1, run("scripts/verify.lua", { "--schema-dir", v }).code)
        assert.equal(1, run("scripts/seed.lua", { "--file", v }).code)
      end
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
      assert.equal(7, #report.tables)
      for _, c in ipairs(report.checks) do assert.is_true(c.ok, c.name) end
      assert.equal("applied", report.migrations[1].state)
    end)

    it("fails on an instrument whose allocation sums to 90, naming it", function()
      assert(s:psql([[INSERT INTO instruments (symbol, name, instrument_type, current_price, allocation_regions,
        allocation_sectors, allocation_asset_class) VALUES ('BADX', 'Corrupted', 'etf', 10, '{"europe": 90}',
        '{"technology": 100}', '{"equity": 100}')]]))
      local r = run("scripts/verify.lua")
      assert.equal(1, r.code, r.all)
      assert.matches("FAIL instrument allocations", r.out)
      assert.matches("BADX.allocation_regions: regions: values sum to 90", r.out)
      assert.matches("1 check failed", r.out)
      r = run("scripts/verify.lua", { "--json" })
      assert.equal(1, r.code, r.all)
      local report = cjson.decode(r.out)
      assert.is_false(report.ok)
      assert.equal(1, report.failed)
      local named
      for _, c in ipairs(report.checks) do
        if c.name == "instrument allocations" then
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
      assert.matches("FAIL tables present %(6 of 7%)\n%s+agent_logs", r.out)
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
      assert.matches("has invalid records; nothing was written", r.err)
      assert.matches("bad2: symbol: must contain only upper%-case", r.err)
      assert.matches("BAD3: current_price: must be between 0 and 999999; allocation_regions: values sum to 90", r.err)
      assert.matches('BAD4: allocation_regions.mars: unknown region "mars"', r.err)
      assert.equal(0, ops.calls(s))
      assert.equal(before, ops.fingerprint(s))
      -- not JSON at all
      ops.write(file, "[{")
      r = run("scripts/seed.lua", { "--file", file })
      assert.equal(1, r.code, r.all)
      assert.matches("not valid JSON", r.err)
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

    local function refused(script, args, pattern)
      local r = run(script, args)
      assert.equal(1, r.code, r.all)
      if pattern then assert.matches(pattern, r.all) end
      assert.equal(before, ops.fingerprint(s), table.concat(args, " "))
    end

    it("update_price.lua sets a price and refuses bad ones", function()
      local r = run("scripts/examples/update_price.lua", { "SPY", "601.15" })
      assert.equal(0, r.code, r.all)
      assert.matches("SPY: 590.2500 %-> 601.1500", r.out)
      assert.equal("601.1500", value("SELECT current_price FROM instruments WHERE symbol = 'SPY'"))
      before = ops.fingerprint(s)
      local U = "scripts/examples/update_price.lua"
      refused(U, { "SPY", "--", "-5" }, "between 0 and 999999")
      refused(U, { "SPY", "abc" }, "not a decimal number")
      refused(U, { "SPY", "1.23456" }, "more than 4 decimal places")
      refused(U, { "SPY", "1e3" }, "exponent")
      refused(U, { "NOPE", "5" }, "no instrument NOPE")
      refused(U, { "SPY" }, "missing argument")
      for _, v in ipairs(INJ) do
        refused(U, { v, "5" }, "no instrument")
        refused(U, { "SPY", v }, "not a decimal number")
      end
    end)

    it("move_position.lua moves part or all of a holding and refuses bad moves", function()
      local M = "scripts/examples/move_position.lua"
      local r = run(M, { "test_user_001", "GLD", "401(k)", "Roth IRA", "--quantity", "10" })
      assert.equal(0, r.code, r.all)
      assert.matches("moved 10 GLD from 401%(k%) to Roth IRA %(now 10.00000000 there%)", r.out)
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
    end)

    it("move_position.lua uses names that look like SQL as plain data", function()
      assert(s:psql(([[INSERT INTO users (clerk_user_id) VALUES ('%s');
        INSERT INTO accounts (clerk_user_id, account_name) VALUES ('%s', '%s'), ('%s', '%s');
        INSERT INTO positions (account_id, symbol, quantity)
          SELECT id, 'SPY', 8 FROM accounts WHERE account_name = '%s';]]):format(
        INJ[2]:gsub("'", "''"), INJ[2]:gsub("'", "''"), INJ[1]:gsub("'", "''"), INJ[2]:gsub("'", "''"),
        INJ[2]:gsub("'", "''"), INJ[1]:gsub("'", "''"))))
      local r = run("scripts/examples/move_position.lua", { INJ[2], "SPY", INJ[1], INJ[2], "--quantity", "3" })
      assert.equal(0, r.code, r.all)
      assert.equal("5.00000000", held(INJ[1], "SPY"))
      assert.equal("3.00000000", held(INJ[2], "SPY"))
      assert.equal(2, ops.count(s, "users"))
      assert.equal("100.00000000", held("401(k)", "SPY"))
    end)

    it("retag_allocations.lua replaces allocations and refuses bad ones", function()
      local T = "scripts/examples/retag_allocations.lua"
      local r = run(T, { "VEA", "--regions", '{"europe":60,"asia":30,"oceania":10}', "--asset-class",
        '{"equity":95,"cash":5}' })
      assert.equal(0, r.code, r.all)
      assert.matches("VEA re%-tagged", r.out)
      assert.same({ europe = 60, asia = 30, oceania = 10 },
        cjson.decode(value("SELECT allocation_regions FROM instruments WHERE symbol = 'VEA'")))
      assert.same({ equity = 95, cash = 5 },
        cjson.decode(value("SELECT allocation_asset_class FROM instruments WHERE symbol = 'VEA'")))
      before = ops.fingerprint(s)
      refused(T, { "VEA", "--regions", '{"europe":60,"asia":30}' }, "sum to 90")
      refused(T, { "VEA", "--sectors", '{"technology":100,"mars":0}' }, 'unknown sector "mars"')
      refused(T, { "VEA", "--regions", "europe" }, "not a JSON object")
      refused(T, { "VEA" }, "give at least one of")
      refused(T, { "NOPE", "--regions", '{"europe":100}' }, "NotFound")
      for _, v in ipairs(INJ) do
        refused(T, { v, "--regions", '{"europe":100}' }, "does not exist")
        refused(T, { "VEA", "--regions", cjson.encode { [v] = 100 } }, "unknown region")
      end
    end)
  end)
end)
