-- luacheck: std +busted
-- scripts/aurora.lua and alex.rds against spec/support/rds_server.py: a local
-- stand-in for the RDS Query API that recomputes every request's SigV4
-- signature (service rds), records what it received and answers with the
-- recorded-style XML of spec/support/fixtures/rds/.  The script runs as users
-- run it: alexlua --no-env-file scripts/aurora.lua ..., in a clean environment.
local servers = require "servers"
local cjson = require "cjson"
local rds = require "alex.rds"

local ALEXLUA = assert(os.getenv("ALEXLUA"), "ALEXLUA must name the alexlua binary (make test sets it)")
local ROOT = servers.support_dir:gsub("/spec/support$", "")
local SCRIPT = ROOT .. "/scripts/aurora.lua"
local FIXTURES = servers.support_dir .. "/fixtures/rds"
local q = servers.q

local CLUSTER_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:alex-aurora-cluster"
local ACCESS_KEY = "AKIDAURORASPEC000001"
local SECRET_KEY = "aurora/spec/Secret+Key/wJalrXUtnFEMI0000"
local SESSION_TOKEN = "IQoJb3JpZ2luX2VjEAURORASPECTOKEN//////////wEaCXVzLWVhc3QtMSJHMEUCIQ"

local function contains(s, sub)
  assert.is_string(s)
  assert(s:find(sub, 1, true), ("expected %q\nto contain %q"):format(s, sub))
end

local function not_contains(s, sub)
  assert.is_string(s)
  assert(not s:find(sub, 1, true), ("expected %q\nnot to contain %q"):format(s, sub))
end

-- ---------- the stand-in RDS API ----------

local Rds = {}
Rds.__index = Rds

-- script: { Action = { "fixture.xml", "fixture.xml@404", ... } }
local function start_rds(script, opts)
  opts = opts or {}
  local dir = servers.tmpdir()
  local script_path, record = dir .. "/script.json", dir .. "/record.jsonl"
  servers.write_file(script_path, cjson.encode(script))
  servers.write_file(record, "")
  local cmd = table.concat({
    "exec", servers.PYTHON, q(servers.support_dir .. "/rds_server.py"),
    "--fixtures", q(FIXTURES), "--script", q(script_path), "--record", q(record),
    "--region", opts.region or "us-east-1", "--access-key", q(ACCESS_KEY), "--secret-key", q(SECRET_KEY),
  }, " ")
  local proc = assert(io.popen(cmd, "r"))
  local line = proc:read("l")
  local port, pid = (line or ""):match("^READY (%d+) (%d+)$")
  if not port then
    proc:close()
    servers.rmtree(dir)
    error("rds_server.py did not start (said " .. tostring(line) .. ")")
  end
  return setmetatable({ proc = proc, pid = tonumber(pid), port = tonumber(port), dir = dir, record = record,
    url = "http://127.0.0.1:" .. port }, Rds)
end

