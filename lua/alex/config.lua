-- Where the Data API calls go: cluster and secret ARNs, database and lock
-- timeout, from options and the environment (the host has already merged .env
-- into it; the environment wins); the rest -- profile, region, endpoint,
-- attempts, retry mode -- are alex.aws's settings for service rds-data,
-- resolved here with the cluster ARN.  Holds no credentials: alex.credentials
-- finds those.
--
--   local cfg, err, settings = require("alex.config").load(opts)
--
-- opts (all optional): cluster_arn, secret_arn, database, region, endpoint, profile,
-- max_attempts, retry_mode, retry_base, lock_timeout (each overrides everything
-- else), env (function(name) -> value used instead of os.getenv), home (instead
-- of $HOME, for ~/.aws/config).
-- Returns { cluster_arn, secret_arn, database, region, endpoint, profile,
-- max_attempts, lock_timeout, source = { <field> = "option" | "environment" |
-- "config-file" | "default" | "cluster-arn" }, source_detail = { <field> = variable
-- or file } }, and the alex.aws settings the client is built from (with the
-- shared files, read once, for the credentials chain).
--
-- Precedence for every setting: opts > environment > shared config profile > default.
--   cluster_arn   AURORA_CLUSTER_ARN (required)
--   secret_arn    AURORA_SECRET_ARN (required)
--   database      AURORA_DATABASE, default "alex"
--   lock_timeout  ALEX_LOCK_TIMEOUT (milliseconds), default 5000; 0 waits until
--                 the Data API's 45 s statement limit.
--   profile, region, endpoint (AWS_ENDPOINT_URL_RDS_DATA, ...), max_attempts,
--   retry_mode    see alex.aws; when no region is set, the cluster ARN's own.
--
-- Region and cluster ARN must agree: a Data API request is signed for a region
-- and sent to that region's endpoint, and the cluster exists in one region only,
-- so a mismatch is an error -- unless the endpoint is overridden (option,
-- environment or config file), because an emulator such as the local stack
-- accepts any ARN and the user's region may legitimately differ from the
-- fake ARN's.  The region configured is then used for signing.
local alex_env = require "alex.env"
local trim = alex_env.trim
local function env_wrap(fn) return alex_env.wrap(fn, "alex.config") end
local ini = require "alex.ini"
local aws = require "alex.aws"

local config = {}

config.DEFAULT_DATABASE = "alex"
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
  if not aws.valid_region(arn.region) then
    return ("its region %q is not a region name like us-east-1"):format(arn.region)
  end
  if aws.partition(arn.region) ~= arn.partition then
    return ("region %s does not belong to partition %s"):format(arn.region, arn.partition)
  end
  if not arn.account:match("^%d%d%d%d%d%d%d%d%d%d%d%d$") then
    return ("its account %q is not 12 digits"):format(arn.account)
  end
  return nil
end

-- The ARN s split, when it is one of `service`; else nil and why not:
-- `malformed` when it is no ARN at all, `other_why` when it is one of
-- `other`, the service it is most often mistaken for.
local function parse_arn(s, service, malformed, other, other_why)
  local arn = split_arn(s)
  if not arn then return nil, malformed end
  if arn.service == other then return nil, other_why end
  local why = check_common(arn, service)
  if why then return nil, why end
  return arn
end

-- Returns the parsed ARN, or nil and why it is not an Aurora cluster ARN.
function config.parse_cluster_arn(s)
  local arn, why = parse_arn(s, "rds", s:match("^[%a][%w%-]*$")
      and "it looks like a bare cluster identifier; the Data API needs the whole ARN"
      or "it does not have the arn:partition:service:region:account:resource form",
    "secretsmanager", "it is a Secrets Manager ARN (that one belongs in AURORA_SECRET_ARN)")
  if not arn then return nil, why end
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
  local arn, why = parse_arn(s, "secretsmanager",
    "it does not have the arn:partition:secretsmanager:region:account:secret:name form",
    "rds", "it is an RDS ARN (the cluster ARN belongs in AURORA_CLUSTER_ARN)")
  if not arn then return nil, why end
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

