-- Test servers for specs: the HTTP(S) server in http_server.py on a free
-- loopback port, TLS material made with the openssl CLI, temp folders, timing.
--
--   local servers = require "servers"
--   local dir = servers.tmpdir()
--   local tls = servers.make_tls(dir)            -- { ca =, cert =, key = } files
--   local srv = servers.start_http { tls = tls } -- tls optional
--   srv.port, srv.url ("http(s)://127.0.0.1:port"), srv.pid,
--   srv.refused_port (connections refused), srv.silent_port (accepted by the
--   kernel, never answered),
--   srv:stats() -> { connections =, requests =, slow_inflight =, slow_started = }
--   srv:wait_stat("slow_inflight", 1, 5), srv:stop()
--   servers.free_port(), servers.wait_listening(port, seconds), servers.now(),
--   servers.sleep(s), servers.wait_until(check, seconds, interval),
--   servers.rmtree(dir), servers.q(shell_word), servers.alive(pid),
--   servers.stop_pid(pid, "TERM", seconds, kill_after),
--   servers.sanitizer_report(stderr_text), servers.spawn(cmd, dir, cwd)
--
-- A server is a direct child of the spec (io.popen with exec), so stop() reaps
-- it; it also exits by itself when the spec process dies.
local servers = {}

servers.PYTHON = "/usr/bin/python3" -- Debian's, not a pyenv one first on PATH

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/support"
if here:sub(1, 1) ~= "/" then
  local p = io.popen("pwd")
  local pwd = p and p:read("l") or "."
  if p then p:close() end
  here = pwd .. "/" .. here
end
servers.support_dir = here

