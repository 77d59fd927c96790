-- luacheck: std +busted
-- scripts/aurora.lua and alex.rds against the RDS control plane of a private
-- local stack (spec/support/stack.lua): alex-dataapi answers DescribeDBClusters,
-- ModifyDBCluster and Enable/DisableHttpEndpoint for its cluster, verifying
-- every request's SigV4 signature for service rds.  The script runs as users
-- run it: alexlua --no-env-file scripts/aurora.lua ..., in a clean environment.
-- What the service received is read from its statistics (calls per action,
-- faults) and its debug log (one line per call with the parameters).
local servers = require "servers"
local stack = require "stack"
local cjson = require "cjson"
local http = require "alex.http"
local rds = require "alex.rds"

local ALEXLUA = assert(os.getenv("ALEXLUA"), "ALEXLUA must name the alexlua binary (make test sets it)")
local ROOT = servers.support_dir:gsub("/spec/support$", "")
local SCRIPT = ROOT .. "/scripts/aurora.lua"
local q = servers.q

-- a cluster ARN for the settings checks, which need no service
local CLUSTER_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:alex-aurora-cluster"

local contains = servers.contains

local function not_contains(s, sub)
  assert.is_string(s)
  assert(not s:find(sub, 1, true), ("expected %q\nnot to contain %q"):format(s, sub))
end

-- ---------- the private stack ----------

