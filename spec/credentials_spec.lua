-- luacheck: std +busted
-- alex.credentials: the AWS default chain.  Files live in a temporary HOME per
-- test; the environment is an `env` function (and, once, a real child
-- process); the container endpoint and IMDSv2 are a real HTTP server on
-- 127.0.0.1 (spec/support/fake_metadata_server.py) started and stopped here.
local credentials = require "alex.credentials"
local clock = require "alex.clock"
local cjson = require "cjson"

local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local SERVER_SCRIPT = HERE .. "/support/fake_metadata_server.py"
local ALEXLUA = os.getenv("ALEXLUA") or arg[-1]

-- Every secret and token in these specs carries one of these markers, so a
-- message can be checked for leaks.
local MARKERS = { "S3CR3T", "T0K3N" }

local function no_secret(s)
  s = tostring(s)
  for _, m in ipairs(MARKERS) do
    assert(not s:find(m, 1, true), ("leaked a secret (%s) in: %s"):format(m, s))
  end
  return s
end

local function run(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok, code
end

local servers = require "servers"
local contains = servers.contains
local write = servers.write_file
local function read(path) return servers.read_file(path) or "" end

local home -- a fresh temporary HOME per test

-- An env function over t, in the temporary HOME, with no stray IMDS calls.
local function env(t)
  return servers.env(t, { HOME = home, AWS_EC2_METADATA_DISABLED = "true" })
end

local function aws_file(name, text)
  run("mkdir -p '" .. home .. "/.aws'")
  write(home .. "/.aws/" .. name, text)
end

local function get_ok(provider)
  return (assert(provider:get()))
end

local function get_err(provider)
  local c, err = provider:get()
  assert.is_nil(c)
  assert.is_string(err)
  return no_secret(err)
end

local KEYS_INI = "aws_access_key_id = %s\naws_secret_access_key = %s\n"

-- A credential_process script: prints a counter-numbered key and an expiration
-- of base + 1000 * counter; fails (exit 3, message on stderr) while <dir>/fail exists.
local function process_script(dir, base, extra)
  local path = dir .. "/creds.sh"
  write(path, ([[#!/bin/sh
if [ -e '%s/fail' ]; then echo "creds.sh: cannot reach the vault" >&2; exit 3; fi
n=$(cat '%s/count' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '%s/count'
exp=$(date -u -d @$((%d + n * 1000)) +%%Y-%%m-%%dT%%H:%%M:%%SZ)
printf '{"Version": 1, "AccessKeyId": "AKIDPROCESS%%04d", "SecretAccessKey": "procS3CR3T%%d",
 "SessionToken": "procT0K3N", "Expiration": "%%s"%s}\n' $n $n "$exp"
]]):format(dir, dir, dir, base, extra or ""))
  run("chmod +x '" .. path .. "'")
  return path
end

local function count(dir)
  return tonumber((read(dir .. "/count"):gsub("%s", ""))) or 0
end

before_each(function() home = servers.tmpdir() end)
after_each(function() servers.rmtree(home) end)

describe("credentials.parse_iso8601", function()
  it("reads UTC, fractions and offsets without local-time pitfalls", function()
    local p = credentials.parse_iso8601
    assert.are.equal(1795341600, p("2026-11-22T10:00:00Z"))
    assert.are.equal(1795341600, p("2026-11-22T10:00:00.999Z"))
    assert.are.equal(1795341600, p("2026-11-22T10:00:00.123456+00:00"))
    assert.are.equal(1795341600, p("2026-11-22T11:00:00+01:00"))
    assert.are.equal(1795341600, p("2026-11-22T05:00:00-0500"))
    assert.are.equal(1795341600, p("2026-11-22T12:00:00+02"))
    assert.are.equal(1795341600, p("2026-11-22 10:00:00z"))
    assert.are.equal(1709251199, p("2024-02-29T23:59:59Z"))
    assert.are.equal(951868800, p("2000-03-01T00:00:00Z"))
    assert.are.equal(0, p("1970-01-01T00:00:00Z"))
    assert.are.equal("2026-11-22T10:00:00Z", credentials.format_iso8601(1795341600))
  end)
  it("refuses malformed times and times without a zone", function()
    for _, bad in ipairs { "2026-11-22T10:00:00", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
        "2026-11-22T24:00:00Z", "2026-11-22", "tomorrow", "2026-11-22T10:00:00+25:00", "2026-11-22T10:00:00Zjunk" } do
      local v, why = credentials.parse_iso8601(bad)
      assert.is_nil(v, bad)
      assert.is_string(why)
    end
    assert.is_nil(credentials.parse_iso8601(42))
  end)
end)

describe("credentials values", function()
  it("tostring shows the masked key id and the source only", function()
    local p = credentials.chain { env = env { AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE",
      AWS_SECRET_ACCESS_KEY = "wJalrS3CR3TEXAMPLEKEY", AWS_SESSION_TOKEN = "FwoGT0K3N" } }
    local c = get_ok(p)
    local s = no_secret(tostring(c))
    assert.are.equal("AWS credentials AKIA************MPLE from environment", s)
    assert.is_nil(s:find("AKIAIOSFODNN7EXAMPLE", 1, true))
    assert.are.equal("****", credentials.mask("SHORT"))
    assert.is_true(credentials.is_credentials(c))
  end)
  it("credentials.static returns its keys from get()", function()
    local p = credentials.static { access_key = "AKIDLOCAL0000000", secret_key = "localS3CR3T" }
    local c = get_ok(p)
    assert.are.equal("static", c.source)
    assert.are.equal("localS3CR3T", c.secret_key)
    no_secret(tostring(c))
  end)
end)

describe("environment credentials", function()
  it("are read with the session token and an optional expiration", function()
    local c = get_ok(credentials.chain { env = env { AWS_ACCESS_KEY_ID = "AKIDENV", AWS_SECRET_ACCESS_KEY = "envS3CR3T",
      AWS_SESSION_TOKEN = "envT0K3N", AWS_CREDENTIAL_EXPIRATION = "2099-01-01T00:00:00Z" } })
    assert.are.same({ "AKIDENV", "envS3CR3T", "envT0K3N", 4070908800, "environment" },
      { c.access_key, c.secret_key, c.session_token, c.expiration, c.source })
    c = get_ok(credentials.chain { env = env { AWS_ACCESS_KEY_ID = "AKIDENV", AWS_SECRET_ACCESS_KEY = "envS3CR3T",
      AWS_SECURITY_TOKEN = "legacyT0K3N" } })
    assert.are.equal("legacyT0K3N", c.session_token)
    assert.is_nil(c.expiration)
  end)
  it("win over the files", function()
    aws_file("credentials", "[default]\n" .. KEYS_INI:format("AKIDFILE", "fileS3CR3T"))
    local c = get_ok(credentials.chain { env = env { AWS_ACCESS_KEY_ID = "AKIDENV",
      AWS_SECRET_ACCESS_KEY = "envS3CR3T" } })
    assert.are.equal("environment", c.source)
  end)
  it("a secret without the key id, or the reverse, is an error naming both", function()
    local err = get_err(credentials.chain { env = env { AWS_SECRET_ACCESS_KEY = "envS3CR3T" } })
    contains(err, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
    contains(err, "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    err = get_err(credentials.chain { env = env { AWS_ACCESS_KEY_ID = "AKIDENV" } })
    contains(err, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
  end)
  it("expired or malformed AWS_CREDENTIAL_EXPIRATION is an error", function()
    local e = { AWS_ACCESS_KEY_ID = "AKIDENV", AWS_SECRET_ACCESS_KEY = "envS3CR3T",
      AWS_CREDENTIAL_EXPIRATION = "2020-01-01T00:00:00Z" }
    contains(get_err(credentials.chain { env = env(e) }),
      "the credentials from environment expired at 2020-01-01T00:00:00Z")
    e.AWS_CREDENTIAL_EXPIRATION = "soon"
    contains(get_err(credentials.chain { env = env(e) }), "AWS_CREDENTIAL_EXPIRATION \"soon\" is not an ISO 8601")
  end)
  it("come from the real process environment by default (child process)", function()
    local script = home .. "/child.lua"
    write(script, [[
      local c, err = require("alex.credentials").chain():get()
      io.write(c and (c.source .. " " .. c.access_key) or ("ERR " .. err))
    ]])
    local out = run(("env -i HOME='%s' PATH=/usr/bin:/bin ALEX_LUA_PATH='%s' AWS_EC2_METADATA_DISABLED=true"
      .. " AWS_ACCESS_KEY_ID=AKIDCHILD AWS_SECRET_ACCESS_KEY=childS3CR3T '%s' --no-env-file '%s'")
      :format(home, os.getenv("ALEX_LUA_PATH") or "", ALEXLUA, script))
    assert.are.equal("environment AKIDCHILD", out)
    out = run(("env -i HOME='%s' PATH=/usr/bin:/bin ALEX_LUA_PATH='%s' AWS_EC2_METADATA_DISABLED=true"
      .. " AWS_SECRET_ACCESS_KEY=childS3CR3T '%s' --no-env-file '%s'")
      :format(home, os.getenv("ALEX_LUA_PATH") or "", ALEXLUA, script))
    contains(no_secret(out), "ERR AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
  end)
end)

describe("shared files", function()
  it("read [default] from ~/.aws/credentials", function()
    aws_file("credentials", "[default]\n" .. KEYS_INI:format("AKIDFILE", "fileS3CR3T")
      .. "aws_session_token = fileT0K3N\n")
    local c = get_ok(credentials.chain { env = env() })
    assert.are.same({ "AKIDFILE", "fileS3CR3T", "fileT0K3N", "shared-credentials-file" },
      { c.access_key, c.secret_key, c.session_token, c.source })
  end)
  it("select the profile: option > AWS_PROFILE > AWS_DEFAULT_PROFILE > default", function()
    aws_file("credentials", "[default]\n" .. KEYS_INI:format("AKIDDEF", "defS3CR3T")
      .. "[a]\n" .. KEYS_INI:format("AKIDA", "aS3CR3T") .. "[b]\n" .. KEYS_INI:format("AKIDB", "bS3CR3T")
      .. "[c]\n" .. KEYS_INI:format("AKIDC", "cS3CR3T"))
    local e = { AWS_PROFILE = "b", AWS_DEFAULT_PROFILE = "c" }
    assert.are.equal("AKIDA", get_ok(credentials.chain { env = env(e), profile = "a" }).access_key)
    assert.are.equal("AKIDB", get_ok(credentials.chain { env = env(e) }).access_key)
    e.AWS_PROFILE = nil
    assert.are.equal("AKIDC", get_ok(credentials.chain { env = env(e) }).access_key)
    assert.are.equal("AKIDDEF", get_ok(credentials.chain { env = env() }).access_key)
  end)
  it("use [profile x] in the config file and [x] in the credentials file", function()
    aws_file("config", "[profile dev]\n" .. KEYS_INI:format("AKIDCONF", "confS3CR3T")
      .. "[ops]\n" .. KEYS_INI:format("AKIDWRONG", "wrongS3CR3T")
      .. "[profile ops]\nregion = us-east-1\n")
    aws_file("credentials", "[profile ops]\n" .. KEYS_INI:format("AKIDWRONG", "wrongS3CR3T"))
    local c = get_ok(credentials.chain { env = env { AWS_PROFILE = "dev" } })
    assert.are.same({ "AKIDCONF", "config-file" }, { c.access_key, c.source })
    -- [ops] in config and [profile ops] in credentials are not profile "ops"
    local err = get_err(credentials.chain { env = env { AWS_PROFILE = "ops" } })
    contains(err, "no AWS credentials found")
    contains(err, "no [ops] section")
    contains(err, "config file " .. home .. "/.aws/config [profile ops]: no aws_access_key_id")
  end)
  it("prefer the credentials file over the config file for the same profile", function()
    aws_file("config", "[default]\n" .. KEYS_INI:format("AKIDCONF", "confS3CR3T"))
    aws_file("credentials", "[default]\n" .. KEYS_INI:format("AKIDCRED", "credS3CR3T"))
    assert.are.equal("AKIDCRED", get_ok(credentials.chain { env = env() }).access_key)
    aws_file("credentials", "[default]\nregion = us-east-1\n")
    local c = get_ok(credentials.chain { env = env() })
    assert.are.same({ "AKIDCONF", "config-file" }, { c.access_key, c.source })
  end)
  it("follow AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE, ~ expanded", function()
    write(home .. "/my-creds", "[default]\n" .. KEYS_INI:format("AKIDELSEWHERE", "elseS3CR3T"))
    write(home .. "/my-config", "[profile p]\n" .. KEYS_INI:format("AKIDCONFELSE", "elseS3CR3T"))
    aws_file("credentials", "[default]\n" .. KEYS_INI:format("AKIDNOTME", "notS3CR3T"))
    assert.are.equal("AKIDELSEWHERE",
      get_ok(credentials.chain { env = env { AWS_SHARED_CREDENTIALS_FILE = "~/my-creds" } }).access_key)
    assert.are.equal("AKIDCONFELSE", get_ok(credentials.chain { env = env {
      AWS_CONFIG_FILE = home .. "/my-config", AWS_PROFILE = "p" } }).access_key)
  end)
  it("a profile with half a key pair is an error naming the file and key", function()
    aws_file("credentials", "[default]\naws_secret_access_key = halfS3CR3T\n")
    local err = get_err(credentials.chain { env = env() })
    contains(err, home .. "/.aws/credentials [default] has aws_secret_access_key but not aws_access_key_id")
  end)
  it("a profile named explicitly that neither file has is an error", function()
    aws_file("credentials", "[default]\n" .. KEYS_INI:format("AKIDDEF", "defS3CR3T"))
    local err = get_err(credentials.chain { env = env { AWS_PROFILE = "nope" } })
    contains(err, "profile \"nope\" (from AWS_PROFILE) is in neither " .. home .. "/.aws/credentials nor "
      .. home .. "/.aws/config")
    contains(err, "aws configure --profile nope")
  end)
  it("a file that does not parse is an error with file and line, not the line's text", function()
    aws_file("credentials", "[default]\naws_access_key_id = AKIDX\nwJalrS3CR3T-pasted-alone\n")
    local err = get_err(credentials.chain { env = env() })
    contains(err, home .. "/.aws/credentials:3: expected `name = value`")
  end)
end)

describe("credential_process", function()
  local dir
  before_each(function() dir = home end)

  -- The chain over process_script(dir, base) (`redirect` after the command),
  -- with `opts`, at a time the case moves with at(t); it starts at base.
  local function clocked_chain(base, opts, redirect)
    aws_file("config", "[default]\ncredential_process = " .. process_script(dir, base) .. (redirect or "") .. "\n")
    local t = base
    local o = { env = env(), now = function() return t end }
    for k, v in pairs(opts or {}) do o[k] = v end
    return credentials.chain(o), function(v) t = v end
  end

  it("runs the command and reads its JSON", function()
    local script = process_script(dir, 2000000000)
    aws_file("config", "[default]\ncredential_process = " .. script .. " --flag\n")
    local c = get_ok(credentials.chain { env = env(), now = function() return 1000 end })
    assert.are.same({ "AKIDPROCESS0001", "procS3CR3T1", "procT0K3N", 2000001000, "credential_process" },
      { c.access_key, c.secret_key, c.session_token, c.expiration, c.source })
    assert.are.equal(1, count(dir))
  end)
  it("comes after static keys in either file, and the credentials file's setting wins", function()
    local script = process_script(dir, 2000000000)
    aws_file("config", "[default]\n" .. KEYS_INI:format("AKIDCONF", "confS3CR3T"))
    aws_file("credentials", "[default]\ncredential_process = " .. script .. "\n")
    assert.are.equal("config-file", get_ok(credentials.chain { env = env() }).source)
    assert.are.equal(0, count(dir))
    aws_file("config", "[default]\ncredential_process = /bin/false\n")
    assert.are.equal("credential_process", get_ok(credentials.chain { env = env() }).source)
  end)
  it("a failing command is an error naming the program, its stderr passes through", function()
    local script = process_script(dir, 2000000000)
    write(dir .. "/fail", "")
    aws_file("config", "[default]\ncredential_process = " .. script .. " --secret-arg argS3CR3T 2>/dev/null\n")
    local err = get_err(credentials.chain { env = env() })
    contains(err, ("credential_process %q (%s/.aws/config [default]) failed with exit status 3"):format(script, home))
    aws_file("config", "[default]\ncredential_process = " .. script .. " --secret-arg argS3CR3T\n")
    -- in a child process, to see its stderr
    local child = home .. "/child.lua"
    write(child, ([[
      local p = require("alex.credentials").chain { env = function(n)
        if n == "HOME" then return %q elseif n == "AWS_EC2_METADATA_DISABLED" then return "true" end end }
      local c, err = p:get()
      io.write(tostring(err))
    ]]):format(home))
    local out = run(("'%s' --no-env-file '%s' 2>'%s/stderr'"):format(ALEXLUA, child, home))
    contains(no_secret(out), "failed with exit status 3")
    contains(read(home .. "/stderr"), "creds.sh: cannot reach the vault")
  end)
  it("a missing program is reported as such", function()
    aws_file("config", "[default]\ncredential_process = /nonexistent/get-creds --x 2>/dev/null\n")
    local err = get_err(credentials.chain { env = env() })
    contains(err, "credential_process \"/nonexistent/get-creds\"")
    contains(err, "exit status 127")
  end)
  it("bad output is an error that does not echo the output", function()
    local cases = {
      ['{"Version": 1, "AccessKeyId": "AKIDX", "SecretAccessKey": "badS3CR3T"'] = "bytes that are not valid JSON",
      ['oops badS3CR3T'] = "bytes that are not valid JSON",
      [''] = "printed nothing on standard output",
      ['[1, 2]'] = "printed JSON that is not an object",
      ['{"Version": 2, "AccessKeyId": "AKIDX", "SecretAccessKey": "badS3CR3T"}'] = "printed Version 2",
      ['{"AccessKeyId": "AKIDX", "SecretAccessKey": "badS3CR3T"}'] = "printed Version (missing)",
      ['{"Version": 1, "SecretAccessKey": "badS3CR3T"}'] = "output has no AccessKeyId",
      ['{"Version": 1, "AccessKeyId": "AKIDX"}'] = "output has no SecretAccessKey",
      ['{"Version": 1, "AccessKeyId": "AKIDX", "SecretAccessKey": "badS3CR3T", "Expiration": "next week"}'] =
        "Expiration \"next week\" is not an ISO 8601",
      ['{"Version": 1, "AccessKeyId": "AKIDX", "SecretAccessKey": "badS3CR3T", "SessionToken": 5}'] =
        "SessionToken is not a string",
      ['{"Version": 1, "AccessKeyId": "AKIDX", "SecretAccessKey": "badS3CR3T", "Expiration": "2001-01-01T00:00:00Z"}']
        = "the credentials from credential_process expired at 2001-01-01T00:00:00Z",
    }
    for output, why in pairs(cases) do
      write(dir .. "/out.json", output)
      aws_file("config", "[default]\ncredential_process = cat " .. dir .. "/out.json\n")
      local err = get_err(credentials.chain { env = env() })
      contains(err, why)
    end
  end)
  it("is cached, refreshed inside the refresh window and after expiry, and on invalidate", function()
    local base = 100000
    local p, at = clocked_chain(base)
    local c = get_ok(p)                                   -- run 1, expires base + 1000
    assert.are.equal("AKIDPROCESS0001", c.access_key)
    at(base + 600)                                        -- 400 s left: cached
    assert.are.equal(c, get_ok(p))
    assert.are.equal(1, count(dir))
    at(base + 701)                                        -- 299 s left: inside the 300 s window
    c = get_ok(p)
    assert.are.same({ "AKIDPROCESS0002", base + 2000, 2 }, { c.access_key, c.expiration, count(dir) })
    at(base + 702)
    assert.are.equal(c, get_ok(p))
    at(base + 2500)                                       -- expired: must refresh
    assert.are.equal("AKIDPROCESS0003", get_ok(p).access_key)
    p:invalidate()
    assert.are.equal("AKIDPROCESS0004", get_ok(p).access_key)
    assert.are.equal(4, count(dir))
  end)
  it("honours a custom refresh window", function()
    local base = 100000
    local p, at = clocked_chain(base, { refresh_window = 10 })
    get_ok(p)
    at(base + 989)
    assert.are.equal("AKIDPROCESS0001", get_ok(p).access_key)
    at(base + 991)
    assert.are.equal("AKIDPROCESS0002", get_ok(p).access_key)
  end)
  it("keeps still-valid credentials when a refresh fails, and errors once they expire", function()
    local base = 100000
    local p, at = clocked_chain(base, nil, " 2>/dev/null")
    local c = get_ok(p)
    write(dir .. "/fail", "")
    at(base + 800)
    assert.are.equal(c, get_ok(p)) -- refresh failed, 200 s of validity left
    at(base + 1001)
    contains(get_err(p), "failed with exit status 3")
    os.remove(dir .. "/fail")
    assert.are.equal("AKIDPROCESS0002", get_ok(p).access_key)
  end)
end)

describe("over HTTP", function()
  local server = {}

  local function set_state(t)
    write(server.state, cjson.encode(t))
  end

  local function requests()
    local list = {}
    for line in read(server.log):gmatch("[^\n]+") do list[#list + 1] = cjson.decode(line) end
    return list
  end

  lazy_setup(function()
    server.dir = servers.tmpdir()
    server.state = server.dir .. "/state.json"
    server.log = server.dir .. "/requests.log"
    write(server.state, "{}")
    server.handle = assert(io.popen(("exec %s %s --state %s --log %s"):format(servers.PYTHON, SERVER_SCRIPT,
      server.state, server.log), "r"))
    local line = server.handle:read("l")
    local port, pid = (line or ""):match("^(%d+) (%d+)$")
    assert(port, "the metadata server did not start")
    server.port, server.pid = tonumber(port), tonumber(pid)
    server.url = "http://127.0.0.1:" .. port
  end)

  lazy_teardown(function()
    if server.pid then os.execute("kill " .. server.pid) end
    if server.handle then server.handle:close() end
    if server.dir then servers.rmtree(server.dir) end
  end)

  before_each(function()
    write(server.log, "")
    set_state {}
  end)

  local CONTAINER_CREDS = { AccessKeyId = "AKIDCONTAINER", SecretAccessKey = "contS3CR3T", Token = "contT0K3N",
    Expiration = "2099-01-01T00:00:00Z", RoleArn = "arn:aws:iam::123456789012:role/task" }
  local IMDS_CREDS = { Code = "Success", LastUpdated = "2026-01-01T00:00:00Z", Type = "AWS-HMAC",
    AccessKeyId = "AKIDIMDS", SecretAccessKey = "imdsS3CR3T", Token = "imdsT0K3N",
    Expiration = "2099-01-01T00:00:00.000Z" }

  describe("container credentials", function()
    it("use the relative URI with the base host, and the token from the environment", function()
      set_state { container = { path = "/v2/credentials/0b9f-guid", token = "Bearer authT0K3N",
        creds = CONTAINER_CREDS } }
      local c = get_ok(credentials.chain { container_base = server.url, env = env {
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/0b9f-guid",
        AWS_CONTAINER_AUTHORIZATION_TOKEN = "Bearer authT0K3N" } })
      assert.are.same({ "AKIDCONTAINER", "contS3CR3T", "contT0K3N", 4070908800, "container" },
        { c.access_key, c.secret_key, c.session_token, c.expiration, c.source })
      local r = requests()
      assert.are.equal(1, #r)
      assert.are.same({ "GET", "/v2/credentials/0b9f-guid", "Bearer authT0K3N" },
        { r[1].method, r[1].path, r[1].headers.authorization })
    end)
    it("use the full URI with the token file, which wins over the variable", function()
      set_state { container = { path = "/creds", token = "fileT0K3N", creds = CONTAINER_CREDS } }
      write(home .. "/token", "fileT0K3N\n")
      local c = get_ok(credentials.chain { env = env {
        AWS_CONTAINER_CREDENTIALS_FULL_URI = server.url .. "/creds",
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = home .. "/token",
        AWS_CONTAINER_AUTHORIZATION_TOKEN = "envT0K3N" } })
      assert.are.equal("container", c.source)
      assert.are.equal("fileT0K3N", requests()[1].headers.authorization)
    end)
    it("prefer the relative URI over the full URI", function()
      set_state { container = { path = "/rel", creds = CONTAINER_CREDS } }
      get_ok(credentials.chain { container_base = server.url, env = env {
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "rel", AWS_CONTAINER_CREDENTIALS_FULL_URI = server.url .. "/full" } })
      assert.are.equal("/rel", requests()[1].path)
    end)
    it("a refused token is an error without the token or the relative path", function()
      set_state { container = { path = "/v2/credentials/0b9f-guid", token = "rightT0K3N", creds = CONTAINER_CREDS } }
      local err = get_err(credentials.chain { container_base = server.url, env = env {
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/credentials/0b9f-guid",
        AWS_CONTAINER_AUTHORIZATION_TOKEN = "wrongT0K3N" } })
      contains(err, ("container credentials endpoint %s (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) answered HTTP"
        .. " 401; the authorization token was refused"):format(server.url))
      assert.is_nil(err:find("0b9f", 1, true))
      err = get_err(credentials.chain { env = env { AWS_CONTAINER_CREDENTIALS_FULL_URI = server.url
        .. "/v2/credentials/0b9f-guid" } })
      contains(err, "answered HTTP 401; no AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) is set")
    end)
    it("server errors and bad bodies are errors", function()
      set_state { container = { status = 500 } }
      local e = env { AWS_CONTAINER_CREDENTIALS_FULL_URI = server.url .. "/creds" }
      contains(get_err(credentials.chain { env = e }), "answered HTTP 500")
      assert.are.equal(2, #requests()) -- one retry
      set_state { container = { raw = "not json contS3CR3T" } }
      contains(get_err(credentials.chain { env = e }), "answered with a body that is not JSON")
      set_state { container = { creds = { AccessKeyId = "AKIDX" } } }
      contains(get_err(credentials.chain { env = e }), "answer has no SecretAccessKey")
    end)
    it("refuse a full URI over plain http to a non-loopback host", function()
      for _, url in ipairs { "http://10.0.0.1/creds", "http://169.254.170.99/creds", "http://example.com/creds",
          "ftp://127.0.0.1/creds" } do
        local err = get_err(credentials.chain { env = env { AWS_CONTAINER_CREDENTIALS_FULL_URI = url } })
        contains(err, "AWS_CONTAINER_CREDENTIALS_FULL_URI must be an https:// URL or an http:// URL to a loopback")
      end
      assert.are.equal(0, #requests())
      -- https may go anywhere: this one is tried (and fails to connect), not refused
      local https = "https://127.0.0.1:" .. servers.free_port() .. "/creds"
      local err = get_err(credentials.chain { env = env { AWS_CONTAINER_CREDENTIALS_FULL_URI = https } })
      contains(err, "container credentials endpoint " .. https:gsub("/creds$", "")
        .. " (AWS_CONTAINER_CREDENTIALS_FULL_URI): ")
      assert.is_nil(err:find("must be an https", 1, true))
    end)
    it("a token with a line break, or an unreadable token file, is an error", function()
      local e = { AWS_CONTAINER_CREDENTIALS_FULL_URI = server.url .. "/creds",
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = home .. "/missing-token" }
      contains(get_err(credentials.chain { env = env(e) }), "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
      write(home .. "/token", "lineT0K3N\nsecondT0K3N\n")
      e.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = home .. "/token"
      contains(get_err(credentials.chain { env = env(e) }), "holds more than one line")
      assert.are.equal(0, #requests())
    end)
  end)

  describe("EC2 instance metadata (IMDSv2)", function()
    local function imds_env(t)
      t = t or {}
      t.AWS_EC2_METADATA_DISABLED = t.AWS_EC2_METADATA_DISABLED or "false"
      return env(t)
    end

    it("get a token with PUT, then the role and its credentials with the token", function()
      set_state { imds = { role = "alex-role", creds = IMDS_CREDS } }
      local c = get_ok(credentials.chain { env = imds_env(), imds_endpoint = server.url })
      assert.are.same({ "AKIDIMDS", "imdsS3CR3T", "imdsT0K3N", 4070908800, "imds" },
        { c.access_key, c.secret_key, c.session_token, c.expiration, c.source })
      local r = requests()
      assert.are.equal(3, #r)
      assert.are.same({ "PUT", "/latest/api/token", "21600", 200 },
        { r[1].method, r[1].path, r[1].headers["x-aws-ec2-metadata-token-ttl-seconds"], r[1].status })
      assert.are.same({ "GET", "/latest/meta-data/iam/security-credentials/", 200 },
        { r[2].method, r[2].path, r[2].status })
      assert.are.same({ "GET", "/latest/meta-data/iam/security-credentials/alex-role", 200 },
        { r[3].method, r[3].path, r[3].status })
      assert.is_string(r[2].headers["x-aws-ec2-metadata-token"])
      assert.are.equal(32, #r[2].headers["x-aws-ec2-metadata-token"])
      assert.are.equal(r[2].headers["x-aws-ec2-metadata-token"], r[3].headers["x-aws-ec2-metadata-token"])
      -- the server does require both headers, as EC2 does
      local http = require("alex.http").new { connect_timeout = 1, timeout = 2 }
      assert.are.equal(400, http:request { method = "PUT", url = server.url .. "/latest/api/token" }.status)
      assert.are.equal(401, http:request { method = "GET",
        url = server.url .. "/latest/meta-data/iam/security-credentials/" }.status)
      http:close()
    end)
    it("use AWS_EC2_METADATA_SERVICE_ENDPOINT", function()
      set_state { imds = { role = "alex-role", creds = IMDS_CREDS } }
      local c = get_ok(credentials.chain { env = imds_env { AWS_EC2_METADATA_SERVICE_ENDPOINT = server.url .. "/" } })
      assert.are.equal("imds", c.source)
    end)
    it("are not asked when AWS_EC2_METADATA_DISABLED=true", function()
      set_state { imds = { role = "alex-role", creds = IMDS_CREDS } }
      local err = get_err(credentials.chain { env = imds_env { AWS_EC2_METADATA_DISABLED = "True" },
        imds_endpoint = server.url })
      contains(err, "6. EC2 instance metadata: disabled by AWS_EC2_METADATA_DISABLED=true")
      assert.are.equal(0, #requests())
    end)
    it("fall back to IMDSv1 when the token PUT is refused, unless v1 is disabled", function()
      set_state { imds = { token_status = 403, require_token = false, role = "r", creds = IMDS_CREDS } }
      assert.are.equal("imds", get_ok(credentials.chain { env = imds_env(), imds_endpoint = server.url }).source)
      local r = requests()
      assert.are.equal(3, #r)
      assert.is_nil(r[2].headers["x-aws-ec2-metadata-token"])
      write(server.log, "")
      local err = get_err(credentials.chain { env = imds_env { AWS_EC2_METADATA_V1_DISABLED = "true" },
        imds_endpoint = server.url })
      contains(err, "the IMDSv2 token request got HTTP 403 and AWS_EC2_METADATA_V1_DISABLED=true forbids IMDSv1")
      assert.are.equal(1, #requests())
    end)
    it("report an instance without a role, and failed credential answers", function()
      set_state { imds = {} }
      contains(get_err(credentials.chain { env = imds_env(), imds_endpoint = server.url }),
        "no IAM role is attached to this instance")
      set_state { imds = { role = "r", creds = { Code = "Failure", Message = "x" } } }
      contains(get_err(credentials.chain { env = imds_env(), imds_endpoint = server.url }), "role r: Code Failure")
      set_state { imds = { role = "r", creds_status = 500 } }
      contains(get_err(credentials.chain { env = imds_env(), imds_endpoint = server.url }),
        "the credentials request for role r got HTTP 500")
    end)
    it("give up within about a second on a silent or closed endpoint", function()
      set_state { delay = 4, imds = { role = "r", creds = IMDS_CREDS } }
      local t0 = clock.monotonic()
      local err = get_err(credentials.chain { env = imds_env(), imds_endpoint = server.url })
      local elapsed = clock.monotonic() - t0
      contains(err, ("6. EC2 instance metadata (IMDS) at %s: not reachable"):format(server.url))
      assert(elapsed < 2.5, ("took %.2f s"):format(elapsed))
      set_state {}
      local closed = "http://127.0.0.1:" .. servers.free_port()
      t0 = clock.monotonic()
      err = get_err(credentials.chain { env = imds_env(), imds_endpoint = closed })
      contains(err, closed .. ": not reachable")
      assert(clock.monotonic() - t0 < 2.5)
    end)
  end)

  describe("the whole chain", function()
    it("takes env, then files, then process, then container, then IMDS", function()
      set_state { container = { path = "/creds", creds = CONTAINER_CREDS }, imds = { role = "r", creds = IMDS_CREDS } }
      local script = process_script(home, 2000000000)
      local e = { AWS_ACCESS_KEY_ID = "AKIDENV", AWS_SECRET_ACCESS_KEY = "envS3CR3T",
        AWS_CONTAINER_CREDENTIALS_FULL_URI = server.url .. "/creds", AWS_EC2_METADATA_DISABLED = "false" }
      aws_file("credentials", "[default]\n" .. KEYS_INI:format("AKIDCRED", "credS3CR3T"))
      aws_file("config", "[default]\n" .. KEYS_INI:format("AKIDCONF", "confS3CR3T")
        .. "credential_process = " .. script .. "\n")
      local function source()
        return get_ok(credentials.chain { env = env(e), imds_endpoint = server.url }).source
      end
      assert.are.equal("environment", source())
      e.AWS_ACCESS_KEY_ID, e.AWS_SECRET_ACCESS_KEY = nil, nil
      assert.are.equal("shared-credentials-file", source())
      aws_file("credentials", "[default]\n")
      assert.are.equal("config-file", source())
      aws_file("config", "[default]\ncredential_process = " .. script .. "\n")
      assert.are.equal("credential_process", source())
      aws_file("config", "[default]\n")
      assert.are.equal("container", source())
      e.AWS_CONTAINER_CREDENTIALS_FULL_URI = nil
      assert.are.equal(1, #requests()) -- only the container call so far
      assert.are.equal("imds", source())
    end)
    it("lists every source tried, in order, and how to fix it, when nothing is found", function()
      set_state { imds = {} }
      local err = get_err(credentials.chain { env = env { AWS_EC2_METADATA_DISABLED = "false" },
        imds_endpoint = server.url })
      local expected = {
        "no AWS credentials found; tried, in order:",
        "  1. environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
        "  2. shared credentials file " .. home .. "/.aws/credentials: not found",
        "  3. config file " .. home .. "/.aws/config: not found",
        "  4. credential_process: not set in profile \"default\"",
        "  5. container: neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set",
        "  6. EC2 instance metadata (IMDS) at " .. server.url .. ": no IAM role is attached to this instance",
      }
      local lines = {}
      for l in err:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.same(expected, { table.unpack(lines, 1, #expected) })
      contains(lines[#expected + 1], "run `aws configure`")
      contains(lines[#expected + 1], "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
      contains(lines[#expected + 1], ".env")
    end)
    it("points at export-credentials for a role or SSO profile", function()
      aws_file("config", "[profile sso]\nsso_session = corp\nsso_account_id = 123456789012\n")
      local err = get_err(credentials.chain { env = env { AWS_PROFILE = "sso" } })
      contains(err, "[profile sso]: no aws_access_key_id")
      contains(err, "Profile \"sso\" uses sso_session, which alexlua does not follow")
      contains(err, "aws configure export-credentials --profile sso --format process")
    end)
  end)
end)
