-- Apply pending SQL migrations from schema/, each in its own transaction,
-- serialised against concurrent runs; refuse when an applied file changed.
local cli = require "alex.cli"
local migrate = require "alex.migrate"

local parser = cli.parser("migrate.lua", "Apply pending migrations (schema/NNN_name.sql), each in one transaction.",
  "--status exits 1 when a migration was changed after it was applied or is missing from the folder. A folder "
  .. "that is missing or holds no migrations, or a .sql file that is not named NNN_name.sql, changes nothing.")
parser:flag("--status", "Show applied, pending and changed migrations; change nothing.")
parser:flag("--dry-run", "Print the statements that would run; change nothing.")
parser:option("--dir", "Folder of the SQL migrations.", cli.project_path("schema"))
local args = cli.parse(parser)

local list, err, kind = migrate.load(args.dir)
if not list then cli.fail(err, kind == "refused" and cli.EXIT.REFUSED or cli.EXIT.UNAVAILABLE) end
local paint = cli.painter(1)

cli.run(function()
  local conn = cli.connect()
  if args.dry_run and not args.status then
    local pending = migrate.pending(conn, list)
    for _, m in ipairs(pending) do
      print(("-- %s (%d statements)"):format(m.name, #m.statements))
      for _, s in ipairs(m.statements) do print(s.sql .. ";\n") end
    end
    if #pending == 0 then print("-- nothing pending") end
    os.exit(cli.EXIT.OK)
  end

  if args.status then
    local bad = false
    local colours = { applied = "green", pending = "yellow", changed = "red", missing = "red" }
    for _, st in ipairs(migrate.status(conn, list)) do
      print(("%s %-32s %s"):format(paint(colours[st.state], ("%-8s"):format(st.state)), st.name,
        st.applied_at and ("applied " .. st.applied_at) or ""))
      if st.state == "changed" or st.state == "missing" then bad = true end
    end
    os.exit(bad and cli.EXIT.REFUSED or cli.EXIT.OK)
  end

  local applied = migrate.run(conn, list, { log = function(line) print("==> " .. line) end })
  if #applied == 0 then print("nothing to apply: the database is up to date")
  else print(paint("green", ("applied %d migration%s"):format(#applied, #applied == 1 and "" or "s"))) end
end, { prefix = not (args.status or args.dry_run) and "migration failed: " or nil })
