-- luacheck: std +busted
-- The RDS control plane of the local Data API service (local/rds.c,
-- local/cluster.c): the Query API on POST / of a private stack, signed for
-- service rds, answering DescribeDBClusters, ModifyDBCluster and
-- Enable/DisableHttpEndpoint for the local cluster in the RDS namespace and
-- AWS's error shapes.  Driven with alex.sigv4 + alex.http (raw requests),
-- Debian's botocore, and the admin API; scripts/aurora.lua's own spec is
-- spec/aurora_spec.lua, the AWS CLI's spec/awscli_spec.lua.
local stack = require "stack"
local servers = require "servers"
local http = require "alex.http"
local sigv4 = require "alex.sigv4"
local rds = require "alex.rds"
local cjson = require "cjson"

local q, read_file, write_file, run = servers.q, servers.read_file, servers.write_file, servers.run
local NS = "http://rds.amazonaws.com/doc/2014-10-31/"
local SCALING = "ServerlessV2ScalingConfiguration."

local S, H, VERSION

local contains = servers.contains

-- ---- requests -----------------------------------------------------------

-- A form-encoded Query API call; params is a list of { name, value } (Version
-- is added unless given).  o: endpoint, service, region, access_key,
-- secret_key, amz_date, unsigned, headers (unsigned extras), method, body
-- (raw text instead of the form), sign_body.
local function call(params, o)
  o = o or {}
  local list = {}
  local has_version = false
  for _, p in ipairs(params) do
    list[#list + 1] = p
    has_version = has_version or p[1] == "Version"
  end
  if not has_version then list[#list + 1] = { "Version", "2014-10-31" } end
  local body = o.body or rds.encode_query(list)
  local method = o.method or "POST"
  local url = (o.endpoint or S.env.AWS_ENDPOINT_URL_RDS) .. "/"
  if method == "GET" then
    url, body = url .. "?" .. body, nil
  end
  local headers = { { "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" } }
  if not o.unsigned then
    headers = sigv4.sign {
      method = method, url = url, headers = headers, body = o.sign_body or body or "",
      service = o.service or "rds", region = o.region or S.env.AWS_REGION, amz_date = o.amz_date,
      access_key = o.access_key or S.env.AWS_ACCESS_KEY_ID, secret_key = o.secret_key or S.env.AWS_SECRET_ACCESS_KEY,
    }.headers
  end
  for _, h in ipairs(o.headers or {}) do headers[#headers + 1] = h end
  return assert(H:request { method = method, url = url, headers = headers, body = body })
end

local function child(node, ...)
  for i = 1, select("#", ...) do
    node = node and rds.child(node, (select(i, ...)))
  end
  return node
end

local function text(node, ...)
  local n = child(node, ...)
  return n and n.text
end

-- Expects an <ErrorResponse>: checks status, Type and Code; returns the message.
local function expect_error(res, status, code)
  assert.equal(status, res.status, res.body)
  assert.equal("text/xml", res.headers["content-type"])
  local doc = assert(rds.parse_xml(res.body))
  assert.equal("ErrorResponse", doc.name)
  assert.equal(NS, doc.attrs.xmlns)
  assert.equal(status >= 500 and "Receiver" or "Sender", text(doc, "Error", "Type"))
  assert.equal(code, text(doc, "Error", "Code"), res.body)
  assert.equal(res.headers["x-amzn-requestid"], text(doc, "RequestId"))
  return text(doc, "Error", "Message")
end

-- A successful answer: its <ActionResult> element.
local function result(res, action)
  assert.equal(200, res.status, res.body)
  assert.equal("text/xml", res.headers["content-type"])
  local doc = assert(rds.parse_xml(res.body))
  assert.equal(action .. "Response", doc.name)
  assert.equal(NS, doc.attrs.xmlns)
  assert.equal(res.headers["x-amzn-requestid"], text(doc, "ResponseMetadata", "RequestId"))
  return assert(child(doc, action .. "Result"), res.body)
end

local function describe_cluster(o)
  local r = result(call({ { "Action", "DescribeDBClusters" }, { "DBClusterIdentifier", "alex-local" } }, o),
    "DescribeDBClusters")
  return rds.cluster_from_xml(assert(child(r, "DBClusters", "DBCluster"))), r
end

local function modify(params, o)
  local list = { { "Action", "ModifyDBCluster" }, { "DBClusterIdentifier", "alex-local" } }
  for _, p in ipairs(params) do list[#list + 1] = p end
  return call(list, o)
end

local function scaling(min, max, seconds)
  local list = { { SCALING .. "MinCapacity", min }, { SCALING .. "MaxCapacity", max } }
  if seconds then list[#list + 1] = { SCALING .. "SecondsUntilAutoPause", seconds } end
  return list
end

local function admin(method, path, body, headers)
  local res = assert(H:request { method = method, url = S.admin .. path, body = body,
                                 headers = headers or (method == "GET" and {} or S:admin_headers()) })
  return res.status, cjson.decode(res.body)
end

-- Debian's botocore (python3-botocore) with the stack's settings; the
-- variables go through a private file, never a command line.
local function botocore(code)
  local dir = servers.tmpdir()
  local lines = {}
  for k, v in pairs(S.env) do lines[#lines + 1] = ("os.environ[%q] = %q"):format(k, v) end
  write_file(dir .. "/t.py", "import os\n" .. table.concat(lines, "\n") .. "\n" ..
    "os.environ['AWS_CONFIG_FILE'] = os.environ['AWS_SHARED_CREDENTIALS_FILE'] = '/dev/null'\n" ..
    "import boto3, botocore, json\n" ..
    "rds = boto3.client('rds', endpoint_url=os.environ['AWS_ENDPOINT_URL_RDS'])\n" .. code)
  local ok, out = run("env -i PATH=/usr/bin:/bin HOME=" .. q(dir) .. " " .. servers.PYTHON .. " " .. q(dir .. "/t.py"))
  servers.rmtree(dir)
  return ok, out
end

stack.shared({ settings = { log_level = "debug" } }, function(started)
  S, VERSION = started, started:engine_version()
  H = http.new { connect_timeout = 5, timeout = 30 }
  -- the stack's stop() fails on a sanitizer report in its service's or an extra one's stderr
  return function() H:close() end
end)

before_each(function()
  S:clear_faults()
  admin("POST", "/cluster", '{"status":"available","modify_describes":0}')
  assert.equal(200, modify(scaling("0.5", "2")).status)
  result(call { { "Action", "EnableHttpEndpoint" }, { "ResourceArn", S.cluster_arn } }, "EnableHttpEndpoint")
  assert(S:reset_stats())
end)

describe("the RDS API of the local stack", function()
  describe("DescribeDBClusters", function()
    it("describes the local cluster in the RDS namespace, with the request id", function()
      local c, r = describe_cluster()
      assert.equal("alex-local", c.identifier)
      assert.equal(S.cluster_arn, c.arn)
      assert.equal("available", c.status)
      assert.equal("aurora-postgresql", c.engine)
      assert.equal(VERSION, c.engine_version)
      assert.equal("provisioned", c.engine_mode)
      assert.equal("alex", c.database_name)
      assert.equal("alex_app", c.master_username)
      assert.equal("127.0.0.1", c.endpoint)
      assert.equal(S.pg_port, c.port)
      assert.is_true(c.http_endpoint_enabled)
      assert.is_false(c.storage_encrypted)
      assert.same({ { instance = "alex-local-instance-1", writer = true } }, c.members)
      -- Serverless v2 scaling as RDS writes it (Java doubles), no auto-pause delay above 0 ACUs
      local sc = child(r, "DBClusters", "DBCluster", "ServerlessV2ScalingConfiguration")
      assert.same({ "0.5", "2.0" }, { text(sc, "MinCapacity"), text(sc, "MaxCapacity") })
      assert.is_nil(child(sc, "SecondsUntilAutoPause"))
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.000Z$",
        text(r, "DBClusters", "DBCluster", "ClusterCreateTime"))
      assert.equal("default.aurora-postgresql" .. VERSION:match("^%d+"),
        text(r, "DBClusters", "DBCluster", "DBClusterParameterGroup"))
    end)

    it("takes the identifier in any case or as the ARN, lists the cluster without one, answers GET too", function()
      for _, id in ipairs { "ALEX-Local", S.cluster_arn } do
        local r = result(call { { "Action", "DescribeDBClusters" }, { "DBClusterIdentifier", id } },
          "DescribeDBClusters")
        assert.equal("alex-local", text(r, "DBClusters", "DBCluster", "DBClusterIdentifier"))
      end
      local r = result(call { { "Action", "DescribeDBClusters" }, { "MaxRecords", "20" } }, "DescribeDBClusters")
      assert.equal(1, #child(r, "DBClusters").children)
      r = result(call({ { "Action", "DescribeDBClusters" } }, { method = "GET" }), "DescribeDBClusters")
      assert.equal("alex-local", text(r, "DBClusters", "DBCluster", "DBClusterIdentifier"))
    end)

    it("answers DBClusterNotFoundFault (404) for another cluster and checks identifiers and MaxRecords", function()
      local msg = expect_error(call { { "Action", "DescribeDBClusters" }, { "DBClusterIdentifier", "other" } },
        404, "DBClusterNotFoundFault")
      assert.equal("DBCluster other not found.", msg)
      expect_error(call { { "Action", "DescribeDBClusters" },
        { "DBClusterIdentifier", "arn:aws:rds:us-east-1:000000000000:cluster:other" } }, 404, "DBClusterNotFoundFault")
      for _, bad in ipairs { "bad--id", "1abc", "ends-", ("a"):rep(64) } do
        msg = expect_error(call { { "Action", "DescribeDBClusters" }, { "DBClusterIdentifier", bad } },
          400, "InvalidParameterValue")
        contains(msg, "DBClusterIdentifier is not a valid identifier")
      end
      contains(expect_error(call { { "Action", "DescribeDBClusters" }, { "MaxRecords", "5" } },
        400, "InvalidParameterValue"), "MaxRecords")
      contains(expect_error(call { { "Action", "DescribeDBClusters" }, { "Filters.Filter.1.Name", "engine" } },
        400, "InvalidParameterValue"), "Filters")
    end)
  end)

  describe("ModifyDBCluster", function()
    it("sets the Serverless v2 capacity range and auto-pause delay and answers the modified cluster", function()
      local r = result(modify(scaling("0", "256", "86400")), "ModifyDBCluster")
      local sc = child(r, "DBCluster", "ServerlessV2ScalingConfiguration")
      assert.same({ "0.0", "256.0", "86400" },
        { text(sc, "MinCapacity"), text(sc, "MaxCapacity"), text(sc, "SecondsUntilAutoPause") })
      local c = describe_cluster()
      assert.same({ 0, 256, 86400 }, { c.min_capacity, c.max_capacity, c.seconds_until_auto_pause })
      -- one end of the range alone keeps the other
      result(modify { { SCALING .. "MaxCapacity", "8" }, { "ApplyImmediately", "true" } }, "ModifyDBCluster")
      c = describe_cluster()
      assert.same({ 0, 8 }, { c.min_capacity, c.max_capacity })
      result(modify { { SCALING .. "MinCapacity", "1.5" } }, "ModifyDBCluster")
      c = describe_cluster()
      assert.same({ 1.5, 8 }, { c.min_capacity, c.max_capacity })
      assert.is_nil(c.seconds_until_auto_pause)
    end)

    it("validates the values as RDS does and changes nothing on a refusal", function()
      local cases = {
        { scaling("0.7", "2"), "InvalidParameterValue", "MinCapacity" },
        { scaling("257", "300"), "InvalidParameterValue", "MinCapacity" },
        { scaling("-0.5", "2"), "InvalidParameterValue", "MinCapacity" },
        { scaling("abc", "2"), "InvalidParameterValue", "MinCapacity" },
        { scaling("0.5", "0.5"), "InvalidParameterValue", "MaxCapacity" },
        { scaling("0.5", "256.5"), "InvalidParameterValue", "MaxCapacity" },
        { scaling("4", "2"), "InvalidParameterCombination", "above the maximum" },
        { scaling("0", "2", "299"), "InvalidParameterValue", "SecondsUntilAutoPause" },
        { scaling("0", "2", "86401"), "InvalidParameterValue", "SecondsUntilAutoPause" },
        { scaling("0", "2", "600.5"), "InvalidParameterValue", "SecondsUntilAutoPause" },
        { scaling("1", "2", "600"), "InvalidParameterCombination", "only with a minimum capacity of 0" },
        { { { "ApplyImmediately", "maybe" } }, "InvalidParameterValue", "ApplyImmediately" },
        { { { "MasterUserPassword", "NotLogged-Pw-7431" } }, "InvalidParameterCombination", "MasterUserPassword" },
      }
      for _, case in ipairs(cases) do
        local msg = expect_error(modify(case[1]), 400, case[2])
        contains(msg, case[3])
      end
      contains(expect_error(call { { "Action", "ModifyDBCluster" } }, 400, "MissingParameter"), "DBClusterIdentifier")
      expect_error(call { { "Action", "ModifyDBCluster" }, { "DBClusterIdentifier", "other" } }, 404,
        "DBClusterNotFoundFault")
      local c = describe_cluster()
      assert.same({ 0.5, 2 }, { c.min_capacity, c.max_capacity })
      -- the debug log shows parameter names, and values only of those known to hold nothing secret
      local log = read_file(S.dir .. "/dataapi.log") or ""
      contains(log, "rds: Action=ModifyDBCluster DBClusterIdentifier=alex-local MasterUserPassword "
        .. "Version=2014-10-31 ->")
      assert.is_nil(log:find("NotLogged-Pw-7431", 1, true))
    end)

    it("refuses a minimum of 0 ACUs on an engine version without auto-pause", function()
      local svc = S:extra_service { engine_version = "15.4" }
      finally(svc.stop)
      local c = describe_cluster { endpoint = svc.endpoint }
      assert.equal("15.4", c.engine_version)
      local msg = expect_error(modify(scaling("0", "2"), { endpoint = svc.endpoint }), 400,
        "InvalidParameterCombination")
      contains(msg, "15.4 can't scale to a minimum capacity of 0 ACUs")
      result(modify(scaling("1", "2"), { endpoint = svc.endpoint }), "ModifyDBCluster")
    end)

    it("refuses a cluster that is not available with InvalidDBClusterStateFault", function()
      admin("POST", "/cluster", '{"status":"backing-up"}')
      local msg = expect_error(modify(scaling("1", "2")), 400, "InvalidDBClusterStateFault")
      contains(msg, "backing-up")
      admin("POST", "/cluster", '{"status":"available"}')
      result(modify(scaling("1", "2")), "ModifyDBCluster")
    end)
  end)

  describe("Enable/DisableHttpEndpoint", function()
    it("turns the Data API off and on for the cluster's ARN only", function()
      local function data_api()
        local res = S:execute(H, "SELECT 1")
        return res.status, cjson.decode(res.body)
      end
      local r = result(call { { "Action", "DisableHttpEndpoint" }, { "ResourceArn", S.cluster_arn } },
        "DisableHttpEndpoint")
      assert.same({ S.cluster_arn, "false" }, { text(r, "ResourceArn"), text(r, "HttpEndpointEnabled") })
      assert.is_false(describe_cluster().http_endpoint_enabled)
      local st, d = data_api()
      assert.same({ 400, "HttpEndpointNotEnabledException" }, { st, d.__type })
      expect_error(call { { "Action", "EnableHttpEndpoint" },
        { "ResourceArn", "arn:aws:rds:us-east-1:000000000000:cluster:other" } }, 404, "ResourceNotFoundFault")
      contains(expect_error(call { { "Action", "EnableHttpEndpoint" } }, 400, "MissingParameter"), "ResourceArn")
      result(call { { "Action", "EnableHttpEndpoint" }, { "ResourceArn", S.cluster_arn } }, "EnableHttpEndpoint")
      assert.equal(200, (data_api()))
    end)
  end)

  describe("requests", function()
    it("answers AWS's errors for a missing or unknown action or version and a broken form", function()
      contains(expect_error(call {}, 400, "MissingAction"), "Action")
      assert.equal("Could not find operation DeleteDBCluster for version 2014-10-31",
        expect_error(call { { "Action", "DeleteDBCluster" }, { "DBClusterIdentifier", "alex-local" } },
          400, "InvalidAction"))
      expect_error(call { { "Action", "DescribeDBClusters" }, { "Version", "2013-01-10" } }, 400, "InvalidAction")
      contains(expect_error(call({}, { body = "Action=DescribeDBClusters" }), 400, "MissingParameter"), "Version")
      expect_error(call({}, { body = "Action=DescribeDBClusters&Version=2014-10-31&X=%zz" }), 404,
        "MalformedQueryString")
      expect_error(call({ { "Action", "DescribeDBClusters" } }, { method = "PUT" }), 400, "InvalidAction")
      -- calls refused before an action are not counted
      assert.equal(0, assert(S:stats()).rds_actions.DescribeDBClusters)
    end)
  end)

  describe("authentication", function()
    local function describe_with(o)
      return call({ { "Action", "DescribeDBClusters" } }, o)
    end

    it("verifies SigV4 for service rds with the Query API's error codes", function()
      assert.equal("Request is missing Authentication Token",
        expect_error(describe_with { unsigned = true }, 403, "MissingAuthenticationToken"))
      expect_error(describe_with { unsigned = true, headers = { { "Authorization", "Bearer abc" } } }, 400,
        "IncompleteSignature")
      assert.equal("The security token included in the request is invalid.",
        expect_error(describe_with { access_key = "AKIAUNKNOWNKEY000000" }, 403, "InvalidClientTokenId"))
      contains(expect_error(describe_with { secret_key = "wrong" }, 403, "SignatureDoesNotMatch"),
        "The request signature we calculated does not match")
      expect_error(describe_with { sign_body = "Action=ModifyDBCluster&Version=2014-10-31" }, 403,
        "SignatureDoesNotMatch")
      contains(expect_error(describe_with { region = "eu-west-1" }, 403, "SignatureDoesNotMatch"), "region")
      assert.equal("Credential should be scoped to correct service: 'rds'.",
        expect_error(describe_with { service = "rds-data" }, 403, "SignatureDoesNotMatch"))
      local old = os.date("!%Y%m%dT%H%M%SZ", os.time() - 600)
      contains(expect_error(describe_with { amz_date = old }, 403, "SignatureDoesNotMatch"),
        "Signature expired: " .. old)
      assert.equal(0, assert(S:stats()).rds_actions.DescribeDBClusters)
      -- and the Data API keeps its own: a request signed for rds is refused there with rds-data's names
      local url = S.env.AWS_ENDPOINT_URL_RDS_DATA .. "/Execute"
      local signed = sigv4.sign { method = "POST", url = url, body = "{}", service = "rds", region = S.env.AWS_REGION,
        access_key = S.env.AWS_ACCESS_KEY_ID, secret_key = S.env.AWS_SECRET_ACCESS_KEY, headers = {} }
      local res = assert(H:request { method = "POST", url = url, headers = signed.headers, body = "{}" })
      assert.equal(403, res.status)
      assert.equal("InvalidSignatureException", cjson.decode(res.body).__type)
      contains(cjson.decode(res.body).message, "'rds-data'")
    end)
  end)

  describe("faults and statistics", function()
    it("throttles and fails with 5xx as the Query API does, counting the calls per action", function()
      admin("POST", "/faults", '{"throttle_rate":1}')
      assert.equal("Rate exceeded", expect_error(call { { "Action", "DescribeDBClusters" } }, 400, "Throttling"))
      admin("POST", "/faults", '{"throttle_rate":0,"5xx_rate":1,"resuming_rate":1}')
      local seen = {}
      for _ = 1, 12 do
        local res = call { { "Action", "DescribeDBClusters" } }
        local doc = assert(rds.parse_xml(res.body))
        seen[res.status .. " " .. text(doc, "Error", "Code") .. " " .. text(doc, "Error", "Type")] = true
      end
      assert.is_true(seen["500 InternalFailure Receiver"] or false)
      assert.is_true(seen["503 ServiceUnavailable Receiver"] or false)
      S:clear_faults()
      result(modify(scaling("1", "2")), "ModifyDBCluster")
      local st = assert(S:stats())
      assert.same({ DescribeDBClusters = 13, ModifyDBCluster = 1, EnableHttpEndpoint = 0, DisableHttpEndpoint = 0 },
        st.rds_actions)
      -- the RDS control plane never meets a resuming instance
      assert.same({ throttle = 1, resuming = 0, ["5xx"] = 12, drop = 0, drop_after = 0 }, st.faults)
      assert.same({ ExecuteStatement = 0, BatchExecuteStatement = 0, BeginTransaction = 0, CommitTransaction = 0,
                    RollbackTransaction = 0 }, st.operations)
      assert.is_true(st.bytes_in > 0 and st.bytes_out > 0)
    end)

    it("drops connections before or after a change", function()
      admin("POST", "/faults", '{"drop_rate":1}')
      local body = rds.encode_query { { "Action", "ModifyDBCluster" }, { "Version", "2014-10-31" },
        { "DBClusterIdentifier", "alex-local" }, { SCALING .. "MinCapacity", "1" }, { SCALING .. "MaxCapacity", "3" } }
      local function send()
        local url = S.env.AWS_ENDPOINT_URL_RDS .. "/"
        local signed = sigv4.sign { method = "POST", url = url, body = body, service = "rds", region = S.env.AWS_REGION,
          headers = { { "Content-Type", "application/x-www-form-urlencoded" } },
          access_key = S.env.AWS_ACCESS_KEY_ID, secret_key = S.env.AWS_SECRET_ACCESS_KEY }
        local c = http.new { connect_timeout = 5, timeout = 30 } -- a fresh connection: libcurl resends on a reused one
        local res = c:request { method = "POST", url = url, headers = signed.headers, body = body }
        c:close()
        return res
      end
      assert.is_nil(send())
      S:clear_faults()
      assert.equal(2, describe_cluster().max_capacity)
      admin("POST", "/faults", '{"drop_after_rate":1}')
      assert.is_nil(send())
      S:clear_faults()
      assert.equal(3, describe_cluster().max_capacity)
      local st = assert(S:stats())
      assert.same({ 1, 1 }, { st.faults.drop, st.faults.drop_after })
    end)
  end)

  describe("the admin API's cluster status", function()
    it("reads and injects a status, for some DescribeDBClusters answers or until changed", function()
      local st, c = admin("GET", "/cluster")
      assert.equal(200, st)
      assert.same({ "available", 0.5, 2, true, VERSION },
        { c.status, c.min_capacity, c.max_capacity, c.http_endpoint_enabled, c.engine_version })
      st = admin("POST", "/cluster", '{"status":"modifying"}', {})
      assert.equal(403, st)
      for _, bad in ipairs { '{"status":"sleeping"}', '{"status":"modifying","for_describes":0}', '{"nope":1}',
                             '{"for_describes":2}', 'not json' } do
        assert.equal(400, (admin("POST", "/cluster", bad)))
      end
      admin("POST", "/cluster", '{"status":"modifying","for_describes":2}')
      local seen = {}
      for i = 1, 3 do seen[i] = describe_cluster().status end
      assert.same({ "modifying", "modifying", "available" }, seen)
      admin("POST", "/cluster", '{"modify_describes":1}')
      result(modify(scaling("1", "2")), "ModifyDBCluster")
      assert.same({ "modifying", "available" }, { describe_cluster().status, describe_cluster().status })
    end)
  end)

  describe("botocore (Debian's python3-botocore)", function()
    it("describes and modifies the cluster and raises RDS's typed errors", function()
      local ok, out = botocore [==[
c = rds.describe_db_clusters(DBClusterIdentifier=os.environ['AURORA_CLUSTER_ARN'])['DBClusters'][0]
m = rds.modify_db_cluster(DBClusterIdentifier='alex-local', ApplyImmediately=True,
                          ServerlessV2ScalingConfiguration={'MinCapacity': 0, 'MaxCapacity': 4})['DBCluster']
errors = []
try:
    rds.describe_db_clusters(DBClusterIdentifier='nope')
except rds.exceptions.DBClusterNotFoundFault as e:
    errors.append([e.response['Error']['Code'], e.response['ResponseMetadata']['HTTPStatusCode']])
try:
    rds.modify_db_cluster(DBClusterIdentifier='alex-local', ServerlessV2ScalingConfiguration={'MinCapacity': 0.3})
except botocore.exceptions.ClientError as e:
    errors.append([e.response['Error']['Code'], e.response['ResponseMetadata']['HTTPStatusCode']])
print(json.dumps({'id': c['DBClusterIdentifier'], 'status': c['Status'], 'engine': c['Engine'],
                  'version': c['EngineVersion'], 'data_api': c['HttpEndpointEnabled'],
                  'scaling': c['ServerlessV2ScalingConfiguration'], 'members': c['DBClusterMembers'],
                  'modified': m['ServerlessV2ScalingConfiguration'], 'errors': errors}))
]==]
      assert(ok, out)
      local r = cjson.decode(out:match("{.*}"))
      assert.same({ "alex-local", "available", "aurora-postgresql", VERSION, true },
        { r.id, r.status, r.engine, r.version, r.data_api })
      assert.same({ MinCapacity = 0.5, MaxCapacity = 2 }, r.scaling)
      assert.same({ MinCapacity = 0, MaxCapacity = 4 }, r.modified)
      assert.equal("alex-local-instance-1", r.members[1].DBInstanceIdentifier)
      assert.same({ { "DBClusterNotFoundFault", 404 }, { "InvalidParameterValue", 400 } }, r.errors)
    end)
  end)

  describe("the state file", function()
    it("keeps the scaling configuration and the Data API flag across a restart (cluster.env, mode 600)", function()
      result(modify(scaling("0", "6", "1200")), "ModifyDBCluster")
      result(call { { "Action", "DisableHttpEndpoint" }, { "ResourceArn", S.cluster_arn } }, "DisableHttpEndpoint")
      local created = describe_cluster()
      local _, mode = run("stat -c %a " .. q(S.dir .. "/cluster.env"))
      assert.equal("600", mode:match("%d+"))
      assert(S:script("down"))
      S:up()
      local c = describe_cluster()
      assert.same({ 0, 6, 1200, false }, { c.min_capacity, c.max_capacity, c.seconds_until_auto_pause,
                                           c.http_endpoint_enabled })
      assert.equal(created.arn, c.arn)
    end)

    it("a broken state file stops the service from starting, in one line naming the file", function()
      local bad = S.dir .. "/broken-cluster.env"
      write_file(bad, "MIN_CAPACITY=0.3\n")
      local port = stack.free_ports(1)
      local ok, out = run(("ALEX_DATAAPI_CLUSTER_STATE_FILE=%s %s --config %s --listen 127.0.0.1:%d --log-file %s")
        :format(q(bad), q(os.getenv("ALEX_DATAAPI")), q(S.dir .. "/dataapi.env"), port, q(S.dir .. "/broken.log")))
      assert.is_false(ok)
      local line = out:match("[^\n]*broken%-cluster%.env[^\n]*")
      assert(line, out)
      contains(line, "MIN_CAPACITY has an invalid value '0.3'")
      os.remove(bad)
    end)

    it("refuses an engine_version setting that is not MAJOR.MINOR", function()
      local ok, out = run(("ALEX_DATAAPI_ENGINE_VERSION=fifteen %s --config %s --listen 127.0.0.1:1")
        :format(q(os.getenv("ALEX_DATAAPI")), q(S.dir .. "/dataapi.env")))
      assert.is_false(ok)
      contains(out, "engine_version must be MAJOR.MINOR")
    end)
  end)
end)
