-- alex.models against a private local stack: every record rule through the
-- models (good input stored, bad input refused before any call and nothing
-- written), each table's operations, portfolio values as exact decimals,
-- position moves, job transitions (one winner when agents race), and values
-- that look like SQL injection stored verbatim or refused, never run.
local db = require "alex.db"
local models = require "alex.models"
local migrate = require "alex.migrate"
local cjson = require "cjson"
local ops = require "dbops"

local NIL = setmetatable({}, { __name = "NIL" }) -- removes a field in with()
local INJ = ops.INJECTIONS
local UPPER_UUID = "6F9619FF-8B86-D011-B42D-00CF4FC964FF"

-- The cases with NIL (absent) turned into db.null (cleared, in an update).
local function as_nulls(cases)
  local out = {}
  for i, c in ipairs(cases) do
    local over = {}
    for k, v in pairs(c[1]) do over[k] = v == NIL and db.null or v end
    out[i] = { over, table.unpack(c, 2) }
  end
  return out
end

local function with(base, over) return require("servers").with(base, over, NIL) end

local INSTRUMENT = { symbol = "TEST.A-1", name = "Test fund", instrument_type = "etf", current_price = "12.34",
  allocation_regions = { north_america = 60, europe = 40 }, allocation_sectors = { technology = 100 },
  allocation_asset_class = { equity = 90, fixed_income = 10 } }
local USER = { clerk_user_id = "user_good", display_name = "Good User", years_until_retirement = 25,
  target_retirement_income = "85000.5", asset_class_targets = { equity = 60, fixed_income = 40 },
  region_targets = { north_america = 70, international = 30 } }

