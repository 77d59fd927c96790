-- The record of data fixes: what ran, when, by whom, with which arguments,
-- and what each changed.
--   alexlua scripts/fixes.lua list [--json] [--limit N]
--   alexlua scripts/fixes.lua show RUN [--json]
local cli = require "alex.cli"
local fix = require "alex.fix"
local tabular = require "alex.tabular"
local json = require "alex.json"

local parser = cli.parser("fixes.lua", "List the data fixes applied, or show one run with its changes.")
parser:command_target("command")
local list = parser:command("list", "The most recent runs, newest first.")
list:flag("--json", "As JSON.")
list:option("--limit", "How many runs.", "50"):convert(cli.whole(1, 100000))
local show = parser:command("show", "One run: its record and every row it changed.")
show:argument("run", "The run's id (see list)."):convert(cli.whole(1, nil, "must be a run id (a whole number)"))
show:flag("--json", "As JSON.")
local args = cli.parse(parser)

cli.run(function()
  local conn = cli.connect()
  if args.command == "list" then
    local rows = fix.runs(conn, args.limit)
    if args.json then
      io.stdout:write(json.encode(setmetatable({ runs = setmetatable(rows, json.array_mt) }, json.object_mt)), "\n")
      return
    end
    for _, r in ipairs(rows) do r.arguments = fix.canonical(r.arguments) end
    rows.columns = { "id", "name", "status", "arguments", "rows_changed", "run_by", "started_at", "finished_at" }
    io.stdout:write(tabular.format(rows, { expanded = false, max_value = 50 }))
    return
  end
  local run = fix.run_record(conn, args.run)
  if not run then cli.refuse(("no data fix run %d"):format(args.run)) end
  local changes = fix.changes(conn, run.id)
  if args.json then
    run.changes = fix.changes_json(changes)
    io.stdout:write(json.encode(run), "\n")
    return
  end
  io.stdout:write(("run %d: %s %s, %s by %s on %s, started %s, finished %s\n"):format(run.id, run.name,
    fix.canonical(run.arguments), run.status, run.run_by, run.host, tostring(run.started_at),
    tostring(run.finished_at or "-")))
  if run.rows_total then
    io.stdout:write(("rows: %d of %d processed in batches of %s\n"):format(run.rows_done, run.rows_total,
      tostring(run.batch_size)))
  end
  if run.error_message then io.stdout:write("error: ", run.error_message, "\n") end
  io.stdout:write(("changed %s:\n"):format(fix.summary(changes)))
  fix.print_diff(changes)
end)
