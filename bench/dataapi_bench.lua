-- Single-row SELECTs per second: through the local Data API service (one
-- keep-alive client, every request SigV4-signed, as alexlua sends them) against
-- the same SELECT over libpq directly (pgbench -S, one client), on the same
-- PostgreSQL and the same pgbench table, in the same run; plus the service's
-- memory (VmRSS) at idle and under load.  A private stack: its own temp state
-- folder and ports.
--
--   make bench-dataapi                      (or: alexlua bench/dataapi_bench.lua)
--   ALEX_BENCH_SECONDS=10  measured time per side (default 10), in alternating 2-s rounds
--   ALEX_BENCH_SCALE=1     pgbench scale (100 000 accounts per unit)
--   ALEX_BENCH_STRICT=1    exit 1 when the service is below 1/3 of direct
--   ALEX_BENCH_BREAKDOWN=1 also measure the floors: an unsigned GET /_alex/health
--                          round trip on the same client, and pgbench running the
--                          SELECT followed by DISCARD ALL (the per-call session reset)
-- Results also go to bench/out/dataapi_bench.json.
local bl = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "bench") .. "/benchlib.lua")
local http = require "alex.http"
local sigv4 = require "alex.sigv4"
local clock = require "alex.clock"
local cjson = require "cjson"

local stack, shell_quote, say = bl.stack, bl.shell_quote, bl.say
local TARGET = 1 / 3

local SECONDS = bl.env_number("ALEX_BENCH_SECONDS", 10, 1)
local SCALE = math.floor(bl.env_number("ALEX_BENCH_SCALE", 1, 1))
local STRICT = os.getenv("ALEX_BENCH_STRICT") == "1"
local BREAKDOWN = os.getenv("ALEX_BENCH_BREAKDOWN") == "1"
local ROUND = 2 -- seconds per round
local MAX_REQUESTS = 5000000 -- a bound on the loop whatever the clock does

local function vmrss_kib(pid)
  local f = pid and io.open("/proc/" .. pid .. "/status", "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)"))
end

