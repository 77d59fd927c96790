-- luacheck: std +busted
-- The seed files: 22 instruments and the test user, valid through alex.records.
local records = require "alex.records"
local json = require "alex.json"

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local root = here .. "/.."

local function load(name)
  local f = assert(io.open(root .. "/seed/" .. name, "rb"))
  local text = f:read("a")
  f:close()
  local v, err = json.decode(text)
  assert(v, name .. ": " .. tostring(err))
  return v
end

local SYMBOLS = { "SPY", "QQQ", "IWM", "VEA", "VWO", "EFA", "AGG", "BND", "TLT", "HYG", "XLK", "XLV", "XLF", "XLE",
  "VNQ", "GLD", "SLV", "AOR", "AOA", "VUG", "VTV", "VIG" }

describe("seed/instruments.json", function()
  local list = load("instruments.json")

  it("holds the 22 ETFs, each once, in the documented order", function()
    assert.equal(22, #list)
    for i, sym in ipairs(SYMBOLS) do assert.equal(sym, list[i].symbol) end
  end)

  it("is valid as a whole, as reset.lua and seed.lua check it", function()
    local clean, msg = require("alex.models").check_instruments(list)
    assert(clean, msg)
    assert.equal(22, #clean)
  end)

  it("is valid as InstrumentSeed: price and all three allocations", function()
    local problems = {}
    for i, rec in ipairs(list) do
      local clean, errs = records.check("InstrumentSeed", rec)
      if not clean then problems[#problems + 1] = records.format_errors(errs, rec.symbol or ("#" .. i)) end
    end
    assert.same({}, problems)
  end)

  it("has allocations summing to exactly 100 and plausible prices", function()
    for _, rec in ipairs(list) do
      assert.equal("etf", rec.instrument_type)
      assert.is_true(rec.current_price > 1 and rec.current_price < 2000, rec.symbol)
      for _, field in ipairs { "allocation_regions", "allocation_sectors", "allocation_asset_class" } do
        local sum = 0
        for _, v in pairs(rec[field]) do sum = sum + v end
        assert.equal(100, sum, rec.symbol .. " " .. field)
      end
    end
  end)

  it("classifies the funds sensibly", function()
    local by = {}
    for _, rec in ipairs(list) do by[rec.symbol] = rec end
    for _, bond in ipairs { "AGG", "BND", "TLT", "HYG" } do
      assert.same({ fixed_income = 100 }, by[bond].allocation_asset_class)
    end
    assert.same({ treasury = 100 }, by.TLT.allocation_sectors)
    assert.same({ commodities = 100 }, by.GLD.allocation_asset_class)
    assert.same({ real_estate = 100 }, by.VNQ.allocation_asset_class)
    assert.same({ equity = 60, fixed_income = 40 }, by.AOR.allocation_asset_class)
    assert.same({ equity = 80, fixed_income = 20 }, by.AOA.allocation_asset_class)
    assert.same({ north_america = 100 }, by.SPY.allocation_regions)
    assert.is_nil(by.VWO.allocation_regions.north_america)
  end)
end)

describe("seed/test_user.json", function()
  local data = load("test_user.json")

  it("is valid as UserSeed", function()
    local clean, errs = records.check("UserSeed", data)
    assert(clean, errs and records.format_errors(errs, "test_user.json"))
    assert.equal("100000", clean.user.target_retirement_income)
    assert.equal("100", clean.accounts[1].positions[1].quantity)
  end)

  it("passes every rule reset.lua applies: account names unique, positions on seeded instruments", function()
    local models = require "alex.models"
    local symbols = {}
    for _, rec in ipairs(assert(models.check_instruments(load("instruments.json")))) do symbols[rec.symbol] = true end
    local clean, msg = models.check_test_data(data, symbols, "instruments.json")
    assert(clean, msg)
    -- the same rules catch a copy with a second "401(k)" or a symbol the seed lacks
    local copy = load("test_user.json")
    copy.accounts[3].account_name = "401(k)"
    copy.accounts[2].positions = { { symbol = "ZZZZ", quantity = 1 } }
    local none, _, errs = models.check_test_data(copy, symbols, "instruments.json")
    assert.is_nil(none)
    assert.same({
      { field = "accounts[2].positions[1].symbol", message = '"ZZZZ" is not one of the instruments seeded'
        .. " (instruments.json)" },
      { field = "accounts[3].account_name", message = '"401(k)" is also the account_name of accounts[1]' },
    }, errs)
  end)

  it("is the documented test user with three accounts", function()
    assert.equal("test_user_001", data.user.clerk_user_id)
    assert.equal("Test User", data.user.display_name)
    assert.equal(25, data.user.years_until_retirement)
    assert.equal(100000, data.user.target_retirement_income)
    local names = {}
    for i, a in ipairs(data.accounts) do
      names[i] = a.account_name
      assert.is_string(a.account_purpose)
      assert.is_number(a.cash_balance)
      assert.is_number(a.cash_interest)
    end
    assert.same({ "401(k)", "Roth IRA", "Taxable Brokerage" }, names)
  end)

  it("holds the five 401(k) positions, on seeded instruments", function()
    local held = {}
    for _, p in ipairs(data.accounts[1].positions) do held[p.symbol] = p.quantity end
    assert.same({ SPY = 100, QQQ = 50, BND = 200, VEA = 150, GLD = 25 }, held)
    local seeded = {}
    for _, rec in ipairs(load("instruments.json")) do seeded[rec.symbol] = true end
    for _, a in ipairs(data.accounts) do
      for _, p in ipairs(a.positions or {}) do assert.is_true(seeded[p.symbol], p.symbol) end
    end
  end)

  it("passes the per-table schemas once the ids are filled in", function()
    local uid = data.user.clerk_user_id
    assert(records.check("UserCreate", data.user))
    for _, a in ipairs(data.accounts) do
      local acc = { clerk_user_id = uid }
      for k, v in pairs(a) do if k ~= "positions" then acc[k] = v end end
      assert(records.check("AccountCreate", acc))
      for _, p in ipairs(a.positions or {}) do
        assert(records.check("PositionCreate", { account_id = "00000000-0000-4000-8000-000000000000",
          symbol = p.symbol, quantity = p.quantity }))
      end
    end
  end)
end)
