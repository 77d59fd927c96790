-- `make bench`: runs every benchmark (startup, sigv4, decode, dataapi, batch,
-- reset, scale, each), each on its own private stack where it needs one, then
-- writes bench/REPORT.md (the machine, every figure next to its reference, the
-- ratio and the target, all measured in this run) and bench/report.png (a
-- gnuplot chart: reset wall time against injected latency, alexlua vs boto3;
-- seeding time against rows, db:batch vs psql \copy).
--
--   ALEXLUA=... ALEX_DATAAPI=... alexlua --no-env-file bench/report.lua [name ...]
-- With names, only those benches run (the report then shows only them).
-- Each bench's full output goes to bench/out/<name>.log.  Exit status 1 when a
-- bench failed to run (a missed target is reported, not an error).
local bl = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "bench") .. "/benchlib.lua")
local cjson = require "cjson"

local root, q = bl.root, bl.shell_quote
local OUT = root .. "/bench/out"
local ALEXLUA = bl.alexlua()
os.execute("mkdir -p " .. q(OUT))

local read = require("servers").read_file

local function sh(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local s = p and p:read("a") or ""
  if p then p:close() end
  return (s:gsub("%s+$", ""))
end

local function json_file(name)
  local text = read(OUT .. "/" .. name)
  if not text then return nil end
  local ok, v = pcall(cjson.decode, text)
  return ok and v or nil
end

-- ---------------------------------------------------------------- the benches

local env = ("ALEXLUA=%s ALEX_DATAAPI=%s "):format(q(ALEXLUA), q(os.getenv("ALEX_DATAAPI") or ""))
local lua_bench = function(file) return env .. q(ALEXLUA) .. " --no-env-file " .. q(root .. "/bench/" .. file) end
local BENCHES = {
  { name = "startup",
    cmd = env .. "OUT=" .. q(OUT) .. " sh " .. q(root .. "/bench/startup_bench.sh") .. " " .. q(ALEXLUA) },
  { name = "sigv4", cmd = lua_bench("sigv4_bench.lua") .. " 1 5" },
  { name = "decode", cmd = env .. "sh " .. q(root .. "/bench/decode_bench.sh") },
  { name = "dataapi", cmd = lua_bench("dataapi_bench.lua") },
  { name = "batch", cmd = lua_bench("batch_bench.lua") },
  { name = "reset", cmd = lua_bench("reset_bench.lua") },
  { name = "scale", cmd = lua_bench("scale_bench.lua") },
  { name = "each", cmd = lua_bench("each_bench.lua") },
  { name = "fix", cmd = lua_bench("fix_bench.lua") },
}

local wanted = {}
for i = 1, #arg do wanted[arg[i]] = true end
local load_before = (read("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)") or "?"
local started = bl.now()
local ran, failed = {}, {}
for _, b in ipairs(BENCHES) do
  if next(wanted) == nil or wanted[b.name] then
    local log = OUT .. "/" .. b.name .. ".log"
    io.stdout:write(("==> %s\n"):format(b.name))
    io.stdout:flush()
    local t0 = bl.now()
    local ok = os.execute(("cd %s && ( %s ) > %s 2>&1"):format(q(root), b.cmd, q(log)))
    b.seconds = bl.now() - t0
    b.ok = ok == true
    b.log = read(log) or ""
    for line in b.log:gmatch("[^\n]+") do
      if not line:find("^bench: ") and not line:find("^%s*Time %(mean") and not line:find("^%s*Range")
         and not line:find("^Benchmark") and not line:find("^%s*$") then
        io.stdout:write("    ", line, "\n")
      end
    end
    io.stdout:write(("    (%s in %.0f s; full output in bench/out/%s.log)\n"):format(b.ok and "done" or "FAILED",
      b.seconds, b.name))
    ran[#ran + 1] = b
    ran[b.name] = b
    if not b.ok then failed[#failed + 1] = b.name end
  end
end
local total_seconds = bl.now() - started

-- ---------------------------------------------------------------- parse

local fig = {}

if ran.startup and ran.startup.ok then
  local a, b = json_file("startup.json"), json_file("startup_python.json")
  if a and b then
    local m = {}
    for _, r in ipairs(a.results) do m[r.command] = r end
    for _, r in ipairs(b.results) do m[r.command] = r end
    fig.startup = { alexlua = m.alexlua.mean, lua = m["lua5.4"].mean, python = m["python3 import boto3"].mean,
                    runs = #m.alexlua.times }
  end
end

if ran.sigv4 and ran.sigv4.ok then
  local log = ran.sigv4.log
  local s = {}
  s.lua_best, s.lua_median = log:match("alexlua alex%.sigv4%.sign%s+(%d+)%s+(%d+)")
  -- the signer a client keeps per credential set: the path every request takes
  local sb, sm = log:match("alexlua signer:sign%s+(%d+)%s+(%d+)")
  s.signer_best, s.signer_median = tonumber(sb), tonumber(sm)
  local v, b1, m1 = log:match("botocore (%S+) add_auth, new SigV4Auth each%s+(%d+)%s+(%d+)")
  local _, b2, m2 = log:match("botocore (%S+) add_auth, one SigV4Auth%s+(%d+)%s+(%d+)")
  if s.lua_median and m1 and m2 then
    s.version = v
    s.lua_median = tonumber(s.lua_median)
    s.boto_median = math.max(tonumber(m1), tonumber(m2))
    s.boto_best = math.max(tonumber(b1), tonumber(b2))
    s.lua_best = tonumber(s.lua_best)
    fig.sigv4 = s
  end
end

if ran.decode and ran.decode.ok then
  local a, b, r = ran.decode.log:match("alexlua ([%d.]+) ms, botocore ([%d.]+) ms, alexlua is ([%d.]+)x")
  if a then fig.decode = { alexlua_ms = tonumber(a), botocore_ms = tonumber(b), ratio = tonumber(r) } end
end

if ran.dataapi and ran.dataapi.ok then fig.dataapi = json_file("dataapi_bench.json") end
for _, name in ipairs { "batch", "reset", "scale", "each", "fix" } do
  if ran[name] and ran[name].ok then fig[name] = json_file(name .. ".json") end
end

-- ---------------------------------------------------------------- the machine

local function first_match(text, pattern) return text and text:match(pattern) end
local cpuinfo, meminfo = read("/proc/cpuinfo"), read("/proc/meminfo")
local mem_kib = tonumber(first_match(meminfo, "MemTotal:%s*(%d+)") or "0")
local os_name = first_match(read("/etc/os-release"), 'PRETTY_NAME="([^"]*)"') or "?"
local boto = sh(bl.PYTHON .. " -c 'import boto3, botocore, sys; print(sys.version.split()[0], boto3.__version__," ..
  " botocore.__version__)'")
local py_version, boto3_version, botocore_version = boto:match("^(%S+) (%S+) (%S+)$")
local commit = sh("git -C " .. q(root) .. " rev-parse --short HEAD")
local dirty = sh("git -C " .. q(root) .. " status --porcelain --untracked-files=no")
local machine = {
  { "CPUs (nproc)", sh("nproc") },
  { "CPU model", first_match(cpuinfo, "model name%s*:%s*([^\n]+)") or "?" },
  { "RAM", ("%.1f GiB"):format(mem_kib / 1048576) },
  { "kernel", sh("uname -srm") },
  { "OS", os_name },
  { "load average before / after the run", "" },
  { "alexlua", sh(q(ALEXLUA) .. " -v") },
  { "Lua (reference)", sh("lua5.4 -v") },
  { "PostgreSQL", sh("/usr/lib/postgresql/15/bin/postgres --version") },
  { "Python, boto3, botocore",
    ("%s, %s, %s"):format(py_version or "?", boto3_version or "?", botocore_version or "?") },
  { "libcurl, OpenSSL", sh("curl-config --version") .. ", " .. sh("openssl version"):gsub(" %(.*", "") },
  { "C compiler", sh("cc --version"):match("^[^\n]*") or "?" },
  { "hyperfine, gnuplot", sh("hyperfine --version") .. ", " .. sh("gnuplot --version") },
  { "source", commit ~= "" and (commit .. (dirty ~= "" and " + uncommitted changes" or "")) or "?" },
}
local load_after = (read("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)") or "?"
machine[6][2] = load_before .. " / " .. load_after

-- ---------------------------------------------------------------- the chart

local write = require("servers").write_file

-- a log axis range of whole decades around the values
local function decades(values)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(values) do
    if v > 0 then lo, hi = math.min(lo, v), math.max(hi, v) end
  end
  if lo > hi then return "*:*" end
  return ("%g:%g"):format(10 ^ math.floor(math.log(lo, 10)), 10 ^ math.ceil(math.log(hi, 10)))
end

local chart = false
if fig.reset or fig.scale then
  local plots = {}
  if fig.reset then
    local lines, values = { "# latency_ms alexlua_s boto3_s alexlua_calls boto3_calls" }, {}
    for _, r in ipairs(fig.reset.results) do
      values[#values + 1], values[#values + 2] = r.alexlua.median, r.boto3.median
      lines[#lines + 1] = ("%g %.6f %.6f %d %d"):format(r.latency_ms, r.alexlua.median, r.boto3.median,
        r.alexlua.calls, r.boto3.calls)
    end
    write(OUT .. "/reset.dat", table.concat(lines, "\n") .. "\n")
    plots[#plots + 1] = ([[
set title "reset --with-test-data: wall time vs injected latency"
set xlabel "latency injected per Data API call (ms)"
set ylabel "seconds (whole command, median)"
set logscale y
set yrange [%s]
set xrange [-5:*]
set offsets 0, 0, graph 0.08, graph 0.08
set key bottom right
plot "%s/reset.dat" using 1:3 with linespoints lw 2 pt 7 title "boto3, the Python package's approach", \
     "" using 1:3:(sprintf("%%d calls", $5)) with labels offset 0,1 notitle, \
     "" using 1:2 with linespoints lw 2 pt 5 title "alexlua scripts/reset.lua", \
     "" using 1:2:(sprintf("%%d calls", $4)) with labels offset 0,-1 notitle
unset logscale
set autoscale y
]]):format(decades(values), OUT)
  end
  if fig.scale then
    local lines, values = { "# rows batch_s copy_s batch_calls" }, {}
    for _, r in ipairs(fig.scale.results) do
      values[#values + 1], values[#values + 2] = r.batch_seconds, r.copy_seconds
      lines[#lines + 1] = ("%d %.6f %.6f %d"):format(r.rows, r.batch_seconds, r.copy_seconds, r.calls)
    end
    write(OUT .. "/scale.dat", table.concat(lines, "\n") .. "\n")
    local first = fig.scale.results[1]
    plots[#plots + 1] = ([[
set title "seeding positions: seconds vs rows (log-log)"
set xlabel "rows"
set ylabel "seconds"
set logscale xy
set yrange [%s]
set xrange [500:200000]
set key bottom right
plot "%s/scale.dat" using 1:2 with linespoints lw 2 pt 5 title "db:batch (Data API)", \
     "" using 1:2:(sprintf("%%d call%%s", $4, $4 > 1 ? "s" : "")) with labels offset 0,1 notitle, \
     "" using 1:3 with linespoints lw 2 pt 7 title "psql \\copy (floor)", \
     %.9g * x with lines dt 2 lc rgb "gray40" title "linear from the first db:batch point"
unset logscale
]]):format(decades(values), OUT, first.batch_seconds / first.rows)
  end
  local gp = ([[
set terminal pngcairo size %d,520 font "Sans,10"
set output "%s/bench/report.png"
set grid
set multiplot layout 1,%d
%s
unset multiplot
]]):format(560 * #plots, root, #plots, table.concat(plots, "\n"))
  write(OUT .. "/report.gp", gp)
  local ok = os.execute("gnuplot " .. q(OUT .. "/report.gp") .. " > " .. q(OUT .. "/gnuplot.log") .. " 2>&1")
  chart = ok == true
  if not chart then failed[#failed + 1] = "chart (gnuplot: see bench/out/gnuplot.log)" end
end

-- ---------------------------------------------------------------- REPORT.md

local md = {}
local function add(s, ...) md[#md + 1] = select("#", ...) > 0 and s:format(...) or s end
local function met(ok) if ok == nil then return "—" end return ok and "met" or "**not met**" end
local function x(v) return ("%.1fx"):format(v) end
local function list3(t)
  local o = {}
  for i, v in ipairs(t) do o[i] = ("%.3f"):format(v) end
  return table.concat(o, ", ")
end

add("# alexlua benchmark report")
add("")
add("Written by `make bench` (`bench/report.lua`) on %s; every figure below was measured in that run, each against",
  os.date("!%Y-%m-%d %H:%M UTC"))
add("its reference on the same machine at the same time. Whole run: %.0f s. Full outputs of the run are in",
  total_seconds)
add("`bench/out/*.log` (not committed); how each bench works is in [README.md](README.md).")
add("")
add("## Machine")
add("")
add("| | |")
add("| --- | --- |")
for _, m in ipairs(machine) do add("| %s | %s |", m[1], (m[2]:gsub("|", "\\|"):gsub("\n", " "))) end
add("")
add("A shared 2-vCPU virtual machine is noisy: ratios measured side by side in one run are more telling than")
add("absolute figures.")
add("")
add("## Summary")
add("")
add("| benchmark | alexlua | reference | ratio | target | |")
add("| --- | --- | --- | --- | --- | --- |")
local s = fig.startup
if s then
  local r = s.alexlua / s.lua
  add("| start-up, `alexlua -e ''` (mean of %d) | %.2f ms | `lua5.4 -e ''` %.2f ms | %.2fx | <= 2x | %s |",
    s.runs, s.alexlua * 1e3, s.lua * 1e3, r, met(r <= 2))
  add("| start-up vs Python | %.2f ms | `python3 -c 'import boto3'` %.0f ms | %.0fx faster | — | |",
    s.alexlua * 1e3, s.python * 1e3, s.python / s.alexlua)
end
s = fig.sigv4
if s then
  local r = s.lua_median / s.boto_median
  add("| SigV4 signing (median round) | %d sig/s | botocore %s `add_auth` %d sig/s | %.1fx | >= 20x | %s |",
    s.lua_median, s.version or "?", s.boto_median, r, met(r >= 20))
  if s.signer_median then
    r = s.signer_median / s.boto_median
    add("| SigV4 `signer:sign`, one signer per credentials (median round) | %d sig/s | botocore %s `add_auth`"
      .. " %d sig/s | %.1fx | >= 25x | %s |", s.signer_median, s.version or "?", s.boto_median, r, met(r >= 25))
  end
end
s = fig.decode
if s then
  add("| decoding a 1 MiB result | %.1f ms | botocore parser %.1f ms | %.1fx faster | >= 3x | %s |",
    s.alexlua_ms, s.botocore_ms, s.ratio, met(s.ratio >= 3))
end
s = fig.dataapi
if s then
  add("| local Data API, 1-row SELECT, 1 client | %.0f /s | pgbench -S over libpq %.0f /s | %.2f | >= 0.33 | %s |",
    s.service.rate, s.direct_rate, s.ratio, met(s.ratio >= (s.target or 1 / 3)))
end
s = fig.batch
if s then
  add("| %d-row insert, %g ms latency/call | `db:batch` %.3f s, %d call |" ..
    " row-by-row `db:execute` %.2f s, %d calls | %.0fx | >= %dx | %s |", s.rows,
    s.latency_ms, s.batch.seconds, s.batch.calls, s.row_by_row.seconds, s.row_by_row.calls, s.ratio, s.target,
    met(s.met))
end
s = fig.reset
if s then
  for _, r in ipairs(s.results) do
    local target, verdict = "—", ""
    if r.latency_ms == s.target.latency_ms then
      target = ("faster >= %dx, <= %d calls"):format(s.target.ratio, s.target.calls)
      verdict = met(s.met)
    end
    add("| reset --with-test-data, %g ms latency | %.3f s, %d calls |" ..
      " boto3 %.3f s, %d calls | %.1fx faster | %s | %s |",
      r.latency_ms, r.alexlua.median, r.alexlua.calls, r.boto3.median, r.boto3.calls, r.ratio, target, verdict)
  end
end
s = fig.scale
if s then
  for _, r in ipairs(s.results) do
    add("| seed %d positions with `db:batch` | %.3f s, %d call(s), %.0f rows/s |" ..
      " psql `\\copy` %.3f s, %.0f rows/s | %.1fx the floor | — | |",
      r.rows, r.batch_seconds, r.calls, r.rows_per_second, r.copy_seconds, r.copy_rows_per_second, r.ratio)
    if r.insert_seconds then
      local largest = r == s.results[#s.results]
      add("| seed %d positions with `db:insert` | %.3f s, %d call(s) | `db:batch` %.3f s | %.1fx faster | %s | %s |",
        r.rows, r.insert_seconds, r.insert_calls, r.batch_seconds, r.insert_vs_batch, largest and ">= 3x" or "—",
        largest and met(r.insert_vs_batch >= 3) or "")
      add("| seed %d positions with `db:insert` | %.3f s | psql `\\copy` %.3f s | %.2fx the floor | %s | %s |",
        r.rows, r.insert_seconds, r.copy_seconds, r.insert_vs_copy, largest and "<= 1.5x" or "—",
        largest and met(r.insert_vs_copy <= 1.5) or "")
    end
  end
  add("| seeding growth 1k → 100k | seconds ~ rows^%.2f | linear = rows^1 | | linear | %s |", s.exponent,
    met(s.linear))
end
s = fig.each
if s then
  for _, r in ipairs(s.results) do
    local target = r.mode == "cursor" and "<= 2x" or "—"
    add("| `db:each` %s over %d rows | %.3f s, %.0f rows/s, %d pages, %d calls |" ..
      " psql `\\copy` out %.3f s | %.1fx the floor | %s | %s |",
      r.mode, s.rows, r.seconds, r.rows_per_second, r.pages, r.calls, s.copy.seconds, r.ratio_to_copy, target,
      r.mode == "cursor" and met(r.ratio_to_copy <= 2) or "")
  end
end
s = fig.fix
if s then
  add("| %d-row collection fix, killed at %d%% and resumed | every row once: %s; %.0f rows/s | hand-written loop" ..
    " %.0f rows/s | %.2fx its speed | exactly once | %s |", s.rows, math.floor(s.killed_at * 100 + 0.5),
    s.exactly_once and "yes" or "**no**", s.fix_rows_per_second, s.loop_rows_per_second,
    s.fix_rows_per_second / s.loop_rows_per_second, met(s.exactly_once))
end
for _, b in ipairs(ran) do
  if not b.ok then add("| %s | **failed to run** (see bench/out/%s.log) | | | | |", b.name, b.name) end
end
add("")
if chart then
  add("![reset wall time against latency; seeding time against rows](report.png)")
  add("")
end

-- details
if fig.batch then
  s = fig.batch
  add("## Batch insert")
  add("")
  add("%d rows into `price_history` (`INSERT ... VALUES (:symbol, :price_date, :close_price)`), %g ms injected",
    s.rows, s.latency_ms)
  add("before every Data API call. `db:batch`: %d BatchExecuteStatement request(s), %.0f rows/s, median of %d runs",
    s.batch.requests, s.batch.rows_per_second, #s.batch.runs)
  add("(%s s). Row by row: %d ExecuteStatement calls, %.0f rows/s, i.e. %.1f ms per call of which %g ms injected.",
    list3(s.batch.runs),
    s.row_by_row.calls, s.row_by_row.rows_per_second, s.row_by_row.seconds / s.row_by_row.calls * 1e3, s.latency_ms)
  add("")
end
if fig.reset then
  s = fig.reset
  add("## Reset")
  add("")
  add("`alexlua scripts/reset.lua --with-test-data` against `bench/boto3_reset.py --with-test-data` (the Python")
  add("package's approach applied to this schema, through boto3: a statement or a row per call, three Python")
  add("processes; the package itself, run unchanged, makes 64 calls for its smaller schema) on the same service;")
  add("wall time of the whole command, median of %d alternating runs per latency; calls from the service's", s.runs)
  add("`/_alex/stats`. Both leave the same schema and rows (fingerprint `%s`, checked after every run).",
    s.fingerprint)
  add("")
  add("| latency | alexlua | calls | boto3 | calls | ratio | alexlua runs | boto3 runs |")
  add("| --- | --- | --- | --- | --- | --- | --- | --- |")
  for _, r in ipairs(s.results) do
    add("| %g ms | %.3f s | %d | %.3f s | %d | %s | %s | %s |", r.latency_ms, r.alexlua.median, r.alexlua.calls,
      r.boto3.median, r.boto3.calls, x(r.ratio), list3(r.alexlua.seconds), list3(r.boto3.seconds))
  end
  add("")
  local r0, rn
  for _, r in ipairs(s.results) do
    if r.latency_ms == 0 then r0 = r end
    if not rn or r.latency_ms > rn.latency_ms then rn = r end
  end
  if r0 and rn and rn.latency_ms > 0 then
    add("Fixed cost at 0 ms: alexlua %.3f s, boto3 %.3f s (three interpreter start-ups and boto3 imports).",
      r0.alexlua.median, r0.boto3.median)
    add("Cost per ms of latency, from 0 to %g ms: alexlua %.1f ms/ms (%d calls), boto3 %.1f ms/ms (%d calls).",
      rn.latency_ms, (rn.alexlua.median - r0.alexlua.median) / rn.latency_ms * 1e3,
      rn.alexlua.calls, (rn.boto3.median - r0.boto3.median) / rn.latency_ms * 1e3, rn.boto3.calls)
    add("")
  end
end
if fig.scale then
  s = fig.scale
  add("## Seeding at scale")
  add("")
  add("Positions (`account_id uuid, symbol, quantity numeric`, with the table's foreign keys, unique constraint and")
  add("indexes) through `db:batch`, then the same rows with `psql \\copy ... FROM csv` (psql's start-up included)")
  add("into the emptied table; both leave identical rows (checked). %g ms injected latency.", s.latency_ms)
  add("")
  add("| rows | db:batch | calls | rows/s | µs/row | per-row vs 1st | client encoding | inside calls |" ..
    " \\copy | rows/s | batch/copy |")
  add("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
  for _, r in ipairs(s.results) do
    add("| %d | %.3f s | %d | %.0f | %.1f | %.2fx | %.3f s | %.3f s | %.3f s | %.0f | %.1fx |", r.rows, r.batch_seconds,
      r.calls, r.rows_per_second, r.per_row_us, r.per_row_vs_first, r.encode_seconds, r.call_seconds,
      r.copy_seconds, r.copy_rows_per_second, r.ratio)
  end
  add("")
  add("Growth, judged on each size's best run (%s s): least-squares fit seconds ~ rows^%.2f: %s.",
    list3((function() local t = {} for i, r in ipairs(s.results) do t[i] = r.batch_best end return t end)()),
    s.exponent, s.linear and "linear" or "not linear")
  add("")
  add("The same rows through `db:insert` (one `INSERT ... SELECT * FROM unnest(...)` per request, a typed array")
  add("per column, cast to the table's own column types):")
  add("")
  add("| rows | db:insert | calls | vs db:batch | vs \\copy |")
  add("| --- | --- | --- | --- | --- |")
  for _, r in ipairs(s.results) do
    if r.insert_seconds then
      add("| %d | %.3f s | %d | %.1fx faster | %.2fx |", r.rows, r.insert_seconds, r.insert_calls, r.insert_vs_batch,
        r.insert_vs_copy)
    end
  end
  add("")
  add("\"client encoding\" is what `db:batch` does before sending (checking and JSON-encoding every set), timed")
  add("separately; \"inside calls\" is the time the client spent in Data API calls (HTTP, the service, PostgreSQL).")
  add("Above one request (4 MiB) the batch runs in a transaction, hence Begin + requests + Commit calls.")
  add("")
end
if fig.each then
  s = fig.each
  add("## Reading at scale")
  add("")
  add("`for row in db:each(sql, nil, opts)` over %d positions, median of %d runs, %g ms injected latency; pages =",
    s.rows, s.runs, s.latency_ms)
  add("ExecuteStatement calls (each under the 1 MiB response limit, about 512 KiB).")
  add("")
  add("| mode | seconds | rows/s | pages | calls | responses | vs \\copy |")
  add("| --- | --- | --- | --- | --- | --- | --- |")
  for _, r in ipairs(s.results) do
    add("| %s | %.3f | %.0f | %d | %d | %.1f MiB | %s |", r.mode, r.seconds, r.rows_per_second, r.pages, r.calls,
      r.response_bytes / 1048576, x(r.ratio_to_copy))
  end
  add("| psql `\\copy (SELECT ...) TO /dev/null` | %.3f | %.0f | | | | 1x |", s.copy.seconds, s.copy.rows_per_second)
  add("")
  add("keyset: `opts.key = \"id\"` (`WHERE id > last ORDER BY id LIMIT n`); cursor: the default, `DECLARE ...")
  add("SCROLL CURSOR` then `FETCH FORWARD n` in one transaction, pages after the first as one JSON document")
  add("(formatRecordsAs).")
  add("")
end
if fig.dataapi then
  s = fig.dataapi
  add("## Local Data API throughput")
  add("")
  add("See [dataapi_bench.md](dataapi_bench.md): %d s per side; service %.0f SELECT/s (p50 %.2f ms, p99 %.2f ms),",
    s.seconds, s.service.rate, s.service.p50_ms, s.service.p99_ms)
  add("direct %.0f SELECT/s; ratio %.2f (median round %.2f); service VmRSS idle %.1f MiB, under load %.1f MiB.",
    s.direct_rate, s.ratio, s.median_round_ratio or 0, (s.rss_idle_kib or 0) / 1024, (s.rss_load_max_kib or 0) / 1024)
  add("")
end
add("## Bench run times")
add("")
add("| bench | seconds | |")
add("| --- | --- | --- |")
for _, b in ipairs(ran) do add("| %s | %.0f | %s |", b.name, b.seconds, b.ok and "" or "**failed**") end
add("")

write(root .. "/bench/REPORT.md", table.concat(md, "\n"))
io.stdout:write(("wrote bench/REPORT.md%s in %.0f s\n"):format(chart and " and bench/report.png" or "", total_seconds))
if #failed > 0 then
  io.stderr:write("bench: failed: ", table.concat(failed, ", "), "\n")
  os.exit(1)
end
