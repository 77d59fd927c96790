-- A reset of the Alex database as a library: read and check every input
-- (migrations, seed, test data) before anything is sent, then, inside a
-- transaction the caller gives, drop everything the schema owns, apply the
-- migrations, seed the instruments and create the test user.  scripts/reset.lua
-- is its command line; alex.testing builds its template database with it.
--
-- Round trips are what a reset costs against Aurora, so each step is one Data
-- API call: the drop is one DO block, each migration one DO block, the seed one
-- BatchExecuteStatement, the test user one data-modifying CTE.
local cli = require "alex.cli"
local files = require "alex.files"
local migrate = require "alex.migrate"
local models = require "alex.models"
local schema = require "alex.schema"
local db = require "alex.db"

local reset = {}

-- The files a reset reads by default, in the project at root.
function reset.default_paths(root)
  return { schema_dir = root .. "/schema", seed_file = root .. "/seed/instruments.json",
           test_data_file = root .. "/seed/test_user.json" }
end

-- check_seed(name, raw) -> the instruments of a seed file read as raw, or
-- nil and its problems, one line each (name: record path: problem).
function reset.check_seed(name, raw)
  local instruments, _, errs = models.check_instruments(raw)
  if not instruments then return nil, cli.problem_lines(name, errs) end
  if #instruments == 0 then return nil, { name .. ": holds no instruments" } end
  return instruments
end

