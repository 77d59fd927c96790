-- Set an instrument's current price.
--   alexlua scripts/fixes/reprice.lua SPY 601.15            (dry run: the diff, nothing written)
--   alexlua scripts/fixes/reprice.lua SPY 601.15 --apply
-- The model validates the price (0 to 999999, up to 4 decimals) before
-- anything is written.
local fix = require "alex.fix"
local cli = require "alex.cli"
local models = require "alex.models"

fix.run {
  description = "Set an instrument's current price.",
  arguments = function(parser)
    parser:argument("symbol", "Instrument symbol, e.g. SPY.")
    parser:argument("price", "New price, e.g. 601.15 (0 to 999999, up to 4 decimals).")
  end,
  change = function(tx, args)
    local instruments = models.bind(tx).instruments
    if not instruments:find(args.symbol) then cli.refuse(("no instrument %s"):format(args.symbol)) end
    instruments:update_price(args.symbol, args.price)
  end,
}
