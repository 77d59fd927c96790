-- alex.validate: allocation rules (C binding, bindings/validate_core.c) and the named sets.
local validate = require "alex.validate"

local function fails(map, kind)
  local ok, err = validate.allocation(map, kind)
  assert.is_nil(ok)
  assert.is_string(err)
  return err
end

local function has(haystack, needle)
  assert(haystack:find(needle, 1, true), ("expected %q in %q"):format(needle, haystack))
end

describe("alex.validate sets", function()
  it("exposes the four sets as arrays in their documented order", function()
    assert.same({ "north_america", "europe", "asia", "latin_america", "africa", "middle_east",
                  "oceania", "global", "international" }, validate.REGIONS)
    assert.same({ "technology", "healthcare", "financials", "consumer_discretionary",
                  "consumer_staples", "industrials", "energy", "materials", "utilities",
                  "real_estate", "communication", "treasury", "corporate", "mortgage",
                  "government_related", "commodities", "diversified", "other" }, validate.SECTORS)
    assert.same({ "equity", "fixed_income", "real_estate", "commodities", "cash", "alternatives" },
                validate.ASSET_CLASSES)
    assert.same({ "etf", "mutual_fund", "stock", "bond", "bond_fund", "commodity", "reit" },
                validate.INSTRUMENT_TYPES)
  end)

  it("is_member answers for every member of every set and rejects the rest", function()
    local sets = { regions = validate.REGIONS, sectors = validate.SECTORS,
                   asset_classes = validate.ASSET_CLASSES, instrument_types = validate.INSTRUMENT_TYPES }
    for name, members in pairs(sets) do
      for _, m in ipairs(members) do assert.is_true(validate.is_member(name, m), name .. " " .. m) end
      assert.is_false(validate.is_member(name, "mars"))
      assert.is_false(validate.is_member(name, members[1] .. "\0"))
      assert.is_false(validate.is_member(name, members[1]:upper()))
      assert.is_false(validate.is_member(name, 1))
      assert.is_false(validate.is_member(name, nil))
    end
    assert.is_true(validate.is_member("asset_class", "cash"))
    assert.is_false(validate.is_member("regions", "cash"))
  end)

  it("is_member raises on an unknown set name (programming error)", function()
    assert.has_error(function() validate.is_member("planets", "mars") end, "bad argument #1 to 'is_member' "
      .. "(unknown set 'planets' (expected 'regions', 'sectors', 'asset_classes' or 'instrument_types'))")
    assert.has_error(function() validate.is_member(nil, "mars") end,
      "bad argument #1 to 'is_member' (string expected, got nil)")
  end)

  it("editing the exposed arrays changes nothing in the checks", function()
    local saved = validate.REGIONS[1]
    validate.REGIONS[1] = "mars"
    assert.is_true(validate.allocation({ north_america = 100 }, "regions"))
    assert.is_nil((validate.allocation({ mars = 100 }, "regions")))
    validate.REGIONS[1] = saved
  end)
end)