-- load(paths) -> inputs { migrations, instruments, test_data }, or nil, the
-- list of every problem (one line each: file, record path, problem) and the
-- exit code they call for.  paths: schema_dir, seed_file, test_data_file,
-- with_test_data.
function reset.load(paths)
  local problems, code = {}, cli.EXIT.REFUSED
  local function problem(text, kind)
    for line in tostring(text):gmatch("[^\n]+") do problems[#problems + 1] = line end
    if kind == "unavailable" then code = cli.EXIT.UNAVAILABLE end
  end
  local function record_problems(file, errs)
    for _, line in ipairs(cli.problem_lines(file, errs)) do problem(line) end
  end

  local migrations, merr, mkind = migrate.load(paths.schema_dir)
  if not migrations then problem(merr, mkind) end

  local seed_name = files.show(paths.seed_file)
  local instruments, symbols
  local raw, err = files.read_json(paths.seed_file)
  if raw == nil then
    problem(err, "unavailable")
  else
    local lines
    instruments, lines = reset.check_seed(seed_name, raw)
    for _, line in ipairs(lines or {}) do problem(line) end
    -- the symbols as written, so that test data naming a seeded symbol whose
    -- record has other problems is not reported twice
    symbols = {}
    if type(raw) == "table" then
      for _, r in ipairs(raw) do
        if type(r) == "table" and type(r.symbol) == "string" then symbols[r.symbol] = true end
      end
    end
  end

  local test_data
  if paths.with_test_data then
    local name = files.show(paths.test_data_file)
    local traw, terr = files.read_json(paths.test_data_file)
    if traw == nil then
      problem(terr, "unavailable")
    else
      local clean, _, errs = models.check_test_data(traw, symbols, seed_name)
      test_data = clean
      if not clean then record_problems(name, errs) end
    end
  end
  if #problems > 0 then return nil, problems, code end
  return { migrations = migrations, instruments = instruments, test_data = test_data }
end

local owned = schema.owned() -- what the schema owns, from its declaration (alex.schema)

local function drop_sql()
  local tables = {}
  for i = #owned.tables, 1, -1 do tables[#tables + 1] = owned.tables[i] end
  tables[#tables + 1] = migrate.TABLE
  local parts = { "DO $alex_reset$ BEGIN", ("PERFORM pg_advisory_xact_lock(%d);"):format(migrate.LOCK_KEY),
    "DROP TABLE IF EXISTS " .. table.concat(tables, ", ") .. " CASCADE;" }
  for _, f in ipairs(owned.functions) do
    parts[#parts + 1] = "DROP FUNCTION IF EXISTS " .. f .. " CASCADE;"
  end
  parts[#parts + 1] = migrate.CREATE_TABLE_SQL .. ";"
  parts[#parts + 1] = "END $alex_reset$"
  return table.concat(parts, "\n")
end

local TEST_DATA_SQL = [[
WITH u AS (
  INSERT INTO users (clerk_user_id, display_name, years_until_retirement, target_retirement_income,
                     asset_class_targets, region_targets)
  VALUES (:clerk_user_id, :display_name, :years::int, :income::numeric, :asset_class_targets::jsonb,
          :region_targets::jsonb)
  ON CONFLICT (clerk_user_id) DO UPDATE SET display_name = EXCLUDED.display_name,
    years_until_retirement = EXCLUDED.years_until_retirement,
    target_retirement_income = EXCLUDED.target_retirement_income,
    asset_class_targets = EXCLUDED.asset_class_targets, region_targets = EXCLUDED.region_targets
  RETURNING clerk_user_id),
acc AS (
  INSERT INTO accounts (clerk_user_id, account_name, account_purpose, cash_balance, cash_interest)
  SELECT u.clerk_user_id, a.account_name, a.account_purpose, a.cash_balance, a.cash_interest
  FROM u, jsonb_to_recordset(:accounts::jsonb)
       AS a(account_name text, account_purpose text, cash_balance numeric, cash_interest numeric)
  RETURNING id, account_name),
pos AS (
  INSERT INTO positions (account_id, symbol, quantity)
  SELECT acc.id, p.symbol, p.quantity
  FROM acc JOIN jsonb_to_recordset(:positions::jsonb) AS p(account_name text, symbol text, quantity numeric)
       ON p.account_name = acc.account_name
  RETURNING id)
SELECT (SELECT count(*) FROM acc) AS accounts, (SELECT count(*) FROM pos) AS positions]]

local function test_data_params(data)
  local user = data.user
  local accounts, positions = {}, {}
  for _, a in ipairs(data.accounts or {}) do
    accounts[#accounts + 1] = { account_name = a.account_name, account_purpose = a.account_purpose,
                                cash_balance = a.cash_balance or "0", cash_interest = a.cash_interest or "0" }
    for _, p in ipairs(a.positions or {}) do
      positions[#positions + 1] = { account_name = a.account_name, symbol = p.symbol, quantity = p.quantity }
    end
  end
  local json = require "alex.json"
  return {
    clerk_user_id = user.clerk_user_id, display_name = user.display_name or db.null,
    years = user.years_until_retirement or db.null,
    income = user.target_retirement_income and db.decimal(user.target_retirement_income) or db.null,
    asset_class_targets = db.json(user.asset_class_targets or setmetatable({}, json.object_mt)),
    region_targets = db.json(user.region_targets or setmetatable({}, json.object_mt)),
    accounts = db.json(setmetatable(accounts, json.array_mt)),
    positions = db.json(setmetatable(positions, json.array_mt)),
  }
end

local COUNTS_SQL = [[SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM instruments) AS instruments,
  (SELECT count(*) FROM accounts) AS accounts, (SELECT count(*) FROM positions) AS positions,
  (SELECT count(*) FROM jobs) AS jobs, (SELECT count(*) FROM schema_migrations) AS migrations]]

-- run(tx, inputs [, opts]) -> the row counts after the reset, inside the
-- transaction tx.  opts.skip_drop keeps existing tables (pending migrations
-- and an upsert of the seed only); opts.step(message) hears of each step.
function reset.run(tx, inputs, opts)
  opts = opts or {}
  local step = opts.step or function() end
  if opts.skip_drop then
    step("keeping existing tables (--skip-drop)")
    tx:execute(migrate.lock_sql())
  else
    step(("dropping %d tables and %d functions the schema owns"):format(#owned.tables, #owned.functions))
    tx:execute(drop_sql())
  end
  local pending = opts.skip_drop and migrate.pending(tx, inputs.migrations) or inputs.migrations
  for _, m in ipairs(pending) do
    step(("applying %s (%d statements)"):format(m.name, #m.statements))
    tx:execute(migrate.block(m))
  end
  if #pending == 0 then step("migrations: nothing pending") end
  step(("seeding %d instruments"):format(#inputs.instruments))
  models.bind(tx).instruments:upsert_many(inputs.instruments)
  local test_data = inputs.test_data
  if test_data then
    step(("creating test user %s with %d accounts"):format(test_data.user.clerk_user_id,
      #(test_data.accounts or {})))
    if opts.skip_drop then
      tx:execute("DELETE FROM users WHERE clerk_user_id = :u", { u = test_data.user.clerk_user_id })
    end
    tx:execute(TEST_DATA_SQL, test_data_params(test_data))
  end
  return tx:query_one(COUNTS_SQL)
end

return reset
