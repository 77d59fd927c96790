-- luacheck: std +busted
-- alex.config (where the Data API calls go) and alex.ini (the AWS shared-file reader).
-- Every case uses its own temporary HOME and an `env` function, never the real
-- environment or ~/.aws.
local config = require "alex.config"
local ini = require "alex.ini"
local cjson = require "cjson"

local CLUSTER = "arn:aws:rds:us-east-1:123456789012:cluster:alex-aurora-cluster"
local SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:alex-aurora-credentials-AbCdEf"

local function run(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local servers = require "servers"
local write = servers.write_file

local contains = servers.contains

local home -- a fresh temporary HOME per test

-- An env function over a table, with HOME pointing at the temporary one.
local function env(t)
  return servers.env(t, { HOME = home })
end

local function base(extra)
  local t = { AURORA_CLUSTER_ARN = CLUSTER, AURORA_SECRET_ARN = SECRET }
  for k, v in pairs(extra or {}) do t[k] = v end
  return env(t)
end

local function aws_config(text)
  run("mkdir -p " .. home .. "/.aws")
  write(home .. "/.aws/config", text)
end

local function load_ok(opts)
  return (assert(config.load(opts)))
end

local function load_err(opts)
  local cfg, err = config.load(opts)
  assert.is_nil(cfg)
  assert.is_string(err)
  return err
end

before_each(function() home = servers.tmpdir() end)
after_each(function() servers.rmtree(home) end)

-- Each case of `cases` (value -> what the message also says) refused by
-- config.load with the env make(value); the message names the value as `fmt`
-- says, and holds `hint` when given.
local function refuses(cases, make, fmt, hint)
  for value, why in pairs(cases) do
    local err = load_err { env = make(value) }
    contains(err, fmt:format(value))
    contains(err, why)
    if hint then contains(err, hint) end
  end
end

describe("alex.config.is_local_target", function()
  it("is true without AURORA_CLUSTER_ARN, empty or blank", function()
    assert.is_true(config.is_local_target(env {}))
    assert.is_true(config.is_local_target(env { AURORA_CLUSTER_ARN = "" }))
    assert.is_true(config.is_local_target(env { AURORA_CLUSTER_ARN = "  " }))
  end)
  it("is false when a cluster ARN is configured, even a malformed one", function()
    assert.is_false(config.is_local_target(env { AURORA_CLUSTER_ARN = CLUSTER }))
    assert.is_false(config.is_local_target(env { AURORA_CLUSTER_ARN = "nonsense" }))
  end)
  it("takes an options table: the option, else its env", function()
    assert.is_false(config.is_local_target { cluster_arn = CLUSTER, env = env {} })
    assert.is_false(config.is_local_target { env = env { AURORA_CLUSTER_ARN = CLUSTER } })
    assert.is_true(config.is_local_target { env = env {} })
  end)
end)

describe("alex.config.load", function()
  it("resolves a minimal environment with defaults and sources", function()
    local cfg = load_ok { env = base() }
    assert.are.equal(CLUSTER, cfg.cluster_arn)
    assert.are.equal(SECRET, cfg.secret_arn)
    assert.are.equal("alex", cfg.database)
    assert.are.equal("us-east-1", cfg.region)
    assert.are.equal("https://rds-data.us-east-1.amazonaws.com", cfg.endpoint)
    assert.are.equal("default", cfg.profile)
    assert.are.equal(3, cfg.max_attempts)
    assert.are.same({
      profile = "default", cluster_arn = "environment", secret_arn = "environment", database = "default",
      endpoint = "default", region = "cluster-arn", max_attempts = "default", lock_timeout = "default",
    }, cfg.source)
    assert.are.equal(5000, cfg.lock_timeout)
    contains(config.describe(cfg), "cluster alex-aurora-cluster, database alex, region us-east-1")
  end)

  it("holds no credentials even when the environment has some", function()
    local cfg = load_ok { env = base { AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE",
      AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", AWS_SESSION_TOKEN = "tok" } }
    local allowed = { cluster_arn = true, secret_arn = true, database = true, region = true, endpoint = true,
      profile = true, max_attempts = true, lock_timeout = true, source = true, source_detail = true }
    for k in pairs(cfg) do assert(allowed[k], "unexpected field " .. k) end
    local text = cjson.encode(cfg)
    assert.is_nil(text:find("AKIA", 1, true))
    assert.is_nil(text:find("EXAMPLEKEY", 1, true))
  end)

  it("reads AURORA_DATABASE and trims values", function()
    local cfg = load_ok { env = base { AURORA_DATABASE = " alex_test ", AURORA_CLUSTER_ARN = " " .. CLUSTER .. "\n" } }
    assert.are.equal("alex_test", cfg.database)
    assert.are.equal("environment", cfg.source.database)
    assert.are.equal(CLUSTER, cfg.cluster_arn)
  end)

  it("lets options override every setting", function()
    local c2 = "arn:aws:rds:eu-west-1:210987654321:cluster:other"
    local s2 = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:other-x1Y2z3"
    local cfg = load_ok {
      env = base { AURORA_DATABASE = "envdb", AWS_REGION = "us-east-1", AWS_MAX_ATTEMPTS = "7",
        AWS_ENDPOINT_URL_RDS_DATA = "http://127.0.0.1:1", AWS_PROFILE = "envprofile" },
      cluster_arn = c2, secret_arn = s2, database = "optdb", region = "eu-west-1",
      endpoint = "http://localhost:8080/", profile = "optprofile", max_attempts = 5,
    }
    assert.are.same({ c2, s2, "optdb", "eu-west-1", "http://localhost:8080", "optprofile", 5 },
      { cfg.cluster_arn, cfg.secret_arn, cfg.database, cfg.region, cfg.endpoint, cfg.profile, cfg.max_attempts })
    for _, k in ipairs { "cluster_arn", "secret_arn", "database", "region", "endpoint", "profile", "max_attempts" } do
      assert.are.equal("option", cfg.source[k], k)
    end
  end)

  describe("region", function()
    local function region_of(t)
      local cfg = load_ok { env = base(t) }
      return cfg.region, cfg.source_detail.region
    end
    it("takes AWS_REGION, then AWS_DEFAULT_REGION; not DEFAULT_AWS_REGION, which no AWS SDK reads", function()
      local all = { AWS_REGION = "us-east-1", AWS_DEFAULT_REGION = "eu-west-1", DEFAULT_AWS_REGION = "ap-south-1",
        AWS_ENDPOINT_URL = "http://127.0.0.1:9" }
      assert.are.same({ "us-east-1", "AWS_REGION" }, { region_of(all) })
      all.AWS_REGION = nil
      assert.are.same({ "eu-west-1", "AWS_DEFAULT_REGION" }, { region_of(all) })
      all.AWS_DEFAULT_REGION = ""
      assert.are.same({ "us-east-1", "the region of AURORA_CLUSTER_ARN" }, { region_of(all) })
    end)
    it("then the profile's region in the config file, [default] or [profile x]", function()
      aws_config("[default]\nregion = us-east-1\n[profile dev]\nregion = eu-west-1\n")
      local cfg = load_ok { env = base() }
      assert.are.equal("us-east-1", cfg.region)
      assert.are.equal("config-file", cfg.source.region)
      contains(cfg.source_detail.region, home .. "/.aws/config [default]")
      local r = region_of { AWS_PROFILE = "dev", AWS_ENDPOINT_URL = "http://127.0.0.1:9" }
      assert.are.equal("eu-west-1", r)
      r = region_of { AWS_DEFAULT_PROFILE = "dev", AWS_ENDPOINT_URL = "http://127.0.0.1:9" }
      assert.are.equal("eu-west-1", r)
      r = region_of { AWS_PROFILE = "default", AWS_DEFAULT_PROFILE = "dev" }
      assert.are.equal("us-east-1", r)
    end)
    it("prefers [profile default] over [default] for the same key", function()
      aws_config("[profile default]\nregion = us-east-1\n[default]\nregion = eu-west-1\nmax_attempts = 4\n")
      local cfg = load_ok { env = base() }
      assert.are.equal("us-east-1", cfg.region)
      assert.are.equal(4, cfg.max_attempts)
    end)
    it("reads the file AWS_CONFIG_FILE names, with ~ expanded", function()
      write(home .. "/other-config", "[profile x]\nregion = us-east-1\nmax_attempts = 9\n")
      local cfg = load_ok { env = base { AWS_CONFIG_FILE = "~/other-config", AWS_PROFILE = "x" } }
      assert.are.equal("x", cfg.profile)
      assert.are.equal(9, cfg.max_attempts)
      assert.are.equal("config-file", cfg.source.region)
    end)
    it("environment wins over the config file", function()
      aws_config("[default]\nregion = eu-west-1\n")
      assert.are.equal("us-east-1", (region_of { AWS_REGION = "us-east-1" }))
    end)
    it("uses the cluster ARN's region when nothing else sets one", function()
      local cfg = load_ok { env = base { AURORA_CLUSTER_ARN = "arn:aws:rds:ap-southeast-2:123456789012:cluster:c1",
        AURORA_SECRET_ARN = "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:s" } }
      assert.are.equal("ap-southeast-2", cfg.region)
      assert.are.equal("https://rds-data.ap-southeast-2.amazonaws.com", cfg.endpoint)
    end)
    it("uses the China DNS suffix for cn regions", function()
      local cfg = load_ok { env = env { AURORA_CLUSTER_ARN = "arn:aws-cn:rds:cn-north-1:123456789012:cluster:c",
        AURORA_SECRET_ARN = "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:s" } }
      assert.are.equal("https://rds-data.cn-north-1.amazonaws.com.cn", cfg.endpoint)
    end)
    it("rejects a malformed region, naming where it came from", function()
      for _, bad in ipairs { "US-EAST-1", "useast1", "us-east", "u-east-1", "us-east-1a", "us--east-1" } do
        local err = load_err { env = base { AWS_REGION = bad } }
        contains(err, ("AWS_REGION %q is not an AWS region name"):format(bad))
        contains(err, "us-east-1")
      end
      aws_config("[default]\nregion = Frankfurt\n")
      local err = load_err { env = base() }
      contains(err, "region in " .. home .. "/.aws/config [default] \"Frankfurt\" is not an AWS region name")
    end)
    it("rejects a region that differs from the cluster ARN's, saying how to fix it", function()
      local err = load_err { env = base { AWS_REGION = "eu-west-1" } }
      contains(err, "AWS_REGION is eu-west-1 but AURORA_CLUSTER_ARN is in us-east-1")
      contains(err, "signed for and sent to eu-west-1")
      contains(err, "set AWS_REGION=us-east-1")
      aws_config("[default]\nregion = eu-west-1\n")
      err = load_err { env = base() }
      contains(err, "region in " .. home .. "/.aws/config [default] is eu-west-1")
      err = load_err { env = base(), region = "eu-west-1" }
      contains(err, "option region is eu-west-1")
      contains(err, 'pass region = "us-east-1"')
    end)
    it("allows a differing region when the endpoint is overridden (emulators, proxies)", function()
      local cfg = load_ok { env = base { AWS_REGION = "eu-west-1",
        AWS_ENDPOINT_URL_RDS_DATA = "http://127.0.0.1:8080" } }
      assert.are.equal("eu-west-1", cfg.region)
      assert.are.equal("http://127.0.0.1:8080", cfg.endpoint)
    end)
  end)

  describe("endpoint", function()
    local function endpoint_of(t, opts)
      opts = opts or {}
      opts.env = base(t)
      local cfg = load_ok(opts)
      return cfg.endpoint, cfg.source.endpoint, cfg.source_detail.endpoint
    end
    local services = "[default]\nservices = local\nendpoint_url = http://127.0.0.1:4\n"
      .. "[services local]\nrds_data =\n  endpoint_url = http://127.0.0.1:3  # the local stack\n"
      .. "s3 =\n  endpoint_url = http://127.0.0.1:99\n"

    it("follows option > AWS_ENDPOINT_URL_RDS_DATA > AWS_ENDPOINT_URL > services > profile > default", function()
      aws_config(services)
      local t = { AWS_ENDPOINT_URL_RDS_DATA = "http://127.0.0.1:1", AWS_ENDPOINT_URL = "http://127.0.0.1:2" }
      assert.are.same({ "http://127.0.0.1:5", "option" }, { endpoint_of(t, { endpoint = "http://127.0.0.1:5" }) })
      assert.are.same({ "http://127.0.0.1:1", "environment", "AWS_ENDPOINT_URL_RDS_DATA" }, { endpoint_of(t) })
      t.AWS_ENDPOINT_URL_RDS_DATA = nil
      assert.are.same({ "http://127.0.0.1:2", "environment", "AWS_ENDPOINT_URL" }, { endpoint_of(t) })
      t.AWS_ENDPOINT_URL = nil
      local url, source, detail = endpoint_of(t)
      assert.are.same({ "http://127.0.0.1:3", "config-file" }, { url, source })
      contains(detail, "[services local]")
      aws_config("[default]\nendpoint_url = http://127.0.0.1:4\n")
      url, source = endpoint_of(t)
      assert.are.same({ "http://127.0.0.1:4", "config-file" }, { url, source })
      aws_config("[default]\n")
      assert.are.same({ "https://rds-data.us-east-1.amazonaws.com", "default" }, { endpoint_of(t) })
    end)
    it("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true switches off env and file, not the option", function()
      aws_config(services)
      local t = { AWS_ENDPOINT_URL_RDS_DATA = "http://127.0.0.1:1", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS = "TRUE" }
      assert.are.equal("https://rds-data.us-east-1.amazonaws.com", (endpoint_of(t)))
      assert.are.equal("http://127.0.0.1:5", (endpoint_of(t, { endpoint = "http://127.0.0.1:5" })))
      t.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS = "false"
      assert.are.equal("http://127.0.0.1:1", (endpoint_of(t)))
    end)
    it("the profile's ignore_configured_endpoint_urls = true does the same", function()
      aws_config(services .. "[profile quiet]\nignore_configured_endpoint_urls = true\nservices = local\n")
      assert.are.equal("https://rds-data.us-east-1.amazonaws.com",
        (endpoint_of { AWS_PROFILE = "quiet", AWS_ENDPOINT_URL = "http://127.0.0.1:2" }))
    end)
    it("normalizes the scheme and a trailing slash; accepts IPv6 and ports", function()
      assert.are.equal("https://example.com", (endpoint_of { AWS_ENDPOINT_URL = "HTTPS://example.com/" }))
      assert.are.equal("http://[::1]:8080", (endpoint_of { AWS_ENDPOINT_URL = "http://[::1]:8080" }))
    end)
    it("rejects anything but http(s)://host[:port]", function()
      local cases = {
        ["ftp://127.0.0.1"] = "scheme \"ftp\"",
        ["127.0.0.1:8080"] = "does not start with http:// or https://",
        ["http://127.0.0.1:8080/path"] = "no path",
        ["http://127.0.0.1:0"] = "port 0 is out of range",
        ["http://127.0.0.1:70000"] = "out of range",
        ["http://user:pw@host"] = "no path, query, user or password",
        ["http://"] = "host is missing",
      }
      refuses(cases, function(url) return base { AWS_ENDPOINT_URL_RDS_DATA = url } end,
        "AWS_ENDPOINT_URL_RDS_DATA %q is not an endpoint URL")
      local err = load_err { env = base(), endpoint = "localhost" }
      contains(err, "option endpoint \"localhost\" is not an endpoint URL")
    end)
  end)

  describe("max_attempts", function()
    it("comes from AWS_MAX_ATTEMPTS, then the profile, default 3", function()
      aws_config("[default]\nmax_attempts = 6\n")
      assert.are.equal(8, load_ok { env = base { AWS_MAX_ATTEMPTS = "8" } }.max_attempts)
      assert.are.equal(6, load_ok { env = base() }.max_attempts)
    end)
    it("must be a whole number from 1 to 100", function()
      for _, bad in ipairs { "0", "-1", "2.5", "many", "101" } do
        local err = load_err { env = base { AWS_MAX_ATTEMPTS = bad } }
        contains(err, ("AWS_MAX_ATTEMPTS must be a whole number from 1 to 100 (the default is 3), got %q"):format(bad))
      end
      contains(load_err { env = base(), max_attempts = 0 }, "option max_attempts must be a whole number")
    end)
  end)

  describe("validation", function()
    it("names AURORA_CLUSTER_ARN and the Terraform output when it is missing", function()
      local err = load_err { env = env { AURORA_SECRET_ARN = SECRET } }
      assert.are.equal("AURORA_CLUSTER_ARN is not set: set AURORA_CLUSTER_ARN in .env: the Terraform output"
        .. " aurora_cluster_arn holds it (terraform output -raw aurora_cluster_arn)", err)
    end)
    it("explains a malformed cluster ARN", function()
      local cases = {
        ["alex-aurora-cluster"] = "bare cluster identifier",
        ["arn:aws:rds:us-east-1:123456789012:db:alex-instance"] = "DB instance ARN",
        [SECRET] = "Secrets Manager ARN",
        ["arn:aws:rds:us-east-1:12345:cluster:c"] = "account \"12345\" is not 12 digits",
        ["arn:aws:rds:useast1:123456789012:cluster:c"] = "region \"useast1\"",
        ["arn:aws:rds:cn-north-1:123456789012:cluster:c"] = "does not belong to partition aws",
        ["arn:aws-xx:rds:us-east-1:123456789012:cluster:c"] = "partition \"aws-xx\"",
        ["arn:aws:ec2:us-east-1:123456789012:cluster:c"] = "service \"ec2\"",
        ["arn:aws:rds:us-east-1:123456789012:cluster:1abc"] = "cluster id \"1abc\"",
        ["arn:aws:rds:us-east-1:123456789012:cluster:a--b"] = "cluster id",
        ["arn:aws:rds:us-east-1:123456789012:cluster:"] = "cluster id",
        ["arn:aws:rds:us-east-1:123456789012:snapshot:s"] = "not cluster:<cluster id>",
      }
      refuses(cases, function(arn) return env { AURORA_CLUSTER_ARN = arn, AURORA_SECRET_ARN = SECRET } end,
        "AURORA_CLUSTER_ARN is not an Aurora cluster ARN (%q)", "terraform output -raw aurora_cluster_arn")
      contains(load_err { env = base(), cluster_arn = "x:y" }, "option cluster_arn is not an Aurora cluster ARN")
    end)
    it("accepts the GovCloud and China partitions", function()
      local cfg = load_ok { env = env { AURORA_CLUSTER_ARN = "arn:aws-us-gov:rds:us-gov-west-1:123456789012:cluster:g",
        AURORA_SECRET_ARN = "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:g" } }
      assert.are.equal("us-gov-west-1", cfg.region)
    end)
    it("names AURORA_SECRET_ARN when it is missing or malformed", function()
      assert.are.equal("AURORA_SECRET_ARN is not set: set AURORA_SECRET_ARN in .env: the Terraform output"
        .. " aurora_secret_arn holds it (terraform output -raw aurora_secret_arn)",
        load_err { env = env { AURORA_CLUSTER_ARN = CLUSTER } })
      local cases = {
        ["my-secret"] = "does not have the arn:partition:secretsmanager",
        [CLUSTER] = "RDS ARN",
        ["arn:aws:secretsmanager:us-east-1:123456789012:parameter:x"] = "not secret:<name>",
        ["arn:aws:secretsmanager:us-east-1:123456789012:secret:bad name"] = "secret name \"bad name\"",
        ["arn:aws:secretsmanager:us-east-1:1234567890123:secret:x"] = "not 12 digits",
      }
      refuses(cases, function(arn) return env { AURORA_CLUSTER_ARN = CLUSTER, AURORA_SECRET_ARN = arn } end,
        "AURORA_SECRET_ARN is not a Secrets Manager secret ARN (%q)", "terraform output -raw aurora_secret_arn")
      local err = load_err { env = env { AURORA_CLUSTER_ARN = CLUSTER,
        AURORA_SECRET_ARN = "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:s" } }
      contains(err, "AURORA_SECRET_ARN is in partition aws-cn but AURORA_CLUSTER_ARN is in aws")
    end)
    it("rejects an invalid database name", function()
      for _, bad in ipairs { "my-db", "1db", "a b", string.rep("d", 64), "x;drop" } do
        local err = load_err { env = base { AURORA_DATABASE = bad } }
        contains(err, ("AURORA_DATABASE %q is not a valid database name"):format(bad))
      end
      assert.are.equal(string.rep("d", 63), load_ok { env = base { AURORA_DATABASE = string.rep("d", 63) } }.database)
      contains(load_err { env = base(), database = "no-dash" }, "option database \"no-dash\" is not a valid")
    end)
    it("reports a config file it cannot parse, with file and line", function()
      aws_config("[default]\nregion = us-east-1\nthis line is wrong\n")
      local err = load_err { env = base() }
      contains(err, home .. "/.aws/config:3: expected `name = value`")
      contains(err, "cannot use the AWS config file")
    end)
    it("ignores a missing config file", function()
      assert.are.equal("us-east-1", load_ok { env = base { AWS_CONFIG_FILE = home .. "/nope" } }.region)
    end)
    it("rejects a non-table opts and a non-function env as programming errors", function()
      assert.has_error(function() config.load("x") end, "alex.config.load: opts must be a table")
      assert.has_error(function() config.load { env = {} } end, "alex.config: env must be a function(name) -> value")
    end)
  end)
end)

describe("alex.ini", function()
  it("parses sections, comments, both delimiters, sub-sections and continuations", function()
    local t = assert(ini.parse(table.concat({
      "\239\187\191# comment",
      "; another",
      "[default]   # trailing comment",
      "region = us-east-1   # inline comment",
      "Output: json",
      "   ; indented comment",
      "[profile   dev]",
      "s3 =",
      "  max_concurrent_requests = 20",
      "  addressing_style = path",
      "credential_process = /bin/echo a",
      "  b",
      "key=value#not-a-comment",
      "[default]",
      "region = eu-west-1",
    }, "\r\n")))
    assert.are.same({
      default = { region = "eu-west-1", output = "json" },
      ["profile dev"] = { s3 = { max_concurrent_requests = "20", addressing_style = "path" },
        credential_process = "/bin/echo a\nb", key = "value#not-a-comment" },
    }, t)
  end)
  it("reports malformed lines with their number, never their text", function()
    local cases = {
      ["key = v\n"] = "x:1: a setting before the first [section] header",
      ["[a]\nsecretvalue\n"] = "x:2: expected `name = value`",
      ["[a\n"] = "x:1: malformed section header (expected [name])",
      ["[]\n"] = "x:1: empty section name",
      ["[a] junk\n"] = "x:1: malformed section header (expected [name])",
      ["[a]\ns3 =\n  oops\n"] = "x:3: expected `name = value` in the sub-section \"s3\"",
    }
    for text, msg in pairs(cases) do
      local t, err = ini.parse(text, "x")
      assert.is_nil(t)
      assert.are.equal(msg, err)
    end
  end)
  it("tells a missing file from an unreadable one", function()
    local t, err, kind = ini.read(home .. "/missing")
    assert.is_nil(t)
    assert.are.equal("missing", kind)
    contains(err, "no such file")
    t, err, kind = ini.read(home) -- a directory
    assert.is_nil(t)
    assert.are.equal("error", kind)
    assert.is_string(err)
  end)
  it("reads what botocore reads from the same file", function()
    local text = "[default]\nregion = us-east-1\naws_access_key_id = AKIDFILE\n[profile dev]\nregion: eu-west-1\n"
      .. "s3 =\n  max_concurrent_requests = 20\nservices = local\n[services local]\nrds_data =\n"
      .. "  endpoint_url = http://127.0.0.1:9\ncredential_process = /bin/echo a\n  b c\n"
    write(home .. "/cfg", text)
    local py = "import json,sys,botocore.configloader as c; print(json.dumps(c.raw_config_parse(sys.argv[1])))"
    local out, ok = run(("/usr/bin/python3 -c %q %s"):format(py, home .. "/cfg"))
    assert.is_true(ok, "botocore is needed (Debian python3-botocore)")
    assert.are.same(cjson.decode(out), assert(ini.read(home .. "/cfg")))
  end)
  it("maps profiles the way the two files name them", function()
    local conf = assert(ini.parse("[default]\na = 1\n[profile x]\na = 2\n[x]\na = 3\n"))
    assert.are.equal("2", ini.config_profile(conf, "x").a)
    assert.are.equal("1", ini.config_profile(conf, "default").a)
    assert.is_nil(ini.config_profile(conf, "y"))
    local creds = assert(ini.parse("[x]\na = 4\n[profile x]\na = 5\n"))
    assert.are.equal("4", ini.credentials_profile(creds, "x").a)
  end)
end)