describe("alex.validate.allocation", function()
  it("accepts a valid map of every kind, integers and floats", function()
    assert.is_true(validate.allocation({ north_america = 60, europe = 25.5, asia = 14.5 }, "regions"))
    assert.is_true(validate.allocation({ technology = 33.33, healthcare = 33.33, other = 33.34 }, "sectors"))
    assert.is_true(validate.allocation({ equity = 100 }, "asset_class"))
    assert.is_true(validate.allocation({ equity = 100.0, cash = 0 }, "asset_class"))
  end)

  it("accepts every member of the kind's set as a key", function()
    for kind, members in pairs({ regions = validate.REGIONS, sectors = validate.SECTORS,
                                 asset_class = validate.ASSET_CLASSES }) do
      local map, each = {}, 100 / #members
      for _, m in ipairs(members) do map[m] = each end
      assert.is_true(validate.allocation(map, kind))
    end
  end)

  describe("sum to 100 within 0.05", function()
    it("passes at 99.95 and 100.05", function()
      assert.is_true(validate.allocation({ europe = 50, asia = 49.95 }, "regions"))
      assert.is_true(validate.allocation({ europe = 50, asia = 50.05 }, "regions"))
      -- decimal inputs whose binary sum lands a hair outside 0.05
      assert.is_true(validate.allocation({ europe = 50.02, asia = 49.93 }, "regions"))
      assert.is_true(validate.allocation({ europe = 33.35, asia = 33.35, oceania = 33.35 }, "regions"))
    end)

    it("fails at 99.94 and 100.06", function()
      local err = fails({ europe = 50, asia = 49.94 }, "regions")
      assert.equal("regions: values sum to 99.94, not 100 (\u{b1}0.05)", err)
      err = fails({ europe = 50, asia = 50.06 }, "regions")
      assert.equal("regions: values sum to 100.06, not 100 (\u{b1}0.05)", err)
    end)

    it("adds in key order, so the message does not depend on insertion order", function()
      local a = fails({ europe = 0.1, asia = 0.2, oceania = 0.3 }, "regions")
      local b = fails({ oceania = 0.3, asia = 0.2, europe = 0.1 }, "regions")
      assert.equal(a, b)
      has(a, "values sum to 0.6, not 100")
    end)
  end)

  describe("values", function()
    it("rejects a negative value", function()
      has(fails({ europe = -5, asia = 105 }, "regions"), 'value of "europe" is -5, not in [0, 100]')
    end)

    it("rejects a value above 100 even when the sum is 100", function()
      local err = fails({ europe = 100.5, asia = -0.5 }, "regions")
      assert.equal('regions: value of "asia" is -0.5, not in [0, 100]; '
                   .. 'value of "europe" is 100.5, not in [0, 100]', err)
    end)

    it("accepts the bounds 0 and 100", function()
      assert.is_true(validate.allocation({ europe = 0, asia = 100 }, "regions"))
    end)

    it("rejects NaN (0/0) and skips the sum check", function()
      local err = fails({ europe = 0 / 0, asia = 100 }, "regions")
      assert.equal('regions: value of "europe" is nan, not a finite number', err)
    end)

    it("rejects inf and -inf", function()
      has(fails({ europe = math.huge }, "regions"), 'value of "europe" is inf, not a finite number')
      has(fails({ europe = -math.huge, asia = 100 }, "regions"), 'value of "europe" is -inf, not a finite number')
    end)

    it("rejects a string value even when it looks like a number", function()
      local err = fails({ europe = "50", asia = 50 }, "regions")
      assert.equal('regions: value of "europe" is a string ("50"), not a number', err)
    end)

    it("rejects booleans and tables as values", function()
      local err = fails({ europe = true, asia = {} }, "regions")
      assert.equal('regions: value of "asia" is a table, not a number; value of "europe" is true, not a number', err)
    end)
  end)

  describe("keys", function()
    it("rejects an unknown key and names its value", function()
      local err = fails({ europe = 90, mars = 10 }, "regions")
      assert.equal('regions: unknown key "mars" (value 10)', err)
    end)

    it("checks keys against the kind's own set", function()
      -- "technology" is a sector, not a region; "real_estate" is both a sector and an asset class
      has(fails({ technology = 100 }, "regions"), 'unknown key "technology"')
      has(fails({ europe = 100 }, "sectors"), 'unknown key "europe"')
      has(fails({ technology = 100 }, "asset_class"), 'unknown key "technology"')
      assert.is_true(validate.allocation({ real_estate = 100 }, "sectors"))
      assert.is_true(validate.allocation({ real_estate = 100 }, "asset_class"))
    end)

    it("rejects non-string keys", function()
      local err = fails({ [1] = 50, europe = 50 }, "regions")
      assert.equal("regions: key [1] is not a string (value 50)", err)
      err = fails({ [true] = 50, [2.5] = 50 }, "regions")
      assert.equal("regions: key [2.5] is not a string (value 50); key [true] is not a string (value 50)", err)
      -- an array is a table too, but of the wrong shape
      has(fails({ 100 }, "sectors"), "key [1] is not a string (value 100)")
    end)

    it("escapes and shortens odd keys in the message", function()
      local err = fails({ ['ma"rs\n'] = 10, europe = 90 }, "regions")
      has(err, [[unknown key "ma\"rs\n" (value 10)]])
      err = fails({ [("x"):rep(200)] = 100 }, "regions")
      has(err, 'unknown key "' .. ("x"):rep(60) .. '..." (value 100)')
    end)
  end)

  describe("the map", function()
    it("rejects an empty table", function()
      assert.equal("regions: empty table, expected percentages summing to 100", fails({}, "regions"))
    end)

    it("returns nil and a message for a non-table map (data problem)", function()
      assert.equal("sectors: expected a table of percentages, got string", fails("x", "sectors"))
      assert.equal("asset_class: expected a table of percentages, got nil", fails(nil, "asset_class"))
      assert.equal("regions: expected a table of percentages, got number", fails(100, "regions"))
    end)

    it("reads the table raw, ignoring metatables", function()
      local proxy = setmetatable({}, { __index = { europe = 100 }, __pairs = function() error("not used") end })
      has(fails(proxy, "regions"), "empty table")
    end)
  end)

  it("raises a Lua error for an unknown kind (programming error)", function()
    local ok, err = pcall(validate.allocation, { europe = 100 }, "planets")
    assert.is_false(ok)
    has(err, "bad argument #2 to ")
    has(err, "(unknown allocation kind 'planets' (expected 'regions', 'sectors' or 'asset_class'))")
    assert.has_error(function() validate.allocation({ europe = 100 }) end,
      "bad argument #2 to 'allocation' (string expected, got no value)")
    assert.has_error(function() validate.allocation("not a table", "asset_classes") end, "bad argument #2 to "
      .. "'allocation' (unknown allocation kind 'asset_classes' (expected 'regions', 'sectors' or 'asset_class'))")
  end)

  it("reports every problem together, keys sorted, the sum last", function()
    local map = { north_america = 90, europe = -5, mars = 10, asia = "7", [3] = 1 }
    local err = fails(map, "regions")
    -- the string value stops the sum check; drop it to see the sum reported as well
    assert.equal('regions: value of "asia" is a string ("7"), not a number; '
                 .. 'value of "europe" is -5, not in [0, 100]; '
                 .. 'unknown key "mars" (value 10); '
                 .. 'key [3] is not a string (value 1)', err)
    map.asia = nil
    map[3] = nil
    err = fails(map, "regions")
    assert.equal('regions: value of "europe" is -5, not in [0, 100]; unknown key "mars" (value 10); '
                 .. 'values sum to 95, not 100 (\u{b1}0.05)', err)
  end)

  it("gives the same message for the same map built in any order", function()
    local keys = { "europe", "asia", "mars", "venus", "oceania", "africa" }
    local first
    for round = 1, 20 do
      local map = {}
      for i = 1, #keys do
        local k = keys[(i + round) % #keys + 1]
        map[k] = k == "europe" and -1 or 7.3
      end
      local err = fails(map, "regions")
      first = first or err
      assert.equal(first, err)
    end
  end)

  it("handles a large map", function()
    local map = {}
    for i = 1, 5000 do map["k" .. i] = 0.02 end
    local err = fails(map, "regions")
    has(err, 'unknown key "k1" (value 0.02); unknown key "k10" (value 0.02)')
    -- every key is unknown, but 5000 x 0.02 sums to 100 within the tolerance
    assert.is_nil(err:find("values sum", 1, true))
    local _, count = err:gsub("unknown key", "")
    assert.equal(5000, count)
  end)
end)
