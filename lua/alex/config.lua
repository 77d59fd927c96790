-- Where the Data API calls go: cluster and secret ARNs, database, region,
-- endpoint and retry budget, from options, the environment (the host has already
-- merged .env into it; the environment wins) and the AWS shared config file.
-- Holds no credentials: alex.credentials finds those.
--
--   local cfg, err = require("alex.config").load(opts)
--
-- opts (all optional): cluster_arn, secret_arn, database, region, endpoint, profile,
-- max_attempts, lock_timeout (each overrides everything else), env (function(name) -> value used
-- instead of os.getenv), home (instead of $HOME, for ~/.aws/config).
-- Returns { cluster_arn, secret_arn, database, region, endpoint, profile,
-- max_attempts, lock_timeout, source = { <field> = "option" | "environment" | "config-file" |
-- "default" | "cluster-arn" }, source_detail = { <field> = variable or file } }.
--
-- Precedence for every setting: opts > environment > shared config profile > default.
--   cluster_arn   AURORA_CLUSTER_ARN (required)
--   secret_arn    AURORA_SECRET_ARN (required)
--   database      AURORA_DATABASE, default "alex"
--   profile       AWS_PROFILE, AWS_DEFAULT_PROFILE, "default"
--   region        AWS_REGION, AWS_DEFAULT_REGION, DEFAULT_AWS_REGION, the profile's
--                 `region`; when none is set, the cluster ARN's own region.
--   endpoint      AWS_ENDPOINT_URL_RDS_DATA, AWS_ENDPOINT_URL, the profile's
--                 `[services x]` section `rds_data = / endpoint_url = ...`, the
--                 profile's `endpoint_url`; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true
--                 (or `ignore_configured_endpoint_urls = true` in the profile)
--                 switches all of these off but not opts.endpoint; default
--                 https://rds-data.<region>.amazonaws.com (.com.cn in China).
--   max_attempts  AWS_MAX_ATTEMPTS, the profile's `max_attempts`, default 3.
--   lock_timeout  ALEX_LOCK_TIMEOUT (milliseconds), default 5000; 0 waits until
--                 the Data API's 45 s statement limit.
--
-- Region and cluster ARN must agree: a Data API request is signed for a region
-- and sent to that region's endpoint, and the cluster exists in one region only,
-- so a mismatch is an error -- unless the endpoint is overridden (option,
-- environment or config file), because an emulator such as the local stack
-- accepts any ARN and the user's region may legitimately differ from the
-- fake ARN's.  The region configured is then used for signing.
local alex_env = require "alex.env"
local trim, is_true = alex_env.trim, alex_env.is_true
local function env_wrap(fn) return alex_env.wrap(fn, "alex.config") end
local ini = require "alex.ini"

local config = {}

config.DEFAULT_DATABASE = "alex"
config.DEFAULT_MAX_ATTEMPTS = 3
-- Milliseconds a statement in a transaction waits for a lock before failing:
-- long enough for ordinary contention, far shorter than the 45 s call limit.
config.DEFAULT_LOCK_TIMEOUT = 5000

local VARS = {
  cluster_arn = "AURORA_CLUSTER_ARN",
  secret_arn = "AURORA_SECRET_ARN",
  database = "AURORA_DATABASE",
}

local HOW_TO = {
  cluster_arn = "the Terraform output aurora_cluster_arn holds it (terraform output -raw aurora_cluster_arn)",
  secret_arn = "the Terraform output aurora_secret_arn holds it (terraform output -raw aurora_secret_arn)",
}

