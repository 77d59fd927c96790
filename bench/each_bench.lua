-- Reading at scale: db:each over 100,000 positions (rows/s, pages, Data API
-- calls), in both of its modes (keyset paging on the primary key, and the
-- default server-side cursor, its pages as JSON documents, in one
-- transaction), next to `psql \copy (SELECT ...) TO /dev/null` of the same rows
-- as the physical floor.  A private stack; no latency is injected unless ALEX_BENCH_LATENCY_MS
-- says so.
--
--   make bench-each     (or: ALEXLUA=... ALEX_DATAAPI=... alexlua --no-env-file bench/each_bench.lua)
--   ALEX_BENCH_EACH_ROWS=100000 ALEX_BENCH_EACH_RUNS=3 ALEX_BENCH_LATENCY_MS=0
-- Result: bench/out/each.json.
local bl = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "bench") .. "/benchlib.lua")

local ROWS = math.tointeger(bl.env_number("ALEX_BENCH_EACH_ROWS", 100000))
local RUNS = math.tointeger(bl.env_number("ALEX_BENCH_EACH_RUNS", 3))
local LATENCY = bl.env_number("ALEX_BENCH_LATENCY_MS", 0)

local MODES = {
  { name = "keyset", sql = "SELECT * FROM positions", opts = { key = "id" } },
  { name = "cursor", sql = "SELECT * FROM positions ORDER BY id", opts = nil },
}

bl.with_stack({}, function(s)
  bl.say("migrating, seeding and filling positions with %d rows", ROWS)
  bl.reset(s)
  local n_symbols = tonumber(bl.psql(s, "SELECT count(*) FROM instruments"))
  local n_accounts = (ROWS + n_symbols - 1) // n_symbols
  bl.psql(s, ([[
INSERT INTO accounts (clerk_user_id, account_name)
  SELECT 'test_user_001', 'each ' || g FROM generate_series(1, %d) g;
DELETE FROM positions;
INSERT INTO positions (account_id, symbol, quantity)
  SELECT a.id, i.symbol, (random() * 10000)::numeric(20,8)
  FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM accounts WHERE account_name LIKE 'each %%') a
  CROSS JOIN (SELECT symbol, row_number() OVER (ORDER BY symbol) AS n FROM instruments) i
  WHERE (a.n - 1) * %d + i.n <= %d;
ANALYZE positions;]]):format(n_accounts, n_symbols, ROWS))
  assert(tonumber(bl.psql(s, "SELECT count(*) FROM positions")) == ROWS)

  local conn = bl.connect(s)
  assert(s:set_faults { latency_ms = LATENCY })
  local results = {}
  for _, mode in ipairs(MODES) do
    local seconds, calls, ops, bytes = {}, nil, nil, nil
    for run = 1, RUNS do
      assert(s:reset_stats())
      -- every row once: both modes return rows in id order (a uuid sorts as
      -- its text), so ids strictly rising and the table's count of rows mean
      -- each row exactly once; nothing is kept, as a loop over a table would
      local count, n, prev = 0, 0, ""
      local t0 = bl.now()
      for row in conn:each(mode.sql, nil, mode.opts) do
        count = count + 1
        if row.id > prev then n = n + 1 end
        prev = row.id
      end
      seconds[run] = bl.now() - t0
      assert(count == ROWS and n == ROWS,
        ("%s: %d rows, %d in rising id order, expected %d"):format(mode.name, count, n, ROWS))
      local st = assert(s:stats())
      calls, ops = bl.calls(s)
      bytes = st.bytes_out
      bl.say("%s run %d: %.3f s, %d calls", mode.name, run, seconds[run], calls)
    end
    local m = bl.median(seconds)
    results[#results + 1] = { mode = mode.name, seconds = m, runs = seconds, calls = calls,
      pages = ops.ExecuteStatement, operations = ops, rows_per_second = ROWS / m, response_bytes = bytes }
  end
  assert(s:set_faults { latency_ms = 0 })
  conn:close()

  local copy = {}
  for run = 1, RUNS do
    local t0 = bl.now()
    local ok, out = bl.stack.run(bl.pg_command(s, "psql", "-X -q -v ON_ERROR_STOP=1 -c " ..
      bl.shell_quote("\\copy (SELECT * FROM positions ORDER BY id) TO '/dev/null'")))
    copy[run] = bl.now() - t0
    if not ok then error("psql \\copy failed: " .. out, 0) end
  end
  local c = bl.median(copy)
  for _, r in ipairs(results) do r.ratio_to_copy = r.seconds / c end
  local out = { rows = ROWS, latency_ms = LATENCY, runs = RUNS, results = results,
                copy = { seconds = c, runs = copy, rows_per_second = ROWS / c } }
  bl.write_result("each", out)

  print(("db:each over %d positions (%g ms injected latency), median of %d runs"):format(ROWS, LATENCY, RUNS))
  for _, r in ipairs(results) do
    print(("  db:each %-9s %7.3f s %9.0f rows/s  %3d pages  %3d calls  %5.1f MiB of responses  %.1fx \\copy")
      :format(r.mode, r.seconds, r.rows_per_second, r.pages, r.calls, r.response_bytes / 1048576, r.ratio_to_copy))
  end
  print(("  psql \\copy TO /dev/null %7.3f s %9.0f rows/s (the floor)"):format(c, ROWS / c))
end)
