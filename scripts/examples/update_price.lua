-- Ad-hoc fix: set an instrument's current price.
--   alexlua scripts/examples/update_price.lua SPY 601.15
local cli = require "alex.cli"
local models = require "alex.models"

local parser = cli.parser("update_price.lua", "Set one instrument's current price (validated, in a transaction).")
parser:argument("symbol", "Instrument symbol, e.g. SPY.")
parser:argument("price", "New price, e.g. 601.15 (0 to 999999, up to 4 decimals).")
local args = cli.parse(parser)

cli.run(function()
  local conn = cli.connect()
  conn:transaction(function(tx)
    local m = models.bind(tx)
    local before = m.instruments:find(args.symbol)
    if not before then cli.refuse(("no instrument %s"):format(args.symbol)) end
    local after = m.instruments:update_price(args.symbol, args.price)
    print(("%s: %s -> %s"):format(args.symbol, tostring(before.current_price), after.current_price))
  end)
end)
