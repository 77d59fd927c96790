-- luacheck: std +busted
-- The Terraform module in terraform/, checked without an AWS account: every .tf
-- file is parsed by HashiCorp's HCL library (Go hcl/v2 built to WebAssembly, npm
-- @cdktf/hcl2json, run by tools/hcl/hcl.js under node) and the properties
-- alexlua depends on are asserted on the result; the formatting is checked with
-- hclwrite.Format (npm @cdktf/hcl-tools), and with `terraform fmt` and the
-- variable validations evaluated by `terraform plan` where terraform is installed
-- (neither needs a provider or the network).
--
-- Where terraform and a local mirror of the hashicorp/aws provider are found
-- (ALEX_TF_PROVIDER_MIRROR, else a few usual folders), Terraform itself checks
-- the module against the provider's schema (`terraform validate`) and runs
-- terraform/tests/*.tftest.hcl (`terraform test`, provider mocked: plan-level
-- assertions on what the module creates), on a copy of the module in a temp
-- folder with a CLI configuration that installs from the mirror alone.
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

local function ls(pattern)
  -- in a subshell, so that run's 2>&1 cannot send ls's complaints to the list
  local _, out = run("(ls -d " .. pattern .. " 2>/dev/null)")
  local files = {}
  for f in out:gmatch("[^\n]+") do files[#files + 1] = f end
  return files
end

local function tf_files()
  return ls(q(TF) .. "/*.tf")
end

-- terraform test's files: the tests and the mocked provider's values.
local function test_files()
  local files = ls(q(TF) .. "/tests/*.tftest.hcl")
  for _, f in ipairs(ls(q(TF) .. "/tests/mocks/*.tfmock.hcl")) do files[#files + 1] = f end
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

-- The block `kind` (resource or data) rtype.name of the module; it must exist.
local function declared(kind, rtype, name)
  local b = module[kind] and module[kind][rtype] and module[kind][rtype][name]
  assert(b, ("%s %s.%s is missing"):format(kind, rtype, name))
  return b
end

local function resource(rtype, name) return declared("resource", rtype, name) end
local function data(rtype, name) return declared("data", rtype, name) end

local function count_of(rtype)
  local n = 0
  for _ in pairs(module.resource[rtype] or {}) do n = n + 1 end
  return n
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

local contains = servers.contains

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
    -- the AWS provider alone: RDS generates the master password
    assert.is_nil(providers.random)
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

  it("creates the database alex with master credentials RDS generates, encrypted", function()
    local c = resource("aws_rds_cluster", "aurora")
    assert.equal("${var.database_name}", c.database_name)
    assert.equal("alex", module.variable.database_name.default)
    assert.equal("${var.master_username}", c.master_username)
    assert.is_true(c.manage_master_user_password)
    assert.is_nil(c.master_password)
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
  it("are generated and kept by RDS in its own Secrets Manager secret, never by Terraform", function()
    assert.is_true(resource("aws_rds_cluster", "aurora").manage_master_user_password)
    assert.equal(0, count_of("random_password") + count_of("aws_secretsmanager_secret")
      + count_of("aws_secretsmanager_secret_version"))
    -- so no password can reach the state, nor any variable or output
    each_string(module, function(s, where)
      assert(not s:find("random_", 1, true) and not s:find("master_password", 1, true), "a password at " .. where)
    end)
  end)

  it("are read through the secret ARN the cluster reports", function()
    local arn = "${aws_rds_cluster.aurora.master_user_secret[0].secret_arn}"
    assert.equal(arn, module.output.aurora_secret_arn.value)
    contains(module.output.env_file.value, "AURORA_SECRET_ARN=" .. arn)
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
  -- The policies are jsonencode({...}) expressions: the object inside is
  -- parsed by the same HCL library, and local.<name> references resolved.
  local function jsonencoded(text)
    local inner = text:match("^%${jsonencode%((.*)%)}$")
    assert(inner, "not jsonencode(...): " .. text)
    return assert(hcl("expr", cjson.encode { inner }))[1]
  end

  local function resolve_locals(s)
    return (s:gsub("%${local%.([%w_]+)}", function(name)
      for _, block in ipairs(module.locals) do
        if block[name] then return block[name] end
      end
      error("no local " .. name)
    end))
  end

  local doc
  before_each(function()
    doc = jsonencoded(resource("aws_iam_role_policy", "lambda").policy)
  end)

  local function statement(sid)
    for _, s in ipairs(doc.Statement) do
      if s.Sid == sid then return s end
    end
    error("no statement " .. sid)
  end

  local function list(v)
    return type(v) == "table" and v or { v }
  end

  it("can be assumed by Lambda only", function()
    local role = resource("aws_iam_role", "lambda")
    local assume = jsonencoded(role.assume_role_policy)
    assert.equal("2012-10-17", assume.Version)
    assert.same({ {
      Sid = "LambdaAssumesThisRole",
      Effect = "Allow",
      Action = "sts:AssumeRole",
      Principal = { Service = "lambda.amazonaws.com" },
    } }, assume.Statement)
  end)

  it("gets exactly the least-privilege policy document, nothing attached besides", function()
    local p = resource("aws_iam_role_policy", "lambda")
    assert.equal("${aws_iam_role.lambda.id}", p.role)
    assert.equal("2012-10-17", doc.Version)
    assert.equal(1, count_of("aws_iam_role_policy"))
    assert.equal(0, count_of("aws_iam_role_policy_attachment") + count_of("aws_iam_policy")
      + count_of("aws_iam_policy_attachment"))
  end)

  it("may use the Data API on this cluster only", function()
    local s = statement("DataApiOnThisClusterOnly")
    assert.equal("${aws_rds_cluster.aurora.arn}", s.Resource)
    assert.same({ "rds-data:BatchExecuteStatement", "rds-data:BeginTransaction", "rds-data:CommitTransaction",
      "rds-data:ExecuteStatement", "rds-data:RollbackTransaction" }, sorted(s.Action))
  end)

  it("may read this cluster's secret only", function()
    local s = statement("ReadThisSecretOnly")
    assert.equal("secretsmanager:GetSecretValue", s.Action)
    assert.equal("${aws_rds_cluster.aurora.master_user_secret[0].secret_arn}", s.Resource)
  end)

  it("may write its own log groups only", function()
    local s = statement("OwnLogGroupsOnly")
    assert.same({ "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents" }, sorted(s.Action))
    local prefix = "arn:${data.aws_partition.current.partition}:logs:${var.region}:"
      .. "${data.aws_caller_identity.current.account_id}:log-group:/aws/lambda/${var.name}-"
    assert.equal(2, #s.Resource)
    for _, r in ipairs(s.Resource) do
      r = resolve_locals(r)
      assert.equal(prefix, r:sub(1, #prefix))
    end
  end)

  it("has no wildcard action, no wildcard resource and no Deny-less surprises", function()
    assert.equal(3, #doc.Statement)
    for _, s in ipairs(doc.Statement) do
      assert.equal("Allow", s.Effect)
      assert.is_nil(s.NotAction)
      assert.is_nil(s.NotResource)
      assert.is_nil(s.Condition)
      assert(s.Resource, "statement " .. tostring(s.Sid) .. " has no resources")
      for _, a in ipairs(list(s.Action)) do
        assert(not a:find("*", 1, true), ("statement %s: wildcard action %q"):format(s.Sid, a))
        local service = a:match("^([%w%-]+):")
        assert(({ ["rds-data"] = true, secretsmanager = true, logs = true })[service],
          ("statement %s: action %q is not rds-data, secretsmanager or logs"):format(s.Sid, a))
      end
      for _, r in ipairs(list(s.Resource)) do
        assert(r ~= "*" and not r:match("^arn:[^:]*:[^:]*:[^:]*:[^:]*:%*$"),
          ("statement %s: wildcard resource %q"):format(s.Sid, r))
        -- Data API and secret statements name Terraform's own objects
        if s.Sid ~= "OwnLogGroupsOnly" then
          assert.is_nil(r:find("*", 1, true), ("statement %s: %q is not the cluster or secret ARN"):format(s.Sid, r))
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
    assert.equal("${aws_rds_cluster.aurora.master_user_secret[0].secret_arn}", o.aurora_secret_arn.value)
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
      -- the form of the secrets RDS names itself
      ["${aws_rds_cluster.aurora.master_user_secret[0].secret_arn}"] =
        "arn:aws:secretsmanager:eu-west-2:123456789012:secret:rds!cluster-0b7c3a4e-5f6d-4e8f-9a1b-2c3d4e5f6a7b-AbCdEf",
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
    assert.equal("rds!cluster-0b7c3a4e-5f6d-4e8f-9a1b-2c3d4e5f6a7b-AbCdEf", cfg.secret_arn:match("secret:(.*)$"))
    -- only as RDS's prefix: names people choose cannot hold a !
    local bad, why = config.parse_secret_arn("arn:aws:secretsmanager:eu-west-2:123456789012:secret:alex!db-AbCdEf")
    assert.is_nil(bad)
    contains(why, "alex!db-AbCdEf")
  end)
end)

-- ---- Terraform itself, with the hashicorp/aws provider from a local mirror ----

-- Folders that may hold a provider mirror in Terraform's filesystem-mirror
-- layout (registry.terraform.io/hashicorp/aws/...): /opt/tf-plugins, where
-- machine images often put one, and the folders Terraform itself searches on
-- Unix.  ALEX_TF_PROVIDER_MIRROR, when set, is the only one looked at.
local function mirror_candidates()
  local home, xdg = os.getenv("HOME"), os.getenv("XDG_DATA_HOME")
  local list = { "/opt/tf-plugins" }
  if home and home ~= "" then
    list[#list + 1] = home .. "/.terraform.d/plugins"
    list[#list + 1] = ((xdg and xdg ~= "") and xdg or home .. "/.local/share") .. "/terraform/plugins"
  end
  list[#list + 1] = "/usr/local/share/terraform/plugins"
  list[#list + 1] = "/usr/share/terraform/plugins"
  return list
end

-- Whether dir holds hashicorp/aws for this platform, unpacked or packed.
local function has_aws_provider(dir, platform)
  local base = q(dir .. "/registry.terraform.io/hashicorp/aws")
  return #ls(base .. "/*/" .. platform .. "/terraform-provider-aws*") > 0
    or #ls(base .. "/terraform-provider-aws_*_" .. platform .. ".zip") > 0
