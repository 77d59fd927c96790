-- Seed (upsert) the instruments: the 22 ETFs in seed/instruments.json, or your
-- own file of the same shape with --file.  Every record is checked before
-- anything is written; a file with any invalid record writes nothing.
local cli = require "alex.cli"
local models = require "alex.models"

local parser = cli.parser("seed.lua", "Upsert instruments from a JSON file, all validated before anything is written.")
parser:option("--file", "JSON array of instruments (the shape of seed/instruments.json).",
  cli.project_path("seed/instruments.json"))
parser:flag("--check", "Only validate the file; connect to nothing.")
local args = cli.parse(parser)

local raw, err = cli.read_json(args.file)
if not raw then cli.die(err) end
local instruments, problems = models.check_instruments(raw)
if not instruments then
  cli.die(("%s has invalid records; nothing was written:\n%s"):format(args.file, problems))
end
if args.check then
  print(("%s: %d valid instruments"):format(args.file, #instruments))
  os.exit(0)
end

local conn = cli.connect()
-- One BatchExecuteStatement inside a transaction: all rows or none, and an
-- upsert, so a retry or a second run never duplicates anything.
local n = conn:transaction(function(tx)
  return models.bind(tx).instruments:upsert_many(instruments)
end, { retries = 2 })
print(("seeded %d instruments from %s"):format(n, args.file))
