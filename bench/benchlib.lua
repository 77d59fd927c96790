-- What the batch, reset, scale and each benches share: the project root, a
-- private local stack (spec/support/stack.lua), a client bound to it, child
-- processes run with the stack's settings, timing and result files.
--
--   local bl = dofile(<bench dir> .. "/benchlib.lua")
--   local s = bl.start_stack { latency_ms = 20 }
--   local conn = bl.connect(s)
--   local ok, out, seconds = bl.run_with_stack(s, "alexlua scripts/reset.lua")
local bl = {}

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "bench"
if here:sub(1, 1) ~= "/" then here = (os.getenv("PWD") or ".") .. "/" .. here end
bl.bench_dir = here
bl.root = here:gsub("/bench$", "")
package.path = bl.root .. "/spec/support/?.lua;" .. package.path

local stack = require "stack"
local clock = require "alex.clock"
local cjson = require "cjson"

bl.stack = stack
bl.now = clock.monotonic
bl.PYTHON = "/usr/bin/python3" -- Debian's, with python3-boto3 (not a pyenv python3 on PATH)

function bl.say(fmt, ...)
  io.stderr:write("bench: ", fmt:format(...), "\n")
  io.stderr:flush()
end

function bl.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The alexlua binary to run scripts with: $ALEXLUA (set by make), else
-- `fallback` when given, else the running one.
function bl.alexlua(fallback)
  local exe = os.getenv("ALEXLUA")
  if exe and exe ~= "" then return exe end
  if fallback then return fallback end
  local ok, host = pcall(require, "alex.host")
  return ok and host.executable or (bl.root .. "/build/alexlua")
end

-- A private stack; faults as in stack.start.
function bl.start_stack(faults)
  local s = stack.start { faults = faults or {} }
  return s
end

-- The stack's settings only: nothing from the caller's AWS environment
-- (profiles, tokens) leaks into the measured client.
function bl.getenv_for(s)
  return function(name)
    local v = s.env[name]
    if v ~= nil then return v end
    if name:find("^AWS_") or name:find("^AURORA_") or name:find("^ALEX_") then return nil end
    return os.getenv(name)
  end
end

function bl.connect(s, opts)
  local o = { env = bl.getenv_for(s) }
  for k, v in pairs(opts or {}) do o[k] = v end
  return assert(require("alex.db").connect(o))
end

-- Runs a shell command with exactly the stack's AWS/Aurora settings in its
-- environment (read from the stack's local.env, so no secret shows in a
-- command line); returns ok, output (stdout+stderr), wall seconds.
function bl.run_with_stack(s, cmd)
  local unset = "env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN -u ALEX_DEBUG -u ALEX_STATS"
  local full = ("set -a; . %s; set +a; %s sh -c %s"):format(bl.shell_quote(s.dir .. "/local.env"), unset,
    bl.shell_quote(cmd))
  local t0 = clock.monotonic()
  local ok, out = stack.run(full)
  return ok, out, clock.monotonic() - t0
end

-- Total Data API calls the service counted, and the per-operation table.
function bl.calls(s)
  local st = assert(s:stats())
  local n = 0
  for _, v in pairs(st.operations) do n = n + v end
  return n, st.operations
end

-- psql as the application role; raises on failure.
function bl.psql(s, sql)
  local out, err = s:psql(sql)
  if not out then error("psql failed: " .. tostring(err), 2) end
  return out
end

-- The shell command running a PostgreSQL client (psql, pgbench) on the
-- stack's database as the application role, as bl.psql connects: program, the
-- connection options, `args`, then the database name (both take it last).
function bl.pg_command(s, program, args)
  return ("PGPASSFILE=%s %s -h 127.0.0.1 -p %d -U alex_app %s %s"):format(bl.shell_quote(s.dir .. "/pgpass"),
    program, s.pg_port, args, bl.shell_quote(s.database))
end

-- The migrated, seeded database with the test user, through scripts/reset.lua.
function bl.reset(s)
  local ok, out = bl.run_with_stack(s, ("%s --no-env-file %s/scripts/reset.lua --with-test-data"):format(
    bl.shell_quote(bl.alexlua()), bl.shell_quote(bl.root)))
  if not ok then error("scripts/reset.lua failed:\n" .. out, 2) end
  return out
end

function bl.median(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  local n = #t
  if n == 0 then return nil end
  if n % 2 == 1 then return t[(n + 1) // 2] end
  return (t[n // 2] + t[n // 2 + 1]) / 2
end

-- The number in variable `name`, else `default`; an error when it is not a
-- number, or (when `min` is given) below min.
function bl.env_number(name, default, min)
  local v = os.getenv(name)
  if not v or v == "" then return default end
  if min then
    local n = tonumber(v)
    if not n or n < min then error(("%s must be a number >= %s, got %q"):format(name, min, v), 0) end
    return n
  end
  return assert(tonumber(v), name .. " must be a number")
end

-- Writes bench/out/<name>.json (git-ignored), which bench/report.lua reads.
function bl.write_result(name, result)
  local dir = os.getenv("ALEX_BENCH_OUT")
  if not dir or dir == "" then dir = bl.root .. "/bench/out" end
  os.execute("mkdir -p " .. bl.shell_quote(dir))
  local path = dir .. "/" .. name .. ".json"
  local f = assert(io.open(path, "w"))
  f:write(cjson.encode(result), "\n")
  f:close()
  return path
end

-- Runs fn(s) on a stack and always stops it; errors end the process with 1.
function bl.with_stack(faults, fn)
  local s = bl.start_stack(faults)
  local ok, err = xpcall(fn, debug.traceback, s)
  local sok, serr = pcall(s.stop, s)
  if not ok then
    io.stderr:write("bench: failed: ", tostring(err), "\n")
    os.exit(1)
  end
  if not sok then
    io.stderr:write("bench: stopping the stack: ", tostring(serr), "\n")
    os.exit(1)
  end
end

return bl