function config.valid_database(name)
  return type(name) == "string" and #name >= 1 and #name <= 63 and name:match("^[%a_][%w_%$]*$") ~= nil
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

local opt = alex_env.option

-- Returns the resolved settings and the alex.aws settings, or nil and one
-- message saying what is wrong and how to fix it.
function config.load(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("alex.config.load: opts must be a table", 2) end
  local getenv = env_wrap(opts.env)
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

  -- the shared files of the profile, read once for the settings and the
  -- credentials chain; a config file that cannot be used is reported first
  local files = ini.files { getenv = getenv, home = opts.home, profile = opt(opts, "profile") }
  local _, ferr = aws.config_profile(files)
  if ferr then return nil, ferr end

  -- cluster and secret: an ARN each, required; the option, else the variable.
  -- `what` it must be and the form `expected` go into the message when
  -- parse(value) refuses it.
  local function arn_setting(field, parse, what, expected)
    local var = VARS[field]
    set(field, pick { { opt(opts, field), "option" }, { getenv(var), "environment", var } })
    if not cfg[field] then return nil, ("%s is not set: set %s in .env: %s"):format(var, var, HOW_TO[field]) end
    local arn, why = parse(cfg[field])
    if not arn then
      return nil, ("%s is not %s (%q): %s; expected %s; %s"):format(called(field), what, cfg[field], why, expected,
        HOW_TO[field])
    end
    return arn
  end
  local cluster, aerr = arn_setting("cluster_arn", config.parse_cluster_arn, "an Aurora cluster ARN",
    "arn:aws:rds:<region>:<12-digit account>:cluster:<cluster id> (aws-cn and aws-us-gov partitions too)")
  if not cluster then return nil, aerr end
  local secret
  secret, aerr = arn_setting("secret_arn", config.parse_secret_arn, "a Secrets Manager secret ARN",
    "arn:aws:secretsmanager:<region>:<12-digit account>:secret:<name>")
  if not secret then return nil, aerr end
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

  -- profile, endpoint, region, attempts, retry mode: the service's settings
  local settings, serr = aws.settings("rds-data", {
    env = getenv, files = files, region = opts.region, endpoint = opts.endpoint, max_attempts = opts.max_attempts,
    retry_mode = opts.retry_mode, retry_base = opts.retry_base,
    arn = { region = cluster.region, called = called("cluster_arn"), source = "cluster-arn" },
  })
  if not settings then return nil, serr end
  for _, field in ipairs { "profile", "endpoint", "region", "max_attempts" } do
    set(field, settings[field], settings.source[field], settings.source_detail[field])
  end

  -- how long a statement in a transaction waits for a lock another one holds
  local ms, lsource, ldetail = alex_env.number("lock_timeout", {
    { opts.lock_timeout, "option" },
    { getenv("ALEX_LOCK_TIMEOUT"), "environment", "ALEX_LOCK_TIMEOUT" },
    { config.DEFAULT_LOCK_TIMEOUT, "default" },
  }, { says = "a whole number of milliseconds from 0 (wait as long as the Data API lets a statement run) to" ..
       " 3600000", default = config.DEFAULT_LOCK_TIMEOUT, min = 0, max = 3600000, integer = true })
  if not ms then return nil, lsource end
  set("lock_timeout", ms, lsource, ldetail)

  return cfg, nil, settings
end

-- One line for logs and `--verbose` output (no secrets: there are none here).
function config.describe(cfg)
  local id = cfg.cluster_arn:match(":cluster:(.*)$") or cfg.cluster_arn
  return ("cluster %s, database %s, region %s (%s), endpoint %s (%s), profile %s, max %d attempts"):format(
    id, cfg.database, cfg.region, cfg.source.region, cfg.endpoint, cfg.source.endpoint, cfg.profile,
    cfg.max_attempts)
end

return config
