-- luacheck: std +busted
-- alex.records: the schema language and the planner's record schemas, on the
-- real alex.validate binding.
local records = require "alex.records"
local validate = require "alex.validate"
local json = require "alex.json"

local UUID = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"

local function ok(schema, rec)
  local clean, errs = records.check(schema, rec)
  assert(clean, errs and records.format_errors(errs, schema))
  return clean
end

-- The errors as a { path = message } map (one message per path expected).
local function fail(schema, rec)
  local clean, errs = records.check(schema, rec)
  assert.is_nil(clean)
  assert.is_table(errs)
  assert.is_true(#errs > 0)
  local by = {}
  for _, e in ipairs(errs) do
    assert.is_string(e.field)
    assert.is_string(e.message)
    assert.is_nil(by[e.field], "two errors for " .. e.field)
    by[e.field] = e.message
  end
  return by, errs
end

local keys = require("servers").sorted_keys

local function instrument(over)
  local r = { symbol = "SPY", name = "SPDR S&P 500 ETF Trust", instrument_type = "etf", current_price = 590.25,
    allocation_regions = { north_america = 100 }, allocation_sectors = { technology = 60, financials = 40 },
    allocation_asset_class = { equity = 100 } }
  for k, v in pairs(over or {}) do r[k] = v end
  return r
end

describe("records.decimal", function()
  it("writes numbers and decimal strings as exact canonical decimals", function()
    local cases = {
      { 100, "100" }, { 0.1, "0.1" }, { 0.045, "0.045" }, { 590.25, "590.25" }, { 100.0, "100" },
      { -2.5, "-2.5" }, { 1e20, "100000000000000000000" }, { 1.5e-7, "0.00000015" }, { 0, "0" },
      { -0.0, "0" }, { 123456789012345, "123456789012345" }, { math.maxinteger, "9223372036854775807" },
      { "100", "100" }, { "007.50", "7.5" }, { ".5", "0.5" }, { "5.", "5" }, { "+3", "3" },
      { "-0.000", "0" }, { "590.2500", "590.25" }, { "0.00000001", "0.00000001" },
      { "12345678901234567890.123", "12345678901234567890.123" },
    }
    for _, c in ipairs(cases) do
      assert.equal(c[2], records.decimal(c[1]), "for " .. tostring(c[1]))
    end
  end)

  it("refuses floats that need more than 15 digits, exponents, junk", function()
    local cases = {
      { 0.1 + 0.2, "more than 15 significant digits" }, { 2 ^ 53, "more than 15 significant digits" },
      { 0 / 0, "finite" }, { math.huge, "finite" },
      { "1e5", "exponent notation" }, { "1.5E-3", "exponent notation" },
      { "", "not a decimal" }, { ".", "not a decimal" }, { " 1", "not a decimal" }, { "1,5", "not a decimal" },
      { "0x10", "not a decimal" }, { "--1", "not a decimal" }, { true, "got boolean" }, { {}, "got table" },
    }
    for _, c in ipairs(cases) do
      local s, err = records.decimal(c[1])
      assert.is_nil(s, "for " .. tostring(c[1]))
      assert.matches(c[2], err, 1, true)
    end
  end)
end)

describe("records.check: InstrumentCreate", function()
  it("accepts a good instrument and cleans it", function()
    local c = ok("InstrumentCreate", instrument())
    assert.equal("590.25", c.current_price)
    assert.same({ north_america = 100 }, c.allocation_regions)
    assert.equal(json.object_mt, getmetatable(c.allocation_regions))
    assert.equal("integer", math.type(c.allocation_sectors.technology))
    assert.same({ "allocation_asset_class", "allocation_regions", "allocation_sectors", "current_price",
      "instrument_type", "name", "symbol" }, keys(c))
  end)

  it("leaves the absent price out; requires all three allocations, never empty, as verify.lua does", function()
    local c = ok("InstrumentCreate", instrument { current_price = json.null })
    assert.same({ "allocation_asset_class", "allocation_regions", "allocation_sectors", "instrument_type", "name",
      "symbol" }, keys(c))
    -- {} is the column's default, and verify.lua (validate.allocation) fails it
    assert.is_nil(validate.allocation({}, "regions"))
    local by = fail("InstrumentCreate", { symbol = "BRK.B", name = "Berkshire", instrument_type = "stock",
      allocation_regions = {}, allocation_sectors = setmetatable({}, json.object_mt) })
    assert.matches("must not be empty", by.allocation_regions)
    assert.matches("must not be empty", by.allocation_sectors)
    assert.equal("required field missing", by.allocation_asset_class)
    assert.is_nil(by.current_price)
  end)

  it("checks the symbol: 1-20 upper-case letters, digits, '.', '-'", function()
    for _, s in ipairs { "A", "BRK-B", "BRK.B", "X1", ("A"):rep(20) } do
      ok("InstrumentCreate", instrument { symbol = s })
    end
    assert.matches("length must be between 1 and 20", fail("InstrumentCreate", instrument { symbol = "" }).symbol)
    assert.matches("length must be between 1 and 20",
      fail("InstrumentCreate", instrument { symbol = ("A"):rep(21) }).symbol)
    for _, s in ipairs { "spy", "SP Y", "SP_Y", "SPY$" } do
      assert.matches("upper%-case letters", fail("InstrumentCreate", instrument { symbol = s }).symbol)
    end
    assert.matches("expected a string, got integer", fail("InstrumentCreate", instrument { symbol = 5 }).symbol)
  end)

  it("checks name length in characters, and UTF-8", function()
    ok("InstrumentCreate", instrument { name = ("é"):rep(255) }) -- 510 bytes, 255 characters
    assert.matches("got 256", fail("InstrumentCreate", instrument { name = ("é"):rep(256) }).name)
    assert.matches("length must be between 1 and 255", fail("InstrumentCreate", instrument { name = "" }).name)
    assert.matches("UTF%-8", fail("InstrumentCreate", instrument { name = "bad \xff byte" }).name)
  end)

  it("checks instrument_type against validate.INSTRUMENT_TYPES, with a hint", function()
    for _, t in ipairs(validate.INSTRUMENT_TYPES) do ok("InstrumentCreate", instrument { instrument_type = t }) end
    local msg = fail("InstrumentCreate", instrument { instrument_type = "ETF" }).instrument_type
    assert.matches('must be one of "etf"', msg, 1, true)
    assert.matches('did you mean "etf"?', msg, 1, true)
  end)

  it("checks current_price: number or decimal string, 0..999999, 4 places", function()
    assert.equal("0", ok("InstrumentCreate", instrument { current_price = 0 }).current_price)
    assert.equal("999999", ok("InstrumentCreate", instrument { current_price = "999999.0000" }).current_price)
    assert.equal("12.3456", ok("InstrumentCreate", instrument { current_price = "12.3456" }).current_price)
    local function msg(v) return fail("InstrumentCreate", instrument { current_price = v }).current_price end
    assert.matches("between 0 and 999999", msg(-1))
    assert.matches("between 0 and 999999", msg("1000000"))
    assert.matches("more than 4 decimal places", msg("1.23456"))
    assert.matches("exponent", msg("1e3"))
    assert.matches("expected a number or a decimal string, got boolean", msg(true))
  end)

  it("reports every allocation problem with its path, and the sum", function()
    local by = fail("InstrumentCreate", instrument {
      allocation_regions = { europa = 50, north_america = "40", asia = 120, [1] = 5, oceania = 0 / 0 },
      allocation_sectors = { technology = 60, financials = 30 },
      allocation_asset_class = "equity",
    })
    assert.matches('unknown region "europa" (did you mean "europe"?)', by["allocation_regions.europa"], 1, true)
    assert.matches("got string", by["allocation_regions.north_america"])
    assert.matches("between 0 and 100 %(got 120%)", by["allocation_regions.asia"])
    assert.matches("must be a region name", by["allocation_regions[1]"])
    assert.matches("finite", by["allocation_regions.oceania"])
    assert.is_nil(by["allocation_regions"]) -- no valid entry left to sum
    assert.matches("sum to 90, not 100", by["allocation_sectors"])
    assert.matches("expected a table of percentages, got string", by["allocation_asset_class"])
    assert.same({ "allocation_asset_class", "allocation_regions.asia", "allocation_regions.europa",
      "allocation_regions.north_america", "allocation_regions.oceania", "allocation_regions[1]",
      "allocation_sectors" }, keys(by))
  end)

  it("sums the valid entries too when some are bad", function()
    local by = fail("InstrumentCreate", instrument { allocation_sectors = { technology = 50, tech = 50 } })
    assert.matches("unknown sector", by["allocation_sectors.tech"])
    assert.matches("sum to 50, not 100 %(.*%) %(counting only the valid entries%)", by["allocation_sectors"])
  end)

  it("lets alex.validate decide the sum tolerance", function()
    ok("InstrumentCreate", instrument { allocation_regions = { north_america = 33.3, europe = 33.3, asia = 33.4 } })
    ok("InstrumentCreate", instrument { allocation_regions = { north_america = 99.96 } })
    assert.matches("sum to 99.9", fail("InstrumentCreate", instrument { allocation_regions = { europe = 99.9 } })
      ["allocation_regions"])
  end)

  it("lists the allowed keys when no close match exists, quoting odd keys in paths", function()
    local by = fail("InstrumentCreate", instrument { allocation_asset_class = { ["crypto coins"] = 100 } })
    local msg = by['allocation_asset_class["crypto coins"]']
    assert.matches('expected one of "equity", "fixed_income"', msg, 1, true)
  end)

  it("reports unknown fields (typos) with a hint, and missing required ones", function()
    local rec = instrument { nmae = "x", price = 1 }
    rec.name = nil
    local by, errs = fail("InstrumentCreate", rec)
    assert.equal('unknown field (did you mean "name"?)', by.nmae)
    assert.equal("unknown field", by.price)
    assert.equal("required field missing", by.name)
    -- schema order first, unknown fields last in sorted order
    assert.same({ "name", "nmae", "price" }, { errs[1].field, errs[2].field, errs[3].field })
    assert.equal("unknown field", fail("InstrumentCreate", instrument { [1] = true })["[1]"])
  end)

  it("treats JSON null as absent", function()
    local c = ok("InstrumentCreate", instrument { current_price = json.null })
    assert.is_nil(c.current_price)
    assert.equal("required field missing", fail("InstrumentCreate", instrument { name = json.null }).name)
  end)

  it("refuses a record that is not a table", function()
    local by = fail("InstrumentCreate", "SPY")
    assert.matches("expected a table", by[""])
  end)
end)

describe("records.check: InstrumentSeed", function()
  it("requires a price and all three allocations, non-empty", function()
    ok("InstrumentSeed", instrument())
    local by = fail("InstrumentSeed", { symbol = "X", name = "X", instrument_type = "etf",
      allocation_regions = {} })
    assert.equal("required field missing", by.current_price)
    assert.matches("must not be empty", by.allocation_regions)
    assert.equal("required field missing", by.allocation_sectors)
    assert.equal("required field missing", by.allocation_asset_class)
  end)
end)

describe("records.check: UserCreate", function()
  local function user(over)
    local r = { clerk_user_id = "user_1", display_name = "Test User", years_until_retirement = 25,
      target_retirement_income = 100000, asset_class_targets = { equity = 70, fixed_income = 30 },
      region_targets = { north_america = 50, international = 50 } }
    for k, v in pairs(over or {}) do r[k] = v end
    return r
  end

  it("accepts a good user; integers from JSON floats become integers", function()
    local c = ok("UserCreate", user { years_until_retirement = 25.0 })
    assert.equal(25, c.years_until_retirement)
    assert.equal("integer", math.type(c.years_until_retirement))
    assert.equal("100000", c.target_retirement_income)
    ok("UserCreate", { clerk_user_id = "u" })
  end)

  it("reports every problem at once", function()
    local by = fail("UserCreate", user {
      clerk_user_id = ("x"):rep(256), display_name = "", years_until_retirement = 25.5,
      target_retirement_income = -1, asset_class_targets = { equity = 70, bonds = 30 },
      region_targets = { north_america = 60, international = 50 },
    })
    assert.matches("between 1 and 255", by.clerk_user_id)
    assert.matches("between 1 and 255", by.display_name)
    assert.matches("expected an integer, got 25.5", by.years_until_retirement)
    assert.matches("at least 0", by.target_retirement_income)
    assert.matches('unknown asset class "bonds"', by["asset_class_targets.bonds"], 1, true)
    assert.matches("sum to 110", by.region_targets)
  end)

  it("checks years 0-100 and income places and size", function()
    ok("UserCreate", user { years_until_retirement = 0 })
    ok("UserCreate", user { years_until_retirement = 100 })
    local function years(v) return fail("UserCreate", user { years_until_retirement = v }).years_until_retirement end
    assert.matches("between 0 and 100", years(101))
    assert.matches("between 0 and 100", years(-1))
    assert.matches("got string", years("25"))
    assert.equal("1234567890.12", ok("UserCreate", user { target_retirement_income = "1234567890.12" })
      .target_retirement_income)
    assert.matches("more than 10 digits before",
      fail("UserCreate", user { target_retirement_income = "12345678901" }).target_retirement_income)
    assert.matches("more than 2 decimal places",
      fail("UserCreate", user { target_retirement_income = 0.125 }).target_retirement_income)
  end)

  it("does not accept empty targets (the DB default is not empty)", function()
    assert.matches("must not be empty", fail("UserCreate", user { region_targets = {} }).region_targets)
  end)
end)

describe("records.check: AccountCreate", function()
  it("accepts a good account, cash as exact decimals", function()
    local c = ok("AccountCreate", { clerk_user_id = "u", account_name = "401(k)", account_purpose = "retirement",
      cash_balance = 5000.5, cash_interest = 0.045 })
    assert.equal("5000.5", c.cash_balance)
    assert.equal("0.045", c.cash_interest)
  end)

  it("checks cash_balance >= 0 with 2 places, cash_interest 0..1 with 4", function()
    local by = fail("AccountCreate", { clerk_user_id = "u", account_name = "", account_purpose = 7,
      cash_balance = -0.01, cash_interest = 1.5 })
    assert.matches("between 1 and 255", by.account_name)
    assert.matches("expected a string", by.account_purpose)
    assert.matches("at least 0", by.cash_balance)
    assert.matches("between 0 and 1", by.cash_interest)
    by = fail("AccountCreate", { account_name = "a", cash_balance = "1.001", cash_interest = "0.00001" })
    assert.equal("required field missing", by.clerk_user_id)
    assert.matches("more than 2 decimal places", by.cash_balance)
    assert.matches("more than 4 decimal places", by.cash_interest)
    assert.equal("1", ok("AccountCreate", { clerk_user_id = "u", account_name = "a", cash_interest = 1 }).cash_interest)
  end)
end)

describe("records.check: PositionCreate", function()
  local function pos(q, over)
    local r = { account_id = UUID, symbol = "SPY", quantity = q }
    for k, v in pairs(over or {}) do r[k] = v end
    return r
  end

  it("keeps quantities exact: numbers and decimal strings", function()
    assert.equal("100", ok("PositionCreate", pos(100)).quantity)
    assert.equal("0.1", ok("PositionCreate", pos(0.1)).quantity)
    assert.equal("0.00000001", ok("PositionCreate", pos("0.00000001")).quantity)
    assert.equal("123456789012.12345678", ok("PositionCreate", pos("123456789012.12345678")).quantity)
    assert.equal("12.5", ok("PositionCreate", pos("12.50000000")).quantity) -- as the database returns it
  end)

  it("refuses zero, negative, too precise, exponent and too large quantities", function()
    local function msg(q) return fail("PositionCreate", pos(q)).quantity end
    assert.matches("greater than 0", msg(0))
    assert.matches("greater than 0", msg("-5"))
    assert.matches("more than 8 decimal places", msg("0.000000001"))
    assert.matches("more than 15 significant digits", msg(0.1 + 0.2))
    assert.matches("exponent notation", msg("1e5"))
    assert.matches("more than 12 digits before", msg("1234567890123"))
    assert.equal("required field missing", fail("PositionCreate", pos(nil)).quantity)
  end)

  it("checks account_id is a UUID (lower-cased) and as_of_date a real date", function()
    assert.equal(UUID, ok("PositionCreate", pos(1, { account_id = UUID:upper() })).account_id)
    assert.equal("2024-02-29", ok("PositionCreate", pos(1, { as_of_date = "2024-02-29" })).as_of_date)
    local by = fail("PositionCreate",
      pos(1, { account_id = "not-a-uuid", as_of_date = "2023-02-29", symbol = "spy" }))
    assert.matches("is not a UUID", by.account_id)
    assert.matches("not a valid date", by.as_of_date)
    assert.matches("upper%-case", by.symbol)
    for _, d in ipairs { "2024-13-01", "2024-00-10", "2024-04-31", "24-01-01", "2024-1-1" } do
      assert.matches("not a valid date", fail("PositionCreate", pos(1, { as_of_date = d })).as_of_date)
    end
  end)
end)

describe("records.check: JobCreate and JobUpdate", function()
  it("checks job_type against the six job types", function()
    for _, t in ipairs(records.JOB_TYPES) do ok("JobCreate", { clerk_user_id = "u", job_type = t }) end
    assert.equal(6, #records.JOB_TYPES)
    local by = fail("JobCreate", { clerk_user_id = "u", job_type = "portfolio_analyis", request_payload = "x" })
    assert.matches('did you mean "portfolio_analysis"?', by.job_type, 1, true)
    assert.matches("expected a table", by.request_payload)
  end)

  it("keeps a request payload that JSON can hold", function()
    local payload = { options = { include = { "SPY", "QQQ" } }, n = 1, flag = true, none = json.null }
    local c = ok("JobCreate", { clerk_user_id = "u", job_type = "portfolio_analysis", request_payload = payload })
    assert.equal(payload, c.request_payload)
  end)

  it("reports every payload problem with its path", function()
    local by = fail("JobCreate", { clerk_user_id = "u", job_type = "risk_assessment",
      request_payload = { f = print, nested = { { x = 0 / 0 } }, mixed = { 1, 2, k = 3 }, [true] = 1 } })
    assert.matches("cannot be stored as JSON %(function%)", by["request_payload.f"])
    assert.matches("finite", by["request_payload.nested[1].x"])
    assert.matches("mixes array items and object keys", by["request_payload.mixed"])
    assert.matches("keys must be strings", by["request_payload[true]"])
  end)

  it("checks status and payload types of an update; an empty update is refused", function()
    for _, s in ipairs(records.JOB_STATUSES) do ok("JobUpdate", { status = s }) end
    ok("JobUpdate", { report_payload = { markdown = "# Report" }, error_message = "none" })
    local by = fail("JobUpdate", { status = "done", summary_payload = "text", error_message = 42, job_type = "x" })
    assert.matches('must be one of "pending", "running", "completed", "failed"', by.status, 1, true)
    assert.matches("expected a table", by.summary_payload)
    assert.matches("expected a string", by.error_message)
    assert.equal("unknown field", by.job_type)
    assert.matches("at least one of status,", fail("JobUpdate", {})[""])
  end)
end)

describe("records.check: UserSeed (nested records and arrays)", function()
  it("reports problems deep inside with full paths", function()
    local by = fail("UserSeed", {
      user = { clerk_user_id = "u", years_until_retirement = -3 },
      accounts = {
        { account_name = "a", positions = { { symbol = "SPY", quantity = 1 }, { symbol = "SPY", quantity = 2 } } },
        { account_name = "b", clerk_user_id = "u", positions = { { symbol = "qqq", quantity = 0 } } },
        "oops",
      },
    })
    assert.matches("between 0 and 100", by["user.years_until_retirement"])
    assert.equal('"SPY" is also the symbol of accounts[1].positions[1]', by["accounts[1].positions[2].symbol"])
    assert.equal("unknown field", by["accounts[2].clerk_user_id"])
    assert.matches("upper%-case", by["accounts[2].positions[1].symbol"])
    assert.matches("greater than 0", by["accounts[2].positions[1].quantity"])
    assert.matches("expected a table", by["accounts[3]"])
    assert.equal("required field missing", fail("UserSeed", {}).user)
  end)

  it("wants account names unique, positions' symbols unique per account, even in records with other problems",
    function()
      local by = fail("UserSeed", {
        user = { clerk_user_id = "u" },
        accounts = {
          { account_name = "IRA", positions = { { symbol = "SPY", quantity = 1 } } },
          { account_name = "Roth", positions = { { symbol = "SPY", quantity = 1 } } }, -- another account: fine
          { account_name = "IRA", cash_balance = -1, positions = {
            { symbol = "GLD", quantity = 1 }, { symbol = "GLD", quantity = 0 }, { symbol = "GLD", quantity = 2 } } },
        },
      })
      assert.equal('"IRA" is also the account_name of accounts[1]', by["accounts[3].account_name"])
      assert.matches("at least 0", by["accounts[3].cash_balance"])
      assert.equal('"GLD" is also the symbol of accounts[3].positions[1]', by["accounts[3].positions[2].symbol"])
      assert.equal('"GLD" is also the symbol of accounts[3].positions[1]', by["accounts[3].positions[3].symbol"])
      assert.matches("greater than 0", by["accounts[3].positions[2].quantity"])
      assert.is_nil(by["accounts[2].positions[1].symbol"])
      assert.is_nil(by["accounts[2].account_name"])
    end)

  it("refuses NUL characters in strings and JSON payloads (PostgreSQL cannot store them)", function()
    local by = fail("UserSeed", { user = { clerk_user_id = "u\0v", display_name = "ok" },
      accounts = { { account_name = "a\0" } } })
    assert.matches("NUL character", by["user.clerk_user_id"])
    assert.matches("NUL character", by["accounts[1].account_name"])
    by = fail("JobCreate", { clerk_user_id = "u", job_type = "risk_assessment",
      request_payload = { note = "x\0y", list = { "a", "\0" }, ["k\0"] = 1 } })
    assert.matches("jsonb cannot store", by["request_payload.note"])
    assert.matches("jsonb cannot store", by["request_payload.list[2]"])
    assert.matches("key contains a NUL", by['request_payload["k\\0"]'])
  end)

  it("refuses holes and odd keys in arrays", function()
    local by = fail("UserSeed", { user = { clerk_user_id = "u" }, accounts = { [1] = { account_name = "a" }, x = 1 } })
    assert.matches("unexpected key in an array", by["accounts.x"])
  end)
end)

describe("records.format_errors", function()
  it("joins every error into one readable line, with a prefix", function()
    local _, errs = records.check("PositionCreate", { account_id = "x", quantity = -1 })
    assert.equal("position: account_id: is not a UUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx); "
      .. "symbol: required field missing; quantity: must be greater than 0", records.format_errors(errs, "position"))
    assert.equal("a: b", records.format_errors({ { field = "a", message = "b" } }))
    assert.equal("bad", records.format_errors({ { field = "", message = "bad" } }))
  end)
end)

describe("records.define and records.extend", function()
  it("builds schemas with custom checks, defaults, between and one_of", function()
    local s = records.define {
      fields = {
        { even = { type = "integer", custom_check = function(v)
          if v % 2 == 0 then return true end
          return nil, "must be even"
        end } },
        { ratio = { type = "number", between = { 0, 1 } } },
        { color = { type = "string", one_of = { "red", "green" }, default = "red" } },
        { tags = { type = "array", elements = { type = "string", len_max = 3 }, len_max = 2 } },
        { flag = { type = "boolean" } },
      },
    }
    local c = ok(s, { even = 4, ratio = 0.5, tags = { "a" }, flag = false })
    assert.equal("red", c.color)
    assert.same({ "a" }, c.tags)
    assert.is_false(c.flag)
    local by = fail(s, { even = 3, ratio = 2, color = "blue", tags = { "abcd", "b", "c" }, flag = "no" })
    assert.equal("must be even", by.even)
    assert.matches("between 0 and 1", by.ratio)
    assert.matches("must be one of", by.color)
    assert.matches("at most 2 elements", by.tags)
    assert.matches("at most 3 characters", by["tags[1]"])
    assert.matches("expected a boolean", by.flag)
  end)

  it("raises on bad definitions and unknown schema names (programming errors)", function()
    assert.has_error(function() records.define { fields = { { x = { type = "strnig" } } } } end,
      'records: field x: unknown type "strnig"')
    assert.has_error(function() records.define { fields = { { x = { type = "string", lenght = 3 } } } } end,
      'records: field x: unknown attribute "lenght"')
    assert.has_error(function() records.define { fields = { { x = { type = "allocation", kind = "planets" } } } } end,
      "records: field x: allocation kind must be regions, sectors or asset_class")
    assert.has_error(function() records.define { fields = { { x = {}, y = {} } } } end,
      "records.define: fields[1] must be a table with exactly one field name")
    assert.has_error(function() records.check("NoSuchSchema", {}) end, 'records: unknown schema "NoSuchSchema"')
    assert.has_error(function() records.extend("UserCreate", { remove = { "nope" } }) end,
      "records.extend: no field nope to remove")
  end)

  it("extends a schema: remove, override, add", function()
    local s = records.extend("AccountCreate", { remove = { "clerk_user_id" },
      fields = { { cash_balance = { required = true } }, { note = { type = "string" } } } })
    ok(s, { account_name = "a", cash_balance = 1, note = "n" })
    local by = fail(s, { account_name = "a", clerk_user_id = "u" })
    assert.equal("required field missing", by.cash_balance)
    assert.equal("unknown field", by.clerk_user_id)
    -- the base is unchanged
    ok("AccountCreate", { clerk_user_id = "u", account_name = "a" })
  end)
end)
