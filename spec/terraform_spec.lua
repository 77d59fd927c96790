-- luacheck: std +busted
-- The Terraform module in terraform/, checked without an AWS account: every .tf
-- file is parsed by HashiCorp's HCL library (Go hcl/v2 built to WebAssembly, npm
-- @cdktf/hcl2json, run by tools/hcl/hcl.js under node) and the properties
-- alexlua depends on are asserted on the result; the formatting is checked with
-- hclwrite.Format (npm @cdktf/hcl-tools), and with `terraform fmt` and the
-- variable validations evaluated by `terraform plan` where terraform is installed
-- (neither needs a provider or the network).
local servers = require "servers"
local cjson = require "cjson"
local rds = require "alex.rds"
local config = require "alex.config"

local ROOT = servers.support_dir:gsub("/spec/support$", "")
local TF = ROOT .. "/terraform"
local HCL = ROOT .. "/tools/hcl/hcl.js"
local q = servers.q

local function run(cmd)
  return servers.run(cmd)
end

local function have(cmd)
  return (run("command -v " .. cmd .. " >/dev/null"))
end

-- Runs hcl.js; returns the decoded JSON, or raises with what it said.
local function hcl(args, stdin_text)
  local cmd = "node " .. q(HCL) .. " " .. args
  local tmp
  if stdin_text then
    tmp = os.tmpname()
    servers.write_file(tmp, stdin_text)
    cmd = cmd .. " < " .. q(tmp)
  end
  local ok, out = run(cmd)
  if tmp then os.remove(tmp) end
  if not ok then return nil, out end
  return cjson.decode(out)
end

