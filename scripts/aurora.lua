-- The Aurora cluster's cost switch: its status, capacity range and Data API flag
-- through the RDS control-plane API; `pause` lets it scale to 0 ACUs when idle
-- (auto-pause), `resume` restores the usual minimum, `wait` blocks until it is
-- available.  Creating and deleting it is Terraform's job: `destroy` and
-- `recreate` print the commands.
--
--   alexlua scripts/aurora.lua status [--json]
--   alexlua scripts/aurora.lua pause [--seconds-until-auto-pause 300] [--wait]
--   alexlua scripts/aurora.lua resume [--min-capacity 0.5] [--wait]
--   alexlua scripts/aurora.lua wait [--interval 10] [--timeout 1800]
--   alexlua scripts/aurora.lua destroy | recreate
--
-- The cluster is AURORA_CLUSTER_ARN's (or --cluster); credentials, region and
-- endpoint come as for the Data API (AWS_ENDPOINT_URL_RDS overrides the
-- endpoint).  Exit 0 on success, 1 when AWS refuses or the wait fails, 2 on a
-- configuration or usage error.
local cli = require "alex.cli"
local rds = require "alex.rds"

local DEFAULT_MIN = 0.5
local PRICE_PER_ACU_HOUR = 0.12 -- us-east-1, Aurora Serverless v2 standard; others differ a little

local parser = cli.parser("aurora.lua",
  "Status, pause (auto-pause at 0 ACUs), resume and wait for the Aurora cluster, through the RDS API.",
  "destroy and recreate print the Terraform commands; they change nothing themselves.",
  "Exit codes: 0 done; 1 AWS refused the request or could not be reached, or the wait failed; 2 bad arguments"
  .. " or configuration, or a change the cluster cannot take.")
parser:command_target("command")
parser:option("--cluster", "Cluster identifier or ARN (default: from AURORA_CLUSTER_ARN).")
parser:option("--region", "AWS region (default: AWS_REGION, the profile's, or the cluster ARN's).")
parser:option("--endpoint", "RDS API endpoint URL (default: AWS_ENDPOINT_URL_RDS, AWS_ENDPOINT_URL, AWS's).")

local function number_option(cmd, name, help, default)
  return cmd:option(name, help, default):convert(function(v)
    local n = tonumber(v)
    if not n then return nil, ("%s: %q is not a number"):format(name, v) end
    return n
  end)
end

local status = parser:command("status", "Cluster status, engine, capacity range and Data API flag.")
status:flag("--json", "Print the cluster as JSON.")

local pause = parser:command("pause",
  "Set the minimum capacity to 0 ACUs: the instance pauses when idle and costs no compute until the next call.")
number_option(pause, "--seconds-until-auto-pause",
  "Idle seconds before it pauses, 300-86400 (default: the cluster's setting, or 300).")
pause:flag("--wait", "Then wait until the cluster is available."):target("then_wait")

local resume = parser:command("resume",
  "Restore the minimum capacity (no more auto-pause); a paused instance resumes.")
number_option(resume, "--min-capacity", "Minimum ACUs to restore (default: ALEX_MIN_CAPACITY, or 0.5).")
resume:flag("--wait", "Then wait until the cluster is available."):target("then_wait")

local wait = parser:command("wait", "Wait until the cluster's status is available.")

for _, cmd in ipairs { pause, resume, wait } do
  number_option(cmd, "--interval", "Seconds between polls (default: ALEX_WAIT_INTERVAL, or 10).")
  number_option(cmd, "--timeout", "Give up after this many seconds.", "1800")
end

parser:command("destroy", "Print the Terraform commands that delete the cluster (runs nothing).")
parser:command("recreate", "Print the Terraform commands that replace the cluster (runs nothing).")

local args = cli.parse(parser)
local paint = cli.painter(1)

