-- Replace one or more of an instrument's allocations.
--   alexlua scripts/fixes/retag_allocations.lua VEA --regions '{"europe":60,"asia":30,"oceania":10}' [--apply]
-- The model checks every allocation it writes (known keys, percentages
-- summing to 100) exactly as verify.lua checks stored ones.
local fix = require "alex.fix"
local models = require "alex.models"
local cjson = require "cjson.safe"

local KINDS = { regions = "regions", sectors = "sectors", asset_class = "asset-class" }

fix.run {
  description = "Replace an instrument's region, sector or asset-class allocation (each must sum to 100).",
  arguments = function(parser)
    parser:argument("symbol", "Instrument symbol.")
    parser:option("--regions", "JSON object of region percentages.")
    parser:option("--sectors", "JSON object of sector percentages.")
    parser:option("--asset-class", "JSON object of asset-class percentages.")
  end,
  check_arguments = function(args)
    local given = false
    for key, option in pairs(KINDS) do
      local text = args[key]
      if text then
        given = true
        if type(cjson.decode(text)) ~= "table" then
          local shown = #text > 80 and text:sub(1, 80) .. "..." or text
          return nil, ("--%s: not a JSON object: %s"):format(option, shown)
        end
      end
    end
    if not given then return nil, "give at least one of --regions, --sectors, --asset-class" end
    return true
  end,
  change = function(tx, args)
    local alloc = {}
    for key in pairs(KINDS) do
      if args[key] then alloc[key] = cjson.decode(args[key]) end
    end
    models.bind(tx).instruments:set_allocations(args.symbol, alloc)
  end,
}
