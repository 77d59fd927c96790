-- The fixes in scripts/fixes/, tested the way the README's "Testing a fix"
-- shows: a fresh database of one's own (alex.testing), each case in a
-- sandbox that is rolled back, and the fix's changes asserted as its dry run
-- would show them (alex.fix.try).
local testing = require "alex.testing"
local fix = require "alex.fix"
local stack = require "stack"

describe("scripts/fixes", function()
  local s, db

  -- a private stack, so that the specs never meet a developer's; a user's
  -- spec calls testing.database() with no argument (the project's stack)
  stack.shared({}, function(started)
    s = started
    db = testing.database { settings = s.env }
    return function() testing.drop(db) end
  end)

  local function price(tx, symbol)
    return tx:query_one("SELECT current_price FROM instruments WHERE symbol = :s", { s = symbol }).current_price
  end

  describe("reprice", function()
    local reprice = fix.load("scripts/fixes/reprice.lua")

    it("changes one instrument's price, and nothing else", function()
      testing.sandbox(db, function(tx)
        local changes = fix.try(tx, reprice, { symbol = "SPY", price = "601.15" })
        assert.equal(1, #changes)
        local c = changes[1]
        assert.equal("instruments", c.table)
        assert.equal("update", c.operation)
        assert.same({ symbol = "SPY" }, c.key)
        assert.same({ "current_price", "updated_at" }, c.columns)
        assert.equal("601.1500", price(tx, "SPY"))
      end)
      assert.equal("590.2500", price(db, "SPY")) -- the sandbox rolled it back
    end)

    it("refuses a price the model refuses, and an unknown symbol", function()
      testing.sandbox(db, function(tx)
        assert.has_error(function() fix.try(tx, reprice, { symbol = "SPY", price = "-1" }) end)
        local ok, err = pcall(fix.try, tx, reprice, { symbol = "NOPE", price = "1" })
        assert.is_false(ok)
        assert.matches("no instrument NOPE", tostring(err.message))
      end)
    end)
  end)

  describe("move_position", function()
    local move = fix.load("scripts/fixes/move_position.lua")

    it("moves part of a holding: one row updated, one inserted", function()
      testing.sandbox(db, function(tx)
        local changes = fix.try(tx, move, { user = "test_user_001", symbol = "SPY", from = "401(k)",
                                            to = "Roth IRA", quantity = "40" })
        local ops = {}
        for _, c in ipairs(changes) do ops[#ops + 1] = c.table .. ":" .. c.operation end
        table.sort(ops)
        assert.same({ "positions:insert", "positions:update" }, ops)
      end)
    end)
  end)

  describe("retag_allocations", function()
    local retag = fix.load("scripts/fixes/retag_allocations.lua")

    it("replaces an allocation; one that does not sum to 100 is refused before anything is written", function()
      testing.sandbox(db, function(tx)
        local changes = fix.try(tx, retag, { symbol = "VEA", regions = '{"europe":60,"asia":40}' })
        assert.same({ "allocation_regions", "updated_at" }, changes[1].columns)
        assert.same({ europe = 60, asia = 40 }, changes[1].after.allocation_regions)
      end)
      testing.sandbox(db, function(tx)
        local ok, err = pcall(fix.try, tx, retag, { symbol = "VEA", regions = '{"europe":60}' })
        assert.is_false(ok)
        assert.matches("sum to 60", tostring(err))
      end)
    end)
  end)

  describe("split_adjust", function()
    local split = fix.load("scripts/fixes/split_adjust.lua")

    it("divides every close before the split date, in batches, and no other", function()
      testing.sandbox(db, function(tx)
        tx:execute([[INSERT INTO price_history (symbol, price_date, close_price)
          SELECT 'QQQ', DATE '2024-01-01' + g, 120 FROM generate_series(0, 1199) g]])
        split.batch_size = 100
        local changes = fix.try(tx, split, { symbol = "QQQ", ratio = "4", before = "2027-01-01" })
        assert.equal(1096, #changes) -- 2024-01-01 to 2026-12-31
        local row = tx:query_one([[SELECT count(*) FILTER (WHERE close_price = 30) AS divided,
          count(*) FILTER (WHERE close_price = 120) AS kept FROM price_history WHERE symbol = 'QQQ']])
        assert.same({ 1096, 104 }, { row.divided, row.kept })
      end)
    end)
  end)
end)