local S       -- the stack, debug logging on (the log shows each call's parameters)
local VERSION -- the engine version it reports: the local PostgreSQL's major.minor
local H       -- one HTTP client for admin calls

-- An alex.rds client on the stack's settings, for setting the cluster up.
local function client(extra)
  local env = {}
  for k, v in pairs(S.env) do env[k] = v end
  for k, v in pairs(extra or {}) do env[k] = v end
  return assert(rds.new { env = function(k) return env[k] end, home = "/nonexistent", retry_base = 0 })
end

local function admin(method, path, body)
  local res = assert(H:request { method = method, url = S.admin .. path, body = body,
                                 headers = method == "GET" and {} or S:admin_headers() })
  assert.equal(200, res.status, res.body)
  return cjson.decode(res.body)
end

-- The cluster's scaling configuration, through ModifyDBCluster.
local function set_scaling(min, max, seconds)
  local c = client()
  assert(c:modify_scaling { min_capacity = min, max_capacity = max, seconds_until_auto_pause = seconds })
  c:close()
end

-- Calls per RDS action since the last reset, and the faults injected.
local function calls()
  local st = assert(S:stats())
  return st.rds_actions, st.faults
end

-- The parameters of every call the service logged since `from` (a log
-- offset), oldest first: { Action = ..., DBClusterIdentifier = ..., ... }.
local function logged(from)
  local text = (servers.read_file(S.dir .. "/dataapi.log") or ""):sub(from + 1)
  local list = {}
  for line in text:gmatch("[^\n]*DEBUG rds: Action=[^\n]*") do
    local p = {}
    for k, v in line:match("rds: (.-) %->"):gmatch("([%w%.]+)=(%S*)") do p[k] = v end
    list[#list + 1] = p
  end
  return list
end

local function log_size() return #(servers.read_file(S.dir .. "/dataapi.log") or "") end

-- ---------- running the script ----------

-- Runs `alexlua scripts/aurora.lua <args>` with only the variables in `env`
-- (plus PATH and a fresh HOME); returns stdout, stderr, exit code.
local function aurora(args, env)
  local home = servers.tmpdir()
  local vars = {
    PATH = os.getenv("PATH"), HOME = home, AWS_EC2_METADATA_DISABLED = "true", NO_COLOR = "1",
    ALEX_LUA_PATH = os.getenv("ALEX_LUA_PATH"),
  }
  for k, v in pairs(env or {}) do
    if v == false then vars[k] = nil else vars[k] = v end
  end
  if vars.HOME_FILES then
    for path, text in pairs(vars.HOME_FILES) do
      os.execute("mkdir -p " .. q((home .. "/" .. path):match("^(.*)/")))
      servers.write_file(home .. "/" .. path, text)
    end
    vars.HOME_FILES = nil
  end
  local parts = { "env -i" }
  for k, v in pairs(vars) do parts[#parts + 1] = q(k .. "=" .. v) end
  parts[#parts + 1] = q(ALEXLUA) .. " --no-env-file " .. q(SCRIPT) .. " " .. args
  local errfile = home .. "/stderr"
  local p = assert(io.popen(table.concat(parts, " ") .. " 2>" .. q(errfile), "r"))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = servers.read_file(errfile) or ""
  servers.rmtree(home)
  return out, err, code
end

-- The settings of the stack's local.env that a user loads (credentials, the
-- cluster ARN, AWS_ENDPOINT_URL_RDS), plus quick polls and retries.
local function env_for(extra)
  local e = {
    AWS_ACCESS_KEY_ID = S.env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY = S.env.AWS_SECRET_ACCESS_KEY,
    AURORA_CLUSTER_ARN = S.env.AURORA_CLUSTER_ARN, AWS_REGION = S.env.AWS_REGION,
    AWS_ENDPOINT_URL_RDS = S.env.AWS_ENDPOINT_URL_RDS, ALEX_WAIT_INTERVAL = "0.05", ALEX_RETRY_BASE = "0",
  }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

-- Runs aurora.lua `args` with env_for(extra) and asserts that it exited
-- `code` with each of `says` on stderr; returns stdout and stderr.
local function exits(code, args, extra, says)
  local out, err, got = aurora(args, env_for(extra))
  assert.equal(code, got, code == 0 and err or out)
  for _, text in ipairs(says or {}) do contains(err, text) end
  return out, err
end

stack.shared({ settings = { log_level = "debug" } }, function(started)
  S, VERSION = started, started:engine_version()
  H = http.new { connect_timeout = 5, timeout = 30 }
  return function() H:close() end
end)

-- Every case starts from the same cluster: available, 0.5 - 2 ACUs, the Data
-- API on, no faults, counters at zero.
before_each(function()
  S:clear_faults()
  admin("POST", "/cluster", '{"status":"available"}')
  set_scaling(0.5, 2)
  local c = client()
  assert(c:call("EnableHttpEndpoint", { { "ResourceArn", S.cluster_arn } }))
  c:close()
  assert(S:reset_stats())
end)

describe("aurora.lua status", function()
  it("shows status, engine, Data API flag and capacity from a signed DescribeDBClusters", function()
    local from = log_size()
    local out, err = exits(0, "status")
    contains(out, "cluster   alex-local")
    contains(out, "status    available")
    contains(out, "engine    aurora-postgresql " .. VERSION .. " (provisioned)")
    contains(out, "Data API  enabled")
    contains(out, "capacity  0.5 - 2 ACU, always on")
    contains(out, "writer    alex-local-instance-1")
    contains(out, "database  alex")
    contains(out, "endpoint  127.0.0.1")
    -- one call, accepted: signed for service rds in us-east-1 with the stack's key
    local n = calls()
    assert.same({ DescribeDBClusters = 1, ModifyDBCluster = 0, EnableHttpEndpoint = 0, DisableHttpEndpoint = 0 }, n)
    local p = logged(from)
    assert.equal(1, #p)
    assert.equal("DescribeDBClusters", p[1].Action)
    assert.equal("2014-10-31", p[1].Version)
    assert.equal("alex-local", p[1].DBClusterIdentifier)
    not_contains(out .. err, S.env.AWS_SECRET_ACCESS_KEY)
  end)

  it("prints the cluster as JSON with --json", function()
    set_scaling(0, 2, 600)
    local out = exits(0, "status --json")
    local c = cjson.decode(out)
    assert.equal("alex-local", c.identifier)
    assert.equal(S.cluster_arn, c.arn)
    assert.equal("available", c.status)
    assert.is_true(c.http_endpoint_enabled)
    assert.equal(0, c.min_capacity)
    assert.equal(2, c.max_capacity)
    assert.equal(600, c.seconds_until_auto_pause)
    assert.equal("us-east-1", c.region)
    assert.equal(VERSION, c.engine_version)
    assert.same({ { instance = "alex-local-instance-1", writer = true } }, c.members)
  end)

  it("says so when the Data API is not enabled (DisableHttpEndpoint), and the Data API refuses calls", function()
    local c = client()
    assert(c:call("DisableHttpEndpoint", { { "ResourceArn", S.cluster_arn } }))
    c:close()
    local out = exits(0, "status")
    contains(out, "Data API  NOT enabled (set enable_http_endpoint = true")
    local res = S:execute(H, "SELECT 1")
    assert.equal(400, res.status)
    assert.equal("HttpEndpointNotEnabledException", cjson.decode(res.body).__type)
  end)

  it("shows auto-pause settings", function()
    set_scaling(0, 2, 600)
    local out = exits(0, "status")
    contains(out, "capacity  0 - 2 ACU, auto-pause after 600 s idle")
  end)

  it("reports a missing cluster with the fix, exit 1", function()
    exits(1, "status", { AURORA_CLUSTER_ARN = "arn:aws:rds:us-east-1:000000000000:cluster:alex-aurora-cluster" }, {
      "DBClusterNotFoundFault: DBCluster alex-aurora-cluster not found.", "terraform output -raw aurora_cluster_arn" })
    assert.equal(1, calls().DescribeDBClusters) -- a 404 is not retried
  end)

  it("retries throttling with backoff, then succeeds", function()
    -- seed 16 at rate 0.5 throttles the first two calls and lets the third through
    admin("POST", "/faults", '{"seed":16,"throttle_rate":0.5}')
    exits(0, "status")
    local n, faults = calls()
    assert.equal(3, n.DescribeDBClusters)
    assert.equal(2, faults.throttle)
  end)

  it("retries 500 and 503 answers, then succeeds", function()
    -- seed 46 at rate 0.5: a 503, a 500, then the answer
    admin("POST", "/faults", '{"seed":46,"5xx_rate":0.5}')
    local _, err = exits(0, "status --verbose")
    local n, faults = calls()
    assert.equal(3, n.DescribeDBClusters)
    assert.equal(2, faults["5xx"])
    contains(err, "ServiceUnavailable")
    contains(err, "InternalFailure")
  end)

  it("gives up after AWS_MAX_ATTEMPTS throttled attempts", function()
    admin("POST", "/faults", '{"throttle_rate":1}')
    exits(1, "status", { AWS_MAX_ATTEMPTS = "2" }, { "Throttling: Rate exceeded", "2 attempts" })
    assert.equal(2, calls().DescribeDBClusters)
  end)
end)

describe("aurora.lua credentials and endpoints", function()
  it("signs with a session token and never prints it or the secret key", function()
    local token = "IQoJb3JpZ2luX2VjEAURORASPECTOKEN//////////wEaCXVzLWVhc3QtMSJHMEUCIQ"
    local svc = S:extra_service { session_token = token }
    finally(svc.stop)
    local out, err = exits(0, "status --verbose", { AWS_SESSION_TOKEN = token, AWS_ENDPOINT_URL_RDS = svc.endpoint })
    not_contains(out .. err, token)
    not_contains(out .. err, S.env.AWS_SECRET_ACCESS_KEY)
    contains(err, "endpoint " .. svc.endpoint .. " (AWS_ENDPOINT_URL_RDS)")
    -- the service requires that token: without it the same call is refused
    exits(1, "status", { AWS_ENDPOINT_URL_RDS = svc.endpoint },
      { "InvalidClientTokenId", "the access key is not known" })
  end)

  it("fails on a wrong secret key with the fix, without showing the key", function()
    local out, err = exits(1, "status", { AWS_SECRET_ACCESS_KEY = "wrong/Secret+Key0000000000000000" },
      { "SignatureDoesNotMatch", "the secret key does not match" })
    not_contains(out .. err, "wrong/Secret+Key")
    assert.equal(0, calls().DescribeDBClusters) -- refused before the action
  end)

  it("takes credentials from the shared credentials file (the same chain as the Data API)", function()
    exits(0, "status", {
      AWS_ACCESS_KEY_ID = false, AWS_SECRET_ACCESS_KEY = false, AWS_PROFILE = "alex",
      HOME_FILES = { [".aws/credentials"] = ("[alex]\naws_access_key_id = %s\naws_secret_access_key = %s\n")
        :format(S.env.AWS_ACCESS_KEY_ID, S.env.AWS_SECRET_ACCESS_KEY) },
    })
    assert.equal(1, calls().DescribeDBClusters)
  end)

  it("says how to fix missing credentials", function()
    exits(1, "status", { AWS_ACCESS_KEY_ID = false, AWS_SECRET_ACCESS_KEY = false },
      { "CredentialsError", "AWS_ACCESS_KEY_ID" })
    assert.equal(0, calls().DescribeDBClusters)
  end)

  it("prefers AWS_ENDPOINT_URL_RDS to AWS_ENDPOINT_URL, ignores the Data API's override", function()
    local dead = "http://127.0.0.1:" .. servers.free_port()
    exits(0, "status", { AWS_ENDPOINT_URL = dead, AWS_ENDPOINT_URL_RDS_DATA = dead })
    assert.equal(1, calls().DescribeDBClusters)
  end)

  it("uses AWS_ENDPOINT_URL when there is no RDS-specific one", function()
    exits(0, "status", { AWS_ENDPOINT_URL_RDS = false, AWS_ENDPOINT_URL = S.env.AWS_ENDPOINT_URL_RDS })
    assert.equal(1, calls().DescribeDBClusters)
  end)

  it("lets --endpoint win over the environment, and --cluster over AURORA_CLUSTER_ARN", function()
    local dead = "http://127.0.0.1:" .. servers.free_port()
    local from = log_size()
    exits(0, "--endpoint " .. S.env.AWS_ENDPOINT_URL_RDS .. " --cluster ALEX-LOCAL status",
      { AWS_ENDPOINT_URL_RDS = dead, AURORA_CLUSTER_ARN = false })
    assert.equal("ALEX-LOCAL", logged(from)[1].DBClusterIdentifier) -- identifiers are not case-sensitive
  end)

  it("reports an unreachable endpoint as a transport error with the fix", function()
    local dead = "http://127.0.0.1:" .. servers.free_port()
    exits(1, "status", { AWS_ENDPOINT_URL_RDS = dead, AWS_MAX_ATTEMPTS = "1" },
      { "TransportError", "AWS_ENDPOINT_URL_RDS" })
  end)

  it("exits 2 with what to set when no cluster is configured", function()
    exits(2, "status", { AURORA_CLUSTER_ARN = false }, { "AURORA_CLUSTER_ARN" })
  end)

  it("exits 2 on a malformed cluster ARN", function()
    exits(2, "status", { AURORA_CLUSTER_ARN = "arn:aws:rds:us-east-1:000000000000:db:alex-local-instance-1" },
      { "DB instance ARN" })
  end)
end)

describe("aurora.lua pause", function()
  it("sends ModifyDBCluster with MinCapacity=0, the current maximum and the auto-pause delay", function()
    local from = log_size()
    local out = exits(0, "pause")
    local p = logged(from)
    assert.same({ "DescribeDBClusters", "ModifyDBCluster" }, { p[1].Action, p[2] and p[2].Action })
    local m = p[2]
    assert.equal("alex-local", m.DBClusterIdentifier)
    assert.equal("0", m["ServerlessV2ScalingConfiguration.MinCapacity"])
    assert.equal("2", m["ServerlessV2ScalingConfiguration.MaxCapacity"])
    assert.equal("300", m["ServerlessV2ScalingConfiguration.SecondsUntilAutoPause"])
    assert.equal("true", m.ApplyImmediately)
    contains(out, "minimum capacity 0.5 -> 0 ACU, maximum 2 ACU, auto-pause after 300 s idle")
    contains(out, "terraform apply sets it back")
    -- and the cluster now says so
    local c = client():describe_cluster()
    assert.same({ 0, 2, 300 }, { c.min_capacity, c.max_capacity, c.seconds_until_auto_pause })
  end)

  it("takes the delay from --seconds-until-auto-pause and checks its range", function()
    exits(0, "pause --seconds-until-auto-pause 900")
    assert.equal(900, client():describe_cluster().seconds_until_auto_pause)
    assert(S:reset_stats())
    exits(2, "pause --seconds-until-auto-pause 60", nil, { "300 to 86400" })
    -- the refused one only described the cluster
    local n = calls()
    assert.same({ 1, 0 }, { n.DescribeDBClusters, n.ModifyDBCluster })
  end)

  it("changes nothing when the cluster already auto-pauses", function()
    set_scaling(0, 2, 600)
    assert(S:reset_stats())
    local out = exits(0, "pause --seconds-until-auto-pause 600")
    contains(out, "already scales to 0 ACUs")
    local n = calls()
    assert.same({ 1, 0 }, { n.DescribeDBClusters, n.ModifyDBCluster })
  end)

  it("refuses an engine version without auto-pause before calling ModifyDBCluster", function()
    -- a service reporting Aurora PostgreSQL 15.4, which cannot scale to 0 ACUs
    local svc = S:extra_service { engine_version = "15.4", log_level = "debug" }
    finally(svc.stop)
    exits(2, "pause", { AWS_ENDPOINT_URL_RDS = svc.endpoint }, { "15.4, which cannot scale to 0 ACUs" })
    local log = servers.read_file(svc.log) or ""
    contains(log, "rds: Action=DescribeDBClusters")
    not_contains(log, "rds: Action=ModifyDBCluster")
    -- RDS itself refuses it too
    local c = client { AWS_ENDPOINT_URL_RDS = svc.endpoint }
    local none, merr = c:modify_scaling { min_capacity = 0, max_capacity = 2 }
    assert.is_nil(none)
    assert.equal("InvalidParameterCombination", merr.name)
  end)

  it("reports a busy cluster with the fix", function()
    admin("POST", "/cluster", '{"status":"modifying"}')
    exits(1, "pause", nil, { "InvalidDBClusterStateFault", "aurora.lua wait" })
    local n = calls()
    assert.same({ 1, 1 }, { n.DescribeDBClusters, n.ModifyDBCluster })
    assert.equal(0.5, client():describe_cluster().min_capacity) -- nothing changed
  end)

  it("waits afterwards with --wait", function()
    -- the modification keeps the cluster modifying for one DescribeDBClusters answer
    admin("POST", "/cluster", '{"modify_describes":1}')
    finally(function() admin("POST", "/cluster", '{"modify_describes":0}') end)
    local from = log_size()
    local out = exits(0, "pause --wait --interval 0.05")
    local actions = {}
    for i, p in ipairs(logged(from)) do actions[i] = p.Action end
    assert.same({ "DescribeDBClusters", "ModifyDBCluster", "DescribeDBClusters", "DescribeDBClusters" }, actions)
    contains(out, "modifying")
    contains(out, "available")
  end)
end)

describe("aurora.lua resume", function()
  it("restores the minimum from ALEX_MIN_CAPACITY, without an auto-pause delay", function()
    set_scaling(0, 2, 600)
    local from = log_size()
    local out = exits(0, "resume", { ALEX_MIN_CAPACITY = "1" })
    local m = logged(from)[2]
    assert.equal("ModifyDBCluster", m.Action)
    assert.equal("1", m["ServerlessV2ScalingConfiguration.MinCapacity"])
    assert.equal("2", m["ServerlessV2ScalingConfiguration.MaxCapacity"])
    assert.is_nil(m["ServerlessV2ScalingConfiguration.SecondsUntilAutoPause"])
    contains(out, "minimum capacity 0 -> 1 ACU")
    local c = client():describe_cluster()
    assert.same({ 1, 2 }, { c.min_capacity, c.max_capacity })
    assert.is_nil(c.seconds_until_auto_pause)
  end)

  it("defaults to 0.5 ACU, and --min-capacity wins over ALEX_MIN_CAPACITY", function()
    set_scaling(0, 2)
    exits(0, "resume")
    assert.equal(0.5, client():describe_cluster().min_capacity)
    exits(0, "resume --min-capacity 1.5", { ALEX_MIN_CAPACITY = "1" })
    assert.equal(1.5, client():describe_cluster().min_capacity)
  end)

  it("refuses a minimum of 0, off-step or above the maximum", function()
    set_scaling(0, 2)
    assert(S:reset_stats())
    local cases = { { "0", "0.5 to 128" }, { "0.7", "steps of 0.5" }, { "4", "above the cluster's maximum" } }
    for _, case in ipairs(cases) do
      exits(2, "resume --min-capacity " .. case[1], nil, { case[2] })
    end
    local n = calls()
    assert.same({ 3, 0 }, { n.DescribeDBClusters, n.ModifyDBCluster })
  end)

  it("changes nothing when the minimum is already there", function()
    local out = exits(0, "resume")
    contains(out, "already has minimum capacity 0.5 ACU")
    local n = calls()
    assert.same({ 1, 0 }, { n.DescribeDBClusters, n.ModifyDBCluster })
  end)
end)

describe("aurora.lua wait", function()
  it("polls until the cluster is available", function()
    admin("POST", "/cluster", '{"status":"modifying","for_describes":2}')
    local out = exits(0, "wait --interval 0.05")
    -- three polls, two sleeps
    assert.equal(3, calls().DescribeDBClusters)
    local first, second = out:find("\n  modifying", 1, true), out:find("\n  available", 1, true)
    assert(first and second and first < second, out)
  end)

  it("takes the poll interval from ALEX_WAIT_INTERVAL", function()
    admin("POST", "/cluster", '{"status":"modifying","for_describes":2}')
    local t0 = servers.now()
    local _, err, code = aurora("wait", env_for { ALEX_WAIT_INTERVAL = "0.3" })
    local elapsed = servers.now() - t0
    assert.equal(0, code, err)
    assert.is_true(elapsed >= 0.6, ("two 0.3 s sleeps took %.2f s"):format(elapsed))
  end)

  it("times out while the cluster stays busy, exit 1", function()
    admin("POST", "/cluster", '{"status":"modifying"}')
    exits(1, "wait --interval 0.05 --timeout 0.3", nil, { "Timeout", "still modifying" })
    assert.is_true(calls().DescribeDBClusters >= 3)
  end)

  it("stops at once on a stopped cluster, with the command that starts it", function()
    admin("POST", "/cluster", '{"status":"stopped"}')
    exits(1, "wait --interval 0.05", nil,
      { "status stopped", "aws rds start-db-cluster --db-cluster-identifier alex-local" })
    assert.equal(1, calls().DescribeDBClusters)
  end)
end)

describe("aurora.lua destroy and recreate", function()
  it("print the Terraform commands and call nothing", function()
    local out = exits(0, "destroy")
    contains(out, "terraform -chdir=terraform destroy")
    out = exits(0, "recreate")
    contains(out, "terraform -chdir=terraform destroy")
    contains(out, "terraform -chdir=terraform apply")
    contains(out, "terraform -chdir=terraform output -raw env_file")
    assert.equal(0, calls().DescribeDBClusters)
  end)
end)

describe("alex.rds settings", function()
  local function settings(vars, opts)
    opts = opts or {}
    opts.env = function(k) return vars[k] end
    opts.home = "/nonexistent"
    return rds.settings(opts)
  end

  -- settings(vars) refused with a message holding `says`.
  local function refused(vars, says)
    local s, err = settings(vars)
    assert.is_nil(s)
    contains(err, says)
  end

  it("defaults to the regional RDS endpoint of the cluster ARN's region", function()
    local s = assert(settings { AURORA_CLUSTER_ARN = CLUSTER_ARN:gsub("us%-east%-1", "eu-west-2") })
    assert.equal("eu-west-2", s.region)
    assert.equal("https://rds.eu-west-2.amazonaws.com", s.endpoint)
    assert.equal("alex-aurora-cluster", s.cluster_id)
    local cn = assert(settings { AURORA_CLUSTER_ARN = "arn:aws-cn:rds:cn-north-1:123456789012:cluster:alex-x" })
    assert.equal("https://rds.cn-north-1.amazonaws.com.cn", cn.endpoint)
  end)

  it("refuses a region that differs from the ARN's unless an endpoint is overridden", function()
    refused({ AURORA_CLUSTER_ARN = CLUSTER_ARN, AWS_REGION = "eu-west-1" }, "AWS_REGION is eu-west-1")
    local s = assert(settings { AURORA_CLUSTER_ARN = CLUSTER_ARN, AWS_REGION = "eu-west-1",
      AWS_ENDPOINT_URL_RDS = "http://127.0.0.1:9" })
    assert.equal("eu-west-1", s.region)
  end)

  it("switches the environment's endpoints off with AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", function()
    local s = assert(settings { AURORA_CLUSTER_ARN = CLUSTER_ARN, AWS_ENDPOINT_URL_RDS = "http://127.0.0.1:9",
      AWS_IGNORE_CONFIGURED_ENDPOINT_URLS = "true" })
    assert.equal("https://rds.us-east-1.amazonaws.com", s.endpoint)
    s = assert(settings({ AURORA_CLUSTER_ARN = CLUSTER_ARN, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS = "true" },
      { endpoint = "http://127.0.0.1:7/" }))
    assert.equal("http://127.0.0.1:7", s.endpoint)
  end)

  it("refuses a malformed endpoint and an AWS_MAX_ATTEMPTS out of range", function()
    refused({ AURORA_CLUSTER_ARN = CLUSTER_ARN, AWS_ENDPOINT_URL_RDS = "127.0.0.1:9" }, "AWS_ENDPOINT_URL_RDS")
    refused({ AURORA_CLUSTER_ARN = CLUSTER_ARN, AWS_MAX_ATTEMPTS = "0" }, "AWS_MAX_ATTEMPTS")
  end)

  it("parses XML strictly", function()
    assert.is_nil((rds.parse_xml("<a><b></a>")))
    assert.is_nil((rds.parse_xml("")))
    local doc = assert(rds.parse_xml('<r xmlns="x"><v>1 &amp; 2</v></r>'))
    assert.equal("1 & 2", rds.child(doc, "v").text)
    assert.equal("Action=ModifyDBCluster&Key.Sub=a%20b%2Fc%26d", rds.encode_query {
      { "Action", "ModifyDBCluster" }, { "Key.Sub", "a b/c&d" } })
    assert.equal("0.5", rds.format_acu(0.5))
    assert.equal("2", rds.format_acu(2.0))
  end)
end)
