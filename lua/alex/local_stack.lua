-- The local stand-in for Aurora: a PostgreSQL cluster and the local Data API
-- service, run by local/stack.sh.  alex.db uses it when no Aurora target is
-- configured, starting it when it is not running.
local host = require "alex.host"
local shell_quote = require("alex.cli").shell_quote

local local_stack = {}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end


-- The checkout the running binary was built in, when it was (build/alexlua,
-- build/<variant>/alexlua), or nil for an installed binary.
function local_stack.checkout_root()
  local exe = host.executable
  if not exe then return nil end
  -- /proc/self/exe is absolute and resolved: walk up two folders at most
  local dir = dirname(exe)
  for _ = 1, 2 do
    dir = dirname(dir)
    if exists(dir .. "/local/stack.sh") and exists(dir .. "/Makefile") then return dir end
  end
  return nil
end

-- Where the stack script, the service binary and the state live.
function local_stack.paths(getenv)
  getenv = getenv or os.getenv
  local root = local_stack.checkout_root()
  local exe_dir = host.executable and dirname(host.executable) or "."
  local script = getenv("ALEX_STACK_SCRIPT")
  if not script or script == "" then
    script = root and (root .. "/local/stack.sh") or (host.libexecdir .. "/stack.sh")
  end
  local service = getenv("ALEX_DATAAPI_BIN")
  if not service or service == "" then
    service = exists(exe_dir .. "/alex-dataapi") and (exe_dir .. "/alex-dataapi")
              or (host.libexecdir .. "/alex-dataapi")
  end
  local state = getenv("ALEX_STATE_DIR")
  if not state or state == "" then
    if root then
      state = root .. "/.alex"
    else
      state = (require("alex.env").state_home(getenv) or "./.local/state") .. "/alexlua"
    end
  end
  return { script = script, service = service, state = state, env_file = state .. "/local.env" }
end

local function read_env_file(path)
  local text = require("alex.files").read(path, { max_bytes = 1024 * 1024 })
  if not text then return nil end
  return host.dotenv(text, path)
end

local function healthy(endpoint)
  local http = require "alex.http"
  local client = http.new { connect_timeout = 1, timeout = 2 }
  local res = client:request { method = "GET", url = endpoint .. "/_alex/health" }
  client:close()
  return res ~= nil and res.status == 200
end

-- A quick look at the state folder's PostgreSQL (stack.sh up has the last
-- word): when its postmaster died, the service still answers its health check
-- but every call would fail.  A killed postmaster nobody reaps stays a zombie,
-- hence the state.  A pid file we may not read counts as running.
local function postmaster_dead(state)
  local f, _, code = io.open(state .. "/pg/postmaster.pid", "rb")
  if not f then return code == 2 end -- ENOENT: stopped
  local pid = (f:read("l") or ""):match("^%s*(%d+)")
  f:close()
  if not pid then return true end
  local st = require("alex.journal").process_stat(pid)
  return not st or st.state == "Z" or st.state == "X"
end

-- ensure{ getenv, quiet } -> the settings of local.env (a table), starting the
-- stack when it is not running; or nil and a message saying what failed.
-- Scripts started together all call stack.sh up, which serialises them on the
-- state folder's lock: the first starts the stack, the others find it up.
function local_stack.ensure(opts)
  opts = opts or {}
  local p = local_stack.paths(opts.getenv)
  local env = read_env_file(p.env_file)
  local endpoint = env and env.AWS_ENDPOINT_URL_RDS_DATA
  if not (endpoint and healthy(endpoint) and not postmaster_dead(p.state)) then
    if not exists(p.script) then
      return nil, "no AURORA_CLUSTER_ARN is configured and the local stack script " .. p.script ..
        " is missing: set AURORA_CLUSTER_ARN (see README: the AWS path) or reinstall alexlua"
    end
    if not opts.quiet then
      io.stderr:write("alexlua: starting the local Data API stack in ", p.state, " ...\n")
    end
    local cmd = ("ALEX_STATE_DIR=%s ALEX_DATAAPI_BIN=%s sh %s up >&2"):format(
      shell_quote(p.state), shell_quote(p.service), shell_quote(p.script))
    local ok = os.execute(cmd)
    if not ok then
      return nil, "could not start the local Data API stack (" .. p.script .. " up failed; see " ..
        p.state .. "/*.log)"
    end
    env = read_env_file(p.env_file)
    if not env then return nil, "the local stack started but wrote no " .. p.env_file end
    endpoint = env.AWS_ENDPOINT_URL_RDS_DATA
  end
  if not opts.quiet then
    io.stderr:write("alexlua: no AURORA_CLUSTER_ARN configured; using the local Data API stack at ",
      tostring(endpoint), " (", p.state, ")\n")
  end
  return env
end

return local_stack
