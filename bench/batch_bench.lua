-- Issue 4: a 1,000-row insert through db:batch against the same rows sent one
-- db:execute at a time, with 20 ms of latency injected into every Data API
-- call by the local service (a stand-in for the round trip to Aurora), on a
-- private stack, same run.  Target: batch at least 50x faster.
--
--   make bench-batch     (or: ALEXLUA=... ALEX_DATAAPI=... alexlua --no-env-file bench/batch_bench.lua)
--   ALEX_BENCH_ROWS=1000 ALEX_BENCH_LATENCY_MS=20 ALEX_BENCH_BATCH_RUNS=5 ALEX_BENCH_ROW_RUNS=1
-- Result: bench/out/batch.json.
local bl = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "bench") .. "/benchlib.lua")
local db = require "alex.db"

local ROWS = math.tointeger(bl.env_number("ALEX_BENCH_ROWS", 1000))
local LATENCY = bl.env_number("ALEX_BENCH_LATENCY_MS", 20)
local BATCH_RUNS = math.tointeger(bl.env_number("ALEX_BENCH_BATCH_RUNS", 5))
local ROW_RUNS = math.tointeger(bl.env_number("ALEX_BENCH_ROW_RUNS", 1))
local TARGET = 50

local SQL = "INSERT INTO price_history (symbol, price_date, close_price) VALUES (:symbol, :price_date, :close_price)"

-- ROWS daily closes of SPY, one per calendar day back from 2025-06-30.
local function rows()
  local sets = {}
  local base = os.time { year = 2025, month = 6, day = 30, hour = 12 }
  for i = 1, ROWS do
    sets[i] = {
      symbol = "SPY",
      price_date = db.date(os.date("!%Y-%m-%d", base - (i - 1) * 86400)),
      close_price = db.decimal(("%d.%04d"):format(400 + i % 200, (i * 37) % 10000)),
    }
  end
  return sets
end

local function count(s)
  return tonumber(bl.psql(s, "SELECT count(*) FROM price_history"))
end

bl.with_stack({}, function(s)
  bl.say("migrating and seeding the private stack")
  bl.reset(s)
  local conn = bl.connect(s)
  local sets = rows()
  assert(s:set_faults { latency_ms = LATENCY })

  local batch_seconds, batch_calls = {}, nil
  for run = 1, BATCH_RUNS do
    bl.psql(s, "TRUNCATE price_history")
    assert(s:reset_stats())
    local t0 = bl.now()
    local n, requests = conn:batch(SQL, sets)
    local dt = bl.now() - t0
    local calls, ops = bl.calls(s)
    assert(n == ROWS, ("batch reported %d sets"):format(n))
    assert(count(s) == ROWS, "batch did not insert every row")
    batch_seconds[run] = dt
    batch_calls = { total = calls, requests = requests, operations = ops }
    bl.say("batch run %d: %.3f s, %d Data API calls", run, dt, calls)
  end

  local row_seconds, row_calls = {}, nil
  for run = 1, ROW_RUNS do
    bl.psql(s, "TRUNCATE price_history")
    assert(s:reset_stats())
    local t0 = bl.now()
    for i = 1, ROWS do conn:execute(SQL, sets[i]) end
    local dt = bl.now() - t0
    local calls = bl.calls(s)
    assert(count(s) == ROWS, "row-by-row did not insert every row")
    row_seconds[run] = dt
    row_calls = calls
    bl.say("row-by-row run %d: %.3f s, %d Data API calls", run, dt, calls)
  end
  assert(s:set_faults { latency_ms = 0 })
  conn:close()

  local b, r = bl.median(batch_seconds), bl.median(row_seconds)
  local result = {
    rows = ROWS, latency_ms = LATENCY, target = TARGET,
    batch = { seconds = b, runs = batch_seconds, calls = batch_calls.total, requests = batch_calls.requests,
              rows_per_second = ROWS / b },
    row_by_row = { seconds = r, runs = row_seconds, calls = row_calls, rows_per_second = ROWS / r },
    ratio = r / b,
  }
  result.met = result.ratio >= TARGET
  bl.write_result("batch", result)
  print(("batch insert of %d rows, %g ms injected latency per call"):format(ROWS, LATENCY))
  print(("  db:batch            %8.3f s  %3d call(s)  %9.0f rows/s  (median of %d)")
    :format(b, result.batch.calls, result.batch.rows_per_second, #batch_seconds))
  print(("  row-by-row execute  %8.3f s  %3d calls     %9.0f rows/s")
    :format(r, row_calls, result.row_by_row.rows_per_second))
  print(("  ratio               %8.1fx (target >= %dx: %s)"):format(result.ratio, TARGET,
    result.met and "met" or "NOT MET"))
end)
