-- Ad-hoc fix: replace one or more of an instrument's allocations.
--   alexlua scripts/examples/retag_allocations.lua VEA --regions '{"europe":60,"asia":30,"oceania":10}'
-- The model checks every allocation it writes (known keys, percentages
-- summing to 100) exactly as verify.lua checks stored ones.
local cli = require "alex.cli"
local models = require "alex.models"
local cjson = require "cjson.safe"

local parser = cli.parser("retag_allocations.lua",
  "Replace an instrument's region, sector or asset-class allocation (each must sum to 100).")
parser:argument("symbol", "Instrument symbol.")
parser:option("--regions", "JSON object of region percentages.")
parser:option("--sectors", "JSON object of sector percentages.")
parser:option("--asset-class", "JSON object of asset-class percentages.")
local args = cli.parse(parser)

local alloc = {}
for key, text in pairs { regions = args.regions, sectors = args.sectors, asset_class = args.asset_class } do
  local value = cjson.decode(text)
  if type(value) ~= "table" then
    local shown = #text > 80 and text:sub(1, 80) .. "..." or text
    cli.fail(("--%s: not a JSON object: %s"):format((key:gsub("_", "-")), shown), cli.EXIT.UNAVAILABLE)
  end
  alloc[key] = value
end
if next(alloc) == nil then
  cli.fail("give at least one of --regions, --sectors, --asset-class", cli.EXIT.UNAVAILABLE)
end

cli.run(function()
  local conn = cli.connect()
  conn:transaction(function(tx)
    local row = models.bind(tx).instruments:set_allocations(args.symbol, alloc)
    print(("%s re-tagged: regions %s, sectors %s, asset class %s"):format(row.symbol,
      cjson.encode(row.allocation_regions), cjson.encode(row.allocation_sectors),
      cjson.encode(row.allocation_asset_class)))
  end)
end)
