-- luacheck: std +busted
-- alex.aws's settings: one set of rules for every service alexlua talks to
-- (the Data API through alex.config, the RDS API through alex.rds), the shared
-- files read once and handed to the credentials chain, the retry mode.  Every
-- case uses its own temporary HOME and an `env` function, never the real
-- environment or ~/.aws.  The client (signing, retries, backoff) is exercised
-- against the local stack in db_spec.lua.
local aws = require "alex.aws"
local config = require "alex.config"
local rds = require "alex.rds"
local ini = require "alex.ini"
local credentials = require "alex.credentials"
local servers = require "servers"

local CLUSTER = "arn:aws:rds:us-east-1:123456789012:cluster:alex-aurora-cluster"
local SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:alex-aurora-credentials-AbCdEf"

local contains = servers.contains

local home

local function env(t)
  t = t or {}
  return function(name)
    if name == "HOME" and t.HOME == nil then return home end
    if name == "AWS_EC2_METADATA_DISABLED" and t[name] == nil then return "true" end
    return t[name]
  end
end

local function aws_config(text)
  os.execute("mkdir -p " .. servers.q(home .. "/.aws"))
  servers.write_file(home .. "/.aws/config", text)
end

-- The same environment resolved for the Data API (alex.config) and the RDS
-- API (alex.rds): the settings, or nil and the message, of each.
local function both(t, opts)
  local vars = { AURORA_CLUSTER_ARN = CLUSTER, AURORA_SECRET_ARN = SECRET }
  for k, v in pairs(t or {}) do vars[k] = v end
  local o1, o2 = { env = env(vars) }, { env = env(vars) }
  for k, v in pairs(opts or {}) do o1[k], o2[k] = v, v end
  local cfg, err1, data = config.load(o1)
  local control, err2 = rds.settings(o2)
  return cfg and data or nil, err1, control, err2
end

before_each(function() home = servers.tmpdir() end)
after_each(function() servers.rmtree(home) end)