describe("alex.models", function()
  local s, conn, m, seed

  -- f() must raise a ValidationError naming each { field, message pattern },
  -- after at most `calls` Data API calls (reads, for update's merge).
  local function refused(f, expected, calls)
    s:reset_stats()
    local ok, err = pcall(f)
    assert.is_false(ok, "accepted: " .. cjson.encode(expected))
    assert.equal("ValidationError", type(err) == "table" and err.name, tostring(err))
    for _, e in ipairs(expected) do
      local found = false
      for _, got in ipairs(err.errors or {}) do
        if got.field == e[1] and (not e[2] or got.message:find(e[2])) then found = true end
      end
      if not err.errors then -- a list of problems in one message
        found = tostring(err):find(e[1], 1, true) and (not e[2] or tostring(err):find(e[2])) and true
      end
      assert.is_true(found, ("no error %s ~ %s in: %s"):format(e[1], tostring(e[2]), tostring(err)))
    end
    assert.equal(calls or 0, ops.calls(s), "calls went out for " .. tostring(err))
    return err
  end

  -- Runs every case of `cases` ({ over, { field, pattern }... }) through f(record).
  local function refuse_all(base, cases, f, calls)
    local before = ops.fingerprint(s)
    for _, c in ipairs(cases) do
      local expected = {}
      for i = 2, #c do expected[#expected + 1] = c[i] end
      refused(function() return f(with(base, c[1])) end, expected, calls)
    end
    assert.equal(before, ops.fingerprint(s))
  end

  local function make_user(id)
    return m.users:create(with(USER, { clerk_user_id = id or "user_good" }))
  end

  local function make_account(user, name, cash)
    return m.accounts:create { clerk_user_id = user, account_name = name, cash_balance = cash or "0" }
  end

  ops.connected_stack({ tx_idle_timeout = 2 }, function(...)
    s, conn = ...
    m = models.bind(conn)
    migrate.run(conn, assert(migrate.load("schema")))
    seed = cjson.decode((assert(ops.read("seed/instruments.json"))))
  end)

  before_each(function()
    s:clear_faults()
    assert(s:psql("TRUNCATE users, accounts, positions, jobs, agent_logs, price_history, instruments CASCADE"))
    assert.equal(22, m.instruments:upsert_many(seed))
  end)

  describe("record rules", function()
    local INSTRUMENT_CASES = {
      { { symbol = NIL }, { "symbol", "required field missing" } },
      { { symbol = "spy" }, { "symbol", "upper%-case" } },
      { { symbol = "" }, { "symbol", "length" } },
      { { symbol = ("A"):rep(21) }, { "symbol", "between 1 and 20" } },
      { { symbol = INJ[1] }, { "symbol", "upper%-case" } },
      { { symbol = INJ[2] }, { "symbol", "upper%-case" } },
      { { name = NIL }, { "name", "required" } },
      { { name = "" }, { "name", "length" } },
      { { name = ("n"):rep(256) }, { "name", "between 1 and 255" } },
      { { name = 5 }, { "name", "expected a string" } },
      { { name = "bad \255 utf8" }, { "name", "UTF%-8" } },
      { { instrument_type = NIL }, { "instrument_type", "required" } },
      { { instrument_type = "etfs" }, { "instrument_type", 'did you mean "etf"' } },
      { { current_price = -1 }, { "current_price", "between 0 and 999999" } },
      { { current_price = 1000000 }, { "current_price", "between 0 and 999999" } },
      { { current_price = "1.23456" }, { "current_price", "more than 4 decimal places" } },
      { { current_price = "1e5" }, { "current_price", "exponent" } },
      { { current_price = "abc" }, { "current_price", "not a decimal number" } },
      { { current_price = 0.1 + 0.2 }, { "current_price", "15 significant digits" } },
      { { current_price = 0 / 0 }, { "current_price", "finite" } },
      { { current_price = true }, { "current_price", "expected a number or a decimal string" } },
      { { allocation_regions = { mars = 100 } }, { "allocation_regions.mars", "unknown region" } },
      { { allocation_regions = { europe = 90 } }, { "allocation_regions", "sum to 90" } },
      { { allocation_regions = { europe = "100" } }, { "allocation_regions.europe", "expected a percentage" } },
      { { allocation_regions = { europe = 150, asia = -50 } }, { "allocation_regions.europe", "between 0 and 100" },
        { "allocation_regions.asia", "between 0 and 100" } },
      { { allocation_regions = "europe" }, { "allocation_regions", "expected a table" } },
      { { allocation_sectors = { tech = 100 } }, { "allocation_sectors.tech", "unknown sector" } },
      { { allocation_sectors = { technology = 99.9 } }, { "allocation_sectors", "sum to 99.9" } },
      { { allocation_asset_class = { equity = 50 } }, { "allocation_asset_class", "sum to 50" } },
      { { allocation_asset_class = { stocks = 100 } }, { "allocation_asset_class.stocks", "unknown asset class" } },
      { { colour = "red" }, { "colour", "unknown field" } },
      { { instrument_type = NIL, instrument_typ = "etf" }, { "instrument_type", "required" },
        { "instrument_typ", 'did you mean "instrument_type"' } },
      { { symbol = "bad sym", current_price = -1, allocation_regions = { europe = 90 } }, { "symbol" },
        { "current_price" }, { "allocation_regions" } },
    }

    it("instruments: create and upsert refuse every bad record before sending anything", function()
      refuse_all(INSTRUMENT, INSTRUMENT_CASES, function(r) return m.instruments:create(r) end)
      refuse_all(INSTRUMENT, INSTRUMENT_CASES, function(r) return m.instruments:upsert(r) end)
    end)

    it("instruments: store good records with exact, canonical values", function()
      local row = m.instruments:create(INSTRUMENT)
      assert.equal("TEST.A-1", row.symbol)
      assert.equal("12.3400", row.current_price)
      assert.same({ north_america = 60, europe = 40 }, row.allocation_regions)
      assert.same({ equity = 90, fixed_income = 10 }, row.allocation_asset_class)
      -- a float price, allocations with fractions summing within 0.05 of 100
      row = m.instruments:upsert(with(INSTRUMENT, { symbol = "TEST2", current_price = 590.25,
        allocation_regions = { north_america = 33.33, europe = 33.33, asia = 33.33 } }))
      assert.equal("590.2500", row.current_price)
      assert.same({ north_america = 33.33, europe = 33.33, asia = 33.33 }, row.allocation_regions)
      -- the price is optional
      row = m.instruments:create(with(INSTRUMENT, { symbol = "BARE", current_price = NIL }))
      assert.is_nil(row.current_price)
      assert.equal(25, #m.instruments:all())
    end)

    it("instruments: a seed list is refused whole, every problem listed, with nothing sent", function()
      local list = {}
      for i, r in ipairs(seed) do list[i] = r end
      list[#list + 1] = with(INSTRUMENT, { current_price = NIL })                  -- seeds need a price
      list[#list + 1] = with(INSTRUMENT, { symbol = "EMPTY", allocation_sectors = {} }) -- and allocations
      list[#list + 1] = with(INSTRUMENT, { symbol = "SPY" })                       -- twice in one list
      list[#list + 1] = with(INSTRUMENT, { symbol = "low" })
      local before = ops.fingerprint(s)
      local err = refused(function() return m.instruments:upsert_many(list) end, {
        { "[23].current_price", "required field missing" },
        { "[24].allocation_sectors", "must not be empty" },
        { "[25].symbol", 'is also the symbol of %[1%]' },
        { "[26].symbol", "must contain only upper%-case" },
      })
      assert.matches('^ValidationError: instruments: %[23%]%.current_price: required field missing; ', tostring(err))
      assert.equal(before, ops.fingerprint(s))
    end)

    it("instruments: every write path refuses allocations verify.lua would fail, before sending anything",
      function()
        local validate = require "alex.validate"
        -- what verify.lua requires of every stored instrument
        local function verify_ok(symbol)
          local row = assert(m.instruments:find(symbol))
          for column, kind in pairs { allocation_regions = "regions", allocation_sectors = "sectors",
                                      allocation_asset_class = "asset_class" } do
            assert(validate.allocation(type(row[column]) == "table" and row[column] or {}, kind))
          end
        end
        local before = ops.fingerprint(s)
        local empty = setmetatable({}, require("alex.json").object_mt)
        for _, bad in ipairs { { {}, "must not be empty" }, { empty, "must not be empty" },
                               { NIL, "required field missing" }, { { europe = 90 }, "sum to 90" },
                               { { mars = 100 }, "unknown region", ".mars" } } do
          local over = { allocation_regions = bad[1] }
          local expected = { { "allocation_regions" .. (bad[3] or ""), bad[2] } }
          refused(function() return m.instruments:create(with(INSTRUMENT, over)) end, expected)
          refused(function() return m.instruments:upsert(with(INSTRUMENT, over)) end, expected)
          refused(function() return m.instruments:upsert_many { with(INSTRUMENT, over) } end,
            { { "[1].allocation_regions" .. (bad[3] or ""), bad[2] } })
          if bad[1] ~= NIL then
            refused(function() return m.instruments:set_allocations("VEA", { regions = bad[1] }) end, expected, 1)
            refused(function() return m.instruments:update("VEA", over) end, expected, 1)
          end
        end
        refused(function() return m.instruments:update("VEA", { allocation_sectors = db.null }) end,
          { { "allocation_sectors", "required field missing" } }, 1)
        assert.equal(before, ops.fingerprint(s))
        -- the writes that pass leave rows verify.lua accepts
        m.instruments:create(INSTRUMENT)
        m.instruments:set_allocations("VEA", { regions = { europe = 60, asia = 30, oceania = 10 } })
        for _, sym in ipairs { "TEST.A-1", "VEA", "SPY" } do verify_ok(sym) end
        -- a row already broken (written around the model) is not updated as if it were fine
        assert(s:psql("UPDATE instruments SET allocation_sectors = '{}' WHERE symbol = 'GLD'"))
        refused(function() return m.instruments:update_price("GLD", "2000") end,
          { { "allocation_sectors", "must not be empty" } }, 1)
        local row = m.instruments:set_allocations("GLD", { sectors = { other = 100 } })
        assert.same({ other = 100 }, row.allocation_sectors)
        verify_ok("GLD")
      end)

    it("users: create, upsert and update refuse bad records", function()
      local cases = {
        { { clerk_user_id = NIL }, { "clerk_user_id", "required" } },
        { { clerk_user_id = "" }, { "clerk_user_id", "length" } },
        { { clerk_user_id = ("u"):rep(256) }, { "clerk_user_id", "between 1 and 255" } },
        { { clerk_user_id = 7 }, { "clerk_user_id", "expected a string" } },
        { { display_name = "" }, { "display_name", "length" } },
        { { display_name = ("d"):rep(256) }, { "display_name", "between 1 and 255" } },
        { { years_until_retirement = 101 }, { "years_until_retirement", "between 0 and 100" } },
        { { years_until_retirement = -1 }, { "years_until_retirement", "between 0 and 100" } },
        { { years_until_retirement = 2.5 }, { "years_until_retirement", "expected an integer" } },
        { { years_until_retirement = "25" }, { "years_until_retirement", "expected an integer" } },
        { { target_retirement_income = -1 }, { "target_retirement_income", "at least 0" } },
        { { target_retirement_income = "1.234" }, { "target_retirement_income", "more than 2 decimal places" } },
        { { target_retirement_income = "12345678901" }, { "target_retirement_income", "more than 10 digits" } },
        { { asset_class_targets = { equity = 60 } }, { "asset_class_targets", "sum to 60" } },
        { { asset_class_targets = { stocks = 100 } }, { "asset_class_targets.stocks", "unknown asset class" } },
        { { region_targets = { europe = 100, narnia = 0 } }, { "region_targets.narnia", "unknown region" } },
        { { email = "a@b.c" }, { "email", "unknown field" } },
      }
      refuse_all(USER, cases, function(r) return m.users:create(r) end)
      refuse_all(USER, cases, function(r) return m.users:upsert(r) end)
      make_user()
      local update_cases = {}
      for _, c in ipairs(cases) do
        if c[1].clerk_user_id == nil then update_cases[#update_cases + 1] = c end
      end
      -- an update reads the row (one call) to check the merged record, then stops
      refuse_all({}, update_cases, function(r) return m.users:update("user_good", r) end, 1)
      refused(function() return m.users:update("user_good", { clerk_user_id = "other" }) end,
        { { "clerk_user_id", "cannot be updated" } }, 1)
    end)

    it("users: store good records; integral floats become integers, money exact", function()
      local row = m.users:create(with(USER, { years_until_retirement = 25.0 }))
      assert.equal(25, row.years_until_retirement)
      assert.equal("integer", math.type(row.years_until_retirement))
      assert.equal("85000.50", row.target_retirement_income)
      assert.same({ equity = 60, fixed_income = 40 }, row.asset_class_targets)
      -- only the id: the database defaults apply
      row = m.users:create { clerk_user_id = "minimal" }
      assert.same({ equity = 70, fixed_income = 30 }, row.asset_class_targets)
      assert.same({ north_america = 50, international = 50 }, row.region_targets)
      assert.is_nil(row.display_name)
    end)

    it("accounts: create and update refuse bad records", function()
      make_user()
      local base = { clerk_user_id = "user_good", account_name = "Brokerage", account_purpose = "Savings",
                     cash_balance = "1234.56", cash_interest = "0.0425" }
      local cases = {
        { { clerk_user_id = NIL }, { "clerk_user_id", "required" } },
        { { account_name = NIL }, { "account_name", "required" } },
        { { account_name = "" }, { "account_name", "length" } },
        { { account_name = ("a"):rep(256) }, { "account_name", "between 1 and 255" } },
        { { account_purpose = 5 }, { "account_purpose", "expected a string" } },
        { { cash_balance = "-0.01" }, { "cash_balance", "at least 0" } },
        { { cash_balance = "1.001" }, { "cash_balance", "more than 2 decimal places" } },
        { { cash_balance = "12345678901" }, { "cash_balance", "more than 10 digits" } },
        { { cash_interest = 1.5 }, { "cash_interest", "between 0 and 1" } },
        { { cash_interest = -0.1 }, { "cash_interest", "between 0 and 1" } },
        { { cash_interest = "0.12345" }, { "cash_interest", "more than 4 decimal places" } },
        { { balance = 1 }, { "balance", "unknown field" } },
      }
      refuse_all(base, cases, function(r) return m.accounts:create(r) end)
      local row = m.accounts:create(base)
      assert.equal("1234.56", row.cash_balance)
      assert.equal("0.0425", row.cash_interest)
      refuse_all({}, as_nulls { table.unpack(cases, 2) }, function(r) return m.accounts:update(row.id, r) end, 1)
    end)

    it("positions: create, upsert and update refuse bad records", function()
      make_user()
      local acct = make_account("user_good", "A")
      local base = { account_id = acct.id, symbol = "SPY", quantity = "10.5", as_of_date = "2024-02-29" }
      local cases = {
        { { account_id = NIL }, { "account_id", "required" } },
        { { account_id = "not-a-uuid" }, { "account_id", "not a UUID" } },
        { { account_id = 12 }, { "account_id", "expected a UUID string" } },
        { { account_id = INJ[1] }, { "account_id", "not a UUID" } },
        { { symbol = "spy" }, { "symbol", "upper%-case" } },
        { { quantity = NIL }, { "quantity", "required" } },
        { { quantity = 0 }, { "quantity", "greater than 0" } },
        { { quantity = -1 }, { "quantity", "greater than 0" } },
        { { quantity = "1.123456789" }, { "quantity", "more than 8 decimal places" } },
        { { quantity = "1234567890123" }, { "quantity", "more than 12 digits" } },
        { { as_of_date = "2024-02-30" }, { "as_of_date", "not a valid date" } },
        { { as_of_date = "2023-02-29" }, { "as_of_date", "not a valid date" } },
        { { as_of_date = "24-01-01" }, { "as_of_date", "not a valid date" } },
        { { as_of_date = 20240101 }, { "as_of_date", "expected a date string" } },
        { { qty = 1 }, { "qty", "unknown field" } },
      }
      refuse_all(base, cases, function(r) return m.positions:create(r) end)
      refuse_all(base, cases, function(r) return m.positions:upsert(r) end)
      local row = m.positions:create(with(base, { account_id = acct.id:upper() }))
      assert.equal(acct.id, row.account_id)
      assert.equal("10.50000000", row.quantity)
      assert.equal("2024-02-29", row.as_of_date)
      local update_cases = { table.unpack(cases, 5) }
      -- in an update, db.null clears a field: a required one is then missing
      refuse_all({}, as_nulls(update_cases), function(r) return m.positions:update(row.id, r) end, 1)
    end)

    it("jobs: create, update and transitions refuse bad records", function()
      make_user()
      local base = { clerk_user_id = "user_good", job_type = "portfolio_analysis",
                     request_payload = { accounts = { "a", "b" }, options = { depth = 2 } } }
      refuse_all(base, {
        { { clerk_user_id = NIL }, { "clerk_user_id", "required" } },
        { { job_type = NIL }, { "job_type", "required" } },
        { { job_type = "portfolio" }, { "job_type", "must be one of" } },
        { { request_payload = "x" }, { "request_payload", "expected a table" } },
        { { request_payload = { f = print } }, { "request_payload.f", "cannot be stored as JSON" } },
        { { request_payload = { 1, 2, x = 3 } }, { "request_payload", "mixes array items and object keys" } },
        { { request_payload = { n = 0 / 0 } }, { "request_payload.n", "finite" } },
        { { request_payload = { [true] = 1 } }, { "request_payload[true]", "keys must be strings" } },
        { { status = "running" }, { "status", "unknown field" } },
      }, function(r) return m.jobs:create(r) end)
      local job = m.jobs:create(base)
      assert.equal("pending", job.status)
      assert.same({ accounts = { "a", "b" }, options = { depth = 2 } }, job.request_payload)
      refuse_all({}, {
        { {}, { "", "at least one of" } },
        { { status = "running" }, { "status", "use start, complete or fail" } },
        { { report_payload = "x" }, { "report_payload", "expected a table" } },
        { { charts_payload = { bad = print } }, { "charts_payload.bad", "cannot be stored as JSON" } },
        { { error_message = 5 }, { "error_message", "expected a string" } },
        { { clerk_user_id = "someone" }, { "clerk_user_id", "unknown field" } },
      }, function(r) return m.jobs:update(job.id, r) end)
      local before = ops.fingerprint(s)
      refused(function() return m.jobs:transition(job.id, "done") end, { { 'job status "done"' } })
      refused(function() return m.jobs:complete(job.id, { report_payload = "x" }) end,
        { { "report_payload", "expected a table" } })
      refused(function() return m.jobs:complete(job.id, { job_type = "x" }) end, { { "job_type", "unknown field" } })
      refused(function() return m.jobs:fail(job.id, 42) end, { { "error_message", "expected a string" } })
      assert.equal(before, ops.fingerprint(s))
    end)
  end)

  describe("operations", function()
    it("instruments: find, all, create, upsert, update_price, set_allocations, delete", function()
      assert.equal("SPDR S&P 500 ETF Trust", m.instruments:find("SPY").name)
      assert.is_nil(m.instruments:find("NOPE"))
      local all = m.instruments:all()
      assert.equal(22, #all)
      for i = 2, #all do assert.is_true(all[i - 1].symbol < all[i].symbol) end
      m.instruments:create(INSTRUMENT)
      local ok, err = pcall(m.instruments.create, m.instruments, INSTRUMENT)
      assert.is_false(ok)
      assert.equal("23505", err.sqlstate)
      local row = m.instruments:upsert(with(INSTRUMENT, { name = "Renamed", current_price = "13" }))
      assert.equal("Renamed", row.name)
      assert.equal("13.0000", row.current_price)
      assert.equal(23, #m.instruments:all())
      assert.equal("601.1500", m.instruments:update_price("SPY", "601.15").current_price)
      assert.equal("0.0001", m.instruments:update_price("SPY", 0.0001).current_price)
      row = m.instruments:set_allocations("SPY", { regions = { europe = 50, asia = 50 } })
      assert.same({ europe = 50, asia = 50 }, row.allocation_regions)
      assert.same({ equity = 100 }, row.allocation_asset_class) -- the others stay
      local refused_alloc = refused(function()
        return m.instruments:set_allocations("SPY", { sectors = { technology = 10 } })
      end, { { "allocation_sectors", "sum to 10" } }, 1)
      assert.matches("instrument: allocation_sectors", tostring(refused_alloc))
      ok, err = pcall(m.instruments.update_price, m.instruments, "NOPE", "1")
      assert.is_false(ok)
      assert.equal("NotFound", err.name)
      assert.is_true(m.instruments:delete("TEST.A-1"))
      assert.is_false(m.instruments:delete("TEST.A-1"))
      -- an instrument someone holds cannot go
      m.users:create(USER)
      m.positions:create { account_id = make_account("user_good", "A").id, symbol = "QQQ", quantity = 1 }
      ok, err = pcall(m.instruments.delete, m.instruments, "QQQ")
      assert.is_false(ok)
      assert.equal("23503", err.sqlstate)
      assert.truthy(m.instruments:find("QQQ"))
    end)

    it("users: find, all, create, upsert, update, delete (accounts go with the user)", function()
      make_user()
      local row = m.users:upsert(with(USER, { display_name = "Changed", years_until_retirement = 30 }))
      assert.equal("Changed", row.display_name)
      assert.equal(30, row.years_until_retirement)
      m.users:upsert { clerk_user_id = "second" }
      assert.equal(2, #m.users:all())
      row = m.users:update("user_good", { target_retirement_income = 120000, display_name = db.null })
      assert.equal("120000.00", row.target_retirement_income)
      assert.is_nil(row.display_name)
      assert.equal(30, row.years_until_retirement)
      local ok, err = pcall(m.users.update, m.users, "nobody", { display_name = "x" })
      assert.is_false(ok)
      assert.equal("NotFound", err.name)
      make_account("user_good", "A")
      assert.is_true(m.users:delete("user_good"))
      assert.is_nil(m.users:find("user_good"))
      assert.equal(0, ops.count(s, "accounts"))
      assert.is_false(m.users:delete("user_good"))
    end)

    it("accounts: find, all, create, for_user, update, delete", function()
      make_user()
      local a = make_account("user_good", "B", "10")
      local b = make_account("user_good", "A", "20.5")
      assert.equal("10.00", m.accounts:find(a.id).cash_balance)
      assert.equal(a.id, m.accounts:find(a.id:upper()).id)
      assert.equal(2, #m.accounts:all())
      local mine = m.accounts:for_user("user_good")
      assert.equal(2, #mine)
      assert.same({ a.id, b.id }, { mine[1].id, mine[2].id }) -- by creation
      local row = m.accounts:update(a.id, { cash_balance = "99.99", account_purpose = "Renamed purpose" })
      assert.equal("99.99", row.cash_balance)
      assert.equal("Renamed purpose", row.account_purpose)
      assert.equal("B", row.account_name)
      local ok, err = pcall(m.accounts.create, m.accounts, { clerk_user_id = "nobody", account_name = "X" })
      assert.is_false(ok)
      assert.equal("23503", err.sqlstate)
      assert.is_true(m.accounts:delete(b.id))
      assert.equal(1, #m.accounts:for_user("user_good"))
    end)

    it("positions: find, all, create, upsert, for_account, update, delete", function()
      make_user()
      local a = make_account("user_good", "A")
      local p = m.positions:create { account_id = a.id, symbol = "SPY", quantity = 100 }
      assert.equal("100.00000000", m.positions:find(p.id).quantity)
      local up = m.positions:upsert { account_id = a.id, symbol = "SPY", quantity = "12.5", as_of_date = "2024-01-31" }
      assert.equal(p.id, up.id) -- one row per (account, symbol): replaced
      assert.equal("12.50000000", up.quantity)
      assert.equal("2024-01-31", up.as_of_date)
      m.positions:upsert { account_id = a.id, symbol = "BND", quantity = 3 }
      local list = m.positions:for_account(a.id)
      assert.same({ "BND", "SPY" }, { list[1].symbol, list[2].symbol })
      assert.equal("Vanguard Total Bond Market ETF", list[1].instrument_name)
      assert.equal(2, #m.positions:all())
      assert.equal("7.00000000", m.positions:update(p.id, { quantity = 7 }).quantity)
      local ok, err = pcall(m.positions.upsert, m.positions, { account_id = UPPER_UUID, symbol = "SPY", quantity = 1 })
      assert.is_false(ok)
      assert.equal("23503", err.sqlstate)
      assert.matches("account 6f9619ff%-8b86%-d011%-b42d%-00cf4fc964ff or symbol SPY does not exist", tostring(err))
      ok, err = pcall(m.positions.create, m.positions, { account_id = a.id, symbol = "ZZZZ", quantity = 1 })
      assert.is_false(ok)
      assert.equal("23503", err.sqlstate)
      assert.is_true(m.positions:delete(p.id))
      assert.is_nil(m.positions:find(p.id))
      assert.equal(1, ops.count(s, "positions"))
    end)

    it("jobs: create, find, for_user, update payloads, delete", function()
      make_user()
      local job = m.jobs:create { clerk_user_id = "user_good", job_type = "retirement_projection" }
      assert.equal("pending", job.status)
      assert.is_nil(job.request_payload)
      local row = m.jobs:update(job.id, { report_payload = { text = "# Report", scores = { 1, 2.5, 3 } },
        charts_payload = { { type = "pie", data = {} } }, summary_payload = { ok = true, note = db.null } })
      assert.same({ text = "# Report", scores = { 1, 2.5, 3 } }, row.report_payload)
      assert.same({ { type = "pie", data = {} } }, row.charts_payload)
      assert.is_true(row.summary_payload.ok)
      assert.equal("pending", row.status)
      row = m.jobs:update(job.id, { retirement_payload = { years = 25 }, error_message = "partial" })
      assert.same({ years = 25 }, row.retirement_payload)
      assert.equal("# Report", row.report_payload.text) -- other payloads kept
      assert.equal("partial", row.error_message)
      assert.equal(1, #m.jobs:for_user("user_good"))
      assert.equal(1, #m.jobs:all())
      assert.equal(1, #m.jobs:for_user("user_good", "pending"))
      assert.equal(0, #m.jobs:for_user("user_good", "running"))
      local ok, err = pcall(m.jobs.update, m.jobs, UPPER_UUID, { error_message = "x" })
      assert.is_false(ok)
      assert.equal("NotFound", err.name)
      assert.is_true(m.jobs:delete(job.id))
      assert.is_nil(m.jobs:find(job.id))
    end)
  end)

  describe("accounts:portfolio_value", function()
    it("adds cash and holdings as exact decimal strings", function()
      make_user()
      m.instruments:create(with(INSTRUMENT, { symbol = "P1", instrument_type = "stock", current_price = "0.0001" }))
      m.instruments:create(with(INSTRUMENT, { symbol = "P2", instrument_type = "stock", current_price = "10.1234" }))
      m.instruments:create(with(INSTRUMENT, { symbol = "P3", instrument_type = "stock", current_price = NIL }))
      local a = make_account("user_good", "A", "9999999999.99")
      m.positions:create { account_id = a.id, symbol = "P1", quantity = "123456789012.12345678" }
      m.positions:create { account_id = a.id, symbol = "P2", quantity = "3.5" }
      m.positions:create { account_id = a.id, symbol = "P3", quantity = "1" }
      local v = m.accounts:portfolio_value(a.id)
      -- 12345678.901212345678 + 35.4319 = 12345714.333112345678 -> 12345714.33
      assert.equal("9999999999.99", v.cash)
      assert.equal("12345714.33", v.positions_value)
      assert.equal("10012345714.32", v.total)
      assert.equal(3, v.positions)
      assert.equal(1, v.unpriced)
      assert.equal(a.id, v.account_id)
      -- an account with no holdings
      local b = make_account("user_good", "B", "0.1")
      v = m.accounts:portfolio_value(b.id)
      assert.same({ "0.10", "0.00", "0.10", 0, 0 }, { v.cash, v.positions_value, v.total, v.positions, v.unpriced })
      local ok, err = pcall(m.accounts.portfolio_value, m.accounts, UPPER_UUID)
      assert.is_false(ok)
      assert.equal("NotFound", err.name)
    end)

    it("values the seeded test portfolio to the cent", function()
      make_user("test_user_001")
      local a = make_account("test_user_001", "401(k)", 5000)
      for sym, q in pairs { SPY = 100, QQQ = 50, BND = 200, VEA = 150, GLD = 25 } do
        m.positions:create { account_id = a.id, symbol = sym, quantity = q }
      end
      local total = conn:query_one([[SELECT sum(p.quantity * i.current_price)::numeric(20,2) AS v
        FROM positions p JOIN instruments i USING (symbol) WHERE p.account_id = :a::uuid]], { a = db.uuid(a.id) }).v
      local v = m.accounts:portfolio_value(a.id)
      assert.equal(total, v.positions_value)
      assert.equal("5000.00", v.cash)
      assert.matches("^%d+%.%d%d$", v.total)
      -- the same sum by hand, in integer ten-thousandths of a dollar
      local units = 0
      for _, r in ipairs(m.positions:for_account(a.id)) do
        local q = tonumber(r.quantity:match("^(%d+)"))
        local whole, frac = r.current_price:match("^(%d+)%.(%d+)$")
        units = units + q * (tonumber(whole) * 10000 + tonumber(frac))
      end
      local hundredths = (units + 5000 * 10000 + 50) // 100 -- rounded half up, as numeric(20,2) does
      assert.equal(("%d.%02d"):format(hundredths // 100, hundredths % 100), v.total)
    end)
  end)

  describe("positions:move", function()
    local a, b

    before_each(function()
      make_user()
      a = make_account("user_good", "A")
      b = make_account("user_good", "B")
      m.positions:create { account_id = a.id, symbol = "SPY", quantity = "100.5" }
      m.positions:create { account_id = a.id, symbol = "GLD", quantity = 25 }
      m.positions:create { account_id = b.id, symbol = "GLD", quantity = "0.25" }
    end)

    local function held(acct, sym)
      local r = conn:query_one("SELECT quantity FROM positions WHERE account_id = :a::uuid AND symbol = :s",
        { a = acct.id, s = sym })
      return r and r.quantity
    end

    it("moves a whole holding", function()
      local row = conn:transaction(function(tx) return models.bind(tx).positions:move("SPY", a.id, b.id) end)
      assert.equal("100.50000000", row.quantity)
      assert.equal(b.id, row.account_id)
      assert.is_nil(held(a, "SPY"))
      assert.equal("100.50000000", held(b, "SPY"))
    end)

    it("moves part of a holding, as a string or a number", function()
      conn:transaction(function(tx) models.bind(tx).positions:move("SPY", a.id, b.id, "40.25") end)
      assert.equal("60.25000000", held(a, "SPY"))
      assert.equal("40.25000000", held(b, "SPY"))
      conn:transaction(function(tx) models.bind(tx).positions:move("SPY", a.id, b.id, 10) end)
      assert.equal("50.25000000", held(a, "SPY"))
      assert.equal("50.25000000", held(b, "SPY"))
    end)

    it("adds to a holding already in the destination", function()
      local row = m.positions:move("GLD", a.id, b.id, "24.75")
      assert.equal("25.00000000", row.quantity)
      assert.equal("0.25000000", held(a, "GLD"))
      -- exactly what is left: the source row goes
      m.positions:move("GLD", a.id, b.id, "0.25")
      assert.is_nil(held(a, "GLD"))
      assert.equal("25.25000000", held(b, "GLD"))
      assert.equal(2, ops.count(s, "positions"))
    end)

    it("refuses to move more than is held, changing nothing", function()
      local before = ops.fingerprint(s)
      local ok, err = pcall(conn.transaction, conn, function(tx)
        return models.bind(tx).positions:move("GLD", a.id, b.id, "25.00000001")
      end)
      assert.is_false(ok)
      assert.equal("ValidationError", err.name)
      assert.matches("cannot move 25.00000001 GLD: account holds only 25.00000000", tostring(err))
      assert.equal(before, ops.fingerprint(s))
      -- nothing held there at all
      ok, err = pcall(m.positions.move, m.positions, "QQQ", a.id, b.id)
      assert.is_false(ok)
      assert.equal("NotFound", err.name)
      assert.equal(before, ops.fingerprint(s))
    end)

    it("checks accounts, symbol and amount before sending anything", function()
      local before = ops.fingerprint(s)
      refused(function() return m.positions:move("GLD", a.id, b.id, "-3") end, { { "quantity", "greater than 0" } })
      refused(function() return m.positions:move("GLD", a.id, b.id, 0) end, { { "quantity", "greater than 0" } })
      refused(function() return m.positions:move("GLD", a.id, b.id, "1.123456789") end, { { "quantity", "places" } })
      refused(function() return m.positions:move("GLD", a.id, "nope") end, { { "account_id", "not a UUID" } })
      refused(function() return m.positions:move("GLD", INJ[1], b.id) end, { { "account_id", "not a UUID" } })
      refused(function() return m.positions:move(INJ[2], a.id, b.id) end, { { "symbol", "upper%-case" } })
      assert.equal(before, ops.fingerprint(s))
    end)
  end)

  describe("jobs transitions", function()
    local job

    before_each(function()
      make_user()
      job = m.jobs:create { clerk_user_id = "user_good", job_type = "portfolio_analysis" }
    end)

    it("pending -> running -> completed, stamping the times and storing the payloads", function()
      local row = m.jobs:start(job.id)
      assert.equal("running", row.status)
      assert.truthy(row.started_at)
      assert.is_nil(row.completed_at)
      row = m.jobs:complete(job.id, { report_payload = { text = "done" }, summary_payload = { score = 7 } })
      assert.equal("completed", row.status)
      assert.truthy(row.completed_at)
      assert.same({ text = "done" }, row.report_payload)
      assert.same({ score = 7 }, row.summary_payload)
      assert.is_true(row.completed_at >= row.started_at)
    end)

    it("-> failed from pending or running, with the message stored", function()
      local row = m.jobs:fail(job.id, "no prices")
      assert.equal("failed", row.status)
      assert.equal("no prices", row.error_message)
      local other = m.jobs:create { clerk_user_id = "user_good", job_type = "tax_optimization" }
      m.jobs:start(other.id)
      row = m.jobs:fail(other.id, "agent crashed")
      assert.equal("failed", row.status)
      assert.truthy(row.started_at)
    end)

    it("refuses illegal transitions and leaves the job as it was", function()
      local function illegal(f, pattern)
        local before = conn:query_one("SELECT * FROM jobs WHERE id = :id::uuid", { id = job.id })
        local ok, err = pcall(f)
        assert.is_false(ok)
        assert.equal("ValidationError", err.name)
        assert.matches(pattern, tostring(err))
        assert.same(before, conn:query_one("SELECT * FROM jobs WHERE id = :id::uuid", { id = job.id }))
      end
      illegal(function() return m.jobs:complete(job.id) end, "is pending; it cannot move to completed")
      m.jobs:start(job.id)
      illegal(function() return m.jobs:start(job.id) end, "is running; it cannot move to running")
      m.jobs:complete(job.id, { report_payload = {} })
      illegal(function() return m.jobs:start(job.id) end, "is completed; it cannot move to running")
      illegal(function() return m.jobs:fail(job.id, "late") end, "is completed; it cannot move to failed")
      illegal(function() return m.jobs:complete(job.id) end, "is completed; it cannot move to completed")
      local ok, err = pcall(m.jobs.start, m.jobs, UPPER_UUID)
      assert.is_false(ok)
      assert.equal("NotFound", err.name)
    end)

    it("when agents race to start one job, exactly one wins", function()
      local dir = ops.tmpdir()
      local n = 4
      local jobs = {}
      for i = 1, n do
        jobs[i] = { "spec/fixtures/start_job.lua", { job.id, dir .. "/go", dir .. "/ready" .. i } }
      end
      -- each call waits 100 ms first, so the racers' calls overlap
      assert(s:set_faults { latency_ms = 100 })
      local go = io.open(dir .. "/release.sh", "w")
      go:write(("i=0; while [ $(ls %s | grep -c ready) -lt %d ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done;" ..
        " touch %s/go\n"):format(ops.q(dir), n, ops.q(dir)))
      go:close()
      os.execute("sh " .. ops.q(dir .. "/release.sh") .. " &")
      local results = ops.run_parallel(s, jobs)
      s:clear_faults()
      ops.rmdir(dir)
      local won, lost = 0, 0
      for _, r in ipairs(results) do
        assert.equal(0, r.code, r.all)
        if r.out:find("^won") then won = won + 1
        elseif r.out:find("^lost: ValidationError: job .* is running; it cannot move to running") then lost = lost + 1
        end
      end
      assert.equal(1, won)
      assert.equal(n - 1, lost)
      local row = m.jobs:find(job.id)
      assert.equal("running", row.status)
    end)
  end)

  describe("transactions whose rollback or commit is refused (alex.db)", function()
    local c

    before_each(function() c = ops.connect(s, { max_attempts = 1 }) end)
    after_each(function()
      s:clear_faults()
      c:close()
    end)

    -- The first seed whose next calls fail with a 5xx (false) or go through
    -- (true) as `pattern` says; the faults are off again when it returns.
    local function seed_for(pattern)
      for k = 1, 500 do
        assert(s:set_faults { seed = k, ["5xx_rate"] = 0.5 })
        local match = true
        for _, want in ipairs(pattern) do
          if (c.safe:query("SELECT 1") ~= nil) ~= want then match = false break end
        end
        if match then
          s:clear_faults()
          return k
        end
      end
      error("no seed gives " .. cjson.encode(pattern))
    end

    local function users_named(name)
      return tonumber(s:psql(("SELECT count(*) FROM users WHERE clerk_user_id = '%s'"):format(name)))
    end

    it("a rollback refused once is sent again: nothing stays open", function()
      local k = seed_for { false, true }
      s:reset_stats()
      local ok, err = pcall(c.transaction, c, function(tx)
        tx:execute("INSERT INTO users (clerk_user_id) VALUES ('rolled')")
        assert(s:set_faults { seed = k, ["5xx_rate"] = 0.5 }) -- the rollback's two calls come next
        error("script failed", 0)
      end)
      assert.is_false(ok)
      assert.equal("script failed", err)
      local st = s:stats()
      assert.equal(2, st.operations.RollbackTransaction)
      assert.equal(0, st.open_transactions)
      assert.equal(0, users_named("rolled"))
    end)

    it("a commit refused before it ran is rolled back, and the block may run again", function()
      -- commit, rollback, then all of the second run (begin, lock timeout, insert, commit)
      local k = seed_for { false, true, true, true, true, true }
      s:reset_stats()
      local runs = 0
      c:transaction(function(tx)
        runs = runs + 1
        tx:execute("INSERT INTO users (clerk_user_id) VALUES ('committed')")
        if runs == 1 then assert(s:set_faults { seed = k, ["5xx_rate"] = 0.5 }) end
      end, { retries = 1 })
      local st = s:stats()
      assert.equal(2, runs)
      assert.equal(2, st.operations.CommitTransaction)
      assert.equal(1, st.operations.RollbackTransaction)
      assert.equal(0, st.open_transactions)
      assert.equal(1, users_named("committed"))
    end)

    it("when no rollback gets through, the block is not run again over the open transaction", function()
      s:reset_stats()
      local runs = 0
      local ok, err = pcall(c.transaction, c, function(tx)
        runs = runs + 1
        assert(s:set_faults { ["5xx_rate"] = 1 })
        tx:execute("INSERT INTO users (clerk_user_id) VALUES ('never')")
      end, { retries = 2 })
      s:clear_faults()
      assert.is_false(ok)
      assert.is_true(err.retryable)
      assert.is_true(err.left_open)
      assert.equal(1, runs)
      local st = s:stats()
      assert.equal(1, st.operations.BeginTransaction)
      assert.equal(3, st.operations.RollbackTransaction) -- three tries whatever AWS_MAX_ATTEMPTS says
      assert.equal(0, users_named("never"))
      local clock = require "alex.clock"
      local deadline = clock.monotonic() + 10 -- the service ends it when it expires
      while s:stats().open_transactions > 0 and clock.monotonic() < deadline do clock.sleep(0.1) end
      assert.equal(0, s:stats().open_transactions)
    end)
  end)

  describe("values that look like SQL", function()
    it("are stored verbatim where they are data, through every model", function()
      local tables = ops.tables(s)
      for i, v in ipairs(INJ) do
        local u = m.users:create { clerk_user_id = v, display_name = v }
        assert.equal(v, u.clerk_user_id)
        assert.equal(v, m.users:find(v).display_name)
        assert.equal(v, m.users:upsert { clerk_user_id = v, display_name = v .. v }.display_name:sub(1, #v))
        assert.equal(v, m.users:update(v, { display_name = v }).display_name)
        local acct = m.accounts:create { clerk_user_id = v, account_name = v, account_purpose = v }
        assert.same({ v, v, v }, { acct.clerk_user_id, acct.account_name, acct.account_purpose })
        assert.equal(v, m.accounts:update(acct.id, { account_name = v .. "!" }).account_name:sub(1, #v))
        local inst = m.instruments:create(with(INSTRUMENT, { symbol = "INJ" .. i, name = v }))
        assert.equal(v, inst.name)
        assert.equal(v, m.instruments:upsert(with(INSTRUMENT, { symbol = "INJ" .. i, name = v })).name)
        assert.equal(1, #m.accounts:for_user(v))
        local job = m.jobs:create { clerk_user_id = v, job_type = "instrument_research",
                                    request_payload = { q = v, [v] = v } }
        assert.same({ q = v, [v] = v }, job.request_payload)
        assert.same({ q = v }, m.jobs:update(job.id, { report_payload = { q = v } }).report_payload)
        assert.equal(v, m.jobs:fail(job.id, v).error_message)
        assert.equal(1, #m.jobs:for_user(v, "failed"))
        assert.equal(0, #m.jobs:for_user(v, v))
      end
      assert.equal(tables, ops.tables(s))
      assert.equal(2, ops.count(s, "users"))
      assert.equal(2, ops.count(s, "accounts"))
      assert.equal(24, ops.count(s, "instruments"))
      -- a key that matches nothing finds, updates and deletes nothing
      make_user()
      local before = ops.fingerprint(s)
      for _, v in ipairs { "user_good' OR '1'='1", "user_good'; DELETE FROM users; --" } do
        assert.is_nil(m.users:find(v))
        assert.is_false(m.users:delete(v))
        assert.is_nil(m.instruments:find(v))
        assert.is_false(m.instruments:delete(v))
        assert.equal(0, #m.accounts:for_user(v))
        assert.equal(0, #m.jobs:for_user(v))
        local ok, err = pcall(m.users.update, m.users, v, { display_name = "x" })
        assert.is_false(ok)
        assert.equal("NotFound", err.name)
      end
      assert.equal(before, ops.fingerprint(s))
    end)

    it("are refused as ids (uuid) and symbols without running anything", function()
      make_user()
      local before = ops.fingerprint(s)
      for _, v in ipairs(INJ) do
        for _, call in ipairs {
          function() return m.accounts:find(v) end,
          function() return m.accounts:delete(v) end,
          function() return m.accounts:update(v, { account_name = "x" }) end,
          function() return m.accounts:portfolio_value(v) end,
          function() return m.positions:find(v) end,
          function() return m.positions:for_account(v) end,
          function() return m.positions:delete(v) end,
          function() return m.jobs:find(v) end,
          function() return m.jobs:start(v) end,
          function() return m.jobs:update(v, { error_message = "x" }) end,
          function() return m.jobs:delete(v) end,
        } do
          local ok, err = pcall(call)
          assert.is_false(ok)
          assert.equal("22P02", err.sqlstate, tostring(err)) -- invalid input syntax for type uuid
        end
        local ok, err = pcall(m.instruments.update_price, m.instruments, v, "1")
        assert.is_false(ok)
        assert.equal("NotFound", err.name)
        refused(function() return m.positions:upsert { account_id = v, symbol = "SPY", quantity = 1 } end,
          { { "account_id", "not a UUID" } })
        refused(function() return m.jobs:create { clerk_user_id = "user_good", job_type = v } end,
          { { "job_type", "must be one of" } })
      end
      assert.equal(before, ops.fingerprint(s))
    end)
  end)
end)
