-- luacheck: std +busted
-- alex.http (bindings/http.c) against real servers on 127.0.0.1: plain HTTP and
-- HTTPS with a CA made here by the openssl CLI, plus child alexlua processes
-- for stderr (verbose redaction), environment (AWS_CA_BUNDLE) and Ctrl-C.
local http = require "alex.http"
local cjson = require "cjson"
local servers = require "servers"

local ALEXLUA = assert(os.getenv("ALEXLUA"), "ALEXLUA must hold the absolute path of the binary under test")
local q = servers.q

local function echo_headers(res)
  local t = {}
  for _, pair in ipairs(cjson.decode(res.body).headers) do t[pair[1]:lower()] = pair[2] end
  return t
end

local function header_names(res)
  local names = {}
  for _, pair in ipairs(cjson.decode(res.body).headers) do names[#names + 1] = pair[1] end
  return names
end

-- Runs a Lua chunk in a child alexlua; returns exit code, stdout, stderr.
local function run_child(dir, code, env)
  local script = dir .. "/child.lua"
  servers.write_file(script, code)
  local errf = dir .. "/child.err"
  local p = assert(io.popen(("env %s %s --no-env-file %s 2>%s"):format(env or "", q(ALEXLUA), q(script), q(errf))))
  local out = p:read("a")
  local _, _, rc = p:close()
  return rc, out, servers.read_file(errf) or ""
end

describe("alex.http", function()
  local srv, tsrv, dir, tls

  lazy_setup(function()
    dir = servers.tmpdir()
    tls = servers.make_tls(dir)
    srv = servers.start_http()
    tsrv = servers.start_http { tls = tls }
  end)

  lazy_teardown(function()
    if srv then srv:stop() end
    if tsrv then tsrv:stop() end
    if dir then servers.rmtree(dir) end
  end)

  describe("requests and responses", function()
    local client
    before_each(function() client = http.new() end)
    after_each(function() client:close() end)

    it("GETs by default and returns status, lower-cased headers and body", function()
      local res, err, kind = client:request { url = srv.url .. "/echo?a=1" }
      assert.is_nil(err, kind)
      assert.equal(200, res.status)
      assert.equal("application/json", res.headers["content-type"])
      assert.equal(tostring(#res.body), res.headers["content-length"])
      local e = cjson.decode(res.body)
      assert.equal("GET", e.method)
      assert.equal("/echo?a=1", e.path)
      assert.equal(0, e.body_length)
    end)

    it("sends the method, body and headers given as a map", function()
      local body = "{\"sql\":\"select 1\"}\0binary"
      local res = assert(client:request {
        method = "POST", url = srv.url .. "/echo", body = body,
        headers = { ["Content-Type"] = "application/json", ["X-Amz-Date"] = "20240101T000000Z", ["X-Num"] = 42 },
      })
      local e = cjson.decode(res.body)
      assert.equal("POST", e.method)
      assert.equal(#body, e.body_length)
      assert.equal(body, e.body)
      local h = echo_headers(res)
      assert.equal("application/json", h["content-type"])
      assert.equal("20240101T000000Z", h["x-amz-date"])
      assert.equal("42", h["x-num"])
      assert.equal(tostring(#body), h["content-length"])
      assert.is_nil(h["expect"])
    end)

    it("keeps the order of headers given as a list of pairs", function()
      local res = assert(client:request {
        method = "PUT", url = srv.url .. "/echo", body = "x",
        headers = { { "X-Third", "3" }, { "X-First", "1" }, { "X-Second", "2" }, { "X-Empty", "" } },
      })
      local names, order = header_names(res), {}
      for _, n in ipairs(names) do
        if n:match("^X%-") then order[#order + 1] = n end
      end
      assert.same({ "X-Third", "X-First", "X-Second", "X-Empty" }, order)
      assert.equal("", echo_headers(res)["x-empty"])
      assert.equal("PUT", cjson.decode(res.body).method)
    end)

    it("adds no form content type of its own to a POST", function()
      local res = assert(client:request { method = "POST", url = srv.url .. "/echo", body = "a=b" })
      assert.is_nil(echo_headers(res)["content-type"])
    end)

    it("sends Content-Length: 0 for a POST without body, and DELETE/PATCH/HEAD", function()
      local res = assert(client:request { method = "POST", url = srv.url .. "/echo" })
      assert.equal("0", echo_headers(res)["content-length"])
      res = assert(client:request { method = "DELETE", url = srv.url .. "/echo" })
      assert.equal("DELETE", cjson.decode(res.body).method)
      res = assert(client:request { method = "PATCH", url = srv.url .. "/echo", body = "p" })
      assert.equal("PATCH", cjson.decode(res.body).method)
      res = assert(client:request { method = "HEAD", url = srv.url .. "/echo" })
      assert.equal(200, res.status)
      assert.equal("", res.body)
      assert.truthy(tonumber(res.headers["content-length"]) > 0)
    end)

    it("returns 4xx and 5xx answers as responses", function()
      for _, code in ipairs { 400, 403, 404, 500, 503 } do
        local res, err = client:request { url = srv.url .. "/status?code=" .. code }
        assert.is_nil(err)
        assert.equal(code, res.status)
        assert.equal("status " .. code, res.body)
      end
      local res = assert(client:request { url = srv.url .. "/status?code=204" })
      assert.equal(204, res.status)
      assert.equal("", res.body)
    end)

    it("joins repeated response headers with ', ' and trims values", function()
      local res = assert(client:request { url = srv.url .. "/headers" })
      assert.equal("a, b, c", res.headers["x-multi"])
      assert.equal("padded value", res.headers["mixed-case-name"])
      assert.equal("", res.headers["x-empty"])
      assert.is_nil(res.headers["Mixed-CASE-Name"])
    end)

    it("round-trips a 4 MiB binary request body and a 2 MiB response exactly", function()
      local parts = {}
      for i = 1, 4 * 1024 * 1024 // 8 do parts[i] = string.pack("<I8", (i * 0x9E3779B97F4A7C15) & -1) end
      local big = table.concat(parts)
      assert.equal(4 * 1024 * 1024, #big)
      local res = assert(client:request { method = "POST", url = srv.url .. "/raw", body = big })
      assert.equal(200, res.status)
      assert.equal(#big, #res.body)
      assert.is_true(res.body == big)
      local n = 2 * 1024 * 1024
      res = assert(client:request { url = srv.url .. "/bytes?n=" .. n })
      assert.equal(n, #res.body)
      assert.is_true(res.body == servers.pattern(n))
    end)

    it("does the same over HTTPS", function()
      local c = http.new { ca_bundle = tls.ca }
      local big = servers.pattern(4 * 1024 * 1024 + 3):reverse()
      local res = assert(c:request { method = "POST", url = tsrv.url .. "/raw", body = big })
      assert.is_true(res.body == big)
      res = assert(c:request { url = tsrv.url .. "/bytes?n=2097152" })
      assert.is_true(res.body == servers.pattern(2097152))
      c:close()
    end)
  end)

  describe("connection reuse", function()
    it("keeps one HTTP connection across requests of one client", function()
      local client = http.new()
      local before = srv:stats().connections
      local res = assert(client:request { url = srv.url .. "/echo" })
      assert.equal(1, res.new_connections)
      for _ = 1, 5 do
        res = assert(client:request { method = "POST", url = srv.url .. "/echo", body = "x" })
        assert.equal(0, res.new_connections)
      end
      assert.equal(before + 1, srv:stats().connections)
      -- a second client has its own connection
      local other = http.new()
      res = assert(other:request { url = srv.url .. "/echo" })
      assert.equal(1, res.new_connections)
      assert.equal(before + 2, srv:stats().connections)
      other:close()
      client:close()
    end)

    it("keeps one TLS connection across requests of one client", function()
      local client = http.new { ca_bundle = tls.ca }
      local before = tsrv:stats().connections
      for i = 1, 4 do
        local res = assert(client:request { url = tsrv.url .. "/echo" })
        assert.equal(i == 1 and 1 or 0, res.new_connections)
      end
      assert.equal(before + 1, tsrv:stats().connections)
      client:close()
    end)

    it("reconnects after the server closed the connection", function()
      local client = http.new()
      assert(client:request { url = srv.url .. "/echo" })
      local res, _, kind = client:request { url = srv.url .. "/partial" }
      assert.is_nil(res)
      assert.equal("reset", kind)
      res = assert(client:request { url = srv.url .. "/echo" })
      assert.equal(1, res.new_connections)
      assert.equal(200, res.status)
      client:close()
    end)

    it("http.request uses one default client per Lua state", function()
      local before = srv:stats().connections
      local res = assert(http.request { url = srv.url .. "/echo" })
      assert.equal(200, res.status)
      res = assert(http.request { method = "POST", url = srv.url .. "/echo", body = "b" })
      assert.equal(0, res.new_connections)
      assert.equal(before + 1, srv:stats().connections)
    end)
  end)

  describe("failures", function()
    local client
    before_each(function() client = http.new { connect_timeout = 2, timeout = 5 } end)
    after_each(function() client:close() end)

    it("reports a refused connection as 'connect', naming the host", function()
      local res, err, kind = client:request { url = "http://127.0.0.1:" .. srv.refused_port .. "/" }
      assert.is_nil(res)
      assert.equal("connect", kind)
      assert.matches("127.0.0.1:" .. srv.refused_port, err, 1, true)
    end)

    it("reports an unknown host as 'dns', quickly", function()
      local t0 = servers.now()
      local res, err, kind = client:request { url = "https://nonexistent.invalid/", connect_timeout = 3 }
      local elapsed = servers.now() - t0
      assert.is_nil(res)
      assert.equal("dns", kind)
      assert.matches("nonexistent.invalid", err, 1, true)
      assert.truthy(elapsed < 4, "took " .. elapsed .. " s")
    end)

    it("reports a silent server as 'timeout' after the time limit", function()
      local t0 = servers.now()
      local res, err, kind = client:request { url = srv.url .. "/slow?delay=3", timeout = 0.5 }
      local elapsed = servers.now() - t0
      assert.is_nil(res)
      assert.equal("timeout", kind)
      assert.matches("127.0.0.1:" .. srv.port, err, 1, true)
      assert.truthy(elapsed >= 0.45 and elapsed < 2, "took " .. elapsed .. " s")
    end)

    it("uses the client's timeout when the request gives none", function()
      local c = http.new { timeout = 0.3 }
      local t0 = servers.now()
      local _, _, kind = c:request { url = srv.url .. "/slow?delay=3" }
      assert.equal("timeout", kind)
      assert.truthy(servers.now() - t0 < 2)
      c:close()
    end)

    it("reports a TLS handshake that never completes as 'connect' (request not sent)", function()
      local t0 = servers.now()
      local res, err, kind = client:request {
        url = "https://127.0.0.1:" .. srv.silent_port .. "/", connect_timeout = 0.5,
      }
      assert.is_nil(res)
      assert.equal("connect", kind)
      assert.matches("timed out", err, 1, true)
      assert.truthy(servers.now() - t0 < 2)
    end)

    it("reports a connection closed mid-response as 'reset'", function()
      for _, path in ipairs { "/partial", "/rst", "/nothing" } do
        local res, err, kind = client:request { url = srv.url .. path }
        assert.is_nil(res, path)
        assert.equal("reset", kind, path .. ": " .. tostring(err))
        assert.matches("127.0.0.1:" .. srv.port, err, 1, true)
      end
    end)

    it("reports an answer that is not HTTP as 'protocol'", function()
      local res, err, kind = client:request { url = srv.url .. "/garbage" }
      assert.is_nil(res)
      assert.equal("protocol", kind, err)
    end)

    it("stays usable after failures", function()
      assert.is_nil((client:request { url = srv.url .. "/rst" }))
      assert.is_nil((client:request { url = "http://127.0.0.1:" .. srv.refused_port .. "/" }))
      local res = assert(client:request { url = srv.url .. "/echo" })
      assert.equal(200, res.status)
    end)
  end)

  describe("TLS verification", function()
    it("fails with 'tls' when the CA is not trusted", function()
      local c = http.new { ca_bundle = false } -- ignore AWS_CA_BUNDLE even if set
      local res, err, kind = c:request { url = tsrv.url .. "/echo" }
      assert.is_nil(res)
      assert.equal("tls", kind)
      assert.matches("127.0.0.1:" .. tsrv.port, err, 1, true)
      c:close()
    end)

    it("succeeds with ca_bundle naming the CA, by IP and by name", function()
      local c = http.new { ca_bundle = tls.ca }
      local res = assert(c:request { url = tsrv.url .. "/echo" })
      assert.equal(200, res.status)
      res = assert(c:request { url = "https://localhost:" .. tsrv.port .. "/echo" })
      assert.equal(200, res.status)
      c:close()
    end)

    it("refuses a certificate for another name even with the CA trusted", function()
      local wrong = servers.start_http { tls = { cert = tls.wrong_cert, key = tls.wrong_key } }
      local c = http.new { ca_bundle = tls.ca }
      local res, err, kind = c:request { url = wrong.url .. "/echo" }
      c:close()
      wrong:stop()
      assert.is_nil(res)
      assert.equal("tls", kind)
      assert.matches("127.0.0.1", err, 1, true)
    end)

    it("names a missing CA bundle file", function()
      local c = http.new { ca_bundle = dir .. "/missing.pem" }
      local res, err, kind = c:request { url = tsrv.url .. "/echo" }
      assert.is_nil(res)
      assert.equal("tls", kind)
      assert.matches("missing.pem", err, 1, true)
      c:close()
    end)

    it("trusts the CA named by AWS_CA_BUNDLE", function()
      local code = ([[
        local http = require "alex.http"
        local res, err, kind = http.new():request { url = %q }
        print(res and res.status or kind)
        local _, _, k2 = http.new { ca_bundle = false }:request { url = %q }
        print(k2)
        print((http.request { url = %q }).status)
      ]]):format(tsrv.url .. "/echo", tsrv.url .. "/echo", tsrv.url .. "/echo")
      local rc, out, err = run_child(dir, code, "AWS_CA_BUNDLE=" .. q(tls.ca))
      assert.equal(0, rc, err)
      assert.equal("200\ntls\n200\n", out)
      rc, out = run_child(dir, (code:gsub("print%(%(http.request.-\n", "")), "-u AWS_CA_BUNDLE")
      assert.equal(0, rc)
      assert.equal("tls\ntls\n", out)
    end)
  end)

  describe("output", function()
    it("prints nothing unless verbose", function()
      local rc, out, err = run_child(dir, ([[
        local http = require "alex.http"
        local c = http.new()
        assert(c:request { method = "POST", url = %q, body = "hello",
                           headers = { Authorization = "AWS4 SIG-NOT-PRINTED" } })
        assert(not c:request { url = "http://127.0.0.1:%d/" })
        io.write("done")
      ]]):format(srv.url .. "/echo", srv.refused_port))
      assert.equal(0, rc, err)
      assert.equal("done", out)
      assert.equal("", err)
    end)

    it("redacts credentials in verbose output", function()
      local rc, out, err = run_child(dir, ([[
        local http = require "alex.http"
        local c = http.new { verbose = true }
        local res = assert(c:request {
          method = "POST", url = %q, body = "BODY-SECRET-1",
          headers = {
            Authorization = "AWS4-HMAC-SHA256 Credential=AKIDHIDDEN/20240101/us-east-1/rds-data/aws4_request, "
              .. "SignedHeaders=host, Signature=SIGHIDDEN",
            ["X-Amz-Security-Token"] = "SESSION-TOKEN-HIDDEN",
            ["X-Custom-Secret-Key"] = "OTHER-SECRET-HIDDEN",
            ["X-Visible"] = "visible-value",
          },
        })
        io.write(res.status)
      ]]):format(srv.url .. "/echo?X-Amz-Security-Token=QUERY-TOKEN-HIDDEN&plain=1"))
      assert.equal(0, rc, err)
      assert.equal("200", out)
      for _, secret in ipairs { "AKIDHIDDEN", "SIGHIDDEN", "SESSION-TOKEN-HIDDEN", "OTHER-SECRET-HIDDEN",
                                "QUERY-TOKEN-HIDDEN", "BODY-SECRET-1" } do
        assert.is_nil(err:find(secret, 1, true), secret .. " leaked:\n" .. err)
      end
      assert.matches("Authorization: <redacted>", err, 1, true)
      assert.matches("X-Amz-Security-Token: <redacted>", err, 1, true)
      assert.matches("X-Custom-Secret-Key: <redacted>", err, 1, true)
      assert.matches("X-Visible: visible-value", err, 1, true)
      assert.matches("POST /echo", err, 1, true)
      assert.matches("HTTP/1.1 200", err, 1, true)
    end)
  end)

  describe("with a DNS server that never answers", function()
    -- In a private network and mount namespace (unshare -rnm, no root needed):
    -- /etc/resolv.conf points at a local UDP socket that swallows queries, as
    -- on a machine whose network is gone.  Nothing outside the namespace changes.
    it("fails with 'dns' within connect_timeout, and Ctrl-C still ends it at once", function()
      if not servers.run("unshare -rnm true") then
        pending("user namespaces are not available here (unshare -rnm)")
        return
      end
      servers.write_file(dir .. "/resolv.conf", "nameserver 127.0.0.1\noptions timeout:5 attempts:3\n")
      servers.write_file(dir .. "/blackhole.py", [[
import fcntl, socket, struct, sys
s = socket.socket()
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))  # lo up
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 53))
open(sys.argv[1], "w").close()
while True:
    u.recvfrom(4096)
]])
      servers.write_file(dir .. "/dns_child.lua", [[
        local http = require "alex.http"
        local res, err, kind = http.new { connect_timeout = 1 }:request { url = "https://nonexistent.invalid/" }
        print(tostring(res) .. " " .. tostring(kind))
        io.stderr:write(tostring(err), "\n")
      ]])
      servers.write_file(dir .. "/dns_interrupt.lua", [[
        require "alex.http".request { url = "https://unanswered.invalid/", connect_timeout = 30 }
      ]])
      servers.write_file(dir .. "/dns.sh", ([[
        set -u
        mount --bind %s/resolv.conf /etc/resolv.conf || exit 3
        %s %s/blackhole.py %s/ready & bh=$!
        i=0; while [ ! -e %s/ready ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
        ms() { echo $(( $(date +%%s%%N) / 1000000 )); }
        t0=$(ms); %s --no-env-file %s/dns_child.lua 2>%s/dns.err; echo "elapsed $(( $(ms) - t0 ))"
        env --default-signal=INT %s --no-env-file %s/dns_interrupt.lua 2>%s/dns_interrupt.err & pid=$!
        sleep 0.5; t0=$(ms); kill -INT $pid; wait $pid; rc=$?; echo "interrupt $rc $(( $(ms) - t0 ))"
        kill $bh; wait $bh 2>/dev/null
        exit 0
      ]]):format(dir, servers.PYTHON, dir, dir, dir, q(ALEXLUA), dir, dir, q(ALEXLUA), dir, dir))
      local ok, out = servers.run("unshare -rnm sh " .. q(dir .. "/dns.sh"))
      assert.is_true(ok, out)
      assert.matches("^nil dns\n", out)
      local elapsed = tonumber(out:match("elapsed (%d+)"))
      assert.truthy(elapsed and elapsed >= 900 and elapsed < 3000, out)
      local dns_err = servers.read_file(dir .. "/dns.err")
      assert.matches("nonexistent.invalid", dns_err, 1, true)
      assert.is_nil(dns_err:find("Sanitizer", 1, true), dns_err)
      local rc, ms = out:match("interrupt (%d+) (%d+)")
      assert.equal("130", rc, out)
      assert.truthy(tonumber(ms) < 1000, out)
      assert.matches("interrupted", servers.read_file(dir .. "/dns_interrupt.err"), 1, true)
    end)
  end)

  describe("Ctrl-C", function()
    it("stops a request in flight: the child exits 130 promptly with 'interrupted'", function()
      local script = dir .. "/interrupt.lua"
      servers.write_file(script, ([[
        local f = assert(io.open("/proc/self/stat"))
        local pid = f:read("l"):match("^(%%d+)")
        f:close()
        io.write(pid, "\n")
        io.flush()
        local http = require "alex.http"
        local res, err, kind = http.request { url = %q, timeout = 60 }
        io.write("returned ", tostring(res), " ", tostring(err), " ", tostring(kind), "\n")
      ]]):format(srv.url .. "/slow?delay=20"))
      local errf = dir .. "/interrupt.err"
      local started = srv:stats().slow_started or 0
      local p = assert(io.popen(("exec %s --no-env-file %s 2>%s"):format(q(ALEXLUA), q(script), q(errf))))
      local pid = tonumber(p:read("l"))
      assert.truthy(pid)
      local ok_wait = srv:wait_stat("slow_started", started + 1, 10)
      local t0 = servers.now()
      os.execute("kill -INT " .. pid)
      local rest = p:read("a")
      local _, how, code = p:close()
      local elapsed = servers.now() - t0
      assert.is_true(ok_wait, "the request never reached the server")
      assert.equal("exit", how)
      assert.equal(130, code)
      assert.equal("", rest)
      assert.matches("interrupted", servers.read_file(errf) or "", 1, true)
      assert.truthy(elapsed < 1.5, "took " .. elapsed .. " s")
    end)
  end)

  describe("send and receive", function()
    local client
    before_each(function() client = http.new() end)
    after_each(function() client:close() end)

    it("give what request gives, the body kept alive between them", function()
      local n = 4 * 1024 * 1024 + 5
      local body = servers.pattern(n):reverse()
      assert.is_true(client:send { method = "POST", url = srv.url .. "/raw", body = body })
      body = nil -- luacheck: ignore (only the client holds the body now)
      collectgarbage()
      collectgarbage()
      local res = assert(client:receive())
      assert.equal(200, res.status)
      assert.is_true(res.body == servers.pattern(n):reverse())
      assert.equal(1, #client:request { url = srv.url .. "/bytes?n=1" }.body) -- the client is free again
    end)

    it("return from send before the answer, so that other work runs meanwhile", function()
      local clock = require "alex.clock"
      local t0 = clock.monotonic()
      assert.is_true(client:send { url = srv.url .. "/slow?delay=1" })
      local sent = clock.monotonic() - t0
      local other = http.new()
      local res = assert(other:request { url = srv.url .. "/echo" }) -- on another connection, meanwhile
      other:close()
      assert.equal(200, res.status)
      res = assert(client:receive())
      assert.equal(200, res.status)
      assert.truthy(sent < 0.5, "send took " .. sent .. " s")
      assert.truthy(clock.monotonic() - t0 >= 0.9)
    end)

    it("refuse a second request in flight, and receive with none", function()
      local function raises(pattern, fn)
        local ok, err = pcall(fn)
        assert.is_false(ok)
        assert.matches(pattern, tostring(err), 1, true)
      end
      raises("receive without a request sent", function() client:receive() end)
      assert.is_true(client:send { url = srv.url .. "/echo" })
      raises("in flight", function() client:request { url = srv.url .. "/echo" } end)
      raises("in flight", function() client:send { url = srv.url .. "/echo" } end)
      assert.equal(200, assert(client:receive()).status)
      raises("receive without a request sent", function() client:receive() end)
    end)

    it("report a failure to send as request would, with nothing left in flight", function()
      local port = servers.free_port()
      local ok, msg, kind = client:send { url = "http://127.0.0.1:" .. port .. "/" }
      if ok then ok, msg, kind = client:receive() end -- refused while connecting, or on the way
      assert.is_nil(ok)
      assert.equal("connect", kind)
      assert.matches("127.0.0.1:" .. port, msg, 1, true)
      assert.equal(200, assert(client:request { url = srv.url .. "/echo" }).status)
    end)

    it("close a client with a request in flight cleanly", function()
      local c = http.new()
      assert.is_true(c:send { method = "POST", url = srv.url .. "/slow?delay=1", body = "x" })
      c:close()
      local ok, err = pcall(c.receive, c)
      assert.is_false(ok)
      assert.matches("closed", tostring(err), 1, true)
      local d = http.new()
      assert.is_true(d:send { url = srv.url .. "/slow?delay=1" })
      d = nil -- luacheck: ignore (collected with the request in flight)
      collectgarbage()
      collectgarbage()
      assert.equal(200, assert(client:request { url = srv.url .. "/echo" }).status)
    end)
  end)

  describe("arguments", function()
    local client
    before_each(function() client = http.new() end)
    after_each(function() client:close() end)

    local function raises(pattern, fn)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert.matches(pattern, tostring(err), 1, true)
    end

    it("raises naming the field", function()
      raises("'url'", function() client:request {} end)
      raises("'url'", function() client:request { url = 42 } end)
      raises("'url'", function() client:request { url = "not a url" } end)
      raises("'url'", function() client:request { url = "ftp://127.0.0.1/" } end)
      raises("'method'", function() client:request { url = srv.url, method = 1 } end)
      raises("'method'", function() client:request { url = srv.url, method = "GE T" } end)
      raises("'body'", function() client:request { url = srv.url, body = {} } end)
      raises("'body'", function() client:request { url = srv.url, method = "HEAD", body = "x" } end)
      raises("'headers'", function() client:request { url = srv.url, headers = "x" } end)
      raises("'headers'", function() client:request { url = srv.url, headers = { X = {} } } end)
      raises("'headers'", function() client:request { url = srv.url, headers = { ["Bad Name"] = "v" } } end)
      raises("'headers'", function() client:request { url = srv.url, headers = { X = "a\r\nInjected: 1" } } end)
      raises("'headers'", function() client:request { url = srv.url, headers = { { "X" } } } end)
      raises("'headers'", function() client:request { url = srv.url, headers = { "X: y" } } end)
      raises("'headers'", function() client:request { url = srv.url, headers = { { "X", "1" }, Y = "2" } } end)
      raises("'timeout'", function() client:request { url = srv.url, timeout = "5" } end)
      raises("'timeout'", function() client:request { url = srv.url, timeout = 0 } end)
      raises("'connect_timeout'", function() client:request { url = srv.url, connect_timeout = -1 } end)
      raises("table", function() client:request "http://x/" end)
      raises("'timeout'", function() http.new { timeout = "x" } end)
      raises("'verbose'", function() http.new { verbose = 1 } end)
      raises("'ca_bundle'", function() http.new { ca_bundle = 5 } end)
      raises("table", function() http.new "x" end)
    end)

    it("raises on a closed client; close is idempotent; <close> closes", function()
      local c = http.new()
      c:close()
      c:close()
      raises("closed", function() c:request { url = srv.url .. "/echo" } end)
      assert.matches("closed", tostring(c), 1, true)
      local kept
      do
        local d <close> = http.new()
        kept = d
        assert(d:request { url = srv.url .. "/echo" })
      end
      raises("closed", function() kept:request { url = srv.url .. "/echo" } end)
    end)

    it("does not send a request when the arguments are bad", function()
      local before = srv:stats().requests
      pcall(client.request, client, { url = srv.url .. "/echo", headers = { X = "a\nb" } })
      assert.equal(before, srv:stats().requests)
    end)
  end)
end)
