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
-- AURORA_CLUSTER_ARN), region, endpoint, profile, env (function(name) -> value,
-- default os.getenv), home, credentials (a provider with :get(); default
-- alex.credentials.chain with the same env/home/profile), max_attempts,
-- retry_base (seconds, default ALEX_RETRY_BASE or 1), sleep (function(seconds)),
-- connect_timeout, timeout.
--
-- Settings, in order of precedence (the conventions of the Data API client):
--   cluster   opts.cluster, AURORA_CLUSTER_ARN
--   endpoint  opts.endpoint, AWS_ENDPOINT_URL_RDS, AWS_ENDPOINT_URL, the profile's
--             `[services x]` `rds = / endpoint_url = ...`, the profile's endpoint_url
--             (AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true turns off all but the option),
--             default https://rds.<region>.amazonaws.com (.com.cn in China)
--   region    opts.region, AWS_REGION, AWS_DEFAULT_REGION, the profile's region,
--             the cluster ARN's region; one that differs from the ARN's is an
--             error unless the endpoint is overridden
--   attempts  opts.max_attempts, AWS_MAX_ATTEMPTS, default 3 (throttling, 5xx and
--             network errors are retried with full-jitter backoff)
--
-- Errors are alex.errors values: name = the AWS code (DBClusterNotFoundFault,
-- InvalidDBClusterStateFault, AccessDenied, ...) or TransportError,
-- CredentialsError, InvalidResponse, Timeout, ClusterStateError.
local alex_env = require "alex.env"
local is_true = alex_env.is_true
local function env_wrap(fn) return alex_env.wrap(fn, "alex.rds") end
local http = require "alex.http"
local sigv4 = require "alex.sigv4"
local errors = require "alex.errors"
local config = require "alex.config"
local ini = require "alex.ini"
local clock = require "alex.clock"
local host = require "alex.host"

local rds = {}

rds.API_VERSION = "2014-10-31"
rds.DEFAULT_MAX_ATTEMPTS = 3

local USER_AGENT = "alexlua/" .. host.version .. " lua/" .. _VERSION:match("%d.*")

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

function rds.default_endpoint(region)
  local suffix = region:match("^cn%-") and "amazonaws.com.cn" or "amazonaws.com"
  return ("https://rds.%s.%s"):format(region, suffix)
end

local pick = alex_env.pick