local function mib(kib) return kib and ("%.1f MiB"):format(kib / 1024) or "n/a" end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  return sorted[math.max(1, math.ceil(#sorted * p))]
end

-- pgbench against the private cluster as the application role.
local function pgbench(s, args)
  local ok, out = stack.run(bl.pg_command(s, "pgbench", args))
  if not ok then error("pgbench " .. args .. " failed:\n" .. out, 0) end
  return out
end

-- One keep-alive client for the whole run; each round adds to acc.
local function service_round(s, client, seconds, acc)
  local url = s.endpoint .. "/Execute"
  local env = s.env
  local accounts = 100000 * SCALE
  local head = ('{"resourceArn":%s,"secretArn":%s,"database":%s,' ..
    '"sql":"SELECT abalance FROM pgbench_accounts WHERE aid = :aid",' ..
    '"parameters":[{"name":"aid","value":{"longValue":'):format(
    cjson.encode(env.AURORA_CLUSTER_ARN), cjson.encode(env.AURORA_SECRET_ARN), cjson.encode(env.AURORA_DATABASE))
  local latencies, n = acc.latencies, 0
  local start = clock.monotonic()
  local next_sample = start
  local stop_at = start + seconds
  while acc.requests < MAX_REQUESTS do
    local t0 = clock.monotonic()
    if t0 >= stop_at then break end
    local body = head .. math.random(1, accounts) .. "}}]}"
    local signed = sigv4.sign {
      method = "POST", url = url, body = body,
      headers = { { "Content-Type", "application/json" } },
      access_key = env.AWS_ACCESS_KEY_ID, secret_key = env.AWS_SECRET_ACCESS_KEY,
      region = env.AWS_REGION, service = "rds-data",
    }
    local res, msg, kind = client:request { method = "POST", url = url, headers = signed.headers, body = body }
    if not res then error(("request failed: %s (%s)"):format(tostring(msg), tostring(kind)), 0) end
    if res.status ~= 200 then error(("request answered %d: %s"):format(res.status, res.body), 0) end
    local decoded = cjson.decode(res.body)
    local field = decoded.records and decoded.records[1] and decoded.records[1][1]
    if not (field and type(field.longValue) == "number") then
      error("unexpected answer: " .. res.body, 0)
    end
    acc.new_connections = acc.new_connections + (res.new_connections or 0)
    local t1 = clock.monotonic()
    n = n + 1
    acc.requests = acc.requests + 1
    latencies[#latencies + 1] = t1 - t0
    if t1 >= next_sample then
      acc.rss_max_kib = math.max(acc.rss_max_kib, vmrss_kib(s:service_pid()) or 0)
      next_sample = t1 + 0.5
    end
  end
  local elapsed = clock.monotonic() - start
  acc.seconds = acc.seconds + elapsed
  return n / elapsed
end

local function main()
  say("starting a private stack")
  local s = stack.start {}
  local ok, result = pcall(function()
    local pid = s:service_pid()
    say("initialising pgbench tables (scale %d)", SCALE)
    pgbench(s, ("-i -q -s %d"):format(SCALE))
    local rss_idle = vmrss_kib(pid)

    local client = http.new { connect_timeout = 5, timeout = 30 }
    local svc = { requests = 0, seconds = 0, new_connections = 0, latencies = {}, rss_max_kib = 0 }
    say("warming up the service")
    service_round(s, client, 1, { requests = 0, seconds = 0, new_connections = 0, latencies = {}, rss_max_kib = 0 })
    s:reset_stats()

    -- Alternate short rounds so that a change in the machine's background load
    -- hits both sides alike.
    local rounds = math.max(1, SECONDS // ROUND)
    local per = SECONDS // rounds
    say("%d rounds of %d s: pgbench -n -S -c 1 -T %d, then the same time of signed ExecuteStatement", rounds, per, per)
    local direct_rates, ratios = {}, {}
    for i = 1, rounds do
      local out = pgbench(s, ("-n -S -c 1 -T %d"):format(per))
      local tps = tonumber(out:match("tps = ([%d.]+) %(without initial connection time%)") or
                           out:match("tps = ([%d.]+)"))
      if not tps then error("could not read pgbench's tps from:\n" .. out, 0) end
      direct_rates[i] = tps
      local rate = service_round(s, client, per, svc)
      ratios[i] = rate / tps
      say("round %d: direct %.0f/s, service %.0f/s, ratio %.2f", i, tps, rate, ratios[i])
    end
    local breakdown
    if BREAKDOWN then
      breakdown = {}
      local n, t0 = 0, clock.monotonic()
      while clock.monotonic() - t0 < per and n < MAX_REQUESTS do
        local res = client:request { method = "GET", url = s.admin .. "/health", headers = {} }
        if not (res and res.status == 200) then error("GET /_alex/health failed", 0) end
        n = n + 1
      end
      breakdown.health_rate = n / (clock.monotonic() - t0)
      local script = s.dir .. "/select_discard.sql"
      local f = assert(io.open(script, "w"))
      f:write(("\\set aid random(1, %d)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\nDISCARD ALL;\n")
        :format(100000 * SCALE))
      f:close()
      local out = pgbench(s, ("-n -M extended -f %s -c 1 -T %d"):format(shell_quote(script), per))
      breakdown.select_discard_rate = tonumber(out:match("tps = ([%d.]+)"))
    end
    client:close()
    local direct = 0
    for _, v in ipairs(direct_rates) do direct = direct + v end
    direct = direct / #direct_rates
    local rss_after = vmrss_kib(pid)
    local stats = s:stats()
    table.sort(svc.latencies)
    svc.rate = svc.requests / svc.seconds
    svc.p50_ms = percentile(svc.latencies, 0.50) * 1000
    svc.p99_ms = percentile(svc.latencies, 0.99) * 1000
    svc.latencies = nil

    return {
      seconds = SECONDS, scale = SCALE, direct_rate = direct, service = svc,
      ratio = svc.rate / direct, median_round_ratio = bl.median(ratios), rounds = rounds, target = TARGET,
      rss_idle_kib = rss_idle, rss_load_max_kib = svc.rss_max_kib, rss_after_kib = rss_after,
      service_stats = stats, breakdown = breakdown,
      cpus = tonumber((select(2, stack.run("nproc")):match("%d+"))),
    }
  end)
  s:stop()
  if not ok then
    io.stderr:write("bench: failed: ", tostring(result), "\n")
    os.exit(1)
  end
  local r = result
  print(("alex-dataapi bench: single-row SELECT by primary key, 1 client, %d s each, pgbench scale %d, %d CPUs")
    :format(r.seconds, r.scale, r.cpus or 0))
  print(("  direct libpq (pgbench -S)     %9.0f SELECT/s"):format(r.direct_rate))
  print(("  through alex-dataapi          %9.0f SELECT/s  (%d requests, p50 %.2f ms, p99 %.2f ms, %d new connections)")
    :format(r.service.rate, r.service.requests, r.service.p50_ms, r.service.p99_ms, r.service.new_connections))
  print(("  ratio service/direct          %9.2f  (median of %d rounds %.2f; target >= %.2f: %s)")
    :format(r.ratio, r.rounds, r.median_round_ratio, TARGET, r.ratio >= TARGET and "met" or "NOT MET"))
  print(("  alex-dataapi VmRSS            idle %s, under load max %s, after %s")
    :format(mib(r.rss_idle_kib), mib(r.rss_load_max_kib), mib(r.rss_after_kib)))
  if r.breakdown then
    print(("  floor: GET /_alex/health      %9.0f req/s (HTTP only, same client)"):format(r.breakdown.health_rate))
    print(("  floor: pgbench SELECT+DISCARD %9.0f calls/s (the PostgreSQL work per call)")
      :format(r.breakdown.select_discard_rate or 0))
  end
  local ops = r.service_stats and r.service_stats.operations
  if type(ops) == "table" then
    local parts = {}
    for name, count in pairs(ops) do
      if type(count) == "number" and count > 0 then parts[#parts + 1] = ("%s=%d"):format(name, count) end
    end
    table.sort(parts)
    if #parts > 0 then print("  service counted (load phase)  " .. table.concat(parts, " ")) end
  end

  r.service_stats = nil
  bl.write_result("dataapi_bench", r)
  if STRICT and r.ratio < TARGET then os.exit(1) end
end

main()
