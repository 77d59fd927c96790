-- Adjust an instrument's price history for a stock split: every close before
-- the split date is divided by the split ratio (a 4-for-1 split: ratio 4), so
-- that the history and today's price are comparable.  Over many rows, in
-- batches: an interrupted run resumes where it stopped (--resume --apply),
-- and no close is divided twice.
--   alexlua scripts/fixes/split_adjust.lua NVDA 4 --before 2024-06-10 [--apply]
local fix = require "alex.fix"
local cli = require "alex.cli"

local function positive_ratio(text)
  local n = tonumber(text)
  if not n or n <= 0 or n ~= n or n == math.huge then return nil end
  return n
end

fix.run {
  description = "Divide an instrument's closing prices before a split date by the split ratio.",
  arguments = function(parser)
    parser:argument("symbol", "Instrument symbol.")
    parser:argument("ratio", "Split ratio: new shares per old share (4 for a 4-for-1 split; 0.5 for 1-for-2).")
    parser:option("--before", "The split date (YYYY-MM-DD): closes before it are adjusted.")
  end,
  collection = {
    sql = "SELECT id FROM price_history WHERE symbol = :symbol AND price_date < CAST(:before AS date)",
    key = "id",
    params = function(args)
      if not positive_ratio(args.ratio) then cli.refuse(("ratio %q is not a positive number"):format(args.ratio)) end
      if not (args.before and args.before:find("^%d%d%d%d%-%d%d%-%d%d$")) then
        cli.refuse("--before YYYY-MM-DD: the split date is needed")
      end
      return { symbol = args.symbol, before = args.before }
    end,
  },
  batch_size = 500,
  each_batch = function(tx, rows, args)
    local ids = {}
    for i, r in ipairs(rows) do ids[i] = r.id end
    tx:execute([[UPDATE price_history SET close_price = round(close_price / CAST(:ratio AS numeric), 4)
      WHERE id = ANY(CAST(string_to_array(:ids, ',') AS uuid[]))]],
      { ratio = args.ratio, ids = table.concat(ids, ",") })
  end,
}