local function q(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end
servers.q = q

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
servers.read_file = read_file

-- Asserts that the string s holds sub (plain text), showing both when not.
function servers.contains(s, sub)
  local assert = require "luassert"
  assert.is_string(s)
  assert(s:find(sub, 1, true), ("expected %q\nto contain %q"):format(s, sub))
end

-- The keys of t, sorted.
function servers.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

-- A copy of t with the keys of `changes` set; a change equal to `unset` (when
-- given) removes its key instead.
function servers.with(t, changes, unset)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  for k, v in pairs(changes or {}) do
    if unset ~= nil and v == unset then c[k] = nil else c[k] = v end
  end
  return c
end

-- An env function (name -> value, as alex.* modules take) over the table t,
-- with `defaults` for the names t lacks.
function servers.env(t, defaults)
  t = t or {}
  return function(name)
    local v = t[name]
    if v == nil then return defaults[name] end
    return v
  end
end

-- NAME='value' words for a shell command line, one per variable of vars,
-- sorted by name.
function servers.assignments(vars)
  local parts = {}
  for _, k in ipairs(servers.sorted_keys(vars)) do parts[#parts + 1] = k .. "=" .. q(vars[k]) end
  return table.concat(parts, " ")
end

-- Whether process pid runs (a zombie does not).
function servers.alive(pid)
  local status = read_file("/proc/" .. pid .. "/status")
  return status ~= nil and not status:match("\nState:%s+Z")
end

-- Sends signal `sig` (a name: "TERM", "INT", ...) to process pid and waits up
-- to `seconds` for it to end; when it still runs then and kill_after is true,
-- sends KILL.  Returns true when it ended within the time.
function servers.stop_pid(pid, sig, seconds, kill_after)
  if not pid then return false end
  os.execute(("kill -%s %d 2>/dev/null"):format(sig, pid))
  servers.wait_until(function() return not servers.alive(pid) end, seconds, 0.05)
  local ended = not servers.alive(pid)
  if not ended and kill_after then os.execute(("kill -KILL %d 2>/dev/null"):format(pid)) end
  return ended
end

-- The sanitizer report (ASan/UBSan/LSan) in a process's stderr text, or nil.
function servers.sanitizer_report(text)
  return text:match("==%d+==ERROR: %a+Sanitizer.*") or text:match("[^\n]*runtime error:.*")
end

function servers.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end

-- Runs a shell command; returns ok, output (stdout + stderr), exit code.
local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok == true, out, code
end
servers.run = run

function servers.sleep(seconds)
  os.execute(("sleep %.3f"):format(seconds))
end

-- Wall-clock seconds with a sub-second fraction.
local has_clock, clock = pcall(require, "alex.clock")
function servers.now()
  if has_clock and type(clock) == "table" and clock.monotonic then return clock.monotonic() end
  local p = assert(io.popen("date +%s.%N"))
  local s = p:read("l")
  p:close()
  return assert(tonumber(s))
end

-- Calls check() every `interval` seconds while `seconds` have not passed;
-- returns the first true value it gives, or false when the time ran out.
function servers.wait_until(check, seconds, interval)
  local deadline = servers.now() + seconds
  while servers.now() < deadline do
    local v = check()
    if v then return v end
    servers.sleep(interval)
  end
  return false
end

function servers.tmpdir()
  local ok, out = run("mktemp -d /tmp/alexlua-spec.XXXXXX")
  local dir = out:match("^(%S+)")
  assert(ok and dir, "mktemp failed: " .. out)
  return dir
end

function servers.rmtree(dir)
  assert(type(dir) == "string" and dir:match("^/tmp/alexlua%-spec%.[%w]+$"), "refusing to remove " .. tostring(dir))
  os.execute("rm -rf " .. q(dir))
end

-- A child in the background: the shell command `cmd`, which must end in one
-- program (`env ... program args`: the handle holds that program's pid), run
-- in folder cwd (default: this one) under env --default-signal=INT (a shell
-- starts background commands with SIGINT ignored; this gives it back its
-- default), stdin /dev/null, stdout and stderr in dir/.out and dir/.err (dir:
-- default a new temp folder, which cleanup() removes).  The handle:
--   h.pid, h.dir, h.out(), h.err(), h.exited(), h.signal("INT"),
--   h.wait_for(text, seconds): whether stdout showed text in time (20 s),
--   h.wait(seconds) -> exit code (128 + n for signal n), stdout, stderr, or nil
--     while it still runs then; an error when stderr holds a sanitizer report,
--   h.cleanup(): KILL when it still runs (for finally).
function servers.spawn(cmd, dir, cwd)
  local temp = dir == nil
  dir = dir or servers.tmpdir()
  local pidf, rcf, outf, errf = dir .. "/.pid", dir .. "/.rc", dir .. "/.out", dir .. "/.err"
  assert(os.execute(("%s( env --default-signal=INT %s </dev/null >%s 2>%s & echo $! >%s; wait $!; echo $? >%s )"
    .. " >/dev/null 2>&1 &"):format(cwd and ("cd " .. q(cwd) .. " && ") or "", cmd, q(outf), q(errf), q(pidf),
    q(rcf))))
  local h = { dir = dir }
  h.pid = servers.wait_until(function() return tonumber((read_file(pidf) or ""):match("%d+")) end, 10, 0.02)
  assert(h.pid, "the child did not start: " .. cmd)
  function h.out() return read_file(outf) or "" end
  function h.err() return read_file(errf) or "" end
  local function code() return tonumber((read_file(rcf) or ""):match("%d+")) end
  function h.exited() return code() ~= nil end
  function h.signal(name) os.execute(("kill -%s %d 2>/dev/null"):format(name, h.pid)) end
  function h.wait_for(text, seconds)
    return servers.wait_until(function() return h.out():find(text, 1, true) ~= nil end, seconds or 20, 0.02)
  end
  function h.wait(seconds)
    local rc = servers.wait_until(code, seconds, 0.02)
    if not rc then return nil end
    local err = h.err()
    local report = servers.sanitizer_report(err)
    if report then error("sanitizer report from a child:\n" .. report:sub(1, 4000), 2) end
    return rc, h.out(), err
  end
  function h.cleanup()
    if not h.exited() then
      h.signal("KILL")
      servers.wait_until(code, 5, 0.02)
    end
    if temp then servers.rmtree(dir) end
  end
  return h
end

-- A loopback port nothing listens on right now (the kernel's choice).
function servers.free_port()
  local ok, out = run(servers.PYTHON .. [[ -c 'import socket; s = socket.socket(); ]]
    .. [[s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])']])
  local port = tonumber(out:match("%d+"))
  assert(ok and port, "cannot find a free port: " .. out)
  return port
end

-- Waits until something accepts connections on 127.0.0.1:port.
function servers.wait_listening(port, seconds)
  local ok = run(servers.PYTHON .. [[ -c 'import socket, sys, time
deadline = time.monotonic() + ]] .. tonumber(seconds or 10) .. [[

while True:
    try:
        socket.create_connection(("127.0.0.1", ]] .. tonumber(port) .. [[), timeout=1).close()
        sys.exit(0)
    except OSError:
        if time.monotonic() > deadline: sys.exit(1)
        time.sleep(0.05)']])
  return ok
end

-- A CA and, signed by it, a server certificate for localhost and 127.0.0.1
-- (cert, key) and one for another name only (wrong_cert, wrong_key), in dir.
function servers.make_tls(dir)
  local f = {
    ca = dir .. "/ca.pem", ca_key = dir .. "/ca.key",
    cert = dir .. "/server.pem", key = dir .. "/server.key",
    wrong_cert = dir .. "/wrong.pem", wrong_key = dir .. "/wrong.key",
  }
  local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  local ok, out = run(("openssl req -x509 %s -keyout %s -out %s -days 2 -subj '/CN=alexlua test CA' "
    .. "-addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'")
    :format(ec, q(f.ca_key), q(f.ca)))
  assert(ok, "openssl failed making the CA:\n" .. out)
  local function leaf(cert, key, cn, san)
    local csr, ext = cert .. ".csr", cert .. ".ext"
    servers.write_file(ext, "subjectAltName=" .. san .. "\nbasicConstraints=CA:FALSE\n"
      .. "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    local cmds = {
      ("openssl req %s -keyout %s -out %s -subj '/CN=%s'"):format(ec, q(key), q(csr), cn),
      ("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -out %s -days 2 -extfile %s")
        :format(q(csr), q(f.ca), q(f.ca_key), q(cert), q(ext)),
    }
    for _, cmd in ipairs(cmds) do
      local done, text = run(cmd)
      assert(done, "openssl failed: " .. cmd .. "\n" .. text)
    end
  end
  leaf(f.cert, f.key, "localhost", "DNS:localhost,IP:127.0.0.1")
  leaf(f.wrong_cert, f.wrong_key, "wrong.example", "DNS:wrong.example")
  return f
end

local Server = {}
Server.__index = Server

function Server:stats()
  local text = read_file(self.stats_path) or ""
  local t = {}
  for k, v in text:gmatch("([%w_]+)=(%-?%d+)") do t[k] = tonumber(v) end
  return t
end

-- Waits until stats()[name] >= value; returns true, or false after `seconds`.
function Server:wait_stat(name, value, seconds)
  local deadline = servers.now() + (seconds or 5)
  repeat
    if (self:stats()[name] or 0) >= value then return true end
    servers.sleep(0.02)
  until servers.now() > deadline
  return false
end

function Server:stop()
  if not self.proc then return end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  self.proc:close() -- waits for the process
  self.proc = nil
  os.remove(self.stats_path)
  os.remove(self.stats_path .. ".tmp")
end

-- Starts http_server.py; opts.tls = { cert =, key = } for HTTPS.
function servers.start_http(opts)
  opts = opts or {}
  local stats = os.tmpname()
  local cmd = { "exec", servers.PYTHON, q(here .. "/http_server.py"), "--stats", q(stats) }
  if opts.tls then
    cmd[#cmd + 1] = "--cert " .. q(opts.tls.cert) .. " --key " .. q(opts.tls.key)
  end
  local proc = assert(io.popen(table.concat(cmd, " "), "r"))
  local line = proc:read("l")
  local port, refused, silent, pid = (line or ""):match("^READY (%d+) (%d+) (%d+) (%d+)$")
  if not port then
    proc:close()
    error("http_server.py did not start (said " .. tostring(line) .. ")")
  end
  local scheme = opts.tls and "https" or "http"
  return setmetatable({
    proc = proc, pid = tonumber(pid), port = tonumber(port), refused_port = tonumber(refused),
    silent_port = tonumber(silent),
    url = ("%s://127.0.0.1:%s"):format(scheme, port), stats_path = stats,
  }, Server)
end

-- The byte pattern /bytes?n=N answers: byte i = (i + i // 256) % 256.
function servers.pattern(n)
  local rot = {}
  for k = 0, 255 do
    local b = {}
    for j = 0, 255 do b[j + 1] = (j + k) & 0xFF end
    rot[k] = string.char(table.unpack(b))
  end
  local parts = {}
  for k = 0, (n + 255) // 256 - 1 do parts[#parts + 1] = rot[k & 0xFF] end
  return table.concat(parts):sub(1, n)
end

return servers
