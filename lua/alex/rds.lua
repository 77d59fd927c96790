-- A small client for the RDS control plane (not the Data API): read an Aurora
-- cluster's status and capacity range, change the capacity range, wait for the
-- cluster to be available.  The Query protocol: a form-encoded POST to "/" with
-- Action=...&Version=2014-10-31, signed with SigV4 for service "rds", answered
-- with XML (read with lua-expat).
--
--   local rds = require "alex.rds"
--   local client, err = rds.new(opts)      -- nil, message when misconfigured
--   local cluster, err = client:describe_cluster()
--   local cluster, err = client:modify_scaling { min_capacity = 0, max_capacity = 2,
--                                                seconds_until_auto_pause = 300 }
--   local cluster, err = client:wait_available { interval = 10, timeout = 1800,
--                                                on_poll = function(cluster, elapsed) end }
--   client:close()
--
-- opts (all optional): cluster (identifier or cluster ARN; default: the cluster of
-- AURORA_CLUSTER_ARN), and as alex.aws.settings: region, endpoint, profile,
-- max_attempts, retry_mode, retry_base, env (function(name) -> value, default
-- os.getenv), home; and as alex.aws.client: credentials (a provider with :get();
-- default the alex.credentials chain over the same shared files), debug, log,
-- sleep, random, now, connect_timeout, timeout.
--
-- Settings: the cluster is opts.cluster or AURORA_CLUSTER_ARN; the rest are
-- alex.aws's for service rds (AWS_ENDPOINT_URL_RDS, the profile's `rds =` in
-- its services section, default https://rds.<region>.amazonaws.com), with the
-- cluster ARN's region as the last resort, and a region that differs from it
-- refused unless the endpoint is overridden.  Throttling, 5xx and network
-- errors are retried by alex.aws's standard mode.
--
-- Errors are alex.errors values: name = the AWS code (DBClusterNotFoundFault,
-- InvalidDBClusterStateFault, AccessDenied, ...) or TransportError,
-- CredentialsError, InvalidResponse, Timeout, ClusterStateError.
local alex_env = require "alex.env"
local aws = require "alex.aws"
local errors = require "alex.errors"
local config = require "alex.config"
local clock = require "alex.clock"

local rds = {}

rds.API_VERSION = "2014-10-31"

-- Cluster statuses that will not become "available" by waiting.
rds.TERMINAL_STATUSES = {
  stopped = "the cluster is stopped: start it (aws rds start-db-cluster --db-cluster-identifier %s)",
  stopping = "the cluster is stopping: start it once stopped (aws rds start-db-cluster --db-cluster-identifier %s)",
  deleting = "the cluster %s is being deleted",
  failed = "the cluster %s failed: see its events (aws rds describe-events --source-type db-cluster)",
  ["inaccessible-encryption-credentials"] = "the cluster %s cannot use its KMS key",
  ["inaccessible-encryption-credentials-recoverable"] = "the cluster %s cannot use its KMS key",
}

-- ---------- XML ----------

