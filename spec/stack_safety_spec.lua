-- luacheck: std +busted
-- The local stack in the hands of a careless or unlucky operator: a state
-- folder that is not the stack's, root and the folders above the state folder,
-- other local users and the admin API, two checkouts on one machine, scripts
-- started together, a killed postmaster; and what independent clients found
-- in the service (oversized requests, AWS clients reading local.env only).
local stack = require "stack"
local servers = require "servers"
local cjson = require "cjson"
local q, read_file, write_file, run = servers.q, servers.read_file, servers.write_file, servers.run

local IS_ROOT = select(2, run("id -u")):match("^%d+") == "0"

local function trim(s) return (s:gsub("%s+$", "")) end
local function stat(path, fmt) return trim(select(2, run("stat -c " .. q(fmt) .. " " .. q(path)))) end
local function lines(s) return select(2, trim(s):gsub("[^\n]+", "")) end

-- The names in a folder, sorted.
local function listing(dir)
  local _, out = run("ls -A " .. q(dir))
  local names = {}
  for name in out:gmatch("[^\n]+") do names[#names + 1] = name end
  table.sort(names)
  return names
end

local alive = require("servers").alive

local function postmaster(s)
  return tonumber((read_file(s.dir .. "/pg/postmaster.pid") or ""):match("^(%d+)"))
end

local function uid_of(pid)
  return tonumber((read_file("/proc/" .. pid .. "/status") or ""):match("\nUid:%s+(%d+)"))
end

-- A folder in which `unshare` always fails, as in containers that forbid user
-- namespaces; put first on PATH.
local function no_unshare_bin(dir)
  local bin = dir .. "/no-unshare"
  run("mkdir -p " .. q(bin))
  write_file(bin .. "/unshare", "#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n")
  run("chmod 755 " .. q(bin .. "/unshare"))
  return bin .. ":" .. os.getenv("PATH")
end

-- Stacks in folders a test chooses, stopped (not removed) after each test.
local made = {}
local function new_stack(opts)
  local s = stack.new(opts)
  made[#made + 1] = s
  return s
end
local function stop_made()
  for _, s in ipairs(made) do s:stop() end
  made = {}
end

describe("the state folder", function()
  local base

  before_each(function() base = servers.tmpdir() end)
  after_each(function()
    stop_made()
    servers.rmtree(base)
  end)

  it("up refuses a non-empty folder the stack did not make, in one line, and writes nothing there", function()
    write_file(base .. "/precious.txt", "keep me")
    local s = new_stack { dir = base }
    local ok, out, code = s:script("up")
    assert.is_false(ok)
    assert.equal(1, code)
    assert.equal(1, lines(out), out)
    assert.matches("is not empty and is not a stack state folder (no .alex-stack)", out, 1, true)
    assert.same({ "precious.txt" }, listing(base))
    assert.equal("keep me", read_file(base .. "/precious.txt"))
  end)

  it("up takes a folder holding only alexlua's journal/; reset deletes what the stack made, keeps the rest", function()
    local state = base .. "/st"
    run("mkdir -p " .. q(state .. "/journal") .. " && echo tx >" .. q(state .. "/journal/open"))
    local s = new_stack({ dir = state }):up()
    write_file(state .. "/notes.txt", "mine")
    local ok, out = s:script("reset")
    assert.is_true(ok, out)
    assert.matches("kept " .. state, out, 1, true)
    assert.same({ "notes.txt" }, listing(state))
    assert.equal("mine", read_file(state .. "/notes.txt"))
    -- without the marker the folder is no longer the stack's: up refuses it
    ok, out = s:script("up")
    assert.is_false(ok)
    assert.matches("not a stack state folder", out, 1, true)
    -- once empty, a reset removes it
    os.remove(state .. "/notes.txt")
    s:up()
    ok, out = s:script("reset")
    assert.is_true(ok, out)
    assert.same({}, listing(base))
  end)
end)

describe("as root", function()
  local base, userns

  lazy_setup(function()
    userns = IS_ROOT and run("cd / && unshare --user --map-user=$(id -u postgres) --map-group=$(id -g postgres) true")
  end)
  before_each(function() base = servers.tmpdir() end) -- mode 700, like /root
  after_each(function()
    stop_made()
    servers.rmtree(base)
  end)

  it("up changes nothing above the state folder: PostgreSQL runs in a user namespace, files owned by root", function()
    if not userns then pending("needs root and user namespaces") return end
    run("mkdir -m 700 " .. q(base .. "/a"))
    local before = { stat(base, "%a %u"), stat(base .. "/a", "%a %u") }
    local s = new_stack({ dir = base .. "/a/st" }):up()
    assert.same(before, { stat(base, "%a %u"), stat(base .. "/a", "%a %u") })
    assert.equal("userns\n", read_file(s.dir .. "/pg-mode"))
    assert.equal("700 0", stat(s.dir .. "/pg", "%a %u"))
    assert.equal(0, uid_of(postmaster(s)))
    -- peer authentication on the socket and the password over TCP both work
    assert.equal("alex_app", s:psql("SELECT current_user"))
    local ok, out = s:script("down")
    assert.is_true(ok, out)
    s:up()
    assert.equal("1", s:psql("SELECT 1"))
    assert.same(before, { stat(base, "%a %u"), stat(base .. "/a", "%a %u") })
  end)

  it("without user namespaces: refuses a folder postgres cannot reach in one line, changing nothing", function()
    if not IS_ROOT then pending("needs root") return end
    run("mkdir -m 700 " .. q(base .. "/a"))
    local before = { stat(base, "%a"), stat(base .. "/a", "%a") }
    local s = new_stack { dir = base .. "/a/st", vars = { PATH = no_unshare_bin(base) } }
    local ok, out, code = s:script("up")
    assert.is_false(ok)
    assert.equal(1, code)
    assert.equal(1, lines(out), out)
    assert.matches("set ALEX_STATE_DIR under a folder postgres can reach, or run as a non-root user", out, 1, true)
    assert.same(before, { stat(base, "%a"), stat(base .. "/a", "%a") })
    assert.is_nil(read_file(s.dir .. "/pg/PG_VERSION"))
  end)

  it("without user namespaces: runs as postgres where it can reach the folder, and restarts the same way", function()
    if not IS_ROOT then pending("needs root") return end
    run("mkdir -m 711 " .. q(base .. "/open") .. " && chmod 711 " .. q(base))
    local s = new_stack { dir = base .. "/open/st", vars = { PATH = no_unshare_bin(base) } }
    s:up()
    local postgres_uid = tonumber(trim(select(2, run("id -u postgres"))))
    assert.equal("runuser\n", read_file(s.dir .. "/pg-mode"))
    assert.equal(postgres_uid, uid_of(postmaster(s)))
    assert.equal("711", stat(base, "%a"))
    assert.is_true((s:script("down")))
    -- user namespaces work again: the cluster still runs as it was created
    s.vars.PATH = os.getenv("PATH")
    s:up()
    assert.equal(postgres_uid, uid_of(postmaster(s)))
    assert.equal("1", s:psql("SELECT 1"))
  end)
end)

describe("concurrent starts and a dead postmaster", function()
  local s

  lazy_setup(function() s = stack.new {} end)
  lazy_teardown(function() if s then s:stop() end end)

  -- Runs commands at once, each in the background; returns their outputs and exit codes.
  local function together(cmds)
    local dir = servers.tmpdir()
    local script = {}
    for i, cmd in ipairs(cmds) do
      local out = q(dir .. "/" .. i)
      script[#script + 1] = ("(%s >%s 2>&1; echo $? >%s.rc) &"):format(cmd, out, out)
    end
    script[#script + 1] = "wait"
    run(table.concat(script, "\n"))
    local outs, codes = {}, {}
    for i = 1, #cmds do
      outs[i] = read_file(dir .. "/" .. i) or ""
      codes[i] = tonumber(read_file(dir .. "/" .. i .. ".rc") or "")
    end
    servers.rmtree(dir)
    return outs, codes
  end

  local function script_cmd(command)
    local parts = {}
    for k, v in pairs(s.vars) do parts[#parts + 1] = k .. "=" .. q(v) end
    return table.concat(parts, " ") .. " sh " .. q(stack.script) .. " " .. command
  end

  -- alexlua scripts/verify.lua on the stack of s, as a user runs it: no Aurora
  -- target, the stack found through ALEX_STATE_DIR and started when needed.
  local function verify_cmd()
    return ("env -u AURORA_CLUSTER_ARN ALEX_STATE_DIR=%s ALEX_DATAAPI_BIN=%s ALEX_STACK_SCRIPT=%s %s --no-env-file %s")
      :format(q(s.dir), q(s.vars.ALEX_DATAAPI_BIN), q(stack.script), q(os.getenv("ALEXLUA")),
              q(servers.support_dir .. "/../../scripts/verify.lua"))
  end

  -- verify on an empty database: it reached the stack when it lists the missing tables
  local function reached(out)
    return out:find("using the local Data API stack at", 1, true) ~= nil
       and out:find("FAIL tables present (0 of", 1, true) ~= nil
  end

  it("three ups at once on a new folder all succeed, one initialises", function()
    local outs, codes = together { script_cmd("up"), script_cmd("up"), script_cmd("up") }
    assert.same({ 0, 0, 0 }, codes, table.concat(outs, "\n----\n"))
    local inits = select(2, table.concat(outs):gsub("initialising a PostgreSQL 15 cluster", ""))
    assert.equal(1, inits)
    s:up()
    assert.equal("1", s:psql("SELECT 1"))
  end)

  it("three scripts started together against a stopped stack all run", function()
    assert.is_true((s:script("down")))
    local outs = together { verify_cmd(), verify_cmd(), verify_cmd() }
    for i = 1, 3 do
      assert.is_nil(outs[i]:find("could not start", 1, true), outs[i])
      assert.is_true(reached(outs[i]), outs[i])
    end
  end)

  -- The stack up, then its postmaster killed (SIGKILL); returns the dead pid.
  local function kill_postmaster()
    s:up()
    local old = assert(postmaster(s))
    assert.is_true((run("kill -KILL " .. old)))
    assert.is_true(servers.wait_until(function() return not alive(old) end, 5, 0.1))
    return old
  end

  it("status and up notice a killed postmaster; up starts it again", function()
    local old = kill_postmaster()
    local ok, out, code = s:script("status")
    assert.is_false(ok)
    assert.equal(3, code)
    assert.matches("postgresql: not running (its postmaster died", out, 1, true)
    ok, out = s:script("up")
    assert.is_true(ok, out)
    assert.is_nil(out:find("already up", 1, true))
    local new = assert(postmaster(s))
    assert.are_not.equal(old, new)
    assert.is_true(alive(new))
    assert.equal("1", s:psql("SELECT 1"))
    assert.is_true((s:script("status")))
  end)

  it("a script notices a killed postmaster too, and brings it back", function()
    kill_postmaster()
    local _, out = run(verify_cmd())
    assert.is_true(reached(out), out)
    assert.is_true(alive(assert(postmaster(s))))
  end)
end)

describe("one running stack", function()
  local s
  -- the default request size cap: a body a few times larger no longer fits the
  -- loopback socket buffers, so a client still writing sees an early close
  local CAP = 4194304

  stack.shared({ settings = { max_request_bytes = CAP } }, function(started) s = started end)

  describe("the admin API", function()
    -- curl against the admin API; returns the HTTP status and the body
    local function curl(method, path, body, headers, as)
      local cmd = { "curl -s -m 10 -o - -w '\\n%{http_code}' -X", method }
      for _, h in ipairs(headers or {}) do cmd[#cmd + 1] = "-H " .. q(h) end
      if body then cmd[#cmd + 1] = "-d " .. q(body) end
      cmd[#cmd + 1] = q(s.admin .. path)
      local line = table.concat(cmd, " ")
      if as then line = "runuser -u " .. as .. " -- " .. line end
      local _, out = run(line)
      local text, status = out:match("^(.*)\n(%d+)$")
      return tonumber(status), text
    end

    it("refuses changes without the token, with a wrong one, and to other local users", function()
      local before = assert(s:faults())
      for _, headers in ipairs { {}, { "X-Alex-Admin-Token: wrong" },
                                 -- the right length, one character off (never the token itself)
                                 { "X-Alex-Admin-Token: " .. s.admin_token:sub(1, -2)
                                     .. (s.admin_token:sub(-1) == "0" and "1" or "0") },
                                 { "X-Alex-Admin-Token: " .. s.admin_token .. "0" } } do
        local status, body = curl("POST", "/faults", '{"latency_ms":1}', headers)
        assert.equal(403, status)
        assert.equal("AccessDeniedException", cjson.decode(body).__type)
        assert.matches("X-Alex-Admin-Token", cjson.decode(body).message, 1, true)
        assert.equal(403, (curl("POST", "/stats/reset", "{}", headers)))
      end
      if IS_ROOT then
        assert.equal(403, (curl("POST", "/faults", '{"latency_ms":1}', {}, "nobody")))
        -- nobody cannot read the token: the files are the owner's only
        assert.is_false((run("runuser -u nobody -- cat " .. q(s.dir .. "/admin.header"))))
      end
      assert.same(before, assert(s:faults()))
    end)

    it("accepts them with the token from admin.header; GETs need none", function()
      assert.equal("600", stat(s.dir .. "/admin.header", "%a"))
      assert.equal("600", stat(s.dir .. "/secrets.env", "%a"))
      local status, body = curl("POST", "/faults", '{"latency_ms":3}', { "@" .. s.dir .. "/admin.header" })
      assert.equal(200, status, body)
      assert.equal(3, cjson.decode(body).latency_ms)
      assert.equal(200, (curl("POST", "/stats/reset", "{}", { "@" .. s.dir .. "/admin.header" })))
      for _, path in ipairs { "/health", "/stats", "/faults" } do assert.equal(200, (curl("GET", path))) end
      assert(s:set_faults { latency_ms = 0 })
    end)

    it("never logs the token, and a service without one refuses every change", function()
      assert.is_nil((read_file(s.dir .. "/dataapi.log") or ""):find(s.admin_token, 1, true))
      local svc = s:extra_service { admin_token = "" }
      finally(svc.stop)
      local res = assert(require("alex.http").new {}:request {
        method = "POST", url = svc.endpoint .. "/_alex/faults", headers = s:admin_headers(), body = "{}" })
      assert.equal(403, res.status)
      assert.matches("no admin_token setting", res.body, 1, true)
      -- and the token is never taken from the command line, where ps shows it
      local ok, out, code = run(q(s.vars.ALEX_DATAAPI_BIN) .. " --config " .. q(s.dir .. "/dataapi.env") ..
                                " --admin-token x")
      assert.is_false(ok)
      assert.equal(2, code)
      assert.matches("admin_token is not accepted on the command line", out, 1, true)
    end)
  end)

  describe("real clients", function()
    -- A client that writes its whole request before reading, as the AWS SDK for
    -- JavaScript does; prints the status line, or the error it met.
    local function send_all_then_read(body_bytes, opts)
      opts = opts or {}
      local py = [[
import socket, sys
port, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=20)
try:
    if mode == "chunked":
        head = "POST /Execute HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        s.sendall(head.encode())
        left = n
        while left:
            k = min(left, 16384)
            s.sendall(b"%x\r\n" % k + b"a" * k + b"\r\n")
            left -= k
        s.sendall(b"0\r\n\r\n")
    elif mode == "announce":
        s.sendall(("POST /Execute HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % n).encode())
    else:
        s.sendall(("POST /Execute HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % n).encode() + b"a" * n)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    print(data.split(b"\r\n")[0].decode() if data else "closed without an answer")
except OSError as e:
    print("error: %s" % e)
]]
      local file = os.tmpname()
      write_file(file, py)
      local _, out = run(("%s %s %d %d %s"):format(servers.PYTHON, q(file), s.api_port, body_bytes,
                                                   opts.mode or "plain"))
      os.remove(file)
      return trim(out)
    end

    it("reads and drops an oversized body, then answers 413, to a client that writes all first", function()
      assert.matches("^HTTP/1.1 413 ", send_all_then_read(2 * CAP))
      assert.matches("^HTTP/1.1 413 ", send_all_then_read(2 * CAP, { mode = "chunked" }))
      -- announcing more than it would ever read: answered at once
      assert.matches("^HTTP/1.1 413 ", send_all_then_read(100 * CAP, { mode = "announce" }))
      -- curl, body first (no Expect) and with Expect: 100-continue
      local body = os.tmpname()
      write_file(body, ("a"):rep(2 * CAP))
      for _, expect in ipairs { "Expect:", "Expect: 100-continue" } do
        local ok, out = run(("curl -sS -m 20 -o /dev/null -w '%%{http_code}' -H %s --data-binary @%s %s/Execute")
          :format(q(expect), q(body), s.endpoint))
        assert.is_true(ok, out)
        assert.equal("413", out)
      end
      os.remove(body)
      local res = assert(require("alex.http").new {}:request { method = "GET", url = s.endpoint .. "/_alex/health" })
      assert.equal(200, res.status)
    end)

    -- Runs a command with only local.env's settings in its environment.
    local function with_local_env(cmd)
      local home = servers.tmpdir()
      local ok, out = run(("env -i PATH=/usr/bin:/bin HOME=%s sh -c %s"):format(q(home),
        q("set -a; . " .. q(s.dir .. "/local.env") .. "; set +a; " .. cmd)))
      servers.rmtree(home)
      return ok, out
    end

    it("Debian's AWS CLI runs a statement with only local.env's settings", function()
      local ok, out = with_local_env([[exec /usr/bin/aws rds-data execute-statement ]] ..
        [[--endpoint-url "$AWS_ENDPOINT_URL_RDS_DATA" ]] ..
        [[--resource-arn "$AURORA_CLUSTER_ARN" --secret-arn "$AURORA_SECRET_ARN" --database "$AURORA_DATABASE" ]] ..
        [[--sql 'SELECT 41 + 1 AS n' --output json]])
      assert.is_true(ok, out)
      assert.same({ { { longValue = 42 } } }, cjson.decode(out).records)
    end)

    it("Debian's botocore (the AWS CLI v1's, which reads only AWS_DEFAULT_REGION) too", function()
      local py = [[
import os, boto3
c = boto3.client("rds-data", endpoint_url=os.environ["AWS_ENDPOINT_URL_RDS_DATA"])
r = c.execute_statement(resourceArn=os.environ["AURORA_CLUSTER_ARN"], secretArn=os.environ["AURORA_SECRET_ARN"],
                        database=os.environ["AURORA_DATABASE"], sql="SELECT 6 * 7")
print(r["records"][0][0]["longValue"])
]]
      local file = s.dir .. "/boto.py"
      write_file(file, py)
      local ok, out = with_local_env(servers.PYTHON .. " " .. q(file))
      os.remove(file)
      assert.is_true(ok, out)
      assert.equal("42", trim(out))
    end)
  end)

  -- last: it restarts the shared stack
  describe("ports", function()
    local a, b

    lazy_setup(function()
      a = s
      b = stack.start {}
    end)
    lazy_teardown(function() if b then b:stop() end end)

    it("each state folder gets its own free ports outside the ephemeral range, kept across restarts", function()
      local low = tonumber(read_file("/proc/sys/net/ipv4/ip_local_port_range"):match("%d+"))
      local seen = {}
      for _, st in ipairs { a, b } do
        local kept = stack.read_env(st.dir .. "/ports.env")
        assert.same({ PG_PORT = tostring(st.pg_port), API_PORT = tostring(st.api_port) }, kept)
        for _, p in ipairs { st.pg_port, st.api_port } do
          assert.is_nil(seen[p])
          seen[p] = true
          assert.is_true(p < low)
        end
      end
      local endpoint = a.endpoint
      assert.is_true((a:script("down")))
      a:up()
      assert.equal(endpoint, a.endpoint)
    end)

    it("explicit ALEX_DATAAPI_PORT wins over the kept one, which stays kept", function()
      local kept = read_file(a.dir .. "/ports.env")
      assert.is_true((a:script("down")))
      local port = stack.free_ports(1)
      a.vars.ALEX_DATAAPI_PORT = tostring(port)
      a:up()
      a.vars.ALEX_DATAAPI_PORT = nil
      assert.equal("http://127.0.0.1:" .. port, a.endpoint)
      assert.equal(kept, read_file(a.dir .. "/ports.env"))
      assert.is_true((a:script("down")))
      a:up()
      assert.equal("http://127.0.0.1:" .. a.api_port, a.endpoint)
      assert.matches("API_PORT=" .. a.api_port, kept, 1, true)
    end)

    it("a kept port another program took is reported in one line; nothing starts", function()
      assert.is_true((b:script("down")))
      local pid = trim(select(2, run(("exec %s -m http.server --bind 127.0.0.1 %d >/dev/null 2>&1 & echo $!")
        :format(servers.PYTHON, b.api_port))))
      finally(function() run("kill " .. pid) end)
      assert.is_true(servers.wait_listening(b.api_port, 5))
      local ok, out, code = b:script("up")
      assert.is_false(ok)
      assert.equal(1, code)
      assert.equal(1, lines(out), out)
      assert.matches("port " .. b.api_port .. " is already in use by another program", out, 1, true)
      assert.matches("delete " .. b.dir .. "/ports.env to choose new ports", out, 1, true)
      assert.is_nil(postmaster(b))
    end)
  end)
end)

describe("the repository", function()
  it("no tracked file names a folder outside it or an outside reference document", function()
    -- spelled in pieces, so that this file does not name them itself
    local patterns = { "/" .. "work/", "\\.\\./" .. "shared", "shared/" .. "reference", "data-api" .. "\\.md" }
    local root = servers.support_dir .. "/../.."
    local ok, out = servers.run(("cd %s && git ls-files >/dev/null 2>&1 && git grep -n -E %s -- . || true")
      :format(servers.q(root), servers.q(table.concat(patterns, "|"))))
    assert.is_true(ok)
    assert.equal("", out)
    for _, name in ipairs { "local/README.md", "fuzz/README.md" } do
      local text = assert(read_file(root .. "/" .. name))
      for _, bad in ipairs { "/root/", "/home/", "/tmp/" } do
        assert.is_nil(text:find(bad, 1, true), name .. " names " .. bad)
      end
    end
  end)
end)
