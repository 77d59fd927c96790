-- Check the Alex database: tables and sizes, row counts, every instrument
-- against the rules every writer applies (alex.records' InstrumentCreate:
-- allocations, type, price), every position's symbol, indexes and triggers,
-- migrations.  Exit 0 when every check passes, 1 when any fails, 2 when it
-- cannot check (bad arguments, migrations folder, database unreachable).
local cli = require "alex.cli"
local migrate = require "alex.migrate"
local models = require "alex.models"
local schema = require "alex.schema"
local records = require "alex.records"

local parser = cli.parser("verify.lua", "Check the Alex database and report; exit non-zero when a check fails.",
  nil, "Exit codes: 0 every check passed; 1 a check failed; 2 it could not check (bad arguments, an unusable "
  .. "migrations folder, missing settings, database or Data API unreachable or failing).")
parser:flag("--json", "Print the report as JSON (for machines).")
parser:option("--schema-dir", "Folder of the SQL migrations.", cli.project_path("schema"))
local args = cli.parse(parser)

local migrations, merr = migrate.load(args.schema_dir)
if not migrations then cli.fail("cannot check: " .. merr, cli.EXIT.UNAVAILABLE) end
local owned = schema.owned() -- what the schema owns, from its declaration (alex.schema)

cli.run(function()
  local conn = cli.connect()

  local checks = {}
  local function check(name, ok, detail, problems)
    checks[#checks + 1] = { name = name, ok = ok and true or false, detail = detail, problems = problems }
  end

  local report = { tables = {}, counts = {} }

  -- tables, sizes and row counts
  local present = {}
  local table_rows = conn:query([[SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes,
      c.reltuples::bigint AS estimate
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY c.relname]])
  for _, r in ipairs(table_rows) do present[r.name] = r end
  local missing = {}
  for _, t in ipairs(owned.tables) do
    if present[t] then
      local n = conn:query_one(("SELECT count(*) AS n FROM %s"):format(t)).n -- names from the declaration, not input
      report.tables[#report.tables + 1] = { name = t, rows = n, bytes = present[t].bytes }
      report.counts[t] = n
    else
      missing[#missing + 1] = t
    end
  end
  check("tables present", #missing == 0, ("%d of %d"):format(#owned.tables - #missing, #owned.tables), missing)

  -- instruments, each checked as the models check what they write
  if present.instruments then
    local bad = {}
    local rows = conn:query(("SELECT %s FROM instruments ORDER BY symbol"):format(
      table.concat(models.COLUMNS.instruments, ", "))) -- column names from the model, not input
    for _, r in ipairs(rows) do
      local clean, errs = records.check("InstrumentCreate", r)
      if not clean then
        for _, e in ipairs(errs) do bad[#bad + 1] = ("%s.%s: %s"):format(tostring(r.symbol), e.field, e.message) end
      end
    end
    table.sort(bad)
    check("instruments valid", #bad == 0, ("%d instruments: allocations, type, price"):format(#rows), bad)
    check("instruments seeded", #rows > 0, ("%d instruments"):format(#rows))
  end

  -- positions' symbols
  if present.positions and present.instruments then
    local orphans = conn:query([[SELECT p.id, p.symbol FROM positions p
      LEFT JOIN instruments i ON i.symbol = p.symbol WHERE i.symbol IS NULL ORDER BY p.symbol]])
    local list = {}
    for _, r in ipairs(orphans) do list[#list + 1] = ("position %s: unknown symbol %s"):format(r.id, r.symbol) end
    check("position symbols known", #orphans == 0, ("%d unknown"):format(#orphans), list)
  end

  -- indexes and triggers
  local function names(sql)
    local set = {}
    for _, r in ipairs(conn:query(sql)) do set[r.name] = true end
    return set
  end
  local function expect(kind, wanted, have)
    local lost = {}
    for _, n in ipairs(wanted) do if not have[n] then lost[#lost + 1] = n end end
    check(kind .. " present", #lost == 0, ("%d of %d"):format(#wanted - #lost, #wanted), lost)
  end
  expect("indexes", owned.indexes,
    names("SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()"))
  expect("triggers", owned.triggers, names("SELECT tgname AS name FROM pg_trigger WHERE NOT tgisinternal"))
  expect("functions", owned.functions, names([[SELECT p.proname AS name FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema()]]))

  -- migrations
  local states = migrate.status(conn, migrations)
  local not_ok = {}
  for _, st in ipairs(states) do
    if st.state ~= "applied" then not_ok[#not_ok + 1] = ("%s: %s"):format(st.name, st.state) end
  end
  check("migrations applied and unchanged", #not_ok == 0, ("%d migrations"):format(#migrations), not_ok)
  report.migrations = states

  local failed = 0
  for _, c in ipairs(checks) do if not c.ok then failed = failed + 1 end end
  report.checks, report.ok, report.failed = checks, failed == 0, failed

  if args.json then
    local json = require "alex.json"
    for _, c in ipairs(checks) do
      if c.problems then setmetatable(c.problems, json.array_mt) end
    end
    setmetatable(report.tables, json.array_mt)
    io.stdout:write(assert(json.encode(report)), "\n")
  else
    local paint = cli.painter(1)
    io.stdout:write(paint("bold", "Tables"), "\n")
    for _, t in ipairs(report.tables) do
      io.stdout:write(("  %-16s %8d rows %10.1f KiB\n"):format(t.name, t.rows, t.bytes / 1024))
    end
    io.stdout:write(paint("bold", "Checks"), "\n")
    for _, c in ipairs(checks) do
      io.stdout:write("  ", c.ok and paint("green", "ok  ") or paint("red", "FAIL"), " ", c.name,
        c.detail and paint("dim", " (" .. c.detail .. ")") or "", "\n")
      if not c.ok and c.problems then
        for _, p in ipairs(c.problems) do io.stdout:write("         ", p, "\n") end
      end
    end
    io.stdout:write(failed == 0 and paint("green", "all checks passed") or
      paint("red", ("%d check%s failed"):format(failed, failed == 1 and "" or "s")), "\n")
  end
  os.exit(failed == 0 and cli.EXIT.OK or cli.EXIT.REFUSED)
end, { code = cli.EXIT.UNAVAILABLE, prefix = "cannot check: " })
