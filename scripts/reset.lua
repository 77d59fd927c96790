-- Reset the Alex database: drop everything the schema owns, apply the
-- migrations, seed the instruments and, with --with-test-data, create the test
-- user.  One transaction: if anything fails the database is exactly as before.
--
-- Every input is read and checked before the first Data API call, and every
-- problem of every file is listed at once (file, record path, problem): the
-- migrations, each instrument, and the test data, whose positions must name
-- instruments of the seed file.  Each step is one Data API call (alex.reset):
-- ten calls in all with three migrations, the transaction's Begin, lock
-- timeout and Commit included, where the Python package makes 64
-- (bench/README.md).
local cli = require "alex.cli"
local reset = require "alex.reset"
local clock = require "alex.clock"

local parser = cli.parser("reset.lua",
  "Drop the Alex schema, migrate, seed the instruments and optionally create the test user, in one transaction.",
  "Run against the local stack when AURORA_CLUSTER_ARN is not set, else against Aurora. " .. cli.INPUT_HELP
  .. " The test data's positions must name instruments of the seed file, also with --skip-drop: the same "
  .. "files are valid whatever the database holds.")
parser:flag("--with-test-data", "Also create test user test_user_001 with three accounts and five positions.")
parser:flag("--skip-drop", "Keep existing tables: apply pending migrations and upsert the seed data only.")
local default = reset.default_paths(cli.script_dir() .. "/..")
parser:option("--schema-dir", "Folder of the SQL migrations.", default.schema_dir)
parser:option("--seed-file", "Instruments to seed (JSON array).", default.seed_file)
parser:option("--test-data-file", "The test user, accounts and positions.", default.test_data_file)
local args = cli.parse(parser)

local paint = cli.painter(1)
local function step(msg) io.stdout:write(paint("bold", "==> "), msg, "\n") io.stdout:flush() end

local inputs, problems, code = reset.load { schema_dir = args.schema_dir, seed_file = args.seed_file,
  test_data_file = args.test_data_file, with_test_data = args.with_test_data }
if not inputs then cli.fail_all(problems, code, "nothing was changed") end

cli.run(function()
  local conn = cli.connect()
  local started = clock.monotonic()
  local calls_before = 0
  for _, n in pairs(conn:stats().calls) do calls_before = calls_before + n end

  local counts
  local ok, err = pcall(conn.transaction, conn, function(tx)
    counts = reset.run(tx, inputs, { skip_drop = args.skip_drop, step = step })
  end, { retries = 2 })

  local calls = -calls_before
  for _, n in pairs(conn:stats().calls) do calls = calls + n end
  local seconds = clock.monotonic() - started
  if not ok then
    local code_ = cli.exit_code(err)
    if not code_ then error(err, 0) end -- a bug: alexlua prints it with a traceback
    if code_ == cli.EXIT.UNKNOWN or (type(err) == "table" and err.commit_unknown) then
      -- the commit may have run: saying "nothing was changed" could be false
      cli.fail("reset outcome unknown: the commit was sent but its answer was lost, so the database holds"
        .. " either its previous state or the complete reset (run verify.lua to see which): " .. tostring(err), code_)
    end
    cli.fail("reset failed, nothing was changed: " .. cli.message(err), code_)
  end

  io.stdout:write(paint("green", "reset complete"), (" in %.2f s, %d Data API calls\n"):format(seconds, calls))
  for _, name in ipairs { "instruments", "users", "accounts", "positions", "jobs", "migrations" } do
    io.stdout:write(("  %-12s %d\n"):format(name, counts[name]))
  end
end)
