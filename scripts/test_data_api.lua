-- Connectivity check: which target, which region, the database's version and
-- name, and the round-trip time; on failure, what is wrong and how to fix it.
local cli = require "alex.cli"
local clock = require "alex.clock"

local parser = cli.parser("test_data_api.lua", "Check that alexlua can reach the database through the Data API.")
parser:option("--count", "Round trips to time (1 to 1000).", "3"):convert(
  cli.whole(1, 1000, "--count: %q is not a whole number from 1 to 1000"))
local args = cli.parse(parser)
local paint = cli.painter(1)

-- Advice for the errors a first run meets, keyed by AWS error name.
local ADVICE = {
  HttpEndpointNotEnabledException = "the Data API is not enabled on the cluster: set enable_http_endpoint = true " ..
    "in Terraform (or: aws rds enable-http-endpoint --resource-arn <cluster-arn>), and check AURORA_CLUSTER_ARN",
  NotFoundException = "the cluster or secret ARN is wrong: compare AURORA_CLUSTER_ARN and AURORA_SECRET_ARN with " ..
    "terraform output aurora_cluster_arn / aurora_secret_arn",
  BadRequestException = "the request was refused: check AURORA_CLUSTER_ARN, AURORA_SECRET_ARN and AURORA_DATABASE",
  SecretsErrorException = "the secret cannot be read: check AURORA_SECRET_ARN and that your identity may call " ..
    "secretsmanager:GetSecretValue on it",
  InvalidSecretException = "the secret does not hold valid credentials for this cluster ({\"username\",\"password\"})",
  AccessDeniedException = "your identity may not use the Data API: it needs rds-data:ExecuteStatement (and the " ..
    "rest of rds-data:*) on the cluster, and secretsmanager:GetSecretValue on the secret",
  ForbiddenException = "access denied: check the IAM policy for rds-data and the secret",
  UnrecognizedClientException = "the access key is not known: check AWS_ACCESS_KEY_ID / your profile",
  InvalidSignatureException = "the secret key does not match the access key, or the clock is off",
  ExpiredTokenException = "the session token expired: refresh your credentials (aws sso login, ...)",
  CredentialsError = "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in .env, " ..
    "or run aws configure",
  DatabaseResumingException = "the cluster is resuming from auto-pause: wait 30 seconds and run again",
  DatabaseNotFoundException = "the cluster has no database instance: check the Terraform module applied fully",
  DatabaseErrorException = "the database refused the query: check AURORA_DATABASE names an existing database",
  TransportError = "the endpoint cannot be reached: check AWS_REGION, AWS_ENDPOINT_URL_RDS_DATA and the network",
  DatabaseUnavailableException = "the Data API answers but cannot reach the database: check the cluster " ..
    "(alexlua scripts/aurora.lua status) or, locally, the PostgreSQL of the stack (local/stack.sh status)",
}

cli.run(function()
  local conn = cli.connect()
  local cfg = conn.config
  print(("target    %s"):format(cfg.cluster_arn))
  print(("endpoint  %s"):format(cfg.endpoint))
  print(("region    %s"):format(cfg.region))
  print(("database  %s"):format(cfg.database))

  local ok, row = pcall(conn.query_one, conn,
    "SELECT version() AS version, current_database() AS db, current_user AS who, now()::text AS now")
  if not ok then
    local err = row
    local code = cli.exit_code(err)
    if not code then error(err, 0) end -- a bug: alexlua prints it with its traceback
    io.stdout:write(paint("red", "FAILED"), "  ", cli.message(err), "\n")
    local advice = type(err) == "table" and ADVICE[err.name]
    if advice then io.stdout:write(paint("yellow", "fix"), "     ", advice, "\n") end
    os.exit(code)
  end
  print(("server    %s"):format(row.version))
  print(("connected to database %s as %s"):format(row.db, row.who))
  local times = {}
  for i = 1, args.count do
    local t0 = clock.monotonic()
    conn:query("SELECT 1")
    times[i] = (clock.monotonic() - t0) * 1000
  end
  table.sort(times)
  print(("round trip  min %.1f ms, median %.1f ms over %d calls"):format(times[1], times[(#times + 1) // 2], #times))
  io.stdout:write(paint("green", "ok"), "\n")
end)
