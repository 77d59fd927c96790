-- A private local stack (PostgreSQL 15 + alex-dataapi) for specs and benches:
-- its own temp state folder and the free loopback ports local/stack.sh chooses.
--
--   local stack = require "stack"
--   local s = stack.start { faults = { latency_ms = 5 }, tx_idle_timeout = 2 }
--   s.env.AWS_ENDPOINT_URL_RDS_DATA, s.endpoint, s.admin, s:stats(), s:reset_stats(),
--   s:set_faults { ... }, s:clear_faults(), s:faults(), s:admin_headers(), s:psql "select 1",
--   s:service_pid(), s:engine_version(), s:stop()
--   stack.shared(opts, function(s) ... end) -- one stack for a describe block
--
-- Starting costs a second or two: share one stack per spec file
-- (lazy_setup / lazy_teardown).
local cjson = require "cjson"
local servers = require "servers"
local shell_quote, read_file, write_file, run = servers.q, servers.read_file, servers.write_file, servers.run

local stack = {}

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  local pwd = os.getenv("PWD")
  if not pwd then
    local p = io.popen("pwd")
    pwd = p and p:read("l") or "."
    if p then p:close() end
  end
  return pwd .. "/" .. path
end

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/support"
local script_path = os.getenv("ALEX_STACK_SCRIPT")
if not script_path or script_path == "" then
  script_path = absolute(here) .. "/../../local/stack.sh"
end
stack.script = script_path

stack.run = run

-- NAME=value lines, as stack.sh writes them (no quoting).
-- The files stack.sh writes are dotenv files (values may be quoted): read
-- them with the host's own parser.
local function read_env(path)
  local text = read_file(path)
  if not text then return nil end
  return assert(require("alex.host").dotenv(text, path))
end
stack.read_env = read_env

-- Ports in use by any TCP socket (any state), from /proc.
local function ports_in_use()
  local used = {}
  for _, f in ipairs { "/proc/net/tcp", "/proc/net/tcp6" } do
    local text = read_file(f) or ""
    for hex in text:gmatch("\n%s*%d+: [%x]+:(%x%x%x%x) ") do used[tonumber(hex, 16)] = true end
  end
  return used
end