-- Advice for the errors people meet, keyed by AWS error code.
local ADVICE = {
  DBClusterNotFoundFault = "no such cluster in this account and region: compare AURORA_CLUSTER_ARN with "
    .. "`terraform output -raw aurora_cluster_arn` and AWS_REGION with the cluster's region",
  InvalidDBClusterStateFault = "the cluster is busy (being modified, backed up or started): run "
    .. "`alexlua scripts/aurora.lua wait` and try again",
  InvalidParameterCombination = "RDS refused these capacity settings: min_capacity 0 needs Aurora PostgreSQL "
    .. "13.15+, 14.12+, 15.7+ or 16.3+ (set engine_version in terraform.tfvars and apply)",
  InvalidParameterValue = "RDS refused a value: capacities go in steps of 0.5 up to 128 ACUs, auto-pause "
    .. "delays are 300-86400 s",
  AccessDenied = "your identity may not do this: it needs rds:DescribeDBClusters and rds:ModifyDBCluster on the "
    .. "cluster (terraform/operator-policy.json has them)",
  AccessDeniedException = "your identity may not do this: see terraform/operator-policy.json",
  InvalidClientTokenId = "the access key is not known: check AWS_ACCESS_KEY_ID or your profile",
  SignatureDoesNotMatch = "the secret key does not match the access key (or a proxy changed the request)",
  ExpiredToken = "the session token expired: refresh your credentials (aws sso login, ...)",
  CredentialsError = "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in .env, or "
    .. "AWS_PROFILE, or run aws configure",
  TransportError = "the RDS endpoint cannot be reached: check AWS_REGION, AWS_ENDPOINT_URL_RDS and the network",
}

local function fail(err)
  io.stderr:write(paint("red", "error: "), cli.message(err), "\n")
  local advice = type(err) == "table" and ADVICE[err.name]
  if advice then io.stderr:write(paint("yellow", "fix: "), advice, "\n") end
  os.exit(1)
end

local function show_commands(lines)
  for _, l in ipairs(lines) do print(l) end
  os.exit(0)
end

if args.command == "destroy" then
  show_commands {
    "Deleting the cluster is Terraform's job (this script runs nothing). From the project folder:",
    "",
    "  terraform -chdir=terraform destroy",
    "",
    "It deletes the cluster, its instance, the credentials secret, the subnet and security groups and the",
    "Lambda role. With deletion_protection = true, set it to false and apply first; with",
    "skip_final_snapshot = false a snapshot <name>-aurora-final is kept (and billed) until you delete it.",
    "Then remove AURORA_CLUSTER_ARN and AURORA_SECRET_ARN from .env (alexlua goes back to the local stack).",
  }
end
if args.command == "recreate" then
  show_commands {
    "Replacing the cluster is Terraform's job (this script runs nothing). From the project folder:",
    "",
    "  terraform -chdir=terraform destroy",
    "  terraform -chdir=terraform apply",
    "  terraform -chdir=terraform output -raw env_file   # the new ARNs: replace the old lines in .env",
    "  alexlua scripts/aurora.lua wait",
    "  alexlua scripts/reset.lua --with-test-data",
    "",
    "All data in the old cluster is lost (unless skip_final_snapshot = false kept a snapshot).",
  }
end

local env = os.getenv
local client, cerr = rds.new {
  cluster = args.cluster, region = args.region, endpoint = args.endpoint,
  debug = cli.verbose or nil, log = function(line) io.stderr:write("aurora.lua: ", line, "\n") end,
}
if not client then cli.die(cerr, 2) end
local settings = client.settings
if cli.verbose then
  io.stderr:write(("aurora.lua: cluster %s, %s\n"):format(client.cluster_id, require("alex.aws").describe(settings)))
end

local function acu(n)
  return n and rds.format_acu(n) or "?"
end

local function capacity_line(c)
  if c.min_capacity == nil then return "no Serverless v2 scaling configuration (not a Serverless v2 cluster?)" end
  local range = ("%s - %s ACU"):format(acu(c.min_capacity), acu(c.max_capacity))
  if c.min_capacity == 0 then
    return range .. (", auto-pause after %s s idle (no compute cost while paused)")
      :format(c.seconds_until_auto_pause and ("%d"):format(c.seconds_until_auto_pause) or "?")
  end
  return range .. (", always on: at least ~$%.0f a month at the minimum"):format(
    c.min_capacity * PRICE_PER_ACU_HOUR * 730)
end

local function interval_of(a)
  local n = a.interval or tonumber(env("ALEX_WAIT_INTERVAL") or "") or 10
  if n < 0 then cli.die("--interval must not be negative", 2) end
  return n
end

local function do_wait(a)
  local interval = interval_of(a)
  print(("waiting for %s to be available (poll every %g s, up to %g s)"):format(client.cluster_id, interval,
    a.timeout))
  local last
  local cluster, err = client:wait_available {
    interval = interval, timeout = a.timeout,
    on_poll = function(c, elapsed)
      if c.status ~= last then
        print(("  %-12s after %.1f s"):format(c.status, elapsed))
        last = c.status
      end
    end,
  }
  if not cluster then fail(err) end
  print(paint("green", "available") .. "  " .. capacity_line(cluster))
  return cluster
end

if args.command == "wait" then
  do_wait(args)
  client:close()
  os.exit(0)
end

local cluster, err = client:describe_cluster()
if not cluster then fail(err) end

