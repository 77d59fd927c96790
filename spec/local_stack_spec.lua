-- luacheck: std +busted
-- local/stack.sh: up / down / reset / status / env on a private state folder and
-- free ports (never the developer's .alex).  The `it`s run in order on one stack.
local stack = require "stack"
local servers = require "servers"
local read_file = servers.read_file

local function mode(path)
  local _, out = stack.run("stat -c %a '" .. path .. "'")
  return (out:gsub("%s+$", ""))
end

-- Is something listening on 127.0.0.1:port (or any address)?  From /proc, state 0A.
local function listening(port)
  for _, f in ipairs { "/proc/net/tcp", "/proc/net/tcp6" } do
    for line in (read_file(f) or ""):gmatch("[^\n]+") do
      local p, st = line:match("^%s*%d+: %x+:(%x%x%x%x) %x+:%x+ (%x%x)")
      if p and tonumber(p, 16) == port and st == "0A" then return true end
    end
  end
  return false
end

local alive, sorted_keys = servers.alive, servers.sorted_keys

describe("local/stack.sh", function()
  local s, secrets

  stack.shared({ faults = { seed = 7 }, tx_idle_timeout = 5 }, function(started)
    s = started
    secrets = stack.read_env(s.dir .. "/secrets.env")
  end)

  -- stack.sh status exits 3 (not everything runs), saying each of `says`.
  local function status_exits_3(says)
    local ok, out, code = s:script("status")
    assert.is_false(ok)
    assert.equal(3, code)
    for _, text in ipairs(says) do assert.matches(text, out, 1, true) end
  end

  it("up writes local.env with exactly the ten names, mode 600", function()
    local path = s.dir .. "/local.env"
    assert.equal("600", mode(path))
    assert.equal("600", mode(s.dir .. "/dataapi.env"))
    assert.equal("600", mode(s.dir .. "/secrets.env"))
    assert.same({ "ALEX_JOURNAL_DIR", "AURORA_CLUSTER_ARN", "AURORA_DATABASE", "AURORA_SECRET_ARN",
                  "AWS_ACCESS_KEY_ID", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_RDS", "AWS_ENDPOINT_URL_RDS_DATA",
                  "AWS_REGION", "AWS_SECRET_ACCESS_KEY" }, sorted_keys(s.env))
    assert.equal(s.dir .. "/journal", s.env.ALEX_JOURNAL_DIR)
    assert.equal("us-east-1", s.env.AWS_DEFAULT_REGION)
    assert.equal("http://127.0.0.1:" .. s.api_port, s.env.AWS_ENDPOINT_URL_RDS_DATA)
    assert.equal(s.env.AWS_ENDPOINT_URL_RDS_DATA, s.env.AWS_ENDPOINT_URL_RDS)
    assert.equal("arn:aws:rds:us-east-1:000000000000:cluster:alex-local", s.env.AURORA_CLUSTER_ARN)
    assert.matches("^arn:aws:secretsmanager:us%-east%-1:000000000000:secret:alex%-local%-%w%w%w%w%w%w$",
                   s.env.AURORA_SECRET_ARN)
    assert.equal("alex", s.env.AURORA_DATABASE)
    assert.equal("us-east-1", s.env.AWS_REGION)
    assert.matches("^AKIA[A-Z2-7]+$", s.env.AWS_ACCESS_KEY_ID)
    assert.equal(20, #s.env.AWS_ACCESS_KEY_ID)
    assert.equal(40, #s.env.AWS_SECRET_ACCESS_KEY)
    -- the file is usable by sh as it is
    local ok, out = stack.run(". '" .. path .. "' && printf %s \"$AURORA_DATABASE\"")
    assert.is_true(ok)
    assert.equal("alex", out)
  end)

  it("runs both processes, on loopback only, and status says so (exit 0)", function()
    assert.is_true(listening(s.pg_port))
    assert.is_true(listening(s.api_port))
    local tcp = read_file("/proc/net/tcp")
    for _, port in ipairs { s.pg_port, s.api_port } do
      local hex = ("%04X"):format(port)
      assert.is_nil(tcp:match("\n%s*%d+: 00000000:" .. hex .. " "), "listens on 0.0.0.0:" .. port)
    end
    local health = assert(s:health())
    assert.equal("ok", health.status)
    local ok, out, code = s:script("status")
    assert.is_true(ok, out)
    assert.equal(0, code)
    assert.matches("postgresql: running on 127.0.0.1:" .. s.pg_port, out, 1, true)
    assert.matches("alex-dataapi: running on http://127.0.0.1:" .. s.api_port, out, 1, true)
  end)

  it("creates database alex owned by the application role, reachable with the generated password", function()
    assert.equal("alex_app|alex", s:psql("SELECT current_user, current_database()"))
    assert.equal("alex_app", s:psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'alex'"))
    assert.equal("", s:psql("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)"))
    -- scram-sha-256 over TCP: a wrong password is refused
    local ok, out = stack.run(("PGPASSWORD=wrong psql -X -w -h 127.0.0.1 -p %d -U alex_app -d alex -c 'select 1'")
      :format(s.pg_port))
    assert.is_false(ok)
    assert.matches("password authentication failed", out, 1, true)
  end)

  it("passes ALEX_DATAAPI_FAULT_* and TX_IDLE_TIMEOUT to the service, not the stack's own knobs", function()
    local pid = assert(s:service_pid())
    local environ = read_file("/proc/" .. pid .. "/environ") or ""
    local names = {}
    for k, v in environ:gmatch("(ALEX_DATAAPI_[%w_]+)=([^%z]*)") do names[k] = v end
    assert.equal("7", names.ALEX_DATAAPI_FAULT_SEED)
    assert.equal("5", names.ALEX_DATAAPI_TX_IDLE_TIMEOUT)
    assert.is_nil(names.ALEX_DATAAPI_BIN)
    assert.is_nil(names.ALEX_DATAAPI_PORT)
  end)

  it("the helper reaches the admin API: stats, reset, faults", function()
    local stats = assert(s:stats())
    assert.is_table(stats.operations)
    assert.is_table(assert(s:reset_stats()))
    local faults = assert(s:set_faults { latency_ms = 0 })
    assert.is_table(faults)
    assert.same(faults, assert(s:faults()))
    local none, err = s:set_faults { no_such_fault = 1 }
    assert.is_nil(none)
    assert.matches("answered 400", err, 1, true)
  end)

  it("up when already up only confirms, and keeps everything", function()
    local pid = s:service_pid()
    local before = read_file(s.dir .. "/local.env")
    local ok, out = s:script("up")
    assert.is_true(ok, out)
    assert.matches("already up", out, 1, true)
    assert.equal(pid, s:service_pid())
    assert.equal(before, read_file(s.dir .. "/local.env"))
  end)

  it("never prints or logs a secret", function()
    local _, up = s:script("up")
    local _, status = s:script("status")
    local _, env = s:script("env")
    local logs = (read_file(s.dir .. "/dataapi.log") or "") .. (read_file(s.dir .. "/dataapi.log.out") or "") ..
                 (read_file(s.dir .. "/pg.log") or "")
    for _, out in ipairs { up, status, env, logs } do
      for _, secret in pairs(secrets) do
        assert.is_nil(out:find(secret, 1, true))
      end
    end
    assert.equal(s.dir .. "/local.env\n", env)
  end)

  it("down stops both processes and closes both ports; status then exits 3", function()
    local service = assert(s:service_pid())
    local postmaster = tonumber(read_file(s.dir .. "/pg/postmaster.pid"):match("^(%d+)"))
    local ok, out = s:script("down")
    assert.is_true(ok, out)
    assert.is_false(alive(service))
    -- pg_ctl stop returns once postmaster.pid is gone; the process ends right after
    servers.wait_until(function() return not alive(postmaster) end, 5, 0.1)
    assert.is_false(alive(postmaster))
    assert.is_false(listening(s.pg_port))
    assert.is_false(listening(s.api_port))
    assert.is_nil(read_file(s.dir .. "/dataapi.pid"))
    status_exits_3 { "postgresql: stopped", "alex-dataapi: stopped" }
    -- down twice is fine
    ok, out = s:script("down")
    assert.is_true(ok, out)
  end)

  it("up after down restarts with the same credentials and data", function()
    local before = read_file(s.dir .. "/local.env")
    local ok, out = s:script("up")
    assert.is_true(ok, out)
    assert.equal(before, read_file(s.dir .. "/local.env"))
    assert.same(secrets, stack.read_env(s.dir .. "/secrets.env"))
    assert.equal("ok", assert(s:health()).status)
    assert.equal("42", s:psql("SELECT n FROM kept"))
  end)

  it("status exits 3 when only one of the two runs", function()
    local pid = assert(s:service_pid())
    assert.is_true((stack.run("kill -TERM " .. pid)))
    servers.wait_until(function() return not alive(pid) end, 10, 0.1)
    status_exits_3 { "postgresql: running", "alex-dataapi: stopped" }
    -- and up brings the missing one back
    local ok, out = s:script("up")
    assert.is_true(ok, out)
    ok = s:script("status")
    assert.is_true(ok)
  end)

  it("reset stops everything and removes the state folder it made", function()
    local ok, out = s:script("reset")
    assert.is_true(ok, out)
    assert.is_nil(read_file(s.dir .. "/local.env"))
    assert.is_false((stack.run("test -e '" .. s.dir .. "'")))
    assert.is_false(listening(s.pg_port))
    assert.is_false(listening(s.api_port))
    local status_ok, _, code = s:script("status")
    assert.is_false(status_ok)
    assert.equal(3, code)
    ok, out = s:script("env")
    assert.is_false(ok)
    assert.matches("does not exist", out, 1, true)
  end)
end)

describe("local/stack.sh errors", function()
  local dir

  before_each(function()
    local _, out = stack.run("mktemp -d /tmp/alex-stack-err.XXXXXX")
    dir = out:match("^(/[^\n]+)")
  end)

  after_each(function()
    if dir then
      stack.run(("ALEX_STATE_DIR='%s' sh '%s' down"):format(dir, stack.script))
      stack.run("rm -rf '" .. dir .. "'")
    end
  end)

  local function script(vars, command)
    local parts = { "ALEX_STATE_DIR='" .. dir .. "'" }
    for k, v in pairs(vars) do parts[#parts + 1] = k .. "='" .. v .. "'" end
    return stack.run(table.concat(parts, " ") .. " sh '" .. stack.script .. "' " .. command)
  end

  it("up fails clearly when the service binary is missing, leaving no service", function()
    local pg, api = stack.free_ports(2)
    local ok, out = script({ ALEX_PG_PORT = pg, ALEX_DATAAPI_PORT = api,
                             ALEX_DATAAPI_BIN = dir .. "/no-such-binary" }, "up")
    assert.is_false(ok)
    assert.matches("alex-dataapi at " .. dir .. "/no-such-binary is not executable", out, 1, true)
    assert.is_false(listening(api))
  end)

  it("up refuses a service port that is already taken", function()
    local pg, api = stack.free_ports(2)
    local server = io.popen(("exec /usr/bin/python3 -m http.server --bind 127.0.0.1 %d >/dev/null 2>&1 & echo $!")
      :format(api))
    local pid = server:read("l")
    server:close()
    finally(function() stack.run("kill " .. pid) end)
    for _ = 1, 50 do
      if listening(api) then break end
      stack.run("sleep 0.1")
    end
    local ok, out = script({ ALEX_PG_PORT = pg, ALEX_DATAAPI_PORT = api,
                             ALEX_DATAAPI_BIN = os.getenv("ALEX_DATAAPI") or "/bin/true" }, "up")
    assert.is_false(ok)
    assert.matches("port " .. api .. " is already in use", out, 1, true)
  end)

  it("rejects bad ports and unknown commands", function()
    local ok, out = script({ ALEX_PG_PORT = "5x" }, "up")
    assert.is_false(ok)
    assert.matches("ports must be numbers", out, 1, true)
    local code
    ok, out, code = script({}, "frobnicate")
    assert.is_false(ok)
    assert.equal(2, code)
    assert.matches("usage:", out, 1, true)
  end)

  it("reset refuses to wipe a folder it did not create", function()
    local f = assert(io.open(dir .. "/precious.txt", "w"))
    f:write("keep me")
    f:close()
    local ok, out = script({}, "reset")
    assert.is_false(ok)
    assert.matches("not wiping", out, 1, true)
    assert.equal("keep me", read_file(dir .. "/precious.txt"))
  end)
end)