local function tf_files()
  local _, out = run("ls " .. q(TF) .. "/*.tf")
  local files = {}
  for f in out:gmatch("[^\n]+") do files[#files + 1] = f end
  return files
end

-- The module: every file parsed, then merged by block type the way Terraform
-- reads a folder (a name declared twice is an error).
local parsed, module
local function merge(into, file_doc, file)
  for kind, body in pairs(file_doc) do
    if kind == "resource" or kind == "data" then
      into[kind] = into[kind] or {}
      for rtype, names in pairs(body) do
        into[kind][rtype] = into[kind][rtype] or {}
        for name, blocks in pairs(names) do
          assert(into[kind][rtype][name] == nil, ("%s.%s.%s declared twice (%s)"):format(kind, rtype, name, file))
          assert(#blocks == 1, ("%s.%s.%s: %d blocks"):format(kind, rtype, name, #blocks))
          into[kind][rtype][name] = blocks[1]
        end
      end
    elseif kind == "variable" or kind == "output" then
      into[kind] = into[kind] or {}
      for name, blocks in pairs(body) do
        assert(into[kind][name] == nil, ("%s %s declared twice (%s)"):format(kind, name, file))
        into[kind][name] = blocks[1]
      end
    else -- terraform, provider, locals: lists of blocks
      into[kind] = into[kind] or {}
      if kind == "provider" then
        for pname, blocks in pairs(body) do into.provider[pname] = blocks[1] end
      else
        for _, b in ipairs(body) do into[kind][#into[kind] + 1] = b end
      end
    end
  end
end

local function resource(rtype, name)
  local r = module.resource and module.resource[rtype] and module.resource[rtype][name]
  assert(r, ("resource %s.%s is missing"):format(rtype, name))
  return r
end

local function count_of(rtype)
  local n = 0
  for _ in pairs(module.resource[rtype] or {}) do n = n + 1 end
  return n
end

local function data(rtype, name)
  local d = module.data and module.data[rtype] and module.data[rtype][name]
  assert(d, ("data %s.%s is missing"):format(rtype, name))
  return d
end

local function sorted(list)
  local c = {}
  for i, v in ipairs(list) do c[i] = v end
  table.sort(c)
  return c
end

-- Every string anywhere in a parsed value.
local function each_string(v, fn, where)
  where = where or ""
  if type(v) == "string" then
    fn(v, where)
  elseif type(v) == "table" then
    for k, x in pairs(v) do each_string(x, fn, where .. "." .. tostring(k)) end
  end
end

local function contains(s, sub)
  assert.is_string(s)
  assert(s:find(sub, 1, true), ("expected %q\nto contain %q"):format(s, sub))
end

setup(function()
  assert(have("node"), "node is not installed: tools/deps.sh installs nodejs and npm")
  local ok, out = run("test -d " .. q(ROOT .. "/tools/hcl/node_modules/@cdktf/hcl2json"))
  assert(ok, "the HCL parser is not installed: run `make hcl-deps` (npm ci in tools/hcl) " .. out)
  local files = tf_files()
  local quoted = {}
  for i, f in ipairs(files) do quoted[i] = q(f) end
  local err
  parsed, err = hcl("parse " .. table.concat(quoted, " "))
  assert(parsed, "hcl.js parse failed: " .. tostring(err))
  module = {}
  for _, f in ipairs(files) do merge(module, parsed[f], f) end
end)

describe("terraform/ parsed by a real HCL parser", function()
  it("has the module's files and every one parses", function()
    local names = {}
    for f in pairs(parsed) do names[#names + 1] = f:match("[^/]+$") end
    table.sort(names)
    assert.same({ "iam.tf", "main.tf", "outputs.tf", "variables.tf", "versions.tf" }, names)
  end)

  it("refuses a file that is not valid HCL (the parser is real)", function()
    local dir = servers.tmpdir()
    finally(function() servers.rmtree(dir) end)
    servers.write_file(dir .. "/broken.tf", 'resource "aws_rds_cluster" "x" {\n  engine = \n}\n')
    local doc, err = hcl("parse " .. q(dir .. "/broken.tf"))
    assert.is_nil(doc)
    contains(err, "broken.tf")
    contains(err, "not valid HCL")
  end)

  it("pins Terraform 1.9+ and the AWS provider at 5.81+ (auto-pause support)", function()
    local tf = module.terraform[1]
    contains(tf.required_version, ">= 1.9")
    local providers = tf.required_providers[1]
    assert.equal("hashicorp/aws", providers.aws.source)
    contains(providers.aws.version, ">= 5.81")
    assert.equal("hashicorp/random", providers.random.source)
    assert.equal("${var.region}", module.provider.aws.region)
  end)
end)

describe("the Aurora cluster", function()
  it("is Aurora PostgreSQL Serverless v2 in provisioned mode with the engine version a variable", function()
    local c = resource("aws_rds_cluster", "aurora")
    assert.equal(1, count_of("aws_rds_cluster"))
    assert.equal("aurora-postgresql", c.engine)
    assert.equal("provisioned", c.engine_mode)
    assert.equal("${var.engine_version}", c.engine_version)
    local scaling = c.serverlessv2_scaling_configuration[1]
    assert.equal("${var.min_capacity}", scaling.min_capacity)
    assert.equal("${var.max_capacity}", scaling.max_capacity)
    contains(scaling.seconds_until_auto_pause, "var.seconds_until_auto_pause")
  end)

  it("has the Data API enabled", function()
    assert.is_true(resource("aws_rds_cluster", "aurora").enable_http_endpoint)
  end)

  it("creates the database alex with generated master credentials, encrypted", function()
    local c = resource("aws_rds_cluster", "aurora")
    assert.equal("${var.database_name}", c.database_name)
    assert.equal("alex", module.variable.database_name.default)
    assert.equal("${var.master_username}", c.master_username)
    assert.equal("${random_password.master.result}", c.master_password)
    assert.is_true(c.storage_encrypted)
  end)

  it("takes backups, windows, deletion protection and the final snapshot from variables", function()
    local c = resource("aws_rds_cluster", "aurora")
    assert.equal("${var.backup_retention_period}", c.backup_retention_period)
    assert.equal("${var.preferred_backup_window}", c.preferred_backup_window)
    assert.equal("${var.preferred_maintenance_window}", c.preferred_maintenance_window)
    assert.equal("${var.deletion_protection}", c.deletion_protection)
    assert.equal("${var.skip_final_snapshot}", c.skip_final_snapshot)
    contains(c.final_snapshot_identifier, "var.skip_final_snapshot ? null")
    -- dev-friendly defaults
    assert.is_false(module.variable.deletion_protection.default)
    assert.is_true(module.variable.skip_final_snapshot.default)
    assert.equal(1, module.variable.backup_retention_period.default)
  end)

  it("defaults to an Aurora PostgreSQL 15 version that can scale to 0 ACUs", function()
    local v = module.variable.engine_version.default
    assert.matches("^15%.%d+$", v)
    assert.is_true(rds.supports_auto_pause("aurora-postgresql", v))
    -- and the table the check uses is the documented one
    assert.is_false(rds.supports_auto_pause("aurora-postgresql", "15.6"))
    assert.is_true(rds.supports_auto_pause("aurora-postgresql", "15.7"))
    assert.is_false(rds.supports_auto_pause("aurora-postgresql", "14.11"))
    assert.is_true(rds.supports_auto_pause("aurora-postgresql", "13.15"))
    assert.is_true(rds.supports_auto_pause("aurora-postgresql", "16.3"))
  end)

  it("has exactly one db.serverless instance in the cluster, not public", function()
    assert.equal(1, count_of("aws_rds_cluster_instance"))
    local i = resource("aws_rds_cluster_instance", "writer")
    assert.equal("db.serverless", i.instance_class)
    assert.equal("${aws_rds_cluster.aurora.id}", i.cluster_identifier)
    assert.equal("${aws_rds_cluster.aurora.engine}", i.engine)
    assert.is_false(i.publicly_accessible)
  end)
end)

describe("the master credentials", function()
  it("are a random password stored in Secrets Manager as {username, password}", function()
    local pw = resource("random_password", "master")
    assert.is_true(pw.length >= 16)
    for _, bad in ipairs { "/", "@", '"', " " } do
      assert.is_nil(pw.override_special:find(bad, 1, true), "RDS refuses " .. bad .. " in passwords")
    end
    local version = resource("aws_secretsmanager_secret_version", "master")
    assert.equal("${aws_secretsmanager_secret.master.id}", version.secret_id)
    local inner = version.secret_string:match("^%${jsonencode%((.*)%)}$")
    assert(inner, "secret_string is not jsonencode(...): " .. version.secret_string)
    local value = assert(hcl("expr", cjson.encode { inner }))[1]
    assert.same({ username = "${var.master_username}", password = "${random_password.master.result}" }, value)
  end)

  it("are in a secret named after the cluster, erased at once by default", function()
    local s = resource("aws_secretsmanager_secret", "master")
    assert.equal("${var.name}-aurora-credentials", s.name)
    assert.equal("${var.secret_recovery_window_days}", s.recovery_window_in_days)
    assert.equal(0, module.variable.secret_recovery_window_days.default)
  end)
end)

describe("the network", function()
  it("uses the default VPC's subnets for the subnet group", function()
    local vpc = data("aws_vpc", "selected")
    contains(vpc.default, "var.vpc_id == null ? true")
    local subnets = data("aws_subnets", "selected")
    assert.equal("vpc-id", subnets.filter[1].name)
    assert.same({ "${data.aws_vpc.selected.id}" }, subnets.filter[1].values)
    assert.equal("${data.aws_subnets.selected.ids}", resource("aws_db_subnet_group", "aurora").subnet_ids)
    local c = resource("aws_rds_cluster", "aurora")
    assert.equal("${aws_db_subnet_group.aurora.name}", c.db_subnet_group_name)
    assert.same({ "${aws_security_group.aurora.id}" }, c.vpc_security_group_ids)
  end)

  it("opens 5432 to the VPC CIDR only, and nothing to the internet", function()
    local sg = resource("aws_security_group", "aurora")
    assert.equal(1, #sg.ingress)
    local rule = sg.ingress[1]
    assert.equal(5432, rule.from_port)
    assert.equal(5432, rule.to_port)
    assert.equal("tcp", rule.protocol)
    assert.same({ "${data.aws_vpc.selected.cidr_block}" }, rule.cidr_blocks)
    assert.is_nil(sg.egress)
    assert.equal(0, count_of("aws_security_group_rule") + count_of("aws_vpc_security_group_ingress_rule"))
    each_string(module, function(s, where)
      assert(not s:find("0.0.0.0/0", 1, true) and not s:find("::/0", 1, true), "open to the internet at " .. where)
    end)
  end)
end)

describe("the Lambda role", function()
  local doc
  before_each(function()
    doc = data("aws_iam_policy_document", "lambda")
  end)

  local function statement(sid)
    for _, s in ipairs(doc.statement) do
      if s.sid == sid then return s end
    end
    error("no statement " .. sid)
  end

  it("can be assumed by Lambda only", function()
    local role = resource("aws_iam_role", "lambda")
    assert.equal("${data.aws_iam_policy_document.lambda_assume.json}", role.assume_role_policy)
    local st = data("aws_iam_policy_document", "lambda_assume").statement
    assert.equal(1, #st)
    assert.same({ "sts:AssumeRole" }, st[1].actions)
    assert.same({ type = "Service", identifiers = { "lambda.amazonaws.com" } }, st[1].principals[1])
  end)

  it("gets exactly the least-privilege policy document, nothing attached besides", function()
    local p = resource("aws_iam_role_policy", "lambda")
    assert.equal("${aws_iam_role.lambda.id}", p.role)
    assert.equal("${data.aws_iam_policy_document.lambda.json}", p.policy)
    assert.equal(1, count_of("aws_iam_role_policy"))
    assert.equal(0, count_of("aws_iam_role_policy_attachment") + count_of("aws_iam_policy")
      + count_of("aws_iam_policy_attachment"))
  end)

  it("may use the Data API on this cluster only", function()
    local s = statement("DataApiOnThisClusterOnly")
    assert.same({ "${aws_rds_cluster.aurora.arn}" }, s.resources)
    assert.same({ "rds-data:BatchExecuteStatement", "rds-data:BeginTransaction", "rds-data:CommitTransaction",
      "rds-data:ExecuteStatement", "rds-data:RollbackTransaction" }, sorted(s.actions))
  end)

  it("may read this secret only", function()
    local s = statement("ReadThisSecretOnly")
    assert.same({ "secretsmanager:GetSecretValue" }, s.actions)
    assert.same({ "${aws_secretsmanager_secret.master.arn}" }, s.resources)
  end)

  it("may write its own log groups only", function()
    local s = statement("OwnLogGroupsOnly")
    assert.same({ "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents" }, sorted(s.actions))
    local prefix = "arn:${data.aws_partition.current.partition}:logs:${var.region}:"
      .. "${data.aws_caller_identity.current.account_id}:log-group:/aws/lambda/${var.name}-"
    assert.equal(2, #s.resources)
    for _, r in ipairs(s.resources) do
      assert.equal(prefix, r:sub(1, #prefix))
    end
  end)

  it("has no wildcard action, no wildcard resource and no Deny-less surprises", function()
    assert.equal(3, #doc.statement)
    for _, s in ipairs(doc.statement) do
      assert.equal("Allow", s.effect)
      assert.is_nil(s.not_actions)
      assert.is_nil(s.not_resources)
      assert.is_nil(s.condition)
      assert(s.resources and #s.resources > 0, "statement " .. tostring(s.sid) .. " has no resources")
      for _, a in ipairs(s.actions) do
        assert(not a:find("*", 1, true), ("statement %s: wildcard action %q"):format(s.sid, a))
        local service = a:match("^([%w%-]+):")
        assert(({ ["rds-data"] = true, secretsmanager = true, logs = true })[service],
          ("statement %s: action %q is not rds-data, secretsmanager or logs"):format(s.sid, a))
      end
      for _, r in ipairs(s.resources) do
        assert(r ~= "*" and not r:match("^arn:[^:]*:[^:]*:[^:]*:[^:]*:%*$"),
          ("statement %s: wildcard resource %q"):format(s.sid, r))
        -- Data API and secret statements name Terraform's own objects
        if s.sid ~= "OwnLogGroupsOnly" then
          assert.is_nil(r:find("*", 1, true), ("statement %s: %q is not the cluster or secret ARN"):format(s.sid, r))
        end
      end
    end
  end)
end)

describe("the variables", function()
  it("all have a description and a type", function()
    local n = 0
    for name, v in pairs(module.variable) do
      n = n + 1
      assert(type(v.description) == "string" and #v.description > 20, name .. ": no description")
      assert(type(v.type) == "string" and v.type:match("^%${"), name .. ": no type")
    end
    assert.is_true(n >= 12)
  end)

  it("validate 0 <= min_capacity <= max_capacity <= 128 and the region format", function()
    local function conditions(name)
      local all = {}
      for _, val in ipairs(module.variable[name].validation or {}) do
        all[#all + 1] = val.condition
        assert(type(val.error_message) == "string" and #val.error_message > 10)
      end
      return table.concat(all, "\n")
    end
    local min, max = conditions("min_capacity"), conditions("max_capacity")
    contains(min, "var.min_capacity >= 0")
    contains(min, "var.min_capacity <= 128")
    contains(max, "var.max_capacity <= 128")
    contains(max, "var.max_capacity >= var.min_capacity")
    contains(conditions("region"), "regex(")
    for _, name in ipairs { "name", "engine_version", "database_name", "master_username", "seconds_until_auto_pause",
      "backup_retention_period", "preferred_backup_window", "preferred_maintenance_window" } do
      assert(conditions(name) ~= "", name .. " has no validation")
    end
    assert.equal("${number}", module.variable.min_capacity.type)
    assert.equal("${number}", module.variable.max_capacity.type)
    assert.equal(0.5, module.variable.min_capacity.default)
  end)

  -- Terraform itself evaluates the validations: a folder holding only
  -- variables.tf needs no provider, so init and plan run offline.
  describe("evaluated by terraform", function()
    local dir
    local tf_env = "TF_CLI_CONFIG_FILE=/dev/null TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 TF_INPUT=0 "
    setup(function()
      if not have("terraform") then return end
      dir = servers.tmpdir()
      assert(run("cp " .. q(TF .. "/variables.tf") .. " " .. q(dir)))
      local ok, out = run("cd " .. q(dir) .. " && " .. tf_env .. "terraform init -backend=false -no-color")
      assert(ok, out)
    end)
    teardown(function()
      if dir then servers.rmtree(dir) end
    end)

    local function plan(vars)
      local args = {}
      for k, v in pairs(vars) do args[#args + 1] = "-var " .. q(k .. "=" .. v) end
      return run("cd " .. q(dir) .. " && " .. tf_env .. "terraform plan -lock=false -refresh=false -no-color "
        .. table.concat(args, " "))
    end

    local cases = {
      { true, {} },
      { true, { min_capacity = "0" } },
      { true, { min_capacity = "0", max_capacity = "128" } },
      { true, { min_capacity = "64.5", max_capacity = "64.5" } },
      { true, { region = "us-gov-west-1" } },
      { false, { min_capacity = "-0.5" }, "between 0 and 128" },
      { false, { min_capacity = "0.25" }, "steps of 0.5" },
      { false, { min_capacity = "3", max_capacity = "2" }, "at least min_capacity" },
      { false, { max_capacity = "129" }, "between 1 and 128" },
      { false, { min_capacity = "0", engine_version = "15.4" }, "auto-pause" },
      { false, { region = "US-EAST-1" }, "region" },
      { false, { region = "useast1" }, "region" },
      { false, { name = "Alex_" }, "name" },
      { false, { preferred_backup_window = "3am-4am" }, "preferred_backup_window" },
      { false, { secret_recovery_window_days = "3" }, "secret_recovery_window_days" },
    }
    for _, case in ipairs(cases) do
      local want, vars, message = case[1], case[2], case[3]
      local label = {}
      for k, v in pairs(vars) do label[#label + 1] = k .. "=" .. v end
      table.sort(label)
      it((want and "accepts " or "refuses ") .. (#label > 0 and table.concat(label, " ") or "the defaults"), function()
        if not dir then
          pending("terraform is not installed: the validations were checked as text only")
          return
        end
        local ok, out = plan(vars)
        assert(ok == want, ("terraform plan %s:\n%s"):format(want and "failed" or "succeeded", out))
        if message then contains(out, message) end
      end)
    end
  end)
end)

describe("the outputs", function()
  it("include the two ARNs, the endpoint, the database and the Lambda role", function()
    local o = module.output
    assert.equal("${aws_rds_cluster.aurora.arn}", o.aurora_cluster_arn.value)
    assert.equal("${aws_secretsmanager_secret.master.arn}", o.aurora_secret_arn.value)
    assert.equal("${aws_rds_cluster.aurora.endpoint}", o.aurora_cluster_endpoint.value)
    assert.equal("${aws_rds_cluster.aurora.database_name}", o.database_name.value)
    assert.equal("${aws_iam_role.lambda.arn}", o.lambda_role_arn.value)
    for name, out in pairs(o) do
      assert(type(out.description) == "string" and out.description ~= "", name .. " has no description")
    end
  end)

  it("include a .env block that alexlua's configuration accepts", function()
    local block = module.output.env_file.value
    local fake = {
      ["${aws_rds_cluster.aurora.arn}"] = "arn:aws:rds:eu-west-2:123456789012:cluster:alex-aurora-cluster",
      ["${aws_secretsmanager_secret.master.arn}"] =
        "arn:aws:secretsmanager:eu-west-2:123456789012:secret:alex-aurora-credentials-AbCdEf",
      ["${aws_rds_cluster.aurora.database_name}"] = "alex",
      ["${var.region}"] = "eu-west-2",
      ["${max(var.min_capacity, 0.5)}"] = "0.5",
    }
    local vars = {}
    for line in block:gmatch("[^\n]+") do
      if not line:match("^%s*#") then
        local k, v = line:match("^([%w_]+)=(.*)$")
        assert(k, "not a KEY=value line: " .. line)
        assert(fake[v], "unexpected value in the .env block: " .. v)
        vars[k] = fake[v]
      end
    end
    assert.same({ "ALEX_MIN_CAPACITY", "AURORA_CLUSTER_ARN", "AURORA_DATABASE", "AURORA_SECRET_ARN", "AWS_REGION" },
      (function()
        local keys = {}
        for k in pairs(vars) do keys[#keys + 1] = k end
        table.sort(keys)
        return keys
      end)())
    local cfg, err = config.load { env = function(name) return vars[name] end, home = "/nonexistent" }
    assert(cfg, err)
    assert.equal("alex-aurora-cluster", cfg.cluster_arn:match("cluster:(.*)$"))
    assert.equal("https://rds-data.eu-west-2.amazonaws.com", cfg.endpoint)
  end)
end)

describe("formatting", function()
  it("is what hclwrite.Format (terraform fmt's formatter) makes of every file", function()
    local files = tf_files()
    files[#files + 1] = TF .. "/terraform.tfvars.example"
    local quoted = {}
    for i, f in ipairs(files) do quoted[i] = q(f) end
    local result, err = hcl("fmt " .. table.concat(quoted, " "))
    assert(result, err)
    for _, f in ipairs(files) do
      assert(result[f].formatted, f .. " is not formatted; hclwrite.Format makes it:\n" .. result[f].expected)
    end
  end)

  it("catches a misformatted file (the check can fail)", function()
    local dir = servers.tmpdir()
    finally(function() servers.rmtree(dir) end)
    servers.write_file(dir .. "/ugly.tf", 'variable "x" {\ntype = string\n  default="a"\n}\n')
    local result = assert(hcl("fmt " .. q(dir .. "/ugly.tf")))
    assert.is_false(result[dir .. "/ugly.tf"].formatted)
    contains(result[dir .. "/ugly.tf"].expected, '  default = "a"')
  end)

  it("passes terraform fmt -check", function()
    if not have("terraform") then
      pending("terraform is not installed: hclwrite.Format checked the files above")
      return
    end
    local dir = servers.tmpdir()
    finally(function() servers.rmtree(dir) end)
    -- terraform fmt reads .tf and .tfvars only: the example goes in under that name
    assert(run("cp " .. q(TF) .. "/*.tf " .. q(dir) .. " && cp " .. q(TF .. "/terraform.tfvars.example") .. " "
      .. q(dir .. "/example.tfvars")))
    local ok, out = run("cd " .. q(dir) .. " && CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "
      .. "terraform fmt -check -diff -no-color .")
    assert(ok, "terraform fmt -check failed:\n" .. out)
  end)
end)

describe("terraform.tfvars.example", function()
  it("parses and sets only declared variables", function()
    local file = TF .. "/terraform.tfvars.example"
    local doc = assert(hcl("parse " .. q(file)))[file]
    local n = 0
    for k in pairs(doc) do
      n = n + 1
      assert(module.variable[k], "terraform.tfvars.example sets undeclared variable " .. k)
    end
    assert.is_true(n >= 10)
    assert.equal(module.variable.engine_version.default, doc.engine_version)
    assert.equal(module.variable.min_capacity.default, doc.min_capacity)
  end)
end)

describe("operator-policy.json", function()
  local policy
  setup(function()
    local text = assert(servers.read_file(TF .. "/operator-policy.json"))
    policy = cjson.decode(text)
  end)

  local function granted()
    local g = {}
    for _, s in ipairs(policy.Statement) do
      local actions = type(s.Action) == "table" and s.Action or { s.Action }
      local resources = type(s.Resource) == "table" and s.Resource or { s.Resource }
      for _, a in ipairs(actions) do
        g[a] = g[a] or {}
        for _, r in ipairs(resources) do g[a][#g[a] + 1] = r end
      end
    end
    return g
  end

  it("grants what terraform apply/destroy, alexlua and aurora.lua call", function()
    assert.equal("2012-10-17", policy.Version)
    local g = granted()
    for _, a in ipairs {
      "rds:CreateDBCluster", "rds:DeleteDBCluster", "rds:ModifyDBCluster", "rds:DescribeDBClusters",
      "rds:CreateDBInstance", "rds:DeleteDBInstance", "rds:CreateDBSubnetGroup", "rds:AddTagsToResource",
      "ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
      "secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:DeleteSecret",
      "secretsmanager:GetSecretValue", "iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRole",
      "sts:GetCallerIdentity", "rds-data:ExecuteStatement", "rds-data:BeginTransaction",
      "rds-data:CommitTransaction", "rds-data:RollbackTransaction", "rds-data:BatchExecuteStatement",
    } do
      assert(g[a], "operator-policy.json does not grant " .. a)
    end
  end)

  it("scopes every write to resources named alex-*", function()
    for _, s in ipairs(policy.Statement) do
      assert.equal("Allow", s.Effect)
      local actions = type(s.Action) == "table" and s.Action or { s.Action }
      local resources = type(s.Resource) == "table" and s.Resource or { s.Resource }
      local read_only = true
      for _, a in ipairs(actions) do
        assert(not a:find("*", 1, true), "wildcard action " .. a)
        local verb = a:match(":(%u%l+)")
        if not ({ Describe = true, Get = true, List = true })[verb] then read_only = false end
      end
      if not read_only and not s.Condition then
        for _, r in ipairs(resources) do
          assert(r ~= "*", ("statement %s writes on Resource *"):format(s.Sid))
          assert(r:find("alex-", 1, true) or r:find("default", 1, true) or r:find(":ec2:", 1, true),
            ("statement %s: %s is not scoped to alex-*"):format(s.Sid, r))
        end
      end
    end
  end)
end)

describe("terraform/README.md", function()
  it("walks the AWS path end to end", function()
    local text = assert(servers.read_file(TF .. "/README.md"))
    for _, s in ipairs { "terraform apply", "terraform output -raw env_file", "scripts/test_data_api.lua",
      "reset.lua --with-test-data", "verify.lua", "aurora.lua pause", "aurora.lua resume", "terraform destroy",
      "operator-policy.json", "HttpEndpointNotEnabledException", "DatabaseResumingException" } do
      contains(text, s)
    end
  end)
end)