-- Resolves cluster, region and endpoint; returns settings or nil, message.
function rds.settings(opts)
  opts = opts or {}
  local getenv = env_wrap(opts.env)
  local home = opts.home or getenv("HOME")
  local s = { source = {} }

  local profile_name = opts.profile or getenv("AWS_PROFILE") or getenv("AWS_DEFAULT_PROFILE") or "default"
  s.profile = profile_name
  local profile, sections, config_path = {}, nil, ini.aws_paths(getenv, home)
  if config_path then
    local parsed, err, kind = ini.read(config_path)
    if parsed then
      sections = parsed
      profile = ini.config_profile(parsed, profile_name) or {}
    elseif kind ~= "missing" then
      return nil, ("cannot use the AWS config file: %s"):format(err)
    end
  end
  local function prof(key)
    local v = profile[key]
    if type(v) ~= "string" or v == "" then return nil end
    return v
  end

  -- the cluster: an identifier or a cluster ARN
  local cluster, csource = pick {
    { opts.cluster, "option --cluster" },
    { getenv("AURORA_CLUSTER_ARN"), "AURORA_CLUSTER_ARN" },
  }
  if not cluster then
    return nil, "no cluster: set AURORA_CLUSTER_ARN in .env (terraform output -raw aurora_cluster_arn) "
      .. "or pass --cluster <identifier or ARN>"
  end
  local arn_region
  if cluster:match("^arn:") then
    local arn, why = config.parse_cluster_arn(cluster)
    if not arn then
      return nil, ("%s is not an Aurora cluster ARN (%q): %s"):format(csource, cluster, why)
    end
    s.cluster_arn, s.cluster_id, arn_region = cluster, arn.cluster_id, arn.region
  else
    if #cluster > 63 or not cluster:match("^%a[%w%-]*$") or cluster:match("%-%-") or cluster:match("%-$") then
      return nil, ("%s %q is neither a cluster ARN nor a cluster identifier (1-63 letters, digits and single"
        .. " hyphens, starting with a letter)"):format(csource, cluster)
    end
    s.cluster_id = cluster
  end
  s.source.cluster = csource

  -- endpoint
  local candidates = { { opts.endpoint, "option", "option endpoint" } }
  if not (is_true(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) or is_true(prof("ignore_configured_endpoint_urls")))
  then
    candidates[#candidates + 1] = { getenv("AWS_ENDPOINT_URL_RDS"), "environment", "AWS_ENDPOINT_URL_RDS" }
    candidates[#candidates + 1] = { getenv("AWS_ENDPOINT_URL"), "environment", "AWS_ENDPOINT_URL" }
    local services_name = prof("services")
    local services = services_name and sections and ini.services(sections, services_name)
    local svc = services and services.rds
    if type(svc) == "table" and svc.endpoint_url then
      candidates[#candidates + 1] = { svc.endpoint_url, "config-file",
        ("endpoint_url under rds in [services %s] of %s"):format(services_name, config_path) }
    end
    candidates[#candidates + 1] = { prof("endpoint_url"), "config-file", "endpoint_url in " .. tostring(config_path) }
  end
  local endpoint, esource, edetail = pick(candidates)
  if endpoint then
    local normalized, why = config.parse_endpoint(endpoint)
    if not normalized then
      return nil, ("%s %q is not an endpoint URL: %s; expected http(s)://host[:port]"):format(edetail, endpoint, why)
    end
    s.endpoint, s.source.endpoint = normalized, edetail or esource
  end

  -- region
  local region, rsource = pick {
    { opts.region, "option region" },
    { getenv("AWS_REGION"), "AWS_REGION" },
    { getenv("AWS_DEFAULT_REGION"), "AWS_DEFAULT_REGION" },
    { prof("region"), "region in " .. tostring(config_path) },
    { arn_region, "the region of " .. csource },
  }
  if not region then
    return nil, "no region: set AWS_REGION in .env, or give the cluster as an ARN (AURORA_CLUSTER_ARN)"
  end
  if not config.valid_region(region) then
    return nil, ("%s %q is not an AWS region name like us-east-1"):format(rsource, region)
  end
  if arn_region and region ~= arn_region and not s.endpoint then
    return nil, ("%s is %s but %s is in %s: the request would go to the wrong region; set AWS_REGION=%s"
      .. " (or AWS_ENDPOINT_URL_RDS when an emulator is meant)"):format(rsource, region, csource, arn_region,
      arn_region)
  end
  s.region, s.source.region = region, rsource
  if not s.endpoint then
    s.endpoint, s.source.endpoint = rds.default_endpoint(region), "default"
  end

  local attempts = opts.max_attempts or getenv("AWS_MAX_ATTEMPTS") or prof("max_attempts") or rds.DEFAULT_MAX_ATTEMPTS
  local n = math.tointeger(tonumber(attempts))
  if not n or n < 1 or n > 100 then
    return nil, ("AWS_MAX_ATTEMPTS must be a whole number from 1 to 100, got %q"):format(tostring(attempts))
  end
  s.max_attempts = n

  local base = opts.retry_base or getenv("ALEX_RETRY_BASE") or 1
  s.retry_base = tonumber(base)
  if not s.retry_base or s.retry_base < 0 then
    return nil, ("ALEX_RETRY_BASE must be a non-negative number, got %q"):format(tostring(base))
  end
  return s
end

-- ---------- the client ----------

local Client = {}
Client.__index = Client

function rds.new(opts)
  opts = opts or {}
  local s, err = rds.settings(opts)
  if not s then return nil, err end
  local self = setmetatable(s, Client)
  self.credentials = opts.credentials or require("alex.credentials").chain {
    env = opts.env, home = opts.home, profile = opts.profile,
  }
  self.http = http.new { connect_timeout = opts.connect_timeout or 10, timeout = opts.timeout or 60 }
  self.sleep = opts.sleep or function(seconds) if seconds > 0 then clock.sleep(seconds) end end
  self.random = opts.random or math.random
  self.log = opts.log
  return self
end

function Client:close()
  if self.http then self.http:close() end
end

-- One attempt of one action: returns the parsed <...Result> element or nil, err.
function Client:attempt(action, body)
  local creds, cerr = self.credentials:get()
  if not creds then
    return nil, errors.new { name = "CredentialsError", message = tostring(cerr), operation = action }
  end
  local url = self.endpoint .. "/"
  local signed = sigv4.sign {
    method = "POST",
    url = url,
    headers = {
      { "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" },
      { "User-Agent", USER_AGENT },
    },
    body = body,
    access_key = creds.access_key,
    secret_key = creds.secret_key,
    session_token = creds.session_token,
    region = self.region,
    service = "rds",
  }
  local res, msg, kind = self.http:request { method = "POST", url = url, headers = signed.headers, body = body }
  if not res then return nil, errors.from_transport(action, msg, kind) end
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
      message = ("the %s answer is not an RDS %sResponse: %s"):format(self.endpoint, action,
        why or ("its root element is <" .. tostring(doc and doc.name) .. ">")) }
  end
  return result
end

-- call(action, params) -> the <ActionResult> element, or nil and an error.
function Client:call(action, params)
  local all = { { "Action", action }, { "Version", rds.API_VERSION } }
  for _, p in ipairs(params or {}) do all[#all + 1] = p end
  local body = rds.encode_query(all)
  local attempt = 0
  while true do
    attempt = attempt + 1
    local result, err = self:attempt(action, body)
    if result then return result end
    err.attempts = attempt
    if self.log then self.log(("%s -> %s (attempt %d)"):format(action, tostring(err), attempt)) end
    if not err.retryable or attempt >= self.max_attempts then return nil, err end
    local cap = math.min(20, self.retry_base * 2 ^ (attempt - 1))
    self.sleep(self.random() * cap)
  end
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
    self.sleep(interval)
  end
end

return rds