end

-- Returns the mirror folder, or nil, why and whether that is a mistake (a
-- mirror named by ALEX_TF_PROVIDER_MIRROR that lacks the provider) rather than
-- a machine without one.
local function find_mirror(platform)
  local named = os.getenv("ALEX_TF_PROVIDER_MIRROR")
  if named and named ~= "" then
    if has_aws_provider(named, platform) then return named end
    return nil, ("ALEX_TF_PROVIDER_MIRROR=%s has no registry.terraform.io/hashicorp/aws/<version>/%s/"
      .. "terraform-provider-aws*"):format(named, platform), true
  end
  local tried = mirror_candidates()
  for _, dir in ipairs(tried) do
    if has_aws_provider(dir, platform) then return dir end
  end
  return nil, ("no filesystem mirror of hashicorp/aws for %s in %s; set ALEX_TF_PROVIDER_MIRROR to one")
    :format(platform, table.concat(tried, ", "))
end

-- A quoted HCL string (a template: $ { and % { are escaped too).
local function hcl_string(s)
  assert(not s:find("%c"), "control character in " .. s)
  return '"' .. s:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("%${", "$${"):gsub("%%{", "%%%%{") .. '"'
end

-- Terraform's messages are wrapped at 78 columns: compare with spaces folded.
local function folded(s)
  return (s:gsub("%s+", " "))
end

describe("terraform with the hashicorp/aws provider (validate, test)", function()
  -- skip or fail (why not), else dir (temp), module (the copy), env, init_ok, init_out
  local tfp = {}

  local function terraform(args, dir)
    return run("cd " .. q(dir or tfp.module) .. " && " .. tfp.env .. "terraform " .. args)
  end

  setup(function()
    if not have("terraform") then
      tfp.skip = "terraform is not installed"
      return
    end
    local ok, out = run("CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null terraform version -json")
    local platform = ok and out:match('"platform"%s*:%s*"([%w_]+)"')
    if not platform then
      tfp.fail = "terraform version -json did not name the platform: " .. out
      return
    end
    local mirror, why, mistake = find_mirror(platform)
    if not mirror then
      if mistake then tfp.fail = why else tfp.skip = why end
      return
    end
    -- Everything Terraform writes goes to the temp folder: the lock file next
    -- to the copy of the module, providers under TF_DATA_DIR, the cache.
    tfp.dir = servers.tmpdir()
    tfp.module = tfp.dir .. "/module"
    local cli = tfp.dir .. "/terraform.tfrc"
    servers.write_file(cli, table.concat({
      "disable_checkpoint = true",
      "provider_installation {",
      "  filesystem_mirror {",
      "    path    = " .. hcl_string(mirror),
      '    include = ["registry.terraform.io/hashicorp/aws"]',
      "  }",
      "  direct {",
      '    exclude = ["*/*/*"]',
      "  }",
      "}",
      "",
    }, "\n"))
    tfp.env = "env -u TF_CLI_ARGS -u TF_CLI_ARGS_init -u TF_CLI_ARGS_validate -u TF_CLI_ARGS_test"
      .. " TF_CLI_CONFIG_FILE=" .. q(cli) .. " TF_DATA_DIR=" .. q(tfp.dir .. "/data")
      .. " TF_PLUGIN_CACHE_DIR=" .. q(tfp.dir .. "/plugin-cache")
      .. " CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0 "
    assert(run("mkdir " .. q(tfp.module) .. " " .. q(tfp.dir .. "/plugin-cache") .. " && cp " .. q(TF) .. "/*.tf "
      .. q(tfp.module) .. " && cp -R " .. q(TF .. "/tests") .. " " .. q(tfp.module)))
    tfp.init_ok, tfp.init_out = terraform("init -backend=false -input=false -no-color")
  end)

  teardown(function()
    if tfp.dir then servers.rmtree(tfp.dir) end
  end)

  -- true when terraform and the provider are here; marks the test pending when
  -- they are not, and fails it when they are but do not work.
  local function ready()
    if tfp.skip then
      pending("terraform with the AWS provider not run: " .. tfp.skip)
      return false
    end
    assert(not tfp.fail, tfp.fail)
    assert(tfp.init_ok, "terraform init failed:\n" .. tostring(tfp.init_out))
    return true
  end

  -- Replaces from by to in a file of a copy of the module.
  local function change(dir, file, from, to)
    local path = dir .. "/" .. file
    local text = assert(servers.read_file(path))
    local a, b = text:find(from, 1, true)
    assert(a, file .. " no longer has " .. from)
    servers.write_file(path, text:sub(1, a - 1) .. to .. text:sub(b + 1))
  end

  -- A copy of the module (lock file included) to break.
  local function copy_of_module(name)
    local dir = tfp.dir .. "/" .. name
    assert(run("cp -R " .. q(tfp.module) .. " " .. q(dir)))
    return dir
  end

  -- Each run of `terraform test` loads the provider's schema (seconds), so
  -- every test file runs in one, once, and the copy broken in every way the
  -- tests must catch in one more.
  local function once(fn)
    local done, a, b
    return function()
      if not done then
        a, b = fn()
        done = true
      end
      return a, b
    end
  end

  local test_module = once(function()
    return terraform("test -no-color")
  end)

  -- Each change breaks one thing one test file checks; the files are
  -- independent, so each failure below is that change's.
  local BREAKS = {
    { "main.tf", "enable_http_endpoint = true", "" },
    { "iam.tf", '"rds-data:RollbackTransaction",', '"rds-data:RollbackTransaction",\n"rds-data:*",' },
    { "iam.tf", "Resource = aws_rds_cluster.aurora.arn", 'Resource = "*"' },
    { "outputs.tf", "value       = aws_rds_cluster.aurora.master_user_secret[0].secret_arn",
      "value       = aws_rds_cluster.aurora.arn" },
    { "variables.tf", "condition     = var.max_capacity >= var.min_capacity", "condition     = var.max_capacity >= 0" },
  }
  local test_broken_module = once(function()
    local dir = copy_of_module("broken")
    for _, b in ipairs(BREAKS) do change(dir, b[1], b[2], b[3]) end
    return terraform("test -no-color", dir)
  end)

  it("installs hashicorp/aws from the mirror alone and leaves nothing in terraform/", function()
    if not ready() then return end
    contains(tfp.init_out, "Installing hashicorp/aws v")
    contains(assert(servers.read_file(tfp.module .. "/.terraform.lock.hcl")),
      'provider "registry.terraform.io/hashicorp/aws"')
    assert(run("test -d " .. q(tfp.dir .. "/data/providers/registry.terraform.io/hashicorp/aws")))
    for _, left in ipairs { TF .. "/.terraform", TF .. "/.terraform.lock.hcl", tfp.module .. "/.terraform" } do
      assert(not run("test -e " .. q(left)), left .. " was written")
    end
  end)

  it("fetches nothing from a registry: a provider outside the mirror is refused", function()
    if not ready() then return end
    local other = tfp.dir .. "/needs-random"
    assert(run("mkdir " .. q(other)))
    servers.write_file(other .. "/versions.tf",
      'terraform {\n  required_providers {\n    random = { source = "hashicorp/random" }\n  }\n}\n')
    local ok, out = terraform("init -backend=false -input=false -no-color", other)
    assert(not ok, "terraform init found hashicorp/random:\n" .. out)
    contains(folded(out), "hashicorp/random was not found in any of the search locations")
  end)

  it("terraform validate: the module is valid against the provider's schema, without warnings", function()
    if not ready() then return end
    local ok, out = terraform("validate -json -no-color")
    local result = assert(cjson.decode(out:match("%b{}")), out)
    assert(ok and result.valid, "terraform validate:\n" .. out)
    assert.equal(0, result.error_count)
    assert.equal(0, result.warning_count, out)
  end)

  it("terraform validate refuses what the provider refuses (a master_password beside RDS's own)", function()
    if not ready() then return end
    local dir = copy_of_module("conflict")
    change(dir, "main.tf", "manage_master_user_password = true",
      'manage_master_user_password = true\n  master_password             = "not-a-password"')
    local ok, out = terraform("validate -no-color", dir)
    assert(not ok, "terraform validate accepted the change:\n" .. out)
    contains(folded(out), '"manage_master_user_password": conflicts with master_password')
  end)

  for _, name in ipairs { "cluster", "iam", "outputs", "variables" } do
    local file = name .. ".tftest.hcl"
    it("terraform test passes every run of tests/" .. file, function()
      if not ready() then return end
      local path = TF .. "/tests/" .. file
      local runs = {}
      for run_name in pairs(assert(hcl("parse " .. q(path)))[path].run) do runs[#runs + 1] = run_name end
      assert.is_true(#runs >= 2)
      local ok, out = test_module()
      assert(ok, "terraform test failed:\n" .. out)
      -- the file's own section of the report
      local section = out:match("tests/" .. name .. "%.tftest%.hcl%.%.%. in progress\n(.-)\n[^\n]*tearing down")
      assert(section, "no report for tests/" .. file .. " in:\n" .. out)
      for _, run_name in ipairs(runs) do
        contains(section, ('run "%s"... pass'):format(run_name))
      end
      local _, n = section:gsub('run "', "")
      assert.equal(#runs, n)
    end)
  end

  -- The same tests on a copy of the module broken in the ways listed in BREAKS.
  for _, case in ipairs {
    { "the Data API is not enabled", "cluster", "The Data API (enable_http_endpoint) must be on" },
    { "the Lambda policy gains an action", "lambda_policy", "The Lambda policy must not grant a wildcard action." },
    { "the Lambda policy's resource widens", "lambda_policy", "The Lambda policy must name its resources" },
    { "the secret output is not the cluster's secret", "outputs_for_env",
      "aurora_secret_arn must be the secret RDS manages" },
    { "a variable validation is lost", "refuses_max_below_min", "var.max_capacity, was expected to report an error" },
  } do
    local what, failed_run, message = case[1], case[2], case[3]
    it("terraform test fails when " .. what, function()
      if not ready() then return end
      local ok, out = test_broken_module()
      assert(not ok, "terraform test passed the broken module:\n" .. out)
      out = folded(out)
      contains(out, ('run "%s"... fail'):format(failed_run))
      contains(out, message)
    end)
  end
end)

describe("formatting", function()
  it("is what hclwrite.Format (terraform fmt's formatter) makes of every file", function()
    local files = tf_files()
    files[#files + 1] = TF .. "/terraform.tfvars.example"
    for _, f in ipairs(test_files()) do files[#files + 1] = f end
    assert.is_true(#files >= 10)
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
    -- terraform fmt reads .tf, .tfvars, .tftest.hcl and .tfmock.hcl: the example
    -- goes in under a .tfvars name
    assert(run("cp " .. q(TF) .. "/*.tf " .. q(dir) .. " && cp -R " .. q(TF .. "/tests") .. " " .. q(dir)
      .. " && cp " .. q(TF .. "/terraform.tfvars.example") .. " " .. q(dir .. "/example.tfvars")))
    local ok, out = run("cd " .. q(dir) .. " && CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "
      .. "terraform fmt -check -diff -recursive -no-color .")
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
      "secretsmanager:CreateSecret", "secretsmanager:TagResource", "secretsmanager:RotateSecret",
      "secretsmanager:GetSecretValue", "kms:DescribeKey", "iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRole",
      "sts:GetCallerIdentity", "rds-data:ExecuteStatement", "rds-data:BeginTransaction",
      "rds-data:CommitTransaction", "rds-data:RollbackTransaction", "rds-data:BatchExecuteStatement",
    } do
      assert(g[a], "operator-policy.json does not grant " .. a)
    end
    -- RDS creates the master secret (manage_master_user_password) with the
    -- operator's permissions, under a name of its own
    assert.same({ "arn:aws:secretsmanager:*:*:secret:rds!cluster-*" }, g["secretsmanager:CreateSecret"])
    assert.same({ "arn:aws:secretsmanager:*:*:secret:rds!cluster-*" }, g["secretsmanager:GetSecretValue"])
  end)

  it("scopes every write to resources named alex-* (or RDS's own cluster secrets)", function()
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
          assert(r:find("alex-", 1, true) or r:find("default", 1, true) or r:find(":ec2:", 1, true)
            or r:find(":secret:rds!cluster-", 1, true),
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
      "operator-policy.json", "HttpEndpointNotEnabledException", "DatabaseResumingException",
      "manage_master_user_password", "terraform test", "ALEX_TF_PROVIDER_MIRROR" } do
      contains(text, s)
    end
  end)
end)
