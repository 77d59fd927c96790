-- The alexlua executable (host/main.c, host/dotenv.c), run as a child process:
-- command line, arg table, errors, exit codes, .env loading and Ctrl-C.
local ALEXLUA = assert(os.getenv("ALEXLUA"), "ALEXLUA must hold the absolute path of the binary under test")

local servers = require "servers"
local q, write, read = servers.q, servers.write_file, servers.read_file

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function has(haystack, needle)
  assert(type(haystack) == "string", "no text to search")
  assert(haystack:find(needle, 1, true), ("expected %q in %q"):format(needle, haystack))
end

local function lacks(haystack, needle)
  assert(not haystack:find(needle, 1, true), ("did not expect %q in %q"):format(needle, haystack))
end

-- Asserts that the run r exited `code` with each of `says` on stderr and, when
-- `out` is given, exactly that on stdout.
local function failed(r, code, says, out)
  assert.equal(code, r.code)
  for _, text in ipairs(says) do has(r.err, text) end
  if out then assert.equal(out, r.out) end
end

-- A fresh folder for the whole file; each test gets its own working folder in it.
local root, io_dir, counter

local function new_cwd()
  counter = counter + 1
  local dir = ("%s/cwd%d"):format(root, counter)
  assert(os.execute("mkdir -p " .. q(dir)))
  return dir
end

-- A fresh working folder holding `files` (name -> text).
local function cwd_with(files)
  local cwd = new_cwd()
  for name, text in pairs(files) do write(cwd .. "/" .. name, text) end
  return cwd
end