-- Parses an XML document into { name =, attrs =, children = {...}, text = } nodes
-- (namespaces left as they are: RDS uses one default namespace).  Returns the
-- root, or nil and why not.
function rds.parse_xml(text)
  local lxp = require "lxp"
  local root = { children = {} }
  local stack = { root }
  local parser = lxp.new {
    StartElement = function(_, name, attrs)
      local node = { name = name, attrs = attrs, children = {}, parts = {} }
      local parent = stack[#stack]
      parent.children[#parent.children + 1] = node
      stack[#stack + 1] = node
    end,
    EndElement = function()
      local node = stack[#stack]
      node.text = table.concat(node.parts)
      node.parts = nil
      stack[#stack] = nil
    end,
    CharacterData = function(_, data)
      local node = stack[#stack]
      if node.parts then node.parts[#node.parts + 1] = data end
    end,
  }
  local ok, msg, line, col = parser:parse(text)
  if ok then ok, msg, line, col = parser:parse() end
  pcall(parser.close, parser) -- raises when the document was cut or broken
  if not ok then
    return nil, ("not well-formed XML: %s at line %s, column %s"):format(tostring(msg), tostring(line), tostring(col))
  end
  if not root.children[1] then return nil, "no XML element" end
  return root.children[1]
end

-- The first child element called `name` (or nil).
local function child(node, name)
  if not node then return nil end
  for _, c in ipairs(node.children) do
    if c.name == name then return c end
  end
  return nil
end
rds.child = child

-- Follows a path of element names; returns the node or nil.
local function path(node, ...)
  for i = 1, select("#", ...) do
    node = child(node, (select(i, ...)))
    if not node then return nil end
  end
  return node
end

local function text_of(node, ...)
  local n = path(node, ...)
  return n and n.text or nil
end

local function number_of(node, ...)
  local t = text_of(node, ...)
  return t and tonumber(t) or nil
end

local function bool_of(node, ...)
  local t = text_of(node, ...)
  if t == nil then return nil end
  return t == "true"
end

-- A <DBCluster> element -> a plain table.
function rds.cluster_from_xml(node)
  local c = {
    identifier = text_of(node, "DBClusterIdentifier"),
    arn = text_of(node, "DBClusterArn"),
    status = text_of(node, "Status"),
    engine = text_of(node, "Engine"),
    engine_version = text_of(node, "EngineVersion"),
    engine_mode = text_of(node, "EngineMode"),
    database_name = text_of(node, "DatabaseName"),
    master_username = text_of(node, "MasterUsername"),
    endpoint = text_of(node, "Endpoint"),
    reader_endpoint = text_of(node, "ReaderEndpoint"),
    port = number_of(node, "Port"),
    http_endpoint_enabled = bool_of(node, "HttpEndpointEnabled") or false,
    storage_encrypted = bool_of(node, "StorageEncrypted"),
    deletion_protection = bool_of(node, "DeletionProtection"),
    backup_retention_period = number_of(node, "BackupRetentionPeriod"),
    preferred_backup_window = text_of(node, "PreferredBackupWindow"),
    preferred_maintenance_window = text_of(node, "PreferredMaintenanceWindow"),
    members = {},
  }
  local scaling = child(node, "ServerlessV2ScalingConfiguration")
  if scaling then
    c.min_capacity = number_of(scaling, "MinCapacity")
    c.max_capacity = number_of(scaling, "MaxCapacity")
    c.seconds_until_auto_pause = number_of(scaling, "SecondsUntilAutoPause")
  end
  local pending = path(node, "PendingModifiedValues", "ServerlessV2ScalingConfiguration")
  if pending then
    c.pending_min_capacity = number_of(pending, "MinCapacity")
    c.pending_max_capacity = number_of(pending, "MaxCapacity")
  end
  for _, m in ipairs((child(node, "DBClusterMembers") or { children = {} }).children) do
    if m.name == "DBClusterMember" then
      c.members[#c.members + 1] = {
        instance = text_of(m, "DBInstanceIdentifier"),
        writer = bool_of(m, "IsClusterWriter") or false,
      }
    end
  end
  return c
end

-- An <ErrorResponse> (or any body) of a failed call -> code, message, request id.
function rds.error_from_xml(body)
  local doc = rds.parse_xml(body or "")
  if not doc then return nil end
  local err = child(doc, "Error") or path(doc, "Errors", "Error")
  if not err then return nil end
  return text_of(err, "Code"), text_of(err, "Message"), text_of(doc, "RequestId") or text_of(doc, "RequestID")
end

-- ---------- the Query protocol ----------

local function pct(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(ch) return ("%%%02X"):format(ch:byte()) end))
end

-- params: an array of { name, value } -> "Action=...&Version=...&...".
function rds.encode_query(params)
  local parts = {}
  for _, p in ipairs(params) do parts[#parts + 1] = pct(p[1]) .. "=" .. pct(p[2]) end
  return table.concat(parts, "&")
end

-- Numbers as RDS writes them: 0.5, 2, 64 (no exponent, no trailing ".0").
local function acu(n)
  if math.type(n) == "integer" or n == math.floor(n) then return ("%d"):format(math.floor(n)) end
  return (("%.1f"):format(n))
end
rds.format_acu = acu

-- The first minor version of each Aurora PostgreSQL major that can scale to 0
-- ACUs (auto-pause); 17 and later all can.
rds.AUTO_PAUSE_SINCE = { [13] = 15, [14] = 12, [15] = 7, [16] = 3 }

-- true / false for aurora-postgresql versions, nil when it cannot tell.
function rds.supports_auto_pause(engine, version)
  if engine ~= "aurora-postgresql" or type(version) ~= "string" then return nil end
  local major, minor = version:match("^(%d+)%.(%d+)")
  major, minor = tonumber(major), tonumber(minor)
  if not major then return nil end
  if major >= 17 then return true end
  local since = rds.AUTO_PAUSE_SINCE[major]
  if not since then return false end
  return minor >= since
end

-- ---------- settings ----------

local pick = alex_env.pick

-- Resolves the cluster and the service's settings: returns alex.aws settings
-- with cluster_id (and cluster_arn when given as an ARN) added, and
-- source.cluster, or nil and a message.
function rds.settings(opts)
  opts = opts or {}
  local getenv = alex_env.wrap(opts.env, "alex.rds")

  -- the cluster: an identifier or a cluster ARN
  local cluster, csource = pick {
    { opts.cluster, "option --cluster" },
    { getenv("AURORA_CLUSTER_ARN"), "AURORA_CLUSTER_ARN" },
  }
  if not cluster then
    return nil, "no cluster: set AURORA_CLUSTER_ARN in .env (terraform output -raw aurora_cluster_arn) "
      .. "or pass --cluster <identifier or ARN>"
  end
  local arn, cluster_id
  if cluster:match("^arn:") then
    local why
    arn, why = config.parse_cluster_arn(cluster)
    if not arn then
      return nil, ("%s is not an Aurora cluster ARN (%q): %s"):format(csource, cluster, why)
    end
    cluster_id = arn.cluster_id
  else
    if #cluster > 63 or not cluster:match("^%a[%w%-]*$") or cluster:match("%-%-") or cluster:match("%-$") then
      return nil, ("%s %q is neither a cluster ARN nor a cluster identifier (1-63 letters, digits and single"
        .. " hyphens, starting with a letter)"):format(csource, cluster)
    end
    cluster_id = cluster
  end

  local s, err = aws.settings("rds", {
    env = getenv, home = opts.home, profile = opts.profile, region = opts.region, endpoint = opts.endpoint,
    max_attempts = opts.max_attempts, retry_mode = opts.retry_mode, retry_base = opts.retry_base,
    arn = arn and { region = arn.region, called = csource, source = "cluster-arn" },
    no_region = ", or give the cluster as an ARN (AURORA_CLUSTER_ARN)",
  })
  if not s then return nil, err end
  s.cluster_id, s.cluster_arn = cluster_id, arn and cluster or nil
  s.source.cluster = csource
  return s
end

-- ---------- the client ----------

local Client = {}
Client.__index = Client

function rds.new(opts)
  opts = opts or {}
  local s, err = rds.settings(opts)
  if not s then return nil, err end
  return setmetatable({
    cluster_id = s.cluster_id,
    settings = s,
    transport = aws.client {
      settings = s, credentials = opts.credentials, content_type = "application/x-www-form-urlencoded; charset=utf-8",
      debug = opts.debug, log = opts.log, sleep = opts.sleep, random = opts.random, now = opts.now,
      connect_timeout = opts.connect_timeout, timeout = opts.timeout,
    },
  }, Client)
end

function Client:close()
  self.transport:close()
end

-- A Query-protocol answer -> its <ActionResult> element, or nil and the error.
local function parse(res, req)
  local action = req.operation
  if res.status ~= 200 then
    local code, message, request_id = rds.error_from_xml(res.body)
    code = code or ("HTTP" .. res.status)
    return nil, errors.new {
      name = code,
      message = message or ("the service answered HTTP %d with no error document"):format(res.status),
      status = res.status,
      operation = action,
      request_id = request_id,
      retryable = errors.THROTTLING[code] or res.status >= 500 or false,
    }
  end
  local doc, why = rds.parse_xml(res.body)
  local result = doc and child(doc, action .. "Result")
  if not result then
    return nil, errors.new { name = "InvalidResponse", status = 200, operation = action,
      message = ("the %s answer is not an RDS %sResponse: %s"):format(req.endpoint, action,
        why or ("its root element is <" .. tostring(doc and doc.name) .. ">")) }
  end
  return result
end

local IDEMPOTENT = { idempotent = true }

-- call(action, params) -> the <ActionResult> element, or nil and an error.
-- Every RDS action alex.rds sends reads or sets a value: running one twice
-- does what running it once does, so an unknown outcome is retried too.
function Client:call(action, params)
  local all = { { "Action", action }, { "Version", rds.API_VERSION } }
  for _, p in ipairs(params or {}) do all[#all + 1] = p end
  return self.transport:call {
    operation = action, path = "/", body = rds.encode_query(all), parse = parse, policy = IDEMPOTENT,
    endpoint = self.settings.endpoint,
  }
end

-- describe_cluster() -> cluster table (see rds.cluster_from_xml) or nil, err.
function Client:describe_cluster()
  local result, err = self:call("DescribeDBClusters", { { "DBClusterIdentifier", self.cluster_id } })
  if not result then return nil, err end
  local node = path(result, "DBClusters", "DBCluster")
  if not node then
    return nil, errors.new { name = "DBClusterNotFoundFault", operation = "DescribeDBClusters",
      message = ("DBCluster %s not found (the answer listed no cluster)"):format(self.cluster_id) }
  end
  return rds.cluster_from_xml(node)
end

-- modify_scaling{ min_capacity, max_capacity, seconds_until_auto_pause } ->
-- the cluster as ModifyDBCluster returns it, or nil, err.  Applied immediately.
function Client:modify_scaling(want)
  assert(type(want.min_capacity) == "number" and type(want.max_capacity) == "number",
    "modify_scaling: min_capacity and max_capacity are numbers")
  local params = {
    { "DBClusterIdentifier", self.cluster_id },
    { "ApplyImmediately", "true" },
    { "ServerlessV2ScalingConfiguration.MinCapacity", acu(want.min_capacity) },
    { "ServerlessV2ScalingConfiguration.MaxCapacity", acu(want.max_capacity) },
  }
  if want.seconds_until_auto_pause then
    params[#params + 1] = { "ServerlessV2ScalingConfiguration.SecondsUntilAutoPause",
      ("%d"):format(want.seconds_until_auto_pause) }
  end
  local result, err = self:call("ModifyDBCluster", params)
  if not result then return nil, err end
  local node = child(result, "DBCluster")
  if not node then
    return nil, errors.new { name = "InvalidResponse", operation = "ModifyDBCluster", status = 200,
      message = "the ModifyDBCluster answer has no DBCluster" }
  end
  return rds.cluster_from_xml(node)
end

-- wait_available{ interval = 10, timeout = 1800, on_poll = fn(cluster, elapsed) }
-- -> the available cluster, or nil and an error (Timeout, ClusterStateError for
-- a status that waiting cannot fix, or the describe error).
function Client:wait_available(opts)
  opts = opts or {}
  local interval, timeout = opts.interval or 10, opts.timeout or 1800
  local started = clock.monotonic()
  while true do
    local cluster, err = self:describe_cluster()
    if not cluster then return nil, err end
    local elapsed = clock.monotonic() - started
    if opts.on_poll then opts.on_poll(cluster, elapsed) end
    if cluster.status == "available" then return cluster end
    local terminal = rds.TERMINAL_STATUSES[cluster.status]
    if terminal then
      return nil, errors.new { name = "ClusterStateError", status_name = cluster.status, operation = "wait",
        message = ("status %s: %s"):format(cluster.status, terminal:format(self.cluster_id)) }
    end
    if elapsed + interval > timeout then
      return nil, errors.new { name = "Timeout", operation = "wait",
        message = ("the cluster %s is still %s after %.0f s (--timeout %g)"):format(self.cluster_id,
          tostring(cluster.status), elapsed, timeout) }
    end
    self.transport:sleep(interval)
  end
end

return rds