-- The requests received so far, oldest first.
function Rds:requests()
  local list = {}
  for line in (servers.read_file(self.record) or ""):gmatch("[^\n]+") do list[#list + 1] = cjson.decode(line) end
  return list
end

function Rds:actions()
  local a = {}
  for i, r in ipairs(self:requests()) do a[i] = r.action end
  return a
end

function Rds:stop()
  if not self.proc then return end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  self.proc:close()
  self.proc = nil
  servers.rmtree(self.dir)
end

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

-- The usual environment: credentials, the cluster ARN, the endpoint override.
local function env_for(srv, extra)
  local e = {
    AWS_ACCESS_KEY_ID = ACCESS_KEY, AWS_SECRET_ACCESS_KEY = SECRET_KEY,
    AURORA_CLUSTER_ARN = CLUSTER_ARN, AWS_REGION = "us-east-1",
    AWS_ENDPOINT_URL_RDS = srv and srv.url or nil, ALEX_WAIT_INTERVAL = "0.05", ALEX_RETRY_BASE = "0",
  }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

local srv
after_each(function()
  if srv then srv:stop() end
  srv = nil
end)

describe("aurora.lua status", function()
  it("shows status, engine, Data API flag and capacity from a signed DescribeDBClusters", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml" } }
    local out, err, code = aurora("status", env_for(srv))
    assert.equal(0, code, err)
    contains(out, "cluster   alex-aurora-cluster")
    contains(out, "status    available")
    contains(out, "engine    aurora-postgresql 15.10 (provisioned)")
    contains(out, "Data API  enabled")
    contains(out, "capacity  0.5 - 2 ACU, always on")
    contains(out, "writer    alex-aurora-instance-1")
    contains(out, "database  alex")
    local reqs = srv:requests()
    assert.equal(1, #reqs)
    local r = reqs[1]
    assert.equal("POST", r.method)
    assert.equal("/", r.path)
    assert.equal("DescribeDBClusters", r.action)
    assert.equal("2014-10-31", r.params.Version)
    assert.equal("alex-aurora-cluster", r.params.DBClusterIdentifier)
    contains(r.content_type, "application/x-www-form-urlencoded")
    assert.matches("^%d%d%d%d%d%d%d%d/us%-east%-1/rds/aws4_request$", r.scope)
    assert.is_true(r.signature_valid)
    assert.is_true(r.access_key_matches)
    assert.equal(200, r.status)
    not_contains(out .. err, SECRET_KEY)
  end)

  it("prints the cluster as JSON with --json", function()
    srv = start_rds { DescribeDBClusters = { "describe_autopause.xml" } }
    local out, err, code = aurora("status --json", env_for(srv))
    assert.equal(0, code, err)
    local c = cjson.decode(out)
    assert.equal("alex-aurora-cluster", c.identifier)
    assert.equal(CLUSTER_ARN, c.arn)
    assert.equal("available", c.status)
    assert.is_true(c.http_endpoint_enabled)
    assert.equal(0, c.min_capacity)
    assert.equal(2, c.max_capacity)
    assert.equal(600, c.seconds_until_auto_pause)
    assert.equal("us-east-1", c.region)
    assert.same({ { instance = "alex-aurora-instance-1", writer = true } }, c.members)
  end)

  it("says so when the Data API is not enabled", function()
    srv = start_rds { DescribeDBClusters = { "describe_no_data_api.xml" } }
    local out, err, code = aurora("status", env_for(srv))
    assert.equal(0, code, err)
    contains(out, "Data API  NOT enabled (set enable_http_endpoint = true")
  end)

  it("shows auto-pause settings", function()
    srv = start_rds { DescribeDBClusters = { "describe_autopause.xml" } }
    local out, err, code = aurora("status", env_for(srv))
    assert.equal(0, code, err)
    contains(out, "capacity  0 - 2 ACU, auto-pause after 600 s idle")
  end)

  it("reports a missing cluster with the fix, exit 1", function()
    srv = start_rds { DescribeDBClusters = { "error_not_found.xml@404" } }
    local out, err, code = aurora("status", env_for(srv))
    assert.equal(1, code, out)
    contains(err, "DBClusterNotFoundFault: DBCluster alex-aurora-cluster not found.")
    contains(err, "terraform output -raw aurora_cluster_arn")
    assert.equal(1, #srv:requests()) -- a 404 is not retried
  end)

  it("retries throttling with backoff, then succeeds", function()
    srv = start_rds { DescribeDBClusters = { "error_throttling.xml@400", "error_throttling.xml@400",
      "describe_available.xml" } }
    local _, err, code = aurora("status", env_for(srv))
    assert.equal(0, code, err)
    assert.equal(3, #srv:requests())
  end)

  it("gives up after AWS_MAX_ATTEMPTS throttled attempts", function()
    srv = start_rds { DescribeDBClusters = { "error_throttling.xml@400" } }
    local _, err, code = aurora("status", env_for(srv, { AWS_MAX_ATTEMPTS = "2" }))
    assert.equal(1, code)
    contains(err, "Throttling: Rate exceeded")
    contains(err, "2 attempts")
    assert.equal(2, #srv:requests())
  end)

  it("refuses an answer that is not a DescribeDBClusters response", function()
    srv = start_rds { DescribeDBClusters = { "modify_pause.xml" } }
    local _, err, code = aurora("status", env_for(srv))
    assert.equal(1, code)
    contains(err, "InvalidResponse")
    contains(err, "<ModifyDBClusterResponse>")
  end)

  it("reports an empty cluster list as not found", function()
    srv = start_rds { DescribeDBClusters = { "describe_empty.xml" } }
    local _, err, code = aurora("status", env_for(srv))
    assert.equal(1, code)
    contains(err, "DBClusterNotFoundFault")
  end)
end)

describe("aurora.lua credentials and endpoints", function()
  it("signs with a session token and never prints it or the secret key", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml" } }
    local out, err, code = aurora("status --verbose", env_for(srv, { AWS_SESSION_TOKEN = SESSION_TOKEN }))
    assert.equal(0, code, err)
    local r = srv:requests()[1]
    assert.is_true(r.has_session_token)
    assert.is_true(r.signature_valid)
    not_contains(out .. err, SESSION_TOKEN)
    not_contains(out .. err, SECRET_KEY)
    contains(err, "endpoint " .. srv.url .. " (AWS_ENDPOINT_URL_RDS)")
  end)

  it("fails on a wrong secret key with the fix, without showing the key", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml" } }
    local out, err, code = aurora("status",
      env_for(srv, { AWS_SECRET_ACCESS_KEY = "wrong/Secret+Key0000000000000000" }))
    assert.equal(1, code, out)
    contains(err, "SignatureDoesNotMatch")
    contains(err, "the secret key does not match")
    not_contains(out .. err, "wrong/Secret+Key")
    assert.is_false(srv:requests()[1].signature_valid)
  end)

  it("takes credentials from the shared credentials file (the same chain as the Data API)", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml" } }
    local _, err, code = aurora("status", env_for(srv, {
      AWS_ACCESS_KEY_ID = false, AWS_SECRET_ACCESS_KEY = false, AWS_PROFILE = "alex",
      HOME_FILES = { [".aws/credentials"] = ("[alex]\naws_access_key_id = %s\naws_secret_access_key = %s\n")
        :format(ACCESS_KEY, SECRET_KEY) },
    }))
    assert.equal(0, code, err)
    assert.is_true(srv:requests()[1].signature_valid)
  end)

  it("says how to fix missing credentials", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml" } }
    local _, err, code = aurora("status", env_for(srv, { AWS_ACCESS_KEY_ID = false, AWS_SECRET_ACCESS_KEY = false }))
    assert.equal(1, code)
    contains(err, "CredentialsError")
    contains(err, "AWS_ACCESS_KEY_ID")
    assert.equal(0, #srv:requests())
  end)

  it("prefers AWS_ENDPOINT_URL_RDS to AWS_ENDPOINT_URL, ignores the Data API's override", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml" } }
    local dead = "http://127.0.0.1:" .. servers.free_port()
    local _, err, code = aurora("status", env_for(srv, { AWS_ENDPOINT_URL = dead, AWS_ENDPOINT_URL_RDS_DATA = dead }))
    assert.equal(0, code, err)
    assert.equal(1, #srv:requests())
  end)

  it("uses AWS_ENDPOINT_URL when there is no RDS-specific one", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml" } }
    local _, err, code = aurora("status", env_for(srv, { AWS_ENDPOINT_URL_RDS = false, AWS_ENDPOINT_URL = srv.url }))
    assert.equal(0, code, err)
    assert.equal(1, #srv:requests())
  end)

  it("lets --endpoint win over the environment, and --cluster over AURORA_CLUSTER_ARN", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml" } }
    local dead = "http://127.0.0.1:" .. servers.free_port()
    local _, err, code = aurora("--endpoint " .. srv.url .. " --cluster other-cluster status",
      env_for(srv, { AWS_ENDPOINT_URL_RDS = dead }))
    assert.equal(0, code, err)
    assert.equal("other-cluster", srv:requests()[1].params.DBClusterIdentifier)
  end)

  it("reports an unreachable endpoint as a transport error with the fix", function()
    local dead = "http://127.0.0.1:" .. servers.free_port()
    local _, err, code = aurora("status", env_for(nil, { AWS_ENDPOINT_URL_RDS = dead, AWS_MAX_ATTEMPTS = "1" }))
    assert.equal(1, code)
    contains(err, "TransportError")
    contains(err, "AWS_ENDPOINT_URL_RDS")
  end)

  it("exits 2 with what to set when no cluster is configured", function()
    local _, err, code = aurora("status", env_for(nil, { AURORA_CLUSTER_ARN = false }))
    assert.equal(2, code)
    contains(err, "AURORA_CLUSTER_ARN")
  end)

  it("exits 2 on a malformed cluster ARN", function()
    local _, err, code = aurora("status", env_for(nil, {
      AURORA_CLUSTER_ARN = "arn:aws:rds:us-east-1:123456789012:db:alex-aurora-instance-1" }))
    assert.equal(2, code)
    contains(err, "DB instance ARN")
  end)
end)

describe("aurora.lua pause", function()
  it("sends ModifyDBCluster with MinCapacity=0, the current maximum and the auto-pause delay", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml" }, ModifyDBCluster = { "modify_pause.xml" } }
    local out, err, code = aurora("pause", env_for(srv))
    assert.equal(0, code, err)
    assert.same({ "DescribeDBClusters", "ModifyDBCluster" }, srv:actions())
    local m = srv:requests()[2]
    assert.is_true(m.signature_valid)
    assert.equal("alex-aurora-cluster", m.params.DBClusterIdentifier)
    assert.equal("0", m.params["ServerlessV2ScalingConfiguration.MinCapacity"])
    assert.equal("2", m.params["ServerlessV2ScalingConfiguration.MaxCapacity"])
    assert.equal("300", m.params["ServerlessV2ScalingConfiguration.SecondsUntilAutoPause"])
    assert.equal("true", m.params.ApplyImmediately)
    contains(out, "minimum capacity 0.5 -> 0 ACU, maximum 2 ACU, auto-pause after 300 s idle")
    contains(out, "terraform apply sets it back")
  end)

  it("takes the delay from --seconds-until-auto-pause and checks its range", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml" }, ModifyDBCluster = { "modify_pause.xml" } }
    local _, err, code = aurora("pause --seconds-until-auto-pause 900", env_for(srv))
    assert.equal(0, code, err)
    assert.equal("900", srv:requests()[2].params["ServerlessV2ScalingConfiguration.SecondsUntilAutoPause"])
    _, err, code = aurora("pause --seconds-until-auto-pause 60", env_for(srv))
    assert.equal(2, code)
    contains(err, "300 to 86400")
    assert.equal(3, #srv:requests()) -- the refused one only described the cluster
  end)

  it("changes nothing when the cluster already auto-pauses", function()
    srv = start_rds { DescribeDBClusters = { "describe_autopause.xml" }, ModifyDBCluster = { "modify_pause.xml" } }
    local out, err, code = aurora("pause", env_for(srv))
    assert.equal(0, code, err)
    contains(out, "already scales to 0 ACUs")
    assert.same({ "DescribeDBClusters" }, srv:actions())
  end)

  it("refuses an engine version without auto-pause before calling ModifyDBCluster", function()
    srv = start_rds { DescribeDBClusters = { "describe_old_engine.xml" }, ModifyDBCluster = { "modify_pause.xml" } }
    local _, err, code = aurora("pause", env_for(srv))
    assert.equal(2, code)
    contains(err, "15.4, which cannot scale to 0 ACUs")
    assert.same({ "DescribeDBClusters" }, srv:actions())
  end)

  it("reports a busy cluster with the fix", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml" },
      ModifyDBCluster = { "error_invalid_state.xml@400" } }
    local _, err, code = aurora("pause", env_for(srv))
    assert.equal(1, code)
    contains(err, "InvalidDBClusterStateFault")
    contains(err, "aurora.lua wait")
  end)

  it("waits afterwards with --wait", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml", "describe_modifying.xml",
      "describe_available.xml" }, ModifyDBCluster = { "modify_pause.xml" } }
    local out, err, code = aurora("pause --wait --interval 0.05", env_for(srv))
    assert.equal(0, code, err)
    assert.same({ "DescribeDBClusters", "ModifyDBCluster", "DescribeDBClusters", "DescribeDBClusters" },
      srv:actions())
    contains(out, "modifying")
    contains(out, "available")
  end)
end)

describe("aurora.lua resume", function()
  it("restores the minimum from ALEX_MIN_CAPACITY, without an auto-pause delay", function()
    srv = start_rds { DescribeDBClusters = { "describe_autopause.xml" }, ModifyDBCluster = { "modify_resume.xml" } }
    local out, err, code = aurora("resume", env_for(srv, { ALEX_MIN_CAPACITY = "1" }))
    assert.equal(0, code, err)
    local m = srv:requests()[2]
    assert.equal("ModifyDBCluster", m.action)
    assert.is_true(m.signature_valid)
    assert.equal("1", m.params["ServerlessV2ScalingConfiguration.MinCapacity"])
    assert.equal("2", m.params["ServerlessV2ScalingConfiguration.MaxCapacity"])
    assert.is_nil(m.params["ServerlessV2ScalingConfiguration.SecondsUntilAutoPause"])
    contains(out, "minimum capacity 0 -> 1 ACU")
  end)

  it("defaults to 0.5 ACU, and --min-capacity wins over ALEX_MIN_CAPACITY", function()
    srv = start_rds { DescribeDBClusters = { "describe_autopause.xml" }, ModifyDBCluster = { "modify_resume.xml" } }
    local _, err, code = aurora("resume", env_for(srv))
    assert.equal(0, code, err)
    assert.equal("0.5", srv:requests()[2].params["ServerlessV2ScalingConfiguration.MinCapacity"])
    _, err, code = aurora("resume --min-capacity 1.5", env_for(srv, { ALEX_MIN_CAPACITY = "1" }))
    assert.equal(0, code, err)
    assert.equal("1.5", srv:requests()[4].params["ServerlessV2ScalingConfiguration.MinCapacity"])
  end)

  it("refuses a minimum of 0, off-step or above the maximum", function()
    srv = start_rds { DescribeDBClusters = { "describe_autopause.xml" }, ModifyDBCluster = { "modify_resume.xml" } }
    local cases = { { "0", "0.5 to 128" }, { "0.7", "steps of 0.5" }, { "4", "above the cluster's maximum" } }
    for _, case in ipairs(cases) do
      local _, err, code = aurora("resume --min-capacity " .. case[1], env_for(srv))
      assert.equal(2, code)
      contains(err, case[2])
    end
    for _, a in ipairs(srv:actions()) do assert.equal("DescribeDBClusters", a) end
  end)

  it("changes nothing when the minimum is already there", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml" }, ModifyDBCluster = { "modify_resume.xml" } }
    local out, err, code = aurora("resume", env_for(srv))
    assert.equal(0, code, err)
    contains(out, "already has minimum capacity 0.5 ACU")
    assert.same({ "DescribeDBClusters" }, srv:actions())
  end)
end)

describe("aurora.lua wait", function()
  it("polls until the cluster is available", function()
    srv = start_rds { DescribeDBClusters = { "describe_modifying.xml", "describe_modifying.xml",
      "describe_available.xml" } }
    local out, err, code = aurora("wait --interval 0.05", env_for(srv))
    assert.equal(0, code, err)
    -- three polls, two sleeps
    assert.same({ "DescribeDBClusters", "DescribeDBClusters", "DescribeDBClusters" }, srv:actions())
    local first, second = out:find("\n  modifying", 1, true), out:find("\n  available", 1, true)
    assert(first and second and first < second, out)
    for _, r in ipairs(srv:requests()) do assert.is_true(r.signature_valid) end
  end)

  it("takes the poll interval from ALEX_WAIT_INTERVAL", function()
    srv = start_rds { DescribeDBClusters = { "describe_modifying.xml", "describe_modifying.xml",
      "describe_available.xml" } }
    local t0 = servers.now()
    local _, err, code = aurora("wait", env_for(srv, { ALEX_WAIT_INTERVAL = "0.3" }))
    local elapsed = servers.now() - t0
    assert.equal(0, code, err)
    assert.is_true(elapsed >= 0.6, ("two 0.3 s sleeps took %.2f s"):format(elapsed))
  end)

  it("times out while the cluster stays busy, exit 1", function()
    srv = start_rds { DescribeDBClusters = { "describe_modifying.xml" } }
    local _, err, code = aurora("wait --interval 0.05 --timeout 0.3", env_for(srv))
    assert.equal(1, code)
    contains(err, "Timeout")
    contains(err, "still modifying")
    assert.is_true(#srv:requests() >= 3)
  end)

  it("stops at once on a stopped cluster, with the command that starts it", function()
    srv = start_rds { DescribeDBClusters = { "describe_stopped.xml" } }
    local _, err, code = aurora("wait --interval 0.05", env_for(srv))
    assert.equal(1, code)
    contains(err, "status stopped")
    contains(err, "aws rds start-db-cluster --db-cluster-identifier alex-aurora-cluster")
    assert.equal(1, #srv:requests())
  end)
end)

describe("aurora.lua destroy and recreate", function()
  it("print the Terraform commands and call nothing", function()
    srv = start_rds { DescribeDBClusters = { "describe_available.xml" } }
    local out, err, code = aurora("destroy", env_for(srv))
    assert.equal(0, code, err)
    contains(out, "terraform -chdir=terraform destroy")
    out, err, code = aurora("recreate", env_for(srv))
    assert.equal(0, code, err)
    contains(out, "terraform -chdir=terraform destroy")
    contains(out, "terraform -chdir=terraform apply")
    contains(out, "terraform -chdir=terraform output -raw env_file")
    assert.equal(0, #srv:requests())
  end)
end)

describe("alex.rds settings", function()
  local function settings(vars, opts)
    opts = opts or {}
    opts.env = function(k) return vars[k] end
    opts.home = "/nonexistent"
    return rds.settings(opts)
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
    local s, err = settings { AURORA_CLUSTER_ARN = CLUSTER_ARN, AWS_REGION = "eu-west-1" }
    assert.is_nil(s)
    contains(err, "AWS_REGION is eu-west-1")
    s = assert(settings { AURORA_CLUSTER_ARN = CLUSTER_ARN, AWS_REGION = "eu-west-1",
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
    local s, err = settings { AURORA_CLUSTER_ARN = CLUSTER_ARN, AWS_ENDPOINT_URL_RDS = "127.0.0.1:9" }
    assert.is_nil(s)
    contains(err, "AWS_ENDPOINT_URL_RDS")
    s, err = settings { AURORA_CLUSTER_ARN = CLUSTER_ARN, AWS_MAX_ATTEMPTS = "0" }
    assert.is_nil(s)
    contains(err, "AWS_MAX_ATTEMPTS")
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
