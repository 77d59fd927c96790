-- Issues 5 and 7: `alexlua scripts/reset.lua --with-test-data` against the
-- same reset done the Python package's way through boto3
-- (bench/boto3_reset.py: a statement per call, a row per call, three Python
-- processes), on one private stack, with 0, 30 and 100 ms of latency injected
-- into every Data API call.  Wall time is the whole command, process start-up
-- included; Data API calls are the service's own counters (/_alex/stats).
-- Both resets must leave the same schema and the same rows (checked).
-- Targets at 30 ms: alexlua at least 5x faster, and at most 10 calls.
--
--   make bench-reset     (or: ALEXLUA=... ALEX_DATAAPI=... alexlua --no-env-file bench/reset_bench.lua)
--   ALEX_BENCH_LATENCIES="0,30,100" ALEX_BENCH_RESET_RUNS=3 (rounds per latency, alternating sides)
--   ALEX_BENCH_RESET_WARMUP=3 (unmeasured rounds at 0 ms first)
-- Result: bench/out/reset.json.
local bl = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "bench") .. "/benchlib.lua")

local LATENCIES = {}
for v in (os.getenv("ALEX_BENCH_LATENCIES") or "0,30,100"):gmatch("[^,%s]+") do
  LATENCIES[#LATENCIES + 1] = assert(tonumber(v), "ALEX_BENCH_LATENCIES: numbers, comma-separated")
end
local RUNS = math.tointeger(bl.env_number("ALEX_BENCH_RESET_RUNS", 3))
local WARMUP = math.tointeger(bl.env_number("ALEX_BENCH_RESET_WARMUP", 3))
local TARGET_RATIO, TARGET_CALLS, TARGET_LATENCY = 5, 10, 30

local q = bl.shell_quote
local SIDES = {
  { name = "alexlua", cmd = ("%s --no-env-file %s --with-test-data"):format(q(bl.alexlua()),
      q(bl.root .. "/scripts/reset.lua")) },
  { name = "boto3", cmd = ("%s %s --with-test-data"):format(q(bl.PYTHON), q(bl.root .. "/bench/boto3_reset.py")) },
}

-- What a reset leaves, without ids and timestamps (the shared content
-- fingerprint: schema and rows), alexlua's migration ledger aside: the
-- reference keeps none.
local fingerprint = require "fingerprint"
local function print_of(s)
  return fingerprint.digest((fingerprint.content(function(sql) return bl.psql(s, sql) end, { "schema_migrations" })))
end

local function run_side(s, side)
  assert(s:reset_stats())
  local ok, out, seconds = bl.run_with_stack(s, side.cmd)
  if not ok then error(side.name .. " reset failed:\n" .. out, 0) end
  local calls, ops = bl.calls(s)
  return seconds, calls, ops, out
end

bl.with_stack({}, function(s)
  -- warm-up (not measured): page cache, Python byte code, and the service's
  -- pooled PostgreSQL sessions (a fresh backend's first DDL runs much slower)
  local prints = {}
  for _ = 1, WARMUP do
    for _, side in ipairs(SIDES) do
      local _, calls = run_side(s, side)
      prints[side.name] = print_of(s)
      bl.say("warm-up %s: %d calls, fingerprint %s", side.name, calls, prints[side.name])
    end
  end
  if prints.alexlua ~= prints.boto3 then
    error(("the two resets leave different databases: alexlua %s, boto3 %s"):format(prints.alexlua, prints.boto3), 0)
  end

  local results = {}
  for _, latency in ipairs(LATENCIES) do
    assert(s:set_faults { latency_ms = latency })
    local per = {}
    for _, side in ipairs(SIDES) do per[side.name] = { seconds = {}, calls = nil } end
    for run = 1, RUNS do
      for _, side in ipairs(SIDES) do
        local seconds, calls, ops = run_side(s, side)
        local fp = print_of(s)
        if fp ~= prints.alexlua then error(side.name .. " left a different database: " .. fp, 0) end
        local r = per[side.name]
        r.seconds[run] = seconds
        if r.calls and r.calls ~= calls then bl.say("note: %s made %d calls, before %d", side.name, calls, r.calls) end
        r.calls, r.operations = calls, ops
        bl.say("latency %g ms, run %d, %-7s %.3f s, %d calls", latency, run, side.name, seconds, calls)
      end
    end
    local a, b = per.alexlua, per.boto3
    a.median, b.median = bl.median(a.seconds), bl.median(b.seconds)
    results[#results + 1] = { latency_ms = latency, alexlua = a, boto3 = b, ratio = b.median / a.median }
  end
  assert(s:set_faults { latency_ms = 0 })

  local at_target
  for _, r in ipairs(results) do if r.latency_ms == TARGET_LATENCY then at_target = r end end
  local out = { runs = RUNS, results = results, fingerprint = prints.alexlua,
                target = { ratio = TARGET_RATIO, calls = TARGET_CALLS, latency_ms = TARGET_LATENCY } }
  if at_target then
    out.met = at_target.ratio >= TARGET_RATIO and at_target.alexlua.calls <= TARGET_CALLS
  end
  bl.write_result("reset", out)

  print(("reset --with-test-data: alexlua vs the Python package's way through boto3 (median of %d runs)"):format(RUNS))
  print(("  %-8s %12s %6s %12s %6s %8s"):format("latency", "alexlua", "calls", "boto3", "calls", "ratio"))
  for _, r in ipairs(results) do
    print(("  %5g ms %10.3f s %6d %10.3f s %6d %7.1fx"):format(r.latency_ms, r.alexlua.median, r.alexlua.calls,
      r.boto3.median, r.boto3.calls, r.ratio))
  end
  if at_target then
    print(("  at %d ms: %.1fx faster (target >= %dx), %d calls (target <= %d): %s"):format(TARGET_LATENCY,
      at_target.ratio, TARGET_RATIO, at_target.alexlua.calls, TARGET_CALLS, out.met and "met" or "NOT MET"))
  end
end)