if args.command == "status" then
  if args.json then
    cluster.region = settings.region
    print(require("cjson").encode(cluster))
    os.exit(0)
  end
  local writer
  for _, m in ipairs(cluster.members) do
    if m.writer then writer = m.instance end
  end
  print(("cluster   %s"):format(cluster.identifier or client.cluster_id))
  print(("status    %s"):format(cluster.status == "available" and paint("green", cluster.status)
    or paint("yellow", tostring(cluster.status))))
  print(("engine    %s %s (%s)"):format(tostring(cluster.engine), tostring(cluster.engine_version),
    tostring(cluster.engine_mode)))
  print(("Data API  %s"):format(cluster.http_endpoint_enabled and paint("green", "enabled")
    or paint("red", "NOT enabled") .. " (set enable_http_endpoint = true in Terraform and apply)"))
  print(("capacity  %s"):format(capacity_line(cluster)))
  if cluster.pending_min_capacity then
    print(("pending   %s - %s ACU"):format(acu(cluster.pending_min_capacity), acu(cluster.pending_max_capacity)))
  end
  print(("writer    %s"):format(writer or paint("red", "none") .. " (the Data API needs an instance)"))
  print(("database  %s"):format(tostring(cluster.database_name)))
  print(("endpoint  %s"):format(tostring(cluster.endpoint)))
  print(("region    %s  (RDS API %s)"):format(settings.region, settings.endpoint))
  os.exit(0)
end

if cluster.max_capacity == nil then
  cli.die(("%s has no Serverless v2 scaling configuration: pause and resume need a db.serverless cluster")
    :format(client.cluster_id), 2)
end

if args.command == "pause" then
  local supported = rds.supports_auto_pause(cluster.engine, cluster.engine_version)
  if supported == false then
    cli.die(("%s runs %s %s, which cannot scale to 0 ACUs: auto-pause needs Aurora PostgreSQL 13.15+, 14.12+, "
      .. "15.7+ or 16.3+ (raise engine_version in terraform.tfvars and apply)"):format(client.cluster_id,
      cluster.engine, cluster.engine_version), 2)
  end
  local seconds = args.seconds_until_auto_pause or cluster.seconds_until_auto_pause or 300
  if seconds < 300 or seconds > 86400 or seconds ~= math.floor(seconds) then
    cli.die("--seconds-until-auto-pause must be a whole number from 300 to 86400", 2)
  end
  if cluster.min_capacity == 0 and cluster.seconds_until_auto_pause == seconds then
    print(("%s already scales to 0 ACUs (auto-pause after %d s idle): nothing to change"):format(
      client.cluster_id, seconds))
  else
    local updated, merr = client:modify_scaling { min_capacity = 0, max_capacity = cluster.max_capacity,
      seconds_until_auto_pause = seconds }
    if not updated then fail(merr) end
    print(("%s: minimum capacity %s -> 0 ACU, maximum %s ACU, auto-pause after %d s idle"):format(
      client.cluster_id, acu(cluster.min_capacity), acu(cluster.max_capacity), seconds))
    print("The instance pauses once nothing has connected for that long; the next call resumes it (~15 s).")
    print("Terraform's min_capacity is unchanged: the next terraform apply sets it back (set min_capacity = 0")
    print("in terraform.tfvars to keep auto-pause).")
  end
elseif args.command == "resume" then
  local want = args.min_capacity or tonumber(env("ALEX_MIN_CAPACITY") or "") or DEFAULT_MIN
  if want <= 0 or want > 128 or want * 2 ~= math.floor(want * 2) then
    cli.die(("the minimum capacity to restore must be 0.5 to 128 in steps of 0.5, got %s (--min-capacity or"
      .. " ALEX_MIN_CAPACITY)"):format(tostring(want)), 2)
  end
  if want > cluster.max_capacity then
    cli.die(("the minimum %s ACU is above the cluster's maximum %s ACU: pass a smaller --min-capacity"):format(
      acu(want), acu(cluster.max_capacity)), 2)
  end
  if cluster.min_capacity == want then
    print(("%s already has minimum capacity %s ACU: nothing to change"):format(client.cluster_id, acu(want)))
  else
    local updated, merr = client:modify_scaling { min_capacity = want, max_capacity = cluster.max_capacity }
    if not updated then fail(merr) end
    print(("%s: minimum capacity %s -> %s ACU, maximum %s ACU (auto-pause off)"):format(client.cluster_id,
      acu(cluster.min_capacity), acu(want), acu(cluster.max_capacity)))
  end
end

if args.then_wait then
  do_wait(args)
end
client:close()
