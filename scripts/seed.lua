-- Seed (upsert) the instruments: the 22 ETFs in seed/instruments.json, or your
-- own file of the same shape with --file.  Every record is checked before
-- anything is written; a file with any invalid record writes nothing, and
-- every problem is listed.
local cli = require "alex.cli"
local files = require "alex.files"
local models = require "alex.models"
local reset = require "alex.reset"

local parser = cli.parser("seed.lua", "Upsert instruments from a JSON file, all validated before anything is written.",
  cli.INPUT_HELP)
parser:option("--file", "JSON array of instruments (the shape of seed/instruments.json).",
  cli.project_path("seed/instruments.json"))
parser:flag("--check", "Only validate the file; connect to nothing.")
local args = cli.parse(parser)

local name = files.show(args.file)
local raw, err = cli.read_json(args.file)
if raw == nil then cli.fail(err, cli.EXIT.UNAVAILABLE) end
local instruments, problems = reset.check_seed(name, raw)
if not instruments then cli.fail_all(problems, cli.EXIT.REFUSED, "nothing was written") end
if args.check then
  print(("%s: %d valid instruments"):format(name, #instruments))
  os.exit(cli.EXIT.OK)
end

cli.run(function()
  local conn = cli.connect()
  -- One BatchExecuteStatement inside a transaction: all rows or none, and an
  -- upsert, so a retry or a second run never duplicates anything.
  local n = conn:transaction(function(tx)
    return models.bind(tx).instruments:upsert_many(instruments)
  end, { retries = 2 })
  print(("seeded %d instruments from %s"):format(n, name))
end)