describe("alex.aws.settings", function()
  it("resolves region, attempts and retry mode by the same rules for both services", function()
    aws_config("[default]\nregion = us-east-1\nmax_attempts = 6\n")
    local data, _, control = both()
    for _, s in ipairs { data, control } do
      assert.are.same({ "us-east-1", "config-file", "region in " .. home .. "/.aws/config [default]" },
        { s.region, s.source.region, s.source_detail.region })
      assert.are.same({ 6, "max_attempts in " .. home .. "/.aws/config [default]" },
        { s.max_attempts, s.source_detail.max_attempts })
      assert.are.equal("standard", s.retry_mode)
    end
    assert.are.equal("https://rds-data.us-east-1.amazonaws.com", data.endpoint)
    assert.are.equal("https://rds.us-east-1.amazonaws.com", control.endpoint)
  end)

  it("refuses a bad AWS_MAX_ATTEMPTS with one message for both services", function()
    local _, err1, _, err2 = both { AWS_MAX_ATTEMPTS = "0" }
    assert.are.equal('AWS_MAX_ATTEMPTS must be a whole number from 1 to 100 (the default is 3), got "0"', err1)
    assert.are.equal(err1, err2)
  end)

  it("refuses a region that differs from the cluster ARN's with one message for both services", function()
    local _, err1, _, err2 = both { AWS_REGION = "eu-west-1" }
    contains(err1, "AWS_REGION is eu-west-1 but AURORA_CLUSTER_ARN is in us-east-1")
    assert.are.equal(err1:gsub("AWS_ENDPOINT_URL_RDS_DATA", "AWS_ENDPOINT_URL_RDS"), err2)
  end)

  it("does not read DEFAULT_AWS_REGION, for either service: no AWS SDK does", function()
    local data, _, control = both { DEFAULT_AWS_REGION = "eu-west-1" }
    assert.are.same({ "us-east-1", "cluster-arn" }, { data.region, data.source.region })
    assert.are.same({ "us-east-1", "cluster-arn" }, { control.region, control.source.region })
  end)

  it("takes each service's endpoint from its own variable and services key, the rest from the shared ones", function()
    aws_config("[default]\nservices = local\n[services local]\nrds_data =\n  endpoint_url = http://127.0.0.1:3\n"
      .. "rds =\n  endpoint_url = http://127.0.0.1:4\n")
    local data, _, control = both()
    assert.are.same({ "http://127.0.0.1:3", "http://127.0.0.1:4" }, { data.endpoint, control.endpoint })
    contains(data.source_detail.endpoint, "endpoint_url under rds_data in [services local]")
    contains(control.source_detail.endpoint, "endpoint_url under rds in [services local]")
    data, _, control = both { AWS_ENDPOINT_URL_RDS = "http://127.0.0.1:5", AWS_ENDPOINT_URL = "http://127.0.0.1:6" }
    assert.are.same({ "http://127.0.0.1:6", "http://127.0.0.1:5" }, { data.endpoint, control.endpoint })
    data, _, control = both { AWS_ENDPOINT_URL = "http://127.0.0.1:6", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS = "true" }
    assert.are.same({ "https://rds-data.us-east-1.amazonaws.com", "https://rds.us-east-1.amazonaws.com" },
      { data.endpoint, control.endpoint })
  end)

  describe("retry mode", function()
    it("is standard by default", function()
      local s = assert(aws.settings("rds-data", { env = env { AWS_REGION = "us-east-1" } }))
      assert.are.same({ "standard", "default" }, { s.retry_mode, s.source.retry_mode })
      assert.are.same({}, s.notes)
    end)
    it("accepts legacy and adaptive from AWS_RETRY_MODE or the profile, runs standard and says so", function()
      local s = assert(aws.settings("rds-data", { env = env { AWS_REGION = "us-east-1", AWS_RETRY_MODE = "Legacy" } }))
      assert.are.same({ "standard", "AWS_RETRY_MODE" }, { s.retry_mode, s.source_detail.retry_mode })
      assert.are.same({ "AWS_RETRY_MODE is legacy: alexlua retries in the standard mode (full-jitter backoff,"
        .. " max_attempts 3)" }, s.notes)
      aws_config("[default]\nretry_mode = adaptive\n")
      s = assert(aws.settings("rds", { env = env { AWS_REGION = "us-east-1" } }))
      assert.are.equal("standard", s.retry_mode)
      contains(s.notes[1], "retry_mode in " .. home .. "/.aws/config [default] is adaptive")
    end)
    it("refuses any other value, naming where it came from", function()
      local s, err = aws.settings("rds-data", { env = env { AWS_REGION = "us-east-1", AWS_RETRY_MODE = "fast" } })
      assert.is_nil(s)
      assert.are.equal('AWS_RETRY_MODE "fast" is not a retry mode: use standard (legacy and adaptive are accepted,'
        .. ' and run as standard)', err)
      local _, err1, _, err2 = both { AWS_RETRY_MODE = "fast" }
      assert.are.equal(err, err1)
      assert.are.equal(err, err2)
    end)
  end)

  it("refuses a negative or non-numeric ALEX_RETRY_BASE, as an option or from the environment", function()
    for _, bad in ipairs { "-1", "soon", "inf" } do
      local _, err = aws.settings("rds-data", { env = env { AWS_REGION = "us-east-1", ALEX_RETRY_BASE = bad } })
      assert.are.equal(("ALEX_RETRY_BASE must be a non-negative number of seconds (the default is 1), got %q")
        :format(bad), err)
    end
    local _, err = aws.settings("rds-data", { env = env { AWS_REGION = "us-east-1" }, retry_base = -0.5 })
    contains(err, 'option retry_base must be a non-negative number of seconds (the default is 1), got "-0.5"')
    assert.are.equal(0.25, assert(aws.settings("rds-data", { env = env { AWS_REGION = "us-east-1",
      ALEX_RETRY_BASE = "0.25" } })).retry_base)
  end)

  it("asks for a region when neither the settings nor an ARN give one", function()
    local s, err = rds.settings { env = env {}, cluster = "alex-aurora-cluster" }
    assert.is_nil(s)
    assert.are.equal("no region: set AWS_REGION in .env, or give the cluster as an ARN (AURORA_CLUSTER_ARN)", err)
  end)
end)

describe("the shared files", function()
  -- Counts ini.read per path while fn runs.
  local function reads(fn)
    local real, n = ini.read, {}
    ini.read = function(path)
      n[path] = (n[path] or 0) + 1
      return real(path)
    end
    local ok, err = pcall(fn)
    ini.read = real
    assert(ok, err)
    return n
  end

  it("are read once for a connection's settings and its credentials", function()
    aws_config("[profile dev]\nregion = us-east-1\naws_access_key_id = AKIDCONFIG\n"
      .. "aws_secret_access_key = configSecretKey\n")
    local creds
    local n = reads(function()
      local cfg, err, settings = config.load { env = env { AURORA_CLUSTER_ARN = CLUSTER, AURORA_SECRET_ARN = SECRET,
        AWS_PROFILE = "dev" } }
      assert(cfg, err)
      creds = assert(credentials.chain { env = settings.env, files = settings.files }:get())
    end)
    assert.are.same({ "AKIDCONFIG", "config-file" }, { creds.access_key, creds.source })
    assert.are.equal(1, n[home .. "/.aws/config"])
    assert.are.equal(1, n[home .. "/.aws/credentials"]) -- read by the chain, which looks there first
  end)

  it("decide the profile of the credentials chain they are given", function()
    aws_config("[profile a]\naws_access_key_id = AKIDA\naws_secret_access_key = aSecretKey\n"
      .. "[profile b]\naws_access_key_id = AKIDB\naws_secret_access_key = bSecretKey\n")
    local files = ini.files { getenv = function(k) if k == "HOME" then return home end end, profile = "b" }
    local c = assert(credentials.chain { env = env {}, files = files }:get())
    assert.are.equal("AKIDB", c.access_key)
  end)
end)