-- n distinct ports that nothing uses now, below the kernel's ephemeral range
-- (so outgoing connections do not take them meanwhile).
local function free_ports(n)
  local lo = tonumber((read_file("/proc/sys/net/ipv4/ip_local_port_range") or ""):match("^%s*(%d+)")) or 32768
  local first, last = 15000, math.max(15000 + 1000, lo - 1)
  local used, ports = ports_in_use(), {}
  while #ports < n do
    local p = math.random(first, last)
    if not used[p] then
      used[p] = true
      ports[#ports + 1] = p
    end
  end
  return table.unpack(ports)
end
stack.free_ports = free_ports

local function mktemp_dir()
  local base = os.getenv("TMPDIR")
  if not base or base == "" then base = "/tmp" end
  -- short: the PostgreSQL socket path must stay under 108 bytes
  local ok, out = run("mktemp -d " .. shell_quote(base .. "/alex-stack.XXXXXX"))
  local dir = out:match("^(/[^\n]+)")
  if not ok or not dir then error("mktemp failed: " .. out, 2) end
  return dir
end

local function tail(path, n)
  local text = read_file(path)
  if not text or text == "" then return "" end
  local lines = {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return table.concat(lines, "\n", math.max(1, #lines - n + 1))
end

local Stack = {}
Stack.__index = Stack

-- Runs local/stack.sh <command> for this stack; returns ok, output, code.
function Stack:script(command)
  return run(servers.assignments(self.vars) .. " sh " .. shell_quote(stack.script) .. " " .. command)
end

-- A stack not started yet, in opts.dir (default: a new temp folder, removed by
-- stop()).  opts: faults = { latency_ms = 5, ... } (ALEX_DATAAPI_FAULT_<NAME>),
--   tx_idle_timeout = seconds, settings = { name = value } (any other
--   ALEX_DATAAPI_<NAME> the service reads), vars = { NAME = value } (more
--   environment for stack.sh), bin = service binary (default: env
--   ALEX_DATAAPI, set by `make test`).
function stack.new(opts)
  opts = opts or {}
  local vars = {}
  local bin = opts.bin or os.getenv("ALEX_DATAAPI")
  if bin and bin ~= "" then vars.ALEX_DATAAPI_BIN = bin end
  for k, v in pairs(opts.settings or {}) do vars["ALEX_DATAAPI_" .. k:upper()] = tostring(v) end
  for k, v in pairs(opts.faults or {}) do
    vars["ALEX_DATAAPI_FAULT_" .. k:upper():gsub("^FAULT_", "")] = tostring(v)
  end
  if opts.tx_idle_timeout then vars.ALEX_DATAAPI_TX_IDLE_TIMEOUT = tostring(opts.tx_idle_timeout) end
  -- deleted after the run: initdb need not fsync it
  vars.ALEX_STACK_NO_SYNC = "1"
  for k, v in pairs(opts.vars or {}) do vars[k] = tostring(v) end
  local dir = opts.dir or mktemp_dir()
  vars.ALEX_STATE_DIR = dir
  -- a stack left running by a spec that forgot stop() still ends with the process
  return setmetatable({ dir = dir, vars = vars, temp = opts.dir == nil }, { __index = Stack, __gc = Stack.stop })
end

-- Runs stack.sh up and reads what it wrote; raises an error when it fails.
function Stack:up()
  local dir = self.dir
  local ok, out
  -- stack.sh chooses free ports and keeps them in ports.env; one taken between
  -- that choice and the start: forget them and choose again
  for _ = 1, 3 do
    ok, out = self:script("up")
    if ok or not out:find("in use", 1, true) or self.vars.ALEX_DATAAPI_PORT then break end
    os.remove(dir .. "/ports.env")
  end
  if not ok then
    local logs = (tail(dir .. "/dataapi.log", 15) .. "\n" .. tail(dir .. "/dataapi.log.out", 15)):gsub("^%s+$", "")
    self:stop()
    error("local stack did not start:\n" .. out .. (logs ~= "" and ("service log:\n" .. logs) or ""), 2)
  end
  self.stopped = nil
  -- the ports in use (ports.env has those kept, which ALEX_*_PORT override)
  self.pg_port = tonumber((read_file(dir .. "/pgpass") or ""):match("^127%.0%.0%.1:(%d+):"))
  self.admin_token = assert(read_env(dir .. "/secrets.env"), "stack.sh up wrote no secrets.env").ADMIN_TOKEN
  self.env = assert(read_env(dir .. "/local.env"), "stack.sh up wrote no local.env")
  self.endpoint = self.env.AWS_ENDPOINT_URL_RDS_DATA
  self.api_port = tonumber(self.endpoint:match(":(%d+)$"))
  self.admin = self.endpoint .. "/_alex"
  self.database = self.env.AURORA_DATABASE
  self.cluster_arn = self.env.AURORA_CLUSTER_ARN
  self.secret_arn = self.env.AURORA_SECRET_ARN
  return self
end

-- A new stack in a temp folder, started (stack.new's opts).
function stack.start(opts)
  local self = stack.new(opts)
  local ok, err = pcall(self.up, self)
  if not ok then error(err, 2) end
  return self
end

-- One stack shared by the cases of the enclosing describe block (or spec
-- file), started only when one of them runs: busted's lazy_setup starts it
-- (stack.start's opts) and passes it to ready(s), which keeps it and prepares
-- what the cases share; the function ready returns, if any, runs in
-- lazy_teardown before the stack stops (closing connections, removing folders).
function stack.shared(opts, ready)
  local busted = require "busted"
  local s, undo
  busted.lazy_setup(function()
    s = stack.start(opts)
    undo = ready(s)
  end)
  busted.lazy_teardown(function()
    local ok, err = true, nil
    if undo then ok, err = pcall(undo) end
    if s then s:stop() end
    if not ok then error(err, 0) end
  end)
end

-- One ExecuteStatement of `sql` on the stack's Data API, signed with its key
-- and sent through `client` (an alex.http client); returns the response.
function Stack:execute(client, sql)
  local body = cjson.encode { resourceArn = self.cluster_arn, secretArn = self.secret_arn, sql = sql }
  local url = self.endpoint .. "/Execute"
  local signed = require("alex.sigv4").sign { method = "POST", url = url, body = body, service = "rds-data",
    headers = { { "Content-Type", "application/json" } }, region = self.env.AWS_REGION,
    access_key = self.env.AWS_ACCESS_KEY_ID, secret_key = self.env.AWS_SECRET_ACCESS_KEY }
  return assert(client:request { method = "POST", url = url, headers = signed.headers, body = body })
end

-- The engine version the stack reports: its PostgreSQL's major.minor.
function Stack:engine_version()
  local num = assert(tonumber(assert(self:psql("SHOW server_version_num"))))
  return ("%d.%d"):format(num // 10000, num % 100)
end

-- Another alex-dataapi on this stack's settings (dataapi.env) and a free
-- port: env = { name = value } become ALEX_DATAAPI_<NAME> variables, and
-- opts.args = { name = value } --name=value options, after the stack's own
-- (--listen, --pidfile, --log-file), which they override.  Returns
-- { endpoint =, port =, pid =, log =, out = (its stderr), pidfile =, stop = }
-- once it answers /_alex/health, or at once with opts.wait = false (for a
-- service that must fail to start: watch svc.pid with servers.alive).
-- stop() sends TERM, waits up to 10 s, then KILLs; it returns true when TERM
-- was enough, and raises an error when the stderr holds a sanitizer report.
-- The stack's stop() stops the extra services still running.
function Stack:extra_service(env, opts)
  opts = opts or {}
  local port = free_ports(1)
  local tag = self.dir .. "/extra" .. port
  local svc = { port = port, endpoint = "http://127.0.0.1:" .. port, log = tag .. ".log", out = tag .. ".out",
                pidfile = tag .. ".pid" }
  local words = { "env" }
  env = env or {}
  for _, k in ipairs(servers.sorted_keys(env)) do
    words[#words + 1] = "ALEX_DATAAPI_" .. k:upper() .. "=" .. shell_quote(env[k])
  end
  for _, w in ipairs { self.vars.ALEX_DATAAPI_BIN or "alex-dataapi", "--config", self.dir .. "/dataapi.env",
                       "--listen", "127.0.0.1:" .. port, "--pidfile", svc.pidfile, "--log-file", svc.log } do
    words[#words + 1] = shell_quote(w)
  end
  local args = opts.args or {}
  for _, k in ipairs(servers.sorted_keys(args)) do words[#words + 1] = shell_quote("--" .. k .. "=" .. args[k]) end
  local p = assert(io.popen(table.concat(words, " ") .. " </dev/null >" .. shell_quote(svc.out) .. " 2>&1 & echo $!"))
  svc.pid = tonumber(p:read("l"))
  p:close()
  self.extras = self.extras or {}
  self.extras[#self.extras + 1] = svc
  function svc.stop()
    if svc.stopped then return svc.ended end
    svc.stopped = true
    svc.ended = servers.stop_pid(svc.pid, "TERM", 10, true)
    local report = servers.sanitizer_report(read_file(svc.out) or "")
    if report then error("alex-dataapi (" .. svc.endpoint .. "): sanitizer report:\n" .. report:sub(1, 4000), 2) end
    return svc.ended
  end
  if opts.wait == false then return svc end
  local http = require "alex.http"
  local client = http.new { connect_timeout = 1, timeout = 5 }
  local up = servers.wait_until(function()
    local res = client:request { method = "GET", url = svc.endpoint .. "/_alex/health", headers = {} }
    return (res and res.status == 200 and read_file(svc.pidfile)) or not servers.alive(svc.pid)
  end, 15, 0.05)
  client:close()
  if not (up and servers.alive(svc.pid)) then
    pcall(svc.stop)
    error("alex-dataapi did not start: " .. (read_file(svc.out) or "") .. (read_file(svc.log) or ""), 2)
  end
  return svc
end

function Stack:service_pid()
  local text = read_file(self.dir .. "/dataapi.pid")
  return text and tonumber(text:match("%d+"))
end

-- The header the admin API's changing calls (POST) need.
function Stack:admin_headers()
  return { { "X-Alex-Admin-Token", self.admin_token } }
end

-- Admin calls go unsigned through alex.http; POSTs carry the admin token.
local function http_request(self, method, path, body)
  local http = require "alex.http"
  self.http = self.http or http.new { connect_timeout = 2, timeout = 30 }
  local headers = method == "GET" and {} or self:admin_headers()
  local res, msg, kind = self.http:request { method = method, url = self.admin .. path, headers = headers, body = body }
  if not res then return nil, ("%s %s: %s (%s)"):format(method, path, tostring(msg), tostring(kind)) end
  return res
end

local function json_call(self, method, path, body)
  local res, err = http_request(self, method, path, body)
  if not res then return nil, err end
  if res.status ~= 200 then
    return nil, ("%s %s answered %d: %s"):format(method, path, res.status, res.body)
  end
  if res.body == "" then return {} end
  local ok, decoded = pcall(cjson.decode, res.body)
  if not ok then return nil, ("%s %s: not JSON: %s"):format(method, path, res.body) end
  return decoded
end

function Stack:health() return json_call(self, "GET", "/health") end
function Stack:stats() return json_call(self, "GET", "/stats") end
function Stack:reset_stats() return json_call(self, "POST", "/stats/reset", "{}") end
function Stack:faults() return json_call(self, "GET", "/faults") end
function Stack:set_faults(faults) return json_call(self, "POST", "/faults", cjson.encode(faults or {})) end

-- No fault, no latency, the fault generator's seed back at 0.
function Stack:clear_faults()
  assert(self:set_faults { seed = 0, latency_ms = 0, throttle_rate = 0, resuming_rate = 0, ["5xx_rate"] = 0,
                           drop_rate = 0, drop_after_rate = 0 })
end

-- Runs SQL as the application role on the private database; returns psql's
-- unaligned, tuples-only output without the final newline, or nil and psql's
-- messages.
function Stack:psql(sql)
  local file = self.dir .. "/spec-query.sql"
  write_file(file, sql)
  local ok, out = run(("PGPASSFILE=%s psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p %d -U alex_app -d %s -f %s")
    :format(shell_quote(self.dir .. "/pgpass"), self.pg_port, shell_quote(self.database or "alex"),
            shell_quote(file)))
  os.remove(file)
  out = out:gsub("\n$", "")
  if not ok then return nil, out end
  return out
end

-- The secret values of this stack (secret key, database password, admin
-- token), for specs that check nothing prints them.
function Stack:secrets()
  local list = { self.env.AWS_SECRET_ACCESS_KEY }
  local secrets = read_env(self.dir .. "/secrets.env") or {}
  for _, k in ipairs { "PG_PASSWORD", "SECRET_ACCESS_KEY", "ADMIN_TOKEN" } do
    if secrets[k] and secrets[k] ~= "" then list[#list + 1] = secrets[k] end
  end
  return list
end

-- Stops the service and PostgreSQL and removes the state folder when it is a
-- temp folder of stack.new.  Idempotent.
-- Stops the extra services still running first.  Raises an error (after
-- cleaning up) when a service's stderr holds a sanitizer report, so an
-- ASan/UBSan build of the service fails the spec.
function Stack:stop()
  if self.stopped then return true end
  self.stopped = true
  if self.http and self.http.close then self.http:close() end
  self.http = nil
  local reports = {}
  for _, svc in ipairs(self.extras or {}) do
    local stopped, err = pcall(svc.stop)
    if not stopped then reports[#reports + 1] = tostring(err) end
  end
  local ok, out = self:script("down")
  local stderr = read_file(self.dir .. "/dataapi.log.out") or ""
  if self.temp then run("rm -rf " .. shell_quote(self.dir)) end
  local report = servers.sanitizer_report(stderr)
  if report then reports[#reports + 1] = "alex-dataapi: sanitizer report:\n" .. report:sub(1, 4000) end
  if #reports > 0 then error(table.concat(reports, "\n"), 2) end
  if not ok then return nil, out end
  return true
end

return stack
