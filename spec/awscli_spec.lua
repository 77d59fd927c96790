-- luacheck: std +busted
-- The local Data API service driven by Debian's AWS CLI v2 (/usr/bin/aws; the
-- `aws` first on PATH may be a broken shim): all five operations, the shapes the
-- CLI's model parses, and a request signed with a wrong secret refused; and the
-- service's RDS control plane (aws rds describe-db-clusters / modify-db-cluster).
local cjson = require "cjson"
local stack = require "stack"
local servers = require "servers"
local shell_quote, read_file = servers.q, servers.read_file

local AWS = "/usr/bin/aws"

describe("AWS CLI v2 against the local Data API service", function()
  local s, home, base_env

  stack.shared({}, function(started)
    s = started
    local _, out = stack.run("mktemp -d /tmp/alex-awscli.XXXXXX")
    home = assert(out:match("^(/[^\n]+)"))
    -- A clean environment: nothing from the developer's AWS setup leaks in.
    base_env = {
      PATH = "/usr/bin:/bin", HOME = home, LANG = "C.UTF-8",
      AWS_ACCESS_KEY_ID = s.env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY = s.env.AWS_SECRET_ACCESS_KEY,
      AWS_REGION = s.env.AWS_REGION, AWS_CONFIG_FILE = "/dev/null", AWS_SHARED_CREDENTIALS_FILE = "/dev/null",
      AWS_PAGER = "", AWS_EC2_METADATA_DISABLED = "true", AWS_CLI_AUTO_PROMPT = "off",
      AWS_MAX_ATTEMPTS = "1",
    }
    return function() stack.run("rm -rf " .. shell_quote(home)) end
  end)

  -- aws(op, {--option = value, ...}, env overrides, service) -> ok, decoded
  -- JSON (or nil), stdout, stderr.  service: rds-data unless given.
  local function aws(op, args, env_overrides, service)
    local env = {}
    for k, v in pairs(base_env) do env[k] = v end
    for k, v in pairs(env_overrides or {}) do env[k] = v end
    -- The variables go through a private file, not the command line (ps shows that).
    local envfile = home .. "/cli.env"
    local lines = {}
    for k, v in pairs(env) do lines[#lines + 1] = "export " .. k .. "=" .. shell_quote(v) end
    local f = assert(io.open(envfile, "wb"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
    local parts = { "env -i /bin/sh -c '. \"$0\" && shift && exec \"$@\"'", shell_quote(envfile), "x",
                    AWS, "--output json --endpoint-url", shell_quote(s.endpoint), service or "rds-data", op }
    for _, kv in ipairs(args) do
      parts[#parts + 1] = kv[1]
      if kv[2] ~= nil then parts[#parts + 1] = shell_quote(kv[2]) end
    end
    local errfile = home .. "/stderr"
    local p = assert(io.popen(table.concat(parts, " ") .. " 2>" .. shell_quote(errfile), "r"))
    local out = p:read("a")
    local ok = p:close() == true
    local err = read_file(errfile)
    local decoded
    if ok and out:match("%S") then decoded = cjson.decode(out) end
    return ok, decoded, out, err
  end

  local function common(extra)
    local args = { { "--resource-arn", s.cluster_arn }, { "--secret-arn", s.secret_arn } }
    for _, kv in ipairs(extra or {}) do args[#args + 1] = kv end
    return args
  end

  local function execute(sql, extra)
    local args = common { { "--database", "alex" }, { "--sql", sql } }
    for _, kv in ipairs(extra or {}) do args[#args + 1] = kv end
    local ok, res, out, err = aws("execute-statement", args)
    assert(ok, "execute-statement failed: " .. out .. err)
    return res
  end

  local function count(where)
    return s:psql("SELECT count(*) FROM cli_items WHERE " .. where)
  end

  it("execute-statement runs DDL and an INSERT with parameters", function()
    local res = execute("CREATE TABLE cli_items (id bigint PRIMARY KEY, name text NOT NULL, " ..
                        "amount numeric(10,2), active boolean, note text)")
    assert.equal(0, res.numberOfRecordsUpdated)
    res = execute("INSERT INTO cli_items (id, name, amount, active, note) VALUES (:id, :name, :amount, :active, :note)",
      { { "--parameters", cjson.encode {
          { name = "id", value = { longValue = 1 } },
          { name = "name", value = { stringValue = "rent" } },
          { name = "amount", value = { stringValue = "1250.50" }, typeHint = "DECIMAL" },
          { name = "active", value = { booleanValue = true } },
          { name = "note", value = { isNull = true } },
        } } })
    assert.equal(1, res.numberOfRecordsUpdated)
    assert.equal("rent|1250.50|t|", s:psql("SELECT name, amount, active, note FROM cli_items WHERE id = 1"))
  end)

  it("execute-statement returns records and columnMetadata with --include-result-metadata", function()
    local res = execute("SELECT id, name, amount, active, note FROM cli_items WHERE id = :id",
      { { "--parameters", '[{"name":"id","value":{"longValue":1}}]' }, { "--include-result-metadata" } })
    assert.same({ { { longValue = 1 }, { stringValue = "rent" }, { stringValue = "1250.50" },
                    { booleanValue = true }, { isNull = true } } }, res.records)
    assert.equal(0, res.numberOfRecordsUpdated)
    assert.equal(5, #res.columnMetadata)
    local names, types = {}, {}
    for i, col in ipairs(res.columnMetadata) do
      names[i], types[i] = col.name, col.typeName
      assert.is_number(col.type)
      assert.is_string(col.label)
      assert.is_number(col.nullable)
    end
    assert.same({ "id", "name", "amount", "active", "note" }, names)
    assert.same({ "int8", "text", "numeric", "bool", "text" }, types)
  end)

  it("execute-statement without metadata leaves columnMetadata out", function()
    local res = execute("SELECT name FROM cli_items ORDER BY id")
    assert.same({ { { stringValue = "rent" } } }, res.records)
    assert.is_nil(res.columnMetadata)
  end)

  it("batch-execute-statement runs one statement per parameter set", function()
    local sets = {}
    for i = 10, 12 do
      sets[#sets + 1] = { { name = "id", value = { longValue = i } },
                          { name = "name", value = { stringValue = "item " .. i } } }
    end
    local ok, res, out, err = aws("batch-execute-statement", common {
      { "--database", "alex" }, { "--sql", "INSERT INTO cli_items (id, name) VALUES (:id, :name)" },
      { "--parameter-sets", cjson.encode(sets) } })
    assert(ok, out .. err)
    assert.equal(3, #res.updateResults)
    for _, r in ipairs(res.updateResults) do
      assert.same({}, r.generatedFields or {})
    end
    assert.equal("3", count("id BETWEEN 10 AND 12"))
    assert.equal("item 11", s:psql("SELECT name FROM cli_items WHERE id = 11"))
  end)

  local function begin()
    local ok, res, out, err = aws("begin-transaction", common { { "--database", "alex" } })
    assert(ok, out .. err)
    assert.is_string(res.transactionId)
    assert.is_true(#res.transactionId > 0 and #res.transactionId <= 192)
    return res.transactionId
  end

  it("an INSERT in a rolled-back transaction is not visible", function()
    local tx = begin()
    local res = execute("INSERT INTO cli_items (id, name) VALUES (20, 'rolled back')", { { "--transaction-id", tx } })
    assert.equal(1, res.numberOfRecordsUpdated)
    -- visible inside the transaction, not outside it
    res = execute("SELECT count(*) FROM cli_items WHERE id = 20", { { "--transaction-id", tx } })
    assert.same({ { { longValue = 1 } } }, res.records)
    assert.equal("0", count("id = 20"))
    local ok, out, err
    ok, res, out, err = aws("rollback-transaction", common { { "--transaction-id", tx } })
    assert(ok, out .. err)
    assert.equal("Rollback Complete", res.transactionStatus)
    assert.equal("0", count("id = 20"))
    -- the id is gone: using it again is an error the CLI names
    ok, res, out, err = aws("commit-transaction", common { { "--transaction-id", tx } })
    assert.is_nil(res)
    assert.is_false(ok, out)
    assert.matches("TransactionNotFoundException", err, 1, true)
  end)

  it("an INSERT in a committed transaction is visible", function()
    local tx = begin()
    execute("INSERT INTO cli_items (id, name) VALUES (21, 'committed')", { { "--transaction-id", tx } })
    assert.equal("0", count("id = 21"))
    local ok, res, out, err = aws("commit-transaction", common { { "--transaction-id", tx } })
    assert(ok, out .. err)
    assert.equal("Transaction Committed", res.transactionStatus)
    assert.equal("committed", s:psql("SELECT name FROM cli_items WHERE id = 21"))
  end)

  it("an SQL error reaches the CLI as DatabaseErrorException", function()
    local ok, _, _, err = aws("execute-statement", common {
      { "--database", "alex" }, { "--sql", "SELECT * FROM no_such_table" } })
    assert.is_false(ok)
    assert.matches("DatabaseErrorException", err, 1, true)
    assert.matches("no_such_table", err, 1, true)
  end)

  it("refuses a request signed with a wrong secret (InvalidSignatureException)", function()
    local wrong = s.env.AWS_SECRET_ACCESS_KEY:sub(1, -2) .. (s.env.AWS_SECRET_ACCESS_KEY:sub(-1) == "A" and "B" or "A")
    local ok, _, out, err = aws("execute-statement",
      common { { "--database", "alex" }, { "--sql", "INSERT INTO cli_items (id, name) VALUES (30, 'forged')" } },
      { AWS_SECRET_ACCESS_KEY = wrong })
    assert.is_false(ok, out)
    assert.matches("InvalidSignatureException", err, 1, true)
    assert.equal("0", count("id = 30"))
    -- the message names no secret
    assert.is_nil(err:find(wrong, 1, true))
    assert.is_nil(err:find(s.env.AWS_SECRET_ACCESS_KEY, 1, true))
  end)

  it("rds describe-db-clusters describes the local cluster at AWS_ENDPOINT_URL_RDS", function()
    assert.equal(s.endpoint, s.env.AWS_ENDPOINT_URL_RDS)
    local ok, res, out, err = aws("describe-db-clusters", { { "--db-cluster-identifier", "alex-local" } }, nil, "rds")
    assert(ok, out .. err)
    assert.equal(1, #res.DBClusters)
    local c = res.DBClusters[1]
    assert.same({ "alex-local", s.cluster_arn, "available", "aurora-postgresql", "provisioned", true, "alex" },
      { c.DBClusterIdentifier, c.DBClusterArn, c.Status, c.Engine, c.EngineMode, c.HttpEndpointEnabled,
        c.DatabaseName })
    assert.matches("^%d+%.%d+$", c.EngineVersion)
    assert.equal(s.pg_port, c.Port)
    assert.same({ MinCapacity = 0.5, MaxCapacity = 2 }, c.ServerlessV2ScalingConfiguration)
    assert.same({ "alex-local-instance-1", true },
      { c.DBClusterMembers[1].DBInstanceIdentifier, c.DBClusterMembers[1].IsClusterWriter })
  end)

  it("rds modify-db-cluster changes the capacity range; RDS's errors reach the CLI", function()
    local ok, res, out, err = aws("modify-db-cluster", { { "--db-cluster-identifier", "alex-local" },
      { "--serverless-v2-scaling-configuration", "MinCapacity=0,MaxCapacity=4" }, { "--apply-immediately" } },
      nil, "rds")
    assert(ok, out .. err)
    assert.same({ MinCapacity = 0, MaxCapacity = 4 }, res.DBCluster.ServerlessV2ScalingConfiguration)
    ok, res = aws("describe-db-clusters", {}, nil, "rds")
    assert(ok)
    assert.same({ MinCapacity = 0, MaxCapacity = 4 }, res.DBClusters[1].ServerlessV2ScalingConfiguration)
    ok, res, out, err = aws("modify-db-cluster", { { "--db-cluster-identifier", "alex-local" },
      { "--serverless-v2-scaling-configuration", "MinCapacity=3,MaxCapacity=2" } }, nil, "rds")
    assert.is_false(ok, out)
    assert.is_nil(res)
    assert.matches("InvalidParameterCombination", err, 1, true)
    ok, res, out, err = aws("describe-db-clusters", { { "--db-cluster-identifier", "alex-aurora-cluster" } }, nil,
      "rds")
    assert.is_false(ok, out)
    assert.is_nil(res)
    assert.matches("DBClusterNotFoundFault", err, 1, true)
    ok, res, out, err = aws("describe-db-clusters", {}, { AWS_SECRET_ACCESS_KEY = "wrong" }, "rds")
    assert.is_false(ok, out)
    assert.is_nil(res)
    assert.matches("SignatureDoesNotMatch", err, 1, true)
  end)
end)