-- Runs alexlua with args (a list, each quoted for the shell) in opts.cwd (a
-- fresh folder by default), stdin from opts.stdin, opts.env added to and
-- opts.unset removed from the environment.  Bounded by `timeout`.
-- Returns { code = exit code, out = stdout, err = stderr, cwd = folder }.
local function run(args, opts)
  opts = opts or {}
  local cwd = opts.cwd or new_cwd()
  local inp, out, err = io_dir .. "/stdin", io_dir .. "/stdout", io_dir .. "/stderr"
  write(inp, opts.stdin or "")
  local cmd = { "cd", q(cwd), "&&", "exec", "env" }
  for _, name in ipairs(opts.unset or {}) do cmd[#cmd + 1] = "-u " .. q(name) end
  for k, v in pairs(opts.env or {}) do cmd[#cmd + 1] = q(k .. "=" .. v) end
  cmd[#cmd + 1] = "timeout -k 2 20"
  cmd[#cmd + 1] = q(ALEXLUA)
  for _, a in ipairs(args) do cmd[#cmd + 1] = q(a) end
  cmd[#cmd + 1] = ("<%s >%s 2>%s"):format(q(inp), q(out), q(err))
  local _, how, code = os.execute(table.concat(cmd, " "))
  if how == "signal" then code = 128 + code end
  assert(code ~= 124, "alexlua timed out: " .. table.concat(args, " "))
  local r = { code = code, out = read(out), err = read(err), cwd = cwd }
  -- under a SANITIZE=1 build, every run must be clean as well
  assert(not r.err:find("Sanitizer", 1, true) and not r.err:find("runtime error:", 1, true), r.err)
  return r
end

-- Starts alexlua in the background in cwd (servers.spawn: its files .pid,
-- .rc, .out and .err there); returns its handle.
local function spawn(args, cwd)
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = q(a) end
  return servers.spawn(q(ALEXLUA) .. " " .. table.concat(quoted, " "), cwd, cwd)
end

local function wait_for_file(path, seconds)
  return servers.wait_until(function() return exists(path) end, seconds, 0.02)
end

setup(function()
  local p = assert(io.popen("mktemp -d /tmp/alexlua-host-spec.XXXXXX"))
  root = p:read("l")
  p:close()
  assert(root and root:match("^/tmp/alexlua%-host%-spec%."), "mktemp failed")
  io_dir = root .. "/io"
  assert(os.execute("mkdir -p " .. q(io_dir)))
  counter = 0
end)

teardown(function()
  if root then os.execute("rm -rf " .. q(root)) end
end)

describe("alexlua command line", function()
  it("-e runs each statement in order, also written as -estat", function()
    local r = run({ "-e", "x = 20", "-e", "x = x + 1", "-eprint(x * 2)" })
    assert.equal(0, r.code)
    assert.equal("42\n", r.out)
    assert.equal("", r.err)
  end)

  it("-e with a syntax error exits 1 and names the command line", function()
    failed(run({ "-e", "x = = 1" }), 1, { "alexlua: (command line):1:" }, "")
  end)

  it("-e without its argument exits 1", function()
    failed(run({ "-e" }), 1, { "'-e' needs an argument" })
  end)

  it("-l mod requires a module into the global of that name", function()
    local cwd = cwd_with { ["mymod.lua"] = "return { answer = 42 }" }
    local r = run({ "-l", "mymod", "-e", "print(mymod.answer)" }, { cwd = cwd })
    assert.equal(0, r.code, r.err)
    assert.equal("42\n", r.out)
    -- like lua.c, a dotted name becomes the global of the full name
    r = run({ "-l", "alex.validate", "-e", "print(_G['alex.validate'].REGIONS[1])" })
    assert.equal("north_america\n", r.out)
  end)

  it("-l g=mod requires a module into global g, -lg=mod too", function()
    local r = run({ "-l", "v=alex.validate", "-lw=alex.validate", "-e", "print(v.SECTORS[1], v == w)" })
    assert.equal(0, r.code, r.err)
    assert.equal("technology\ttrue\n", r.out)
  end)

  it("-l with a missing module exits 1 before running anything else", function()
    failed(run({ "-l", "no_such_module_h5", "-e", "print('ran')" }), 1, { "module 'no_such_module_h5' not found" }, "")
  end)

  it("-v and --version print the version and do not read stdin", function()
    for _, flag in ipairs({ "-v", "--version" }) do
      local r = run({ flag }, { stdin = "print('stdin ran')" })
      assert.equal(0, r.code)
      assert.truthy(r.out:match("^alexlua %d+%.%d+%.%d+ %(Lua 5%.4"), r.out)
      lacks(r.out, "stdin ran")
    end
    local r = run({ "-v", "-e", "print('after')" })
    assert.truthy(r.out:match("^alexlua [^\n]+\nafter\n$"), r.out)
  end)

  it("-h and --help print the usage on stdout and exit 0", function()
    for _, flag in ipairs({ "-h", "--help" }) do
      local r = run({ flag, "-e", "print('ran')" })
      assert.equal(0, r.code)
      has(r.out, "usage: alexlua [options] [script [args]]")
      has(r.out, "--env-file PATH")
      has(r.out, "--no-env-file")
      lacks(r.out, "ran\n")
    end
  end)

  it("an unknown option exits 1 with the usage on stderr, running nothing", function()
    failed(run({ "-e", "print('ran')", "--bogus" }), 1, { "unrecognized option '--bogus'", "usage: alexlua" }, "")
    failed(run({ "-x" }), 1, { "unrecognized option '-x'" })
  end)

  it("- runs the script from stdin with its arguments", function()
    local r = run({ "-e", "y = 1", "-", "p", "q" },
      { stdin = "print(arg[0], arg[-1], arg[-2], y, ...)\nprint(#arg)" })
    assert.equal(0, r.code, r.err)
    assert.equal("-\ty = 1\t-e\t1\tp\tq\n2\n", r.out)
  end)

  it("with no script and stdin not a terminal, runs stdin", function()
    local r = run({}, { stdin = "print('from stdin', select('#', ...))" })
    assert.equal(0, r.code, r.err)
    assert.equal("from stdin\t0\n", r.out)
  end)

  it("-- ends the options: a script whose name starts with '-'", function()
    local cwd = cwd_with { ["-dash.lua"] = "print('dash', arg[0], arg[-1], ...)" }
    local r = run({ "--", "-dash.lua", "-e", "x" }, { cwd = cwd })
    assert.equal(0, r.code, r.err)
    assert.equal("dash\t-dash.lua\t--\t-e\tx\n", r.out)
  end)

  it("builds arg as lua.c does: script at 0, options below, arguments above", function()
    local cwd = new_cwd()
    write(cwd .. "/args.lua", [[
      for i = -3, #arg do io.write(i, "=", tostring(arg[i]), "\n") end
      io.write("n=", #arg, " dots=", table.concat({ ... }, ","), " count=", select("#", ...), "\n")
    ]])
    local r = run({ "-e", "x=1", "args.lua", "a", "b c", "" }, { cwd = cwd })
    assert.equal(0, r.code, r.err)
    assert.equal(table.concat({
      "-3=" .. ALEXLUA, "-2=-e", "-1=x=1", "0=args.lua", "1=a", "2=b c", "3=", "n=3 dots=a,b c, count=3", "",
    }, "\n"), r.out)
  end)

  it("without a script, arg[0] is the program and the options follow", function()
    local r = run({ "-e", "print(arg[0], arg[1], arg[2], #arg, ...)" })
    assert.equal(ALEXLUA .. "\t-e\tprint(arg[0], arg[1], arg[2], #arg, ...)\t2\n", r.out)
  end)

  it("-i enters the REPL after the script, with the banner as lua.c does", function()
    local cwd = cwd_with { ["setup.lua"] = "greeting = 'hi'" }
    local r = run({ "-i", "setup.lua" }, {
      cwd = cwd,
      stdin = "greeting .. '!'\nx = 2\nfunction f()\n  return x * 21\nend\nprint(f())\n"
        .. "error('oops')\n1 +\nprint('still here')\n",
    })
    assert.equal(0, r.code)
    assert.truthy(r.out:match("^alexlua %d+%.%d+%.%d+"), r.out)
    has(r.out, "hi!\n")
    has(r.out, ">> ") -- continuation prompt for the function
    has(r.out, "42\n")
    has(r.out, "still here\n")
    has(r.err, "alexlua: stdin:1: oops")
    has(r.err, "alexlua: stdin:1: unexpected symbol")
  end)

  it("-i reports a chunk left unfinished at end of input", function()
    local r = run({ "-i" }, { stdin = "if true then\n" })
    assert.equal(0, r.code)
    has(r.err, "'end' expected")
    has(r.err, "near <eof>")
  end)

  it("-i after a failing script exits 1 without the REPL", function()
    local r = run({ "-i", "-e", "error('early')" }, { stdin = "print('repl ran')\n" })
    failed(r, 1, { "early" })
    lacks(r.out, "repl ran")
  end)
end)

describe("alexlua errors and exit codes", function()
  it("an uncaught error prints 'alexlua: <message>' and a traceback, exit 1", function()
    local cwd = cwd_with { ["boom.lua"] = "local function inner() error('boom') end\ninner()\nprint('not reached')\n" }
    local r = run({ "boom.lua" }, { cwd = cwd })
    assert.truthy(r.err:match("^alexlua: boom%.lua:1: boom\nstack traceback:\n"), r.err)
    failed(r, 1, { "in local 'inner'", "in main chunk" }, "")
  end)

  it("an error value with __tostring prints that text", function()
    local r = run({ "-e", "error(setmetatable({}, { __tostring = function() return 'custom failure' end }))" })
    assert.equal(1, r.code)
    assert.truthy(r.err:match("^alexlua: custom failure\n"), r.err)
  end)

  it("an error value without a text names its type", function()
    failed(run({ "-e", "error({})" }), 1, { "alexlua: (error object is a table value)" })
    failed(run({ "-e", "error()" }), 1, { "alexlua: (error object is a nil value)" })
  end)

  it("os.exit(n) keeps n, true is 0, false is 1", function()
    assert.equal(7, run({ "-e", "os.exit(7)" }).code)
    assert.equal(0, run({ "-e", "os.exit(true)" }).code)
    assert.equal(1, run({ "-e", "os.exit(false)" }).code)
    assert.equal(0, run({ "-e", "os.exit()" }).code)
    local r = run({ "-e", "io.write('buffered'); os.exit(3)" })
    assert.equal(3, r.code)
    assert.equal("buffered", r.out)
  end)

  it("os.exit closes the state so finalizers run, unless close is false", function()
    local gc = "g = setmetatable({}, { __gc = function() io.write('finalized') io.flush() end })"
    local r = run({ "-e", gc, "-e", "os.exit(4)" })
    assert.equal(4, r.code)
    assert.equal("finalized", r.out)
    r = run({ "-e", gc, "-e", "os.exit(5, false)" })
    assert.equal(5, r.code)
    assert.equal("", r.out)
  end)

  it("a syntax error in the script exits 1 naming the file", function()
    local cwd = cwd_with { ["bad.lua"] = "print('fine')\nlocal x = = 2\n" }
    failed(run({ "bad.lua" }, { cwd = cwd }), 1, { "alexlua: bad.lua:2:" }, "")
  end)

  it("a missing script exits 1", function()
    failed(run({ "no_such_script.lua" }), 1, { "cannot open no_such_script.lua" })
  end)

  it("a runtime error in -e stops the later options and the script", function()
    local cwd = cwd_with { ["s.lua"] = "print('script ran')" }
    failed(run({ "-e", "print('first')", "-e", "nil_global()", "-e", "print('second')", "s.lua" }, { cwd = cwd }), 1,
      { "attempt to call a nil value (global 'nil_global')" }, "first\n")
  end)
end)

describe("alexlua .env", function()
  local names = {}
  for _, n in ipairs({ "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "J.dotted" }) do
    names[#names + 1] = "AXH5_" .. n
  end
  -- prints each named variable as NAME=%q on one line (or NAME=nil)
  local show = [[
    for _, k in ipairs(arg) do
      local v = os.getenv(k)
      io.write(k, "=", v and (("%q"):format(v):gsub("\n", "n")) or "nil", "\n")
    end
  ]]

  local function env_of(r)
    local t = {}
    for k, v in r.out:gmatch("(AXH5_[%w_.]+)=([^\n]*)\n") do
      t[k] = v == "nil" and nil or load("return " .. v)()
    end
    return t
  end

  local function run_env(env_text, extra_args, opts)
    opts = opts or {}
    local cwd = opts.cwd or new_cwd()
    if env_text then write(cwd .. "/.env", env_text) end
    write(cwd .. "/show.lua", show)
    local args = {}
    for _, a in ipairs(extra_args or {}) do args[#args + 1] = a end
    args[#args + 1] = "show.lua"
    for _, n in ipairs(names) do args[#args + 1] = n end
    return run(args, { cwd = cwd, env = opts.env, unset = names })
  end

  -- The variables show.lua saw in a run_env run that must succeed.
  local function env_after(env_text, extra_args, opts)
    local r = run_env(env_text, extra_args, opts)
    assert.equal(0, r.code, r.err)
    return env_of(r)
  end

  it("reads KEY=VALUE lines from ./.env in the current folder", function()
    assert.same({ AXH5_A = "1", AXH5_B = "hello world" }, env_after("AXH5_A=1\nAXH5_B=hello world\n"))
  end)

  it("runs fine without a ./.env", function()
    assert.same({}, env_after(nil))
  end)

  it("handles export, quotes, escapes, comments, blank lines and spaces", function()
    local seen = env_after(table.concat({
      "# a comment line",
      "   # an indented comment",
      "",
      "   ",
      "export AXH5_A=exported",
      "export   AXH5_B = spaced  out  ",
      "AXH5_C='single $HOME \\n # kept'",
      [[AXH5_D="tab\there\nnl \"q\" back\\slash \$dollar \q"]],
      "AXH5_E=value # an inline comment",
      "AXH5_F=no#comment",
      "AXH5_G=",
      "AXH5_H=\"quoted\"   # comment after quotes",
      "AXH5_I=\t x\t",
      "AXH5_J.dotted=1",
      "",
    }, "\n"))
    assert.same({
      AXH5_A = "exported",
      AXH5_B = "spaced  out",
      AXH5_C = "single $HOME \\n # kept",
      AXH5_D = "tab\there\nnl \"q\" back\\slash $dollar \\q",
      AXH5_E = "value",
      AXH5_F = "no#comment",
      AXH5_G = "",
      AXH5_H = "quoted",
      AXH5_I = "x",
      ["AXH5_J.dotted"] = "1",
    }, seen)
  end)

  it("takes CRLF line ends", function()
    assert.same({ AXH5_A = "one", AXH5_B = "two", AXH5_C = "three", AXH5_D = "four" },
      env_after("AXH5_A=one\r\n\r\n# comment\r\nAXH5_B=\"two\"\r\nAXH5_C='three' # c\r\nAXH5_D=four # c\r\n"))
  end)

  it("takes multi-line quoted values", function()
    assert.same({ AXH5_A = "line 1\nline 2\n", AXH5_B = "-----BEGIN-----\nabc\n-----END-----", AXH5_C = "after" },
      env_after("AXH5_A=\"line 1\nline 2\n\"\nAXH5_B='-----BEGIN-----\nabc\n-----END-----'\nAXH5_C=after\n"))
  end)

  it("lets variables already in the environment win, and the last line of the file win over earlier ones", function()
    assert.same({ AXH5_A = "from_env", AXH5_B = "second", AXH5_C = "" },
      env_after("AXH5_A=from_file\nAXH5_B=first\nAXH5_B=second\nAXH5_C=file\n", nil,
        { env = { AXH5_A = "from_env", AXH5_C = "" } }))
  end)

  it("--env-file PATH reads that file instead of ./.env, also as --env-file=PATH", function()
    local cwd = cwd_with { ["other.env"] = "AXH5_B=other\n" }
    assert.same({ AXH5_B = "other" }, env_after("AXH5_A=dotenv\n", { "--env-file", "other.env" }, { cwd = cwd }))
    local r = run_env(nil, { "--env-file=" .. cwd .. "/other.env" }, { cwd = cwd })
    assert.same({ AXH5_B = "other" }, env_of(r))
  end)

  it("a missing --env-file is an error", function()
    failed(run_env("AXH5_A=1\n", { "--env-file", "missing.env" }), 1,
      { "alexlua: cannot read env file missing.env: No such file or directory" }, "")
    failed(run({ "--env-file" }), 1, { "'--env-file' needs a path" })
  end)

  it("an env file must be a regular file of at most 1 MiB: /dev/zero, a folder or a FIFO is refused at once", function()
    local cwd = new_cwd()
    for _, path in ipairs { "/dev/zero", cwd, cwd .. "/fifo" } do
      if path:find("fifo$") then assert(os.execute("mkfifo " .. q(path))) end
      local r = run({ "--env-file", path, "-e", "print('ran')" }, { cwd = cwd })
      assert.equal(1, r.code)
      assert.equal("alexlua: env file " .. path .. " is not a regular file\n", r.err)
      assert.equal("", r.out)
    end
    write(cwd .. "/big.env", ("A=" .. ("x"):rep(1000) .. "\n"):rep(1100))
    failed(run({ "--env-file", "big.env", "-e", "print('ran')" }, { cwd = cwd }), 1,
      { "env file big.env is larger than 1048576 bytes" })
  end)

  it("--no-env-file reads none, even a malformed one", function()
    assert.same({}, env_after("AXH5_A=1\nthis is not valid\n", { "--no-env-file" }))
  end)

  describe("a malformed line is an error naming the file and line, and nothing runs", function()
    local cases = {
      { "missing '='", "AXH5_A=1\nAXH5_B value\n", 2, "expected '=' after the key" },
      { "a space in the key", "\n\nAXH5_A B=1\n", 3, "expected '=' after the key" },
      { "no key", "# c\n=value\n", 2, "expected KEY=VALUE" },
      { "a key starting with a digit", "1AXH5=1\n", 1, "expected KEY=VALUE (a key starts with a letter or _)" },
      { "an unterminated double quote", "AXH5_A=1\nAXH5_B=\"open\nAXH5_C=2\n", 2, "unterminated double-quoted value" },
      { "an unterminated single quote", "AXH5_A='open\n", 1, "unterminated single-quoted value" },
      { "text after the closing quote", "AXH5_A=\"x\" y\n", 1, "unexpected text after the closing quote" },
      { "a quote inside an unquoted value", "AXH5_A=it's\n", 1, "quote inside an unquoted value" },
      { "the line after a multi-line value", "AXH5_A=\"a\nb\nc\"\nbroken\n", 4, "expected '=' after the key" },
      { "a CRLF file", "AXH5_A=1\r\n\r\nbroken\r\n", 3, "expected '=' after the key" },
      -- unchecked, the value would be cut at the NUL without a word
      { "a NUL byte in a value", "AXH5_A=1\nAXH5_B=ab\0cd\n", 2, "NUL byte in the file" },
      { "a NUL byte in a multi-line quoted value", "AXH5_A=\"a\nb\0\nc\"\n", 2, "NUL byte in the file" },
      { "a NUL byte in a comment", "# \0\nAXH5_A=1\n", 1, "NUL byte in the file" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        failed(run_env(c[2]), 1, { ("alexlua: .env:%d: %s"):format(c[3], c[4]) }, "")
      end)
    end

    it("host.dotenv, the same parser for Lua, refuses a NUL byte naming the line", function()
      local host = require "alex.host"
      local t, err = host.dotenv("A=1\nB='x\0y'\n", "conf.env")
      assert.is_nil(t)
      assert.equal("conf.env:2: NUL byte in the file (a value would be cut short at it)", err)
    end)

    it("names the --env-file path", function()
      local cwd = cwd_with { ["conf.env"] = "OK=1\nbad line\n" }
      failed(run_env(nil, { "--env-file", cwd .. "/conf.env" }, { cwd = cwd }), 1,
        { ("alexlua: %s/conf.env:2: expected '=' after the key"):format(cwd) })
    end)
  end)
end)

describe("alexlua Ctrl-C", function()
  local function loop_script(cwd, body)
    write(cwd .. "/loop.lua", ([[
      local function ready(name) local f = assert(io.open(name, "w")) f:close() end
      %s
    ]]):format(body))
  end

  -- loop.lua with `body` started in the background; returns its handle once
  -- the script has made ready1.
  local function started(body)
    local cwd = new_cwd()
    loop_script(cwd, body)
    local h = spawn({ "loop.lua" }, cwd)
    finally(h.cleanup)
    assert.is_true(wait_for_file(cwd .. "/ready1", 10), "script did not start")
    return h, cwd
  end

  it("SIGINT stops an endless loop: exit 130 and one line 'interrupted' on stderr", function()
    local h = started("ready('ready1') while true do end")
    h.signal("INT")
    local code, _, err = h.wait(10)
    assert.equal(130, code)
    assert.equal("alexlua: interrupted\n", err) -- a stop, not a bug: no traceback
  end)

  for _, case in ipairs { { "TERM", 15, "terminated" }, { "HUP", 1, "hangup" } } do
    local sig, n, text = case[1], case[2], case[3]
    it(("SIG%s is handled as SIGINT is: the error %q, cleanup runs, exit %d"):format(sig, text, 128 + n), function()
      local h = started([[
        local ok, err = pcall(function() ready('ready1') while true do end end)
        io.stderr:write("caught: ", tostring(ok), " [", tostring(err), "] ",
                        tostring((require "alex.host").interrupted()), "\n")
        error(err, 0)
      ]])
      h.signal(sig)
      local code, _, err = h.wait(10)
      assert.equal(128 + n, code)
      has(err, ("caught: false [%s] SIG%s"):format(text, sig))
      has(err, "alexlua: " .. text .. "\n")
      lacks(err, "stack traceback:")
    end)
  end

  it("a signal ignored by the parent (nohup, a shell's background job) stays ignored", function()
    local cwd = new_cwd()
    loop_script(cwd, "ready('ready1') local t = os.time() while os.time() - t < 2 do end print('finished')")
    local h = servers.spawn(("sh -c 'trap \"\" HUP; exec \"$@\"' sh %s loop.lua"):format(q(ALEXLUA)), cwd, cwd)
    finally(h.cleanup)
    assert.is_true(wait_for_file(cwd .. "/ready1", 10), "script did not start")
    h.signal("HUP")
    local rc, out = h.wait(10)
    assert.equal(0, rc)
    assert.equal("finished\n", out)
  end)

  it("a pcall catches the interruption once, so cleanup code can run; os.exit(3) then exits 130", function()
    local h = started([[
      local function spin() local x = 0 while true do x = x + 1 end end
      local function work() ready('ready1') spin() end
      local ok, err = pcall(work)
      -- exactly "interrupted", without a position, wherever the loop was
      io.stderr:write("caught: ", tostring(ok), " [", tostring(err), "]\n")
      local n = 0
      for i = 1, 100000 do n = n + i end -- the rollback still runs
      io.stdout:write("cleaned up ", n, "\n")
      os.exit(3)
    ]])
    h.signal("INT")
    local code, out, err = h.wait(10)
    -- a failing exit after an interruption reports the interruption, as a
    -- shell does for a process the signal ended
    assert.equal(130, code)
    has(err, "caught: false [interrupted]")
    assert.equal("cleaned up 5000050000\n", out)
  end)

  it("a script that caught the interruption and then fails otherwise exits 1, not 130", function()
    local h = started([[
      pcall(function() ready('ready1') while true do end end)
      error("something else")
    ]])
    h.signal("INT")
    local code, _, err = h.wait(10)
    assert.equal(1, code)
    has(err, "alexlua: loop.lua:3: something else")
  end)

  it("a second SIGINT kills a script that caught the first and kept looping", function()
    local h, cwd = started([[
      pcall(function() ready('ready1') while true do end end)
      io.stderr:write("caught once\n")
      ready('ready2')
      while true do end
    ]])
    h.signal("INT")
    assert.is_true(wait_for_file(cwd .. "/ready2", 10), "first SIGINT was not caught")
    assert.is_nil(h.wait(0.2), "exited after the first SIGINT")
    h.signal("INT")
    local code, _, err = h.wait(10)
    assert.equal(130, code) -- the shell's 128 + SIGINT for a process killed by the signal
    has(err, "caught once")
    lacks(err, "alexlua: interrupted") -- killed, not a Lua error
  end)
end)