-- Region names: two letters, one or more letter groups, a number (us-east-1, us-gov-west-1).
function config.valid_region(r)
  if type(r) ~= "string" then return false end
  local parts = {}
  for p in (r .. "-"):gmatch("([^-]*)%-") do parts[#parts + 1] = p end
  if #parts < 3 or not parts[1]:match("^%l%l$") or not parts[#parts]:match("^%d+$") then return false end
  for i = 2, #parts - 1 do
    if not parts[i]:match("^%l+$") then return false end
  end
  return true
end

local PARTITION_OF_REGION = function(region)
  if region:match("^cn%-") then return "aws-cn" end
  if region:match("^us%-gov%-") then return "aws-us-gov" end
  return "aws"
end

-- Splits an ARN into its six fields; nil when it has fewer colons.
local function split_arn(s)
  local partition, service, region, account, resource = s:match("^arn:([^:]*):([^:]*):([^:]*):([^:]*):(.*)$")
  if not partition then return nil end
  return { partition = partition, service = service, region = region, account = account, resource = resource }
end

local function check_common(arn, service)
  if arn.partition ~= "aws" and arn.partition ~= "aws-cn" and arn.partition ~= "aws-us-gov" then
    return ("its partition %q is not aws, aws-cn or aws-us-gov"):format(arn.partition)
  end
  if arn.service ~= service then
    return ("it is an ARN of service %q, not %q"):format(arn.service, service)
  end
  if not config.valid_region(arn.region) then
    return ("its region %q is not a region name like us-east-1"):format(arn.region)
  end
  if PARTITION_OF_REGION(arn.region) ~= arn.partition then
    return ("region %s does not belong to partition %s"):format(arn.region, arn.partition)
  end
  if not arn.account:match("^%d%d%d%d%d%d%d%d%d%d%d%d$") then
    return ("its account %q is not 12 digits"):format(arn.account)
  end
  return nil
end

-- Returns the parsed ARN, or nil and why it is not an Aurora cluster ARN.
function config.parse_cluster_arn(s)
  local arn = split_arn(s)
  if not arn then
    if s:match("^[%a][%w%-]*$") then
      return nil, "it looks like a bare cluster identifier; the Data API needs the whole ARN"
    end
    return nil, "it does not have the arn:partition:service:region:account:resource form"
  end
  if arn.service == "secretsmanager" then
    return nil, "it is a Secrets Manager ARN (that one belongs in AURORA_SECRET_ARN)"
  end
  local why = check_common(arn, "rds")
  if why then return nil, why end
  local kind, id = arn.resource:match("^([^:]*):(.*)$")
  if kind == "db" then
    return nil, "it is a DB instance ARN; the Data API takes the cluster ARN (...:cluster:<id>)"
  end
  if kind ~= "cluster" then
    return nil, ("its resource %q is not cluster:<cluster id>"):format(arn.resource)
  end
  if #id < 1 or #id > 63 or not id:match("^%a[%w%-]*$") or id:match("%-%-") or id:match("%-$") then
    return nil, ("its cluster id %q is not 1-63 letters, digits and single hyphens starting with a letter"):format(id)
  end
  arn.cluster_id = id
  return arn
end

-- Returns the parsed ARN, or nil and why it is not a Secrets Manager secret ARN.
function config.parse_secret_arn(s)
  local arn = split_arn(s)
  if not arn then
    return nil, "it does not have the arn:partition:secretsmanager:region:account:secret:name form"
  end
  if arn.service == "rds" then
    return nil, "it is an RDS ARN (the cluster ARN belongs in AURORA_CLUSTER_ARN)"
  end
  local why = check_common(arn, "secretsmanager")
  if why then return nil, why end
  local name = arn.resource:match("^secret:(.+)$")
  if not name then
    return nil, ("its resource %q is not secret:<name>"):format(arn.resource)
  end
  -- Names people choose use letters, digits and /_+=.@-; secrets RDS manages
  -- for a cluster (manage_master_user_password) are named rds!cluster-<uuid>.
  local plain = name:gsub("^rds!", "", 1)
  if #name > 512 or not plain:match("^[%w/_+=%.@%-]+$") then
    return nil, ("its secret name %q has characters other than letters, digits and /_+=.@- (and the rds! prefix)")
      :format(name)
  end
  arn.secret_name = name
  return arn
end

-- true for http(s)://host[:port] with an optional trailing "/"; returns the
-- normalized URL (no trailing slash, scheme lower-cased) or nil and why not.
function config.parse_endpoint(url)
  local scheme, rest = url:match("^(%a+)://(.*)$")
  if not scheme then return nil, "it does not start with http:// or https://" end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return nil, ("its scheme %q is not http or https"):format(scheme)
  end
  rest = rest:gsub("/$", "")
  local host, port
  if rest:sub(1, 1) == "[" then
    host, port = rest:match("^(%[[%x:%.]+%])(.*)$")
  else
    host, port = rest:match("^([%w%.%-]+)(.*)$")
  end
  if not host or host:match("^[%.%-]") or host:match("%.%.") then
    return nil, "its host is missing or not a host name or IP address"
  end
  if port ~= "" then
    local digits = port:match("^:(%d+)$")
    if not digits then
      return nil, "only http(s)://host[:port] is accepted: no path, query, user or password"
    end
    local n = tonumber(digits)
    if n < 1 or n > 65535 then return nil, ("port %s is out of range"):format(digits) end
  end
  return scheme .. "://" .. host .. port
end

function config.valid_database(name)
  return type(name) == "string" and #name >= 1 and #name <= 63 and name:match("^[%a_][%w_%$]*$") ~= nil
end

function config.default_endpoint(region)
  local suffix = region:match("^cn%-") and "amazonaws.com.cn" or "amazonaws.com"
  return ("https://rds-data.%s.%s"):format(region, suffix)
end

-- true when no AURORA_CLUSTER_ARN is configured: the caller then runs against
-- the local stack.  `env` is a function(name) -> value (default os.getenv), or
-- an options table as given to config.load.
function config.is_local_target(env)
  local arn
  if type(env) == "table" then
    arn = env.cluster_arn
    if arn == nil then arn = env_wrap(env.env)("AURORA_CLUSTER_ARN") end
  else
    arn = env_wrap(env)("AURORA_CLUSTER_ARN")
  end
  return arn == nil or trim(tostring(arn)) == ""
end

local pick = alex_env.pick

local function opt(opts, k)
  local v = opts[k]
  if type(v) == "string" then
    v = trim(v)
    if v == "" then return nil end
  end
  return v
end

-- Returns the resolved settings, or nil and one message saying what is wrong
-- and how to fix it.
function config.load(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("alex.config.load: opts must be a table", 2) end
  local getenv = env_wrap(opts.env)
  local home = opts.home or getenv("HOME")
  local cfg = { source = {}, source_detail = {} }

  local function set(field, value, source, detail)
    cfg[field] = value
    cfg.source[field] = source
    cfg.source_detail[field] = detail
  end

  -- What a setting is called in messages: the variable, or the option.
  local function called(field)
    if cfg.source[field] == "option" then return "option " .. field end
    return cfg.source_detail[field] or VARS[field] or field
  end

  -- profile and the shared config file
  set("profile", pick {
    { opt(opts, "profile"), "option", "option profile" },
    { getenv("AWS_PROFILE"), "environment", "AWS_PROFILE" },
    { getenv("AWS_DEFAULT_PROFILE"), "environment", "AWS_DEFAULT_PROFILE" },
    { "default", "default", "default profile" },
  })
  local config_path = ini.aws_paths(getenv, home)
  local profile = {}
  local profile_where
  local sections
  if config_path then
    local s, err, kind = ini.read(config_path)
    if s then
      sections = s
      profile = ini.config_profile(s, cfg.profile) or {}
      profile_where = ("%s [%s]"):format(config_path,
        cfg.profile == "default" and "default" or "profile " .. cfg.profile)
    elseif kind ~= "missing" then
      return nil, ("cannot use the AWS config file: %s (AWS_CONFIG_FILE names another file)"):format(err)
    end
  end
  local function prof(key)
    local v = profile[key]
    if type(v) ~= "string" or v == "" then return nil end
    return v
  end

  -- cluster and secret
  set("cluster_arn", pick {
    { opt(opts, "cluster_arn"), "option" },
    { getenv("AURORA_CLUSTER_ARN"), "environment", "AURORA_CLUSTER_ARN" },
  })
  if not cfg.cluster_arn then
    return nil, "AURORA_CLUSTER_ARN is not set: set AURORA_CLUSTER_ARN in .env: " .. HOW_TO.cluster_arn
  end
  local cluster, why = config.parse_cluster_arn(cfg.cluster_arn)
  if not cluster then
    return nil, ("%s is not an Aurora cluster ARN (%q): %s; expected arn:aws:rds:<region>:<12-digit account>"
      .. ":cluster:<cluster id> (aws-cn and aws-us-gov partitions too); %s"):format(
      called("cluster_arn"), cfg.cluster_arn, why, HOW_TO.cluster_arn)
  end

  set("secret_arn", pick {
    { opt(opts, "secret_arn"), "option" },
    { getenv("AURORA_SECRET_ARN"), "environment", "AURORA_SECRET_ARN" },
  })
  if not cfg.secret_arn then
    return nil, "AURORA_SECRET_ARN is not set: set AURORA_SECRET_ARN in .env: " .. HOW_TO.secret_arn
  end
  local secret
  secret, why = config.parse_secret_arn(cfg.secret_arn)
  if not secret then
    return nil, ("%s is not a Secrets Manager secret ARN (%q): %s; expected arn:aws:secretsmanager:<region>"
      .. ":<12-digit account>:secret:<name>; %s"):format(called("secret_arn"), cfg.secret_arn, why,
      HOW_TO.secret_arn)
  end
  if secret.partition ~= cluster.partition then
    return nil, ("%s is in partition %s but %s is in %s: both must come from the same Terraform state; %s")
      :format(called("secret_arn"), secret.partition, called("cluster_arn"), cluster.partition, HOW_TO.secret_arn)
  end

  -- database
  set("database", pick {
    { opt(opts, "database"), "option" },
    { getenv("AURORA_DATABASE"), "environment", "AURORA_DATABASE" },
    { config.DEFAULT_DATABASE, "default" },
  })
  if not config.valid_database(cfg.database) then
    return nil, ("%s %q is not a valid database name: use 1-63 letters, digits, _ or $, starting with a letter"
      .. " or _ (the Terraform stack creates %q)"):format(called("database"), cfg.database, config.DEFAULT_DATABASE)
  end

  -- endpoint (before region: an override relaxes the region check)
  local ignore_configured = is_true(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"))
    or is_true(prof("ignore_configured_endpoint_urls"))
  local candidates = { { opt(opts, "endpoint"), "option" } }
  if not ignore_configured then
    local services_name = prof("services")
    local services = services_name and ini.services(sections, services_name)
    local service_cfg = services and services.rds_data
    local service_url = type(service_cfg) == "table" and service_cfg.endpoint_url or nil
    candidates[#candidates + 1] = { getenv("AWS_ENDPOINT_URL_RDS_DATA"), "environment", "AWS_ENDPOINT_URL_RDS_DATA" }
    candidates[#candidates + 1] = { getenv("AWS_ENDPOINT_URL"), "environment", "AWS_ENDPOINT_URL" }
    if service_url and service_url ~= "" then
      candidates[#candidates + 1] = { service_url, "config-file",
        ("endpoint_url under rds_data in [services %s] of %s"):format(services_name, config_path) }
    end
    candidates[#candidates + 1] = { prof("endpoint_url"), "config-file", "endpoint_url in " .. tostring(profile_where) }
  end
  local endpoint, endpoint_source, endpoint_detail = pick(candidates)
  if endpoint then
    local normalized, ewhy = config.parse_endpoint(endpoint)
    if not normalized then
      return nil, ("%s %q is not an endpoint URL: %s; expected http(s)://host[:port], e.g. http://127.0.0.1:8080"
        .. " for the local stack or https://rds-data.us-east-1.amazonaws.com"):format(
        endpoint_source == "option" and "option endpoint" or endpoint_detail, endpoint, ewhy)
    end
    set("endpoint", normalized, endpoint_source, endpoint_detail)
  end

  -- region
  set("region", pick {
    { opt(opts, "region"), "option" },
    { getenv("AWS_REGION"), "environment", "AWS_REGION" },
    { getenv("AWS_DEFAULT_REGION"), "environment", "AWS_DEFAULT_REGION" },
    { getenv("DEFAULT_AWS_REGION"), "environment", "DEFAULT_AWS_REGION" },
    { prof("region"), "config-file", "region in " .. tostring(profile_where) },
    { cluster.region, "cluster-arn", "the region of " .. called("cluster_arn") },
  })
  if not config.valid_region(cfg.region) then
    return nil, ("%s %q is not an AWS region name like us-east-1 or eu-west-2; set AWS_REGION in .env to the"
      .. " cluster's region (%s)"):format(called("region"), cfg.region, cluster.region)
  end
  if cfg.region ~= cluster.region and not cfg.endpoint then
    return nil, ("%s is %s but %s is in %s: requests would be signed for and sent to %s, where the cluster does"
      .. " not exist; %s, or set AWS_ENDPOINT_URL_RDS_DATA when an emulator or proxy is meant"):format(
      called("region"), cfg.region, called("cluster_arn"), cluster.region, cfg.region,
      cfg.source.region == "option" and ("pass region = %q"):format(cluster.region)
        or ("set AWS_REGION=%s in .env (or in the environment, which wins over .env and the config file)")
          :format(cluster.region))
  end
  if not cfg.endpoint then
    set("endpoint", config.default_endpoint(cfg.region), "default")
  end

  -- retry budget
  local attempts, asource, adetail = pick {
    { opts.max_attempts, "option" },
    { getenv("AWS_MAX_ATTEMPTS"), "environment", "AWS_MAX_ATTEMPTS" },
    { prof("max_attempts"), "config-file", "max_attempts in " .. tostring(profile_where) },
    { config.DEFAULT_MAX_ATTEMPTS, "default" },
  }
  local n = math.tointeger(tonumber(attempts))
  if not n or n < 1 or n > 100 then
    return nil, ("%s must be a whole number from 1 to 100 (the default is %d), got %q"):format(
      asource == "option" and "option max_attempts" or adetail, config.DEFAULT_MAX_ATTEMPTS, tostring(attempts))
  end
  set("max_attempts", n, asource, adetail)

  -- how long a statement in a transaction waits for a lock another one holds
  local lt, lsource, ldetail = pick {
    { opts.lock_timeout, "option" },
    { getenv("ALEX_LOCK_TIMEOUT"), "environment", "ALEX_LOCK_TIMEOUT" },
    { config.DEFAULT_LOCK_TIMEOUT, "default" },
  }
  local ms = math.tointeger(tonumber(lt))
  if not ms or ms < 0 or ms > 3600000 then
    return nil, ("%s must be a whole number of milliseconds from 0 (wait as long as the Data API lets a" ..
      " statement run) to 3600000 (the default is %d), got %q"):format(
      lsource == "option" and "option lock_timeout" or ldetail, config.DEFAULT_LOCK_TIMEOUT, tostring(lt))
  end
  set("lock_timeout", ms, lsource, ldetail)

  return cfg
end

-- One line for logs and `--verbose` output (no secrets: there are none here).
function config.describe(cfg)
  local id = cfg.cluster_arn:match(":cluster:(.*)$") or cfg.cluster_arn
  return ("cluster %s, database %s, region %s (%s), endpoint %s (%s), profile %s, max %d attempts"):format(
    id, cfg.database, cfg.region, cfg.source.region, cfg.endpoint, cfg.source.endpoint, cfg.profile,
    cfg.max_attempts)
end

return config
