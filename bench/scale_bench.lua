-- Seeding at scale: 1,000 / 10,000 / 100,000 positions through db:insert (one
-- INSERT ... SELECT from unnest of typed arrays per request) and through db:batch
-- (a statement per row, as Aurora runs a BatchExecuteStatement): Data API
-- calls, seconds, rows/s and whether the time grows linearly, next to `psql
-- \copy` of the same rows into the same table on the same PostgreSQL as the
-- physical floor.  A private stack; no latency is injected unless
-- ALEX_BENCH_LATENCY_MS says so.
--
--   make bench-scale     (or: ALEXLUA=... ALEX_DATAAPI=... alexlua --no-env-file bench/scale_bench.lua)
--   ALEX_BENCH_SIZES="1000,10000,100000" ALEX_BENCH_SCALE_RUNS=3 (runs per size)
--   ALEX_BENCH_SCALE_LARGEST_RUNS=2 (runs for the largest size)
--   ALEX_BENCH_LATENCY_MS=0
-- Result: bench/out/scale.json.
local bl = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "bench") .. "/benchlib.lua")
local db = require "alex.db"
local json = require "alex.json"

local SIZES = {}
for v in (os.getenv("ALEX_BENCH_SIZES") or "1000,10000,100000"):gmatch("[^,%s]+") do
  SIZES[#SIZES + 1] = assert(math.tointeger(tonumber(v)), "ALEX_BENCH_SIZES: integers, comma-separated")
end
table.sort(SIZES)
local RUNS = math.tointeger(bl.env_number("ALEX_BENCH_SCALE_RUNS", 3))
local LARGEST_RUNS = math.tointeger(bl.env_number("ALEX_BENCH_SCALE_LARGEST_RUNS", 2))
local LATENCY = bl.env_number("ALEX_BENCH_LATENCY_MS", 0)
local MAX = SIZES[#SIZES]

local SQL = "INSERT INTO positions (account_id, symbol, quantity) VALUES (:account_id, :symbol, :quantity)"

local function lines(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- Same rows as (account, symbol, quantity) triples for both sides.
local function make_rows(accounts, symbols)
  local list = {}
  for i = 1, MAX do
    list[i] = { accounts[(i - 1) // #symbols + 1], symbols[(i - 1) % #symbols + 1],
                ("%d.%08d"):format(i % 5000, (i * 7919) % 100000000) }
  end
  return list
end

local function param_sets(list, n)
  local sets = {}
  for i = 1, n do
    local r = list[i]
    sets[i] = { account_id = db.uuid(r[1]), symbol = r[2], quantity = db.decimal(r[3]) }
  end
  return sets
end

-- The same check on both sides' result: row count and a digest of the rows.
local function digest(s)
  return bl.psql(s, "SELECT count(*) || ' ' || coalesce(md5(string_agg(account_id::text || symbol ||" ..
    " quantity::text, ',' ORDER BY account_id, symbol)), '') FROM positions")
end

bl.with_stack({}, function(s)
  bl.say("migrating and seeding the private stack")
  bl.reset(s)
  local symbols = lines(bl.psql(s, "SELECT symbol FROM instruments ORDER BY symbol"))
  local n_accounts = (MAX + #symbols - 1) // #symbols
  bl.psql(s, ("INSERT INTO accounts (clerk_user_id, account_name) SELECT 'test_user_001', 'scale ' || g" ..
    " FROM generate_series(1, %d) g"):format(n_accounts))
  local accounts = lines(bl.psql(s, "SELECT id FROM accounts WHERE account_name LIKE 'scale %' ORDER BY id"))
  assert(#accounts == n_accounts)
  local rows = make_rows(accounts, symbols)
  local csv_dir = s.dir .. "/scale-csv"
  os.execute("mkdir -p " .. bl.shell_quote(csv_dir))

  local conn = bl.connect(s)
  assert(s:set_faults { latency_ms = LATENCY })
  local results = {}
  for _, n in ipairs(SIZES) do
    local runs = n == MAX and LARGEST_RUNS or RUNS
    local sets = param_sets(rows, n)
    -- the client-side share: what db:batch does before sending (checks, encoding)
    local t0 = bl.now()
    for i = 1, n do json.encode((db.to_parameters(sets[i]))) end
    local encode_seconds = bl.now() - t0

    local csv = ("%s/positions-%d.csv"):format(csv_dir, n)
    local f = assert(io.open(csv, "w"))
    for i = 1, n do f:write(rows[i][1], ",", rows[i][2], ",", rows[i][3], "\n") end
    f:close()

    local inserted = {}
    for i = 1, n do
      local r = rows[i]
      inserted[i] = { account_id = r[1], symbol = r[2], quantity = db.decimal(r[3]) }
    end
    local batch, copy, calls, requests, call_seconds, expect = {}, {}, nil, nil, {}, nil
    local insert, insert_calls = {}, nil
    for run = 1, runs do
      bl.psql(s, "TRUNCATE positions")
      assert(s:reset_stats())
      t0 = bl.now()
      local wrote = conn:insert("positions", inserted)
      insert[run] = bl.now() - t0
      assert(wrote == n)
      insert_calls = bl.calls(s)
      local di = digest(s)
      assert(di:match("^%d+") == tostring(n), "insert inserted " .. di)
      expect = expect or di

      bl.psql(s, "TRUNCATE positions")
      assert(s:reset_stats())
      local before = conn:stats().seconds
      t0 = bl.now()
      local done, chunks = conn:batch(SQL, sets)
      batch[run] = bl.now() - t0
      call_seconds[run] = conn:stats().seconds - before
      assert(done == n)
      calls, requests = bl.calls(s), chunks
      local d = digest(s)
      if d ~= expect then error(("db:batch and db:insert left different rows: %s vs %s"):format(d, expect), 0) end

      bl.psql(s, "TRUNCATE positions")
      t0 = bl.now()
      local ok, out = bl.stack.run(bl.pg_command(s, "psql", "-X -q -v ON_ERROR_STOP=1 -c " ..
        bl.shell_quote(("\\copy positions (account_id, symbol, quantity) FROM '%s' WITH (FORMAT csv)"):format(csv))))
      copy[run] = bl.now() - t0 -- psql's start-up and connection included
      if not ok then error("psql \\copy failed: " .. out, 0) end
      local d2 = digest(s)
      if d2 ~= expect then error(("\\copy and db:batch left different rows: %s vs %s"):format(d2, expect), 0) end
      bl.say("%d rows, run %d: db:insert %.3f s (%d calls), db:batch %.3f s (%d calls), psql \\copy %.3f s", n, run,
        insert[run], insert_calls, batch[run], calls, copy[run])
    end
    local b, c, ins = bl.median(batch), bl.median(copy), bl.median(insert)
    results[#results + 1] = {
      insert_seconds = ins, insert_runs = insert, insert_calls = insert_calls,
      insert_vs_batch = b / ins, insert_vs_copy = ins / c,
      rows = n, runs = runs, batch_seconds = b, batch_runs = batch,
      batch_best = math.min(table.unpack(batch)), calls = calls, requests = requests,
      rows_per_second = n / b, copy_seconds = c, copy_runs = copy, copy_rows_per_second = n / c, ratio = b / c,
      encode_seconds = encode_seconds, call_seconds = bl.median(call_seconds),
    }
  end
  assert(s:set_faults { latency_ms = 0 })
  conn:close()

  -- growth, judged on each size's best run (on a shared machine the other
  -- processes only ever add time): seconds per row against the smallest size
  local first = results[1]
  for _, r in ipairs(results) do
    r.per_row_us = r.batch_seconds / r.rows * 1e6
    r.per_row_vs_first = (r.batch_best / r.rows) / (first.batch_best / first.rows)
  end
  -- least-squares exponent k in seconds ~ rows^k over all sizes (1 = linear)
  local sx, sy, sxx, sxy, m = 0, 0, 0, 0, #results
  for _, r in ipairs(results) do
    local x, y = math.log(r.rows), math.log(r.batch_best)
    sx, sy, sxx, sxy = sx + x, sy + y, sxx + x * x, sxy + x * y
  end
  local exponent = m > 1 and (m * sxy - sx * sy) / (m * sxx - sx * sx) or 1
  local largest = results[#results]
  local out = { latency_ms = LATENCY, results = results, exponent = exponent,
                linear = exponent <= 1.15 and largest.per_row_vs_first <= 1.5 }
  bl.write_result("scale", out)

  print(("seeding positions through db:insert and db:batch vs psql \\copy (same rows, same table; %g ms injected" ..
    " latency)"):format(LATENCY))
  print(("  %8s %10s %6s %10s %6s %10s %10s %12s"):format("rows", "db:insert", "calls", "db:batch", "calls",
    "\\copy", "insert/copy", "batch/insert"))
  for _, r in ipairs(results) do
    print(("  %8d %8.3f s %6d %8.3f s %6d %8.3f s %10.2fx %11.1fx"):format(r.rows, r.insert_seconds, r.insert_calls,
      r.batch_seconds, r.calls, r.copy_seconds, r.insert_vs_copy, r.insert_vs_batch))
  end
  print(("  growth (best runs): seconds ~ rows^%.2f; per-row cost at %d rows is %.2fx that at %d rows: %s")
    :format(exponent, largest.rows, largest.per_row_vs_first, first.rows, out.linear and "linear" or "NOT linear"))
  print(("  client-side encoding (checks + JSON) at %d rows: %.3f s; time inside Data API calls: %.3f s")
    :format(largest.rows, largest.encode_seconds, largest.call_seconds))
end)
