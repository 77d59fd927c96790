-- luacheck: std +busted
-- Security checks (issue 7): no secret in any output, TLS verification that
-- cannot be switched off, SQL injection through parameters and script
-- arguments, the local service's door (SigV4, loopback only), leaks under
-- valgrind, and the fuzzers' regression inputs replayed through the Lua API.
--
-- One private stack (PostgreSQL + alex-dataapi) for the file, plus a second
-- alex-dataapi on the same PostgreSQL that requires a session token and logs
-- at debug level (the stack's own service has no token setting).
local stack = require "stack"
local servers = require "servers"
local read_file = servers.read_file
local cjson = require "cjson"

local q = servers.q
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
if here:sub(1, 1) ~= "/" then here = (os.getenv("PWD") or ".") .. "/" .. here end
local ROOT = here .. "/.."
local ALEXLUA = assert(os.getenv("ALEXLUA"), "ALEXLUA is not set (run through make test)")

local function random_text(n, alphabet)
  alphabet = alphabet or "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(n)
  f:close()
  local out = {}
  for i = 1, n do
    local k = bytes:byte(i) % #alphabet + 1
    out[i] = alphabet:sub(k, k)
  end
  return table.concat(out)
end

-- The settings a child process gets: nothing from the caller's environment but
-- PATH and the sanitizer options, a private HOME (no ~/.aws), then `vars`.
local function child_env(vars, home)
  local env = { PATH = os.getenv("PATH") or "/usr/bin:/bin", HOME = home, AWS_EC2_METADATA_DISABLED = "true",
                NO_COLOR = "1" }
  for _, k in ipairs { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" } do env[k] = os.getenv(k) end
  return servers.assignments(servers.with(env, vars, false))
end

-- Runs alexlua with args (a list of words) in the project root; returns ok,
-- stdout and stderr together, exit code.
local function alexlua(vars, home, args, prefix)
  local words = {}
  for i, a in ipairs(args) do words[i] = q(a) end
  local cmd = ("cd %s && env -i %s %s%s --no-env-file %s"):format(q(ROOT), child_env(vars, home),
    prefix and (prefix .. " ") or "", q(ALEXLUA), table.concat(words, " "))
  return stack.run(cmd)
end

-- Fails naming the secret's kind and where, never printing the value.  A
-- 16-character prefix or suffix counts as a leak too.
local function assert_no_secret(text, secrets, where)
  for kind, value in pairs(secrets) do
    assert(#value >= 16, kind .. " is too short to scan for")
    for _, piece in ipairs { value, value:sub(1, 16), value:sub(-16) } do
      if text:find(piece, 1, true) then
        error(("%s appears (in whole or part) in %s"):format(kind, where), 2)
      end
    end
  end
end

-- Values in secrets.env are single-quoted; stack:secrets() returns them as read.
local function unquote(v)
  return (v:gsub("^'(.*)'$", "%1"))
end

local alive = servers.alive

-- Malformed HTTP sent raw (Debian's python3), one connection per case; prints a
-- JSON line per case: status, whether the body is UTF-8 JSON.
local RAW_HTTP_PY = [==[
import json, socket, sys
port = int(sys.argv[1])
AUTH = ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/rds-data/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64).encode()
def req(head, body=b""):
    return head + b"\r\n\r\n" + body
cases = {
  "garbage": b"\x00\xff\xfe garbage \r\n\r\n",
  "long-path": req(b"POST /" + b"A" * 200000 + b" HTTP/1.1\r\nHost: x"),
  "many-headers": req(b"POST /Execute HTTP/1.1\r\nHost: x\r\n" + b"\r\n".join(b"X-H%d: v" % i for i in range(5000))),
  "huge-header": req(b"POST /Execute HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 3000000),
  "short-body": req(b"POST /Execute HTTP/1.1\r\nHost: x\r\nContent-Length: 100", b"{}"),
  "huge-length": req(b"POST /Execute HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999"),
  "negative-length": req(b"POST /Execute HTTP/1.1\r\nHost: x\r\nContent-Length: -1"),
  "bad-chunks": req(b"POST /Execute HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked", b"zz\r\nabc\r\n0\r\n\r\n"),
  "binary-date": req(b"POST /Execute HTTP/1.1\r\nHost: x\r\nX-Amz-Date: \xff\xfe\xc3\x28\x01\x7f\r\n"
                     + b"Authorization: " + AUTH + b"\r\nContent-Length: 2", b"{}"),
  "binary-authz": req(b"POST /Execute HTTP/1.1\r\nHost: x\r\nX-Amz-Date: 20240101T000000Z\r\n"
                      + b"Authorization: AWS4-HMAC-SHA256 " + bytes(range(1, 256)) * 40
                      + b"\r\nContent-Length: 2", b"{}"),
  "traversal": req(b"GET /../../../etc/passwd HTTP/1.1\r\nHost: x"),
  "admin-traversal": req(b"GET /_alex/../_alex/health/../../etc HTTP/1.1\r\nHost: x"),
  "http10-no-host": req(b"POST /Execute HTTP/1.0"),
}
for name, data in cases.items():
    out = {"case": name}
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            s.sendall(data)
        except OSError as e:
            out["send_error"] = str(e)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        buf = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk: break
                buf += chunk
        except OSError as e:
            out["recv_error"] = type(e).__name__
        s.close()
        if buf:
            head, _, body = buf.partition(b"\r\n\r\n")
            out["status"] = int(head.split(b" ", 2)[1])
            try:
                j = json.loads(body.decode("utf-8")) if body else None
                out["json"] = True
            except Exception as e:
                out["json"] = False
                out["body"] = body[:300].decode("latin-1")
    except OSError as e:
        out["connect_error"] = str(e)
    print(json.dumps(out))
]==]

describe("security", function()
  local s, dir, home, secrets, token, tok, tok_url, base_vars

  lazy_setup(function()
    s = stack.start {}
    dir = servers.tmpdir()
    home = dir .. "/home"
    os.execute("mkdir -p " .. q(home))
    token = "FAKEsessionTOKEN" .. random_text(48)
    local raw = stack.read_env(s.dir .. "/secrets.env")
    secrets = {
      ["the secret access key"] = s.env.AWS_SECRET_ACCESS_KEY,
      ["the database password"] = unquote(raw.PG_PASSWORD),
      ["the session token"] = token,
    }
    -- stack:secrets() must hold the same values (quoted or not)
    local listed = table.concat(s:secrets(), "\n")
    assert(listed:find(secrets["the database password"], 1, true), "stack:secrets() lacks the database password")
    tok = s:extra_service { session_token = token, log_level = "debug" }
    tok_url = tok.endpoint
    base_vars = {
      AURORA_CLUSTER_ARN = s.cluster_arn, AURORA_SECRET_ARN = s.secret_arn, AURORA_DATABASE = s.database,
      AWS_REGION = s.env.AWS_REGION, AWS_ACCESS_KEY_ID = s.env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY = s.env.AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN = token,
      AWS_ENDPOINT_URL_RDS_DATA = tok_url, ALEX_DEBUG = "1",
    }
  end)

  lazy_teardown(function()
    if dir then servers.rmtree(dir) end
    -- stops the token service too, and fails on a sanitizer report in its stderr
    if s then s:stop() end
  end)

  local function vars(changes)
    local v = {}
    for k, val in pairs(base_vars) do v[k] = val end
    for k, val in pairs(changes or {}) do
      if val == false then v[k] = nil else v[k] = val end -- false: unset
    end
    return v
  end

  local function fingerprint()
    return require("fingerprint").exact(function(sql) return assert(s:psql(sql)) end)
  end

  describe("no secret in any output with ALEX_DEBUG=1 and a session token", function()
    local outputs = {}

    local function run_script(name, args, expect_ok, changes)
      local ok, out, code = alexlua(vars(changes), home, args)
      outputs[#outputs + 1] = { name = name, text = out }
      if expect_ok then
        assert(ok, ("%s failed (exit %s):\n%s"):format(name, tostring(code), out))
      else
        assert(not ok, name .. " should have failed:\n" .. out)
      end
      assert_no_secret(out, secrets, "the output of " .. name)
      return out
    end

    it("the scan finds a planted secret, whole or in part (control)", function()
      for kind, value in pairs(secrets) do
        assert.has_error(function() assert_no_secret("..." .. value .. "...", { [kind] = value }, "a text") end,
          kind .. " appears (in whole or part) in a text")
        assert.has_error(function() assert_no_secret(value:sub(-16) .. "!", { [kind] = value }, "a text") end,
          kind .. " appears (in whole or part) in a text")
        assert_no_secret(value:sub(2, 16), { [kind] = value }, "a text")
      end
    end)

    it("the scripts work through the token service, logging every call, and print no secret", function()
      local out = run_script("reset.lua --with-test-data", { "scripts/reset.lua", "--with-test-data" }, true)
      -- ALEX_DEBUG really was on: one line per Data API call
      assert.matches('ExecuteStatement "INSERT INTO instruments', out, 1, true)
      assert.matches("-> 200 attempt 1", out, 1, true)
      out = run_script("verify.lua", { "scripts/verify.lua" }, true)
      assert.matches("ExecuteStatement", out, 1, true)
      run_script("migrate.lua --status", { "scripts/migrate.lua", "--status" }, true)
      out = run_script("seed.lua", { "scripts/seed.lua" }, true)
      assert.matches("seeded 22 instruments", out, 1, true)
      out = run_script("test_data_api.lua", { "scripts/test_data_api.lua" }, true)
      assert.matches("connected to database alex", out, 1, true)
    end)

    it("a failing query reports the database error and no secret", function()
      local out = run_script("a failing query", { "-e",
        [[local db = assert(require("alex.db").connect())
          db:query("SELECT * FROM no_such_table WHERE x = :x", { x = "v" })]] },
        false)
      assert.matches("no_such_table", out, 1, true)
      assert.matches("DatabaseErrorException", out, 1, true)
    end)

    -- test_data_api.lua with `changes`, refused with the AWS error `error_name`;
    -- the `planted` values (what -> value) are not printed either.
    local function refused(name, changes, error_name, planted)
      local out = run_script(name, { "scripts/test_data_api.lua" }, false, changes)
      assert.matches(error_name, out, 1, true)
      if planted then assert_no_secret(out, planted, "the output of " .. name) end
    end

    it("a wrong secret key is refused; neither key is printed", function()
      local wrong = random_text(40)
      refused("a wrong-secret call", { AWS_SECRET_ACCESS_KEY = wrong }, "InvalidSignatureException",
        { ["the wrong secret key"] = wrong })
    end)

    it("a wrong session token is refused without being echoed", function()
      local other = "OTHERsessionTOKEN" .. random_text(40)
      refused("a wrong-token call", { AWS_SESSION_TOKEN = other }, "UnrecognizedClientException",
        { ["the wrong token"] = other })
    end)

    it("a token sent to a service that expects none is refused without being echoed", function()
      refused("a token to the stack's service", { AWS_ENDPOINT_URL_RDS_DATA = s.endpoint },
        "UnrecognizedClientException")
    end)

    it("the services' logs and PostgreSQL's log hold no secret", function()
      local debug_log = assert(read_file(tok.log))
      -- debug level: one line per call, so the scan covers every call above
      assert.matches("ExecuteStatement", debug_log, 1, true)
      assert.matches("UnrecognizedClientException", debug_log, 1, true)
      assert.matches("InvalidSignatureException", debug_log, 1, true)
      assert_no_secret(debug_log, secrets, "the token service's debug log")
      assert_no_secret(read_file(tok.out) or "", secrets, "the token service's stderr")
      local files = { "dataapi.log", "dataapi.log.out", "pg.log" }
      for _, f in ipairs(files) do
        local text = read_file(s.dir .. "/" .. f)
        assert(text, "no " .. f .. " in the stack's state folder")
        assert_no_secret(text, secrets, "the stack's " .. f)
      end
      assert(#outputs >= 8, "every run above was scanned")
    end)
  end)

  describe("TLS verification", function()
    it("is always on in bindings/http.c: no option or setting disables it", function()
      local src = assert(read_file(ROOT .. "/bindings/http.c"))
      local found = {}
      for opt, value in src:gmatch("(CURLOPT_[%w_]*SSL_VERIFY%w+)%s*,%s*([^%)]+)%)") do
        found[#found + 1] = opt .. "=" .. value
      end
      table.sort(found)
      assert.same({ "CURLOPT_SSL_VERIFYHOST=2L", "CURLOPT_SSL_VERIFYPEER=1L" }, found)
      for _, bad in ipairs { "VERIFYPEER, 0", "VERIFYHOST, 0", "VERIFYPEER, 0L", "VERIFYHOST, 0L",
                             "VERIFYSTATUS, 0", "CURLOPT_PROXY_SSL_VERIFY", "insecure" } do
        assert.is_nil(src:find(bad, 1, true), "bindings/http.c contains " .. bad)
      end
      -- the option is set unconditionally: not inside an if, before every request
      assert.matches("\n%s*SETOPT%(CURLOPT_SSL_VERIFYPEER, 1L%);", src)
      assert.matches("\n%s*SETOPT%(CURLOPT_SSL_VERIFYHOST, 2L%);", src)
      for _, f in ipairs { "lua/alex/http.lua", "lua/alex/dataapi.lua", "lua/alex/config.lua", "lua/alex/db.lua" } do
        local text = read_file(ROOT .. "/" .. f) or ""
        assert.is_nil(text:lower():find("insecure", 1, true), f .. " mentions insecure")
        assert.is_nil(text:find("verify%s*=%s*false"), f .. " sets verify = false")
      end
    end)

    describe("against an HTTPS endpoint with a certificate from an unknown CA", function()
      local tls_dir, srv, tls

      lazy_setup(function()
        tls_dir = servers.tmpdir()
        tls = servers.make_tls(tls_dir)
        srv = servers.start_http { tls = tls }
      end)

      lazy_teardown(function()
        if srv then srv:stop() end
        if tls_dir then servers.rmtree(tls_dir) end
      end)

      local TLS_QUERY = [[
local db = require "alex.db"
local conn = assert(db.connect())
local rows, err = conn.safe:query("SELECT 1")
io.write("result: ", rows and "rows" or tostring(err and err.message or err), "\n")]]

      local function tls_vars(extra)
        local e = {
          AURORA_CLUSTER_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:tls-check",
          AURORA_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tls-check-AbCdEf",
          AURORA_DATABASE = "alex", AWS_REGION = "us-east-1",
          AWS_ACCESS_KEY_ID = "AKIAEXAMPLEEXAMPLE00", AWS_SECRET_ACCESS_KEY = random_text(40),
          AWS_ENDPOINT_URL_RDS_DATA = srv.url, AWS_MAX_ATTEMPTS = "1",
        }
        for k, v in pairs(extra or {}) do e[k] = v end
        return e
      end

      it("alex.db refuses it with a clear TLS error and sends nothing (AWS_CA_BUNDLE unset)", function()
        local before = srv:stats().requests or 0
        local ok, out = alexlua(tls_vars(), home, { "-e", TLS_QUERY })
        assert(ok, out)
        local msg = assert(out:match("result: ([^\n]*)"), out)
        assert.matches("TLS failure with 127.0.0.1", msg, 1, true)
        assert.matches("certificate", msg:lower(), 1, true)
        assert.equal(before, srv:stats().requests or 0)
      end)

      it("options that might look like switches do not turn verification off", function()
        local http = require "alex.http"
        local client = http.new { verify = false, insecure = true, ssl_verify_peer = false, ssl_verify_host = 0,
                                  connect_timeout = 5, timeout = 10 }
        local res, msg, kind = client:request { method = "GET", url = srv.url .. "/echo", headers = {} }
        client:close()
        assert.is_nil(res)
        assert.equal("tls", kind)
        assert.matches("certificate", msg:lower(), 1, true)
      end)

      it("a certificate for another name is refused even with its CA trusted", function()
        local wrong = servers.start_http { tls = { cert = tls.wrong_cert, key = tls.wrong_key } }
        local http = require "alex.http"
        local client = http.new { ca_bundle = tls.ca, connect_timeout = 5, timeout = 10 }
        local ok, res, msg, kind = pcall(client.request, client, { method = "GET", url = wrong.url .. "/echo",
                                                                   headers = {} })
        client:close()
        wrong:stop()
        assert.is_true(ok)
        assert.is_nil(res)
        assert.equal("tls", kind)
        assert.matches("127.0.0.1", msg, 1, true)
      end)

      it("the same endpoint is reached once its CA is trusted through AWS_CA_BUNDLE (control)", function()
        local before = srv:stats().requests or 0
        local ok, out = alexlua(tls_vars { AWS_CA_BUNDLE = tls.ca }, home, { "-e", TLS_QUERY })
        assert(ok, out)
        -- the test server is no Data API: whatever it answers, the request got there
        assert.is_nil(out:find("TLS failure", 1, true), out)
        assert.is_true((srv:stats().requests or 0) > before)
      end)
    end)
  end)

  describe("SQL injection", function()
    local plain_vars
    local EVIL = {
      [[x'); DROP TABLE users; --]],
      [[' OR '1'='1]],
      [[$$; DROP TABLE instruments; $$]],
      [[:name ::text /* */ -- ; DELETE FROM positions]],
      [["; TRUNCATE accounts CASCADE; --]],
      "\\'; DROP TABLE jobs; --",
    }

    lazy_setup(function()
      plain_vars = vars { ALEX_DEBUG = false, AWS_SESSION_TOKEN = false, AWS_ENDPOINT_URL_RDS_DATA = s.endpoint }
      local ok, out = alexlua(plain_vars, home, { "scripts/reset.lua", "--with-test-data" })
      assert(ok, "reset failed:\n" .. out)
    end)

    it("db parameters are data: they come back verbatim and change nothing", function()
      local before = fingerprint()
      local db = require "alex.db"
      local conn = assert(db.connect { env = function(k) return plain_vars[k] end })
      for _, evil in ipairs(EVIL) do
        local row = conn:query_one("SELECT :v AS v, length(:v) AS n", { v = evil })
        assert.equal(evil, row.v)
        assert.equal(utf8.len(evil), row.n)
        local rows = conn:query("SELECT symbol FROM instruments WHERE symbol = :s OR name = :s", { s = evil })
        assert.equal(0, #rows)
        conn:execute("UPDATE instruments SET current_price = current_price WHERE symbol = :s", { s = evil })
      end
      assert.equal(before, fingerprint())
    end)

    it("script arguments are data: the example fixes refuse or find nothing, and change nothing", function()
      local before = fingerprint()
      for _, evil in ipairs(EVIL) do
        local runs = {
          { "scripts/fixes/reprice.lua", evil, "1.00" },
          { "scripts/fixes/reprice.lua", "SPY", evil },
          { "scripts/fixes/move_position.lua", evil, "GLD", "401(k)", "Roth IRA" },
          { "scripts/fixes/move_position.lua", "test_user_001", evil, "401(k)", "Roth IRA" },
          { "scripts/fixes/move_position.lua", "test_user_001", "GLD", evil, "Roth IRA" },
          { "scripts/fixes/move_position.lua", "test_user_001", "GLD", "401(k)", "Roth IRA", "--quantity", evil },
          { "scripts/fixes/retag_allocations.lua", evil, "--regions", '{"europe":100}' },
          { "scripts/fixes/retag_allocations.lua", "VEA", "--regions", cjson.encode { [evil] = 100 } },
        }
        for _, args in ipairs(runs) do
          local ok, out = alexlua(plain_vars, home, args)
          assert(not ok, table.concat(args, " ") .. " should have failed:\n" .. out)
          assert.is_nil(out:find("syntax error", 1, true), out)
        end
      end
      assert.equal(before, fingerprint())
    end)

    it("seed --file: a malicious symbol is refused and nothing is written", function()
      local before = fingerprint()
      local file = dir .. "/evil-symbols.json"
      local recs = {}
      for i, evil in ipairs(EVIL) do
        recs[i] = { symbol = evil, name = "Evil " .. i, instrument_type = "etf", current_price = 1,
                    allocation_regions = { global = 100 }, allocation_sectors = { other = 100 },
                    allocation_asset_class = { equity = 100 } }
      end
      servers.write_file(file, cjson.encode(recs))
      local ok, out = alexlua(plain_vars, home, { "scripts/seed.lua", "--file", file })
      assert.is_false(ok)
      assert.matches("nothing was written", out, 1, true)
      assert.equal(before, fingerprint())
    end)

    it("seed --file: malicious names are stored verbatim and touch nothing else", function()
      -- the exact fingerprint's lines, keyed by what they fingerprint ("table users", "index ...")
      local function parts()
        local t = {}
        for line in fingerprint():gmatch("[^\n]+") do t[line:match("^(%S+ %S+)")] = line end
        return t
      end
      local before = parts()
      local file = dir .. "/evil-names.json"
      local recs = {}
      for i, evil in ipairs(EVIL) do
        recs[i] = { symbol = "ZZ" .. i, name = evil, instrument_type = "etf", current_price = 1.5,
                    allocation_regions = { global = 100 }, allocation_sectors = { other = 100 },
                    allocation_asset_class = { equity = 100 } }
      end
      servers.write_file(file, cjson.encode(recs))
      local ok, out = alexlua(plain_vars, home, { "scripts/seed.lua", "--file", file })
      assert(ok, out)
      local db = require "alex.db"
      local conn = assert(db.connect { env = function(k) return plain_vars[k] end })
      for i, evil in ipairs(EVIL) do
        local row = assert(conn:query_one("SELECT name FROM instruments WHERE symbol = :s", { s = "ZZ" .. i }))
        assert.equal(evil, row.name)
      end
      local after = parts()
      for k, line in pairs(before) do
        if k ~= "table instruments" then assert.equal(line, after[k], k .. " changed") end
      end
      assert.are_not.equal(before["table instruments"], after["table instruments"])
      assert.equal(22 + #EVIL, conn:query_one("SELECT count(*) AS n FROM instruments").n)
      conn:execute("DELETE FROM instruments WHERE symbol LIKE 'ZZ_'")
      assert.equal(before["table instruments"], parts()["table instruments"])
    end)

  end)

  describe("the local service's door", function()
    local sigv4 = require "alex.sigv4"
    local http = require "alex.http"
    local client

    local function body_for(sql)
      return cjson.encode { resourceArn = s.cluster_arn, secretArn = s.secret_arn, database = s.database, sql = sql }
    end

    -- A signed request; `tamper` may change the signing inputs or what is sent.
    local function call(sql, tamper)
      tamper = tamper or {}
      local body = body_for(sql)
      local signed = sigv4.sign {
        method = "POST", url = s.endpoint .. "/Execute", headers = { ["Content-Type"] = "application/json" },
        body = body, access_key = tamper.access_key or s.env.AWS_ACCESS_KEY_ID,
        secret_key = s.env.AWS_SECRET_ACCESS_KEY, region = tamper.region or s.env.AWS_REGION,
        service = tamper.service or "rds-data", amz_date = tamper.amz_date,
      }
      local headers = {}
      for _, h in ipairs(signed.headers) do
        local name, value = h[1], h[2]
        if name:lower() == "authorization" and tamper.authorization ~= nil then
          value = tamper.authorization and tamper.authorization(value) or nil -- false: no header
        end
        if value then headers[#headers + 1] = { name, value } end
      end
      local res, msg = client:request { method = "POST", url = s.endpoint .. "/Execute", headers = headers,
                                        body = tamper.body and body_for(tamper.body) or body }
      assert(res, msg)
      local ok, decoded = pcall(cjson.decode, res.body)
      return res.status, ok and decoded or {}
    end

    lazy_setup(function()
      client = http.new { connect_timeout = 5, timeout = 30 }
    end)

    lazy_teardown(function()
      if client then client:close() end
    end)

    it("refuses every unauthenticated or tampered request, runs none of them", function()
      local status, res = call("SELECT 1 AS ok")
      assert.equal(200, status, cjson.encode(res))
      local before = assert(s:stats()).operations.ExecuteStatement
      local probe = "CREATE TABLE door_probe (x int)"
      local old = os.date("!%Y%m%dT%H%M%SZ", os.time() - 600)
      local cases = {
        { "no Authorization", { authorization = false }, "MissingAuthenticationTokenException" },
        { "a bad signature", { authorization = function(v)
            return v:sub(1, -2) .. (v:sub(-1) == "0" and "1" or "0") end }, "InvalidSignatureException" },
        { "a changed body", { body = "CREATE TABLE door_probe (y int)" }, "InvalidSignatureException" },
        { "a date 10 minutes old", { amz_date = old }, "InvalidSignatureException", "Signature expired" },
        { "an unknown access key", { access_key = "AKIAUNKNOWNUNKNOWN00" }, "UnrecognizedClientException" },
        { "another region in the scope", { region = "eu-west-1" }, "InvalidSignatureException", "region" },
        { "another service in the scope", { service = "rds" }, "InvalidSignatureException", "service" },
        { "a malformed Authorization", { authorization = function() return "AWS4-HMAC-SHA256 garbage" end },
          "IncompleteSignatureException" },
      }
      for _, c in ipairs(cases) do
        local st, err = call(probe, c[2])
        assert.equal(403, st, c[1])
        assert.equal(c[3], err.__type, c[1] .. ": " .. cjson.encode(err))
        if c[4] then assert.matches(c[4], err.message or "", 1, true) end
        assert_no_secret(cjson.encode(err), { key = s.env.AWS_SECRET_ACCESS_KEY }, "the answer to " .. c[1])
      end
      assert.equal(before, assert(s:stats()).operations.ExecuteStatement)
      assert.equal("", assert(s:psql("SELECT relname FROM pg_class WHERE relname = 'door_probe'")))
    end)

    it("survives malformed HTTP: answers 4xx or closes, never runs anything, stays healthy", function()
      local script = dir .. "/raw_http.py"
      servers.write_file(script, RAW_HTTP_PY)
      local before = assert(s:stats()).operations.ExecuteStatement
      local ok, out = stack.run(servers.PYTHON .. " " .. q(script) .. " " .. s.api_port)
      assert(ok, out)
      local n = 0
      for line in out:gmatch("[^\n]+") do
        local r = cjson.decode(line)
        n = n + 1
        assert.is_nil(r.connect_error, line)
        if r.status then
          assert(r.status >= 400 and r.status < 500, line)
          if r.case == "binary-date" then
            -- raw X-Amz-Date bytes are echoed as printable ASCII: the body stays UTF-8 JSON
            assert.equal(403, r.status, line)
            assert.is_true(r.json, line)
          elseif r.status == 403 or r.status == 404 or r.status == 413 then
            assert.is_true(r.json, line) -- the service's own answers are JSON
          end
        end
      end
      assert.equal(13, n)
      assert.equal(before, assert(s:stats()).operations.ExecuteStatement)
      assert.equal("ok", assert(s:health()).status)
      assert.is_true(alive(assert(s:service_pid())))
    end)

    it("listens on 127.0.0.1 only", function()
      local tcp = assert(read_file("/proc/net/tcp"))
      local hex = ("%04X"):format(s.api_port)
      local addrs = {}
      for addr, st in tcp:gmatch("\n%s*%d+: (%x+):" .. hex .. " %x+:%x+ (%x%x)") do
        if st == "0A" then addrs[#addrs + 1] = addr end
      end
      assert.same({ "0100007F" }, addrs)
      local tcp6 = read_file("/proc/net/tcp6") or ""
      for addr, st in tcp6:gmatch("\n%s*%d+: (%x+):" .. hex .. " %x+:%x+ (%x%x)") do
        assert(st ~= "0A" or addr == "00000000000000000000000001000000", "listens on [" .. addr .. "]")
      end
    end)

    it("refuses to start on a non-loopback address", function()
      for _, listen in ipairs { "0.0.0.0:%d", "[::]:%d" } do
        local port = stack.free_ports(1)
        local svc = s:extra_service(nil, { args = { listen = listen:format(port) }, wait = false })
        servers.wait_until(function() return not alive(svc.pid) end, 5, 0.05)
        local running = alive(svc.pid)
        svc.stop()
        local out = read_file(svc.out) or ""
        os.remove(svc.out)
        assert.is_false(running, listen .. " was accepted")
        assert.matches("loopback", out, 1, true)
        assert.is_nil(servers.sanitizer_report(out), out)
      end
    end)
  end)

  describe("memory", function()
    local function has_valgrind()
      return os.execute("command -v valgrind >/dev/null 2>&1") == true
    end
    local function sanitized()
      local _, out = stack.run("nm -D " .. q(ALEXLUA) .. " 2>/dev/null | grep -c __asan_init")
      return (tonumber(out:match("%d+")) or 0) > 0
    end

    it("valgrind finds no definite leak in reset.lua --with-test-data", function()
      if not has_valgrind() then
        pending("valgrind is not installed")
        return
      end
      if sanitized() then
        pending("alexlua is an ASan build (valgrind cannot run it; LSan checks leaks there)")
        return
      end
      local log = dir .. "/valgrind.log"
      local v = vars { ALEX_DEBUG = false, AWS_SESSION_TOKEN = false, AWS_ENDPOINT_URL_RDS_DATA = s.endpoint }
      local ok, out = alexlua(v, home, { "scripts/reset.lua", "--with-test-data" },
        "valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --log-file=" .. q(log))
      local report = read_file(log) or ""
      assert(ok, "reset under valgrind failed:\n" .. out .. "\n" .. report:sub(-3000))
      assert.matches("ERROR SUMMARY: 0 errors", report, 1, true)
      local definite = report:match("definitely lost: ([%d,]+) bytes")
      if definite then
        assert.equal("0", definite, report:sub(-3000))
      else
        assert.matches("All heap blocks were freed", report, 1, true)
      end
    end)
  end)
end)
