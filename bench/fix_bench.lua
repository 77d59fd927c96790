-- A data fix over 100,000 rows (scripts/fixes/split_adjust.lua over
-- price_history, 500 rows a batch, each batch committed with its checkpoint),
-- killed with -9 half-way and resumed with --resume --apply: every row must
-- be processed exactly once.  Its throughput is set beside a hand-written
-- loop doing the same work the way a script did it before alex.fix (keyset
-- pages, one UPDATE per page, no record, no checkpoint, no resume), on the
-- same private stack.
--
--   make bench-fix     (or: ALEXLUA=... ALEX_DATAAPI=... alexlua --no-env-file bench/fix_bench.lua)
--   ALEX_BENCH_FIX_ROWS=100000 ALEX_BENCH_LATENCY_MS=0
-- Result: bench/out/fix.json.
local bl = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "bench") .. "/benchlib.lua")

local ROWS = math.tointeger(bl.env_number("ALEX_BENCH_FIX_ROWS", 100000))
local LATENCY = bl.env_number("ALEX_BENCH_LATENCY_MS", 0)
local BATCH = 500
local FIX_ARGS = { "SPY", "4", "--before", "2600-01-01", "--batch-size", tostring(BATCH), "--apply" }

-- ROWS closes of 400 before the split date, one after it.
local function fill(s)
  bl.psql(s, ("DELETE FROM data_fix_runs; DELETE FROM price_history;" ..
    " INSERT INTO price_history (symbol, price_date, close_price) SELECT 'SPY', DATE '1900-01-01' + g, 400" ..
    " FROM generate_series(0, %d) g; INSERT INTO price_history (symbol, price_date, close_price)" ..
    " VALUES ('SPY', DATE '2700-01-01', 400); ANALYZE price_history;"):format(ROWS - 1))
end

-- "divided|untouched" closes: ROWS|1 when every row was processed once.
local function outcome(s)
  return bl.psql(s, "SELECT count(*) FILTER (WHERE close_price = 100) || '|' || count(*) FILTER" ..
    " (WHERE close_price = 400) || '|' || count(*) FILTER (WHERE close_price NOT IN (100, 400)) FROM price_history")
end

local function fix_command()
  local parts = { bl.shell_quote(bl.alexlua()), "--no-env-file",
                  bl.shell_quote(bl.root .. "/scripts/fixes/split_adjust.lua") }
  for _, a in ipairs(FIX_ARGS) do parts[#parts + 1] = bl.shell_quote(a) end
  return table.concat(parts, " ")
end

bl.with_stack({}, function(s)
  bl.say("migrating, seeding and filling price_history with %d rows", ROWS)
  bl.reset(s)
  assert(s:set_faults { latency_ms = LATENCY })

  -- 1. the fix, run whole, for its throughput
  fill(s)
  local ok, out, whole = bl.run_with_stack(s, fix_command())
  if not ok then error("the fix failed:\n" .. out, 0) end
  assert(outcome(s) == ROWS .. "|1|0", "the whole run: " .. outcome(s))
  bl.say("fix, whole run: %.2f s", whole)

  -- 2. the same work as a hand-written loop
  fill(s)
  local conn = bl.connect(s)
  local t0 = bl.now()
  local after, n = nil, 0
  while true do
    local rows
    if after then
      rows = conn:query("SELECT id FROM price_history WHERE symbol = 'SPY' AND price_date < DATE '2600-01-01'" ..
        " AND id > CAST(:after AS uuid) ORDER BY id LIMIT :n", { after = after, n = BATCH })
    else
      rows = conn:query("SELECT id FROM price_history WHERE symbol = 'SPY' AND price_date < DATE '2600-01-01'" ..
        " ORDER BY id LIMIT :n", { n = BATCH })
    end
    if #rows == 0 then break end
    local ids = {}
    for i, r in ipairs(rows) do ids[i] = r.id end
    conn:execute("UPDATE price_history SET close_price = round(close_price / 4, 4)" ..
      " WHERE id = ANY(CAST(string_to_array(:ids, ',') AS uuid[]))", { ids = table.concat(ids, ",") })
    n = n + #rows
    after = rows[#rows].id
  end
  local loop = bl.now() - t0
  conn:close()
  assert(n == ROWS and outcome(s) == ROWS .. "|1|0", "the loop: " .. outcome(s))
  bl.say("hand-written loop: %.2f s", loop)

  -- 3. the fix killed with -9 half-way, then resumed
  fill(s)
  local dir = s.dir .. "/fix-bench"
  os.execute("mkdir -p " .. bl.shell_quote(dir))
  local rows_done = bl.pg_command(s, "psql", "-X -A -t -c " ..
    bl.shell_quote("SELECT coalesce(max(rows_done), 0) FROM data_fix_runs"))
  local killer = ([[%s > %s/out 2>&1 & pid=$!
    while :; do
      done=$(%s 2>/dev/null)
      [ "${done:-0}" -ge %d ] && break
      kill -0 $pid 2>/dev/null || break
      sleep 0.02
    done
    kill -9 $pid; wait $pid; echo $? > %s/rc]]):format(fix_command(), bl.shell_quote(dir), rows_done, ROWS // 2,
    bl.shell_quote(dir))
  bl.run_with_stack(s, killer)
  local done_at_kill = tonumber(bl.psql(s, "SELECT rows_done FROM data_fix_runs"))
  local status_at_kill = bl.psql(s, "SELECT status FROM data_fix_runs")
  bl.say("killed at %d of %d rows (status %s)", done_at_kill, ROWS, status_at_kill)
  local resume = fix_command():gsub("'%-%-apply'", "'--resume' '--apply'")
  local t1 = bl.now()
  ok, out = bl.run_with_stack(s, resume)
  local resumed = bl.now() - t1
  if not ok then error("the resumed fix failed:\n" .. out, 0) end
  local result = outcome(s)
  local exactly_once = result == ROWS .. "|1|0"
  local record = bl.psql(s, "SELECT status || '|' || rows_done || '|' || rows_changed FROM data_fix_runs")
  bl.say("resumed in %.2f s: divided|untouched|other = %s; run %s", resumed, result, record)
  assert(s:set_faults { latency_ms = 0 })

  local res = {
    rows = ROWS, batch_size = BATCH, latency_ms = LATENCY,
    fix_seconds = whole, fix_rows_per_second = ROWS / whole,
    loop_seconds = loop, loop_rows_per_second = ROWS / loop,
    killed_at = done_at_kill / ROWS, status_at_kill = status_at_kill, resume_seconds = resumed,
    outcome = result, record = record, exactly_once = exactly_once and record == ("applied|%d|%d"):format(ROWS, ROWS),
  }
  bl.write_result("fix", res)
  print(("collection fix over %d rows, batches of %d (%g ms injected latency)"):format(ROWS, BATCH, LATENCY))
  print(("  whole run %.2f s (%.0f rows/s); hand-written loop %.2f s (%.0f rows/s): %.2fx its speed"):format(whole,
    res.fix_rows_per_second, loop, res.loop_rows_per_second, res.fix_rows_per_second / res.loop_rows_per_second))
  print(("  killed -9 at %.0f%%, resumed in %.2f s: every row once: %s (%s)"):format(res.killed_at * 100, resumed,
    res.exactly_once and "yes" or "NO", result))
  if not res.exactly_once then os.exit(1) end
end)
