-- tools/deps.sh and the Makefile: each target installs the Debian packages of
-- the groups it needs and only those, so `make` on a machine without the test
-- tools installs the build group alone; and the build group holds everything
-- compiling and running alexlua and the local stack needs.
local servers = require "servers"

local function run(cmd)
  local ok, out = servers.run(cmd)
  return ok, out
end

local function group(name)
  local ok, out = run("sh tools/deps.sh --print " .. name)
  assert(ok, out)
  local set, list = {}, {}
  for p in out:gmatch("%S+") do set[p] = true list[#list + 1] = p end
  return set, list
end

-- The deps groups `make -n TARGET` would install, in order.
local function groups_of(target)
  local ok, out = run("make -n -B " .. target .. " 2>/dev/null")
  assert(ok, "make -n " .. target .. " failed: " .. out)
  local seen = {}
  for g in out:gmatch("tools/deps%.sh (%a+)") do seen[#seen + 1] = g end
  return seen
end

describe("dependency groups", function()
  it("--print lists a group's packages, one a line; an unknown group is an error", function()
    local ok, out = run("sh tools/deps.sh --print build")
    assert.is_true(ok)
    assert.matches("^[%w.+-]+\n", out)
    for line in out:gmatch("[^\n]+") do assert.matches("^[%w.+-]+$", line) end
    local bad_ok, bad = run("sh tools/deps.sh --print nonsense")
    assert.is_false(bad_ok)
    assert.matches("unknown group 'nonsense'", bad)
  end)

  it("the build group has none of the test, bench and fuzz tools", function()
    local build = group("build")
    for _, p in ipairs { "clang", "valgrind", "nodejs", "npm", "awscli", "python3-boto3", "python3-botocore",
                         "gnuplot-nox", "hyperfine", "lua-busted", "lua-check", "libclang-rt-14-dev" } do
      assert.is_nil(build[p], p .. " is in the build group")
    end
  end)

  it("make, make run and make install ask for the build group only; the others add theirs", function()
    assert.same({ "build" }, groups_of("all"))
    assert.same({ "build" }, groups_of("run"))
    assert.same({ "build" }, groups_of("install"))
    assert.same({ "build", "test" }, groups_of("test"))
    assert.same({ "build", "test" }, groups_of("lint"))
    assert.same({ "build", "bench" }, groups_of("bench"))
    assert.same({ "build", "fuzz" }, groups_of("fuzz-build"))
  end)

  -- The package owning a file, from dpkg's database.
  local function owner(path)
    local ok, out = run("dpkg -S " .. servers.q(path))
    if not ok then return nil end
    return out:match("^([^:,]+)")
  end

  it("every library the build compiles against comes from a build-group package", function()
    local build = group("build")
    local ok, mk = run("make -n -p -q all 2>/dev/null | grep -E '^(PKGS_HOST|PKGS_LOCAL) ='")
    assert.truthy(mk:find("PKGS_HOST", 1, true), tostring(ok))
    for pc in mk:gmatch("= ([^\n]+)") do
      for name in pc:gmatch("%S+") do
        local dok, dir = run("pkg-config --variable=pcfiledir " .. name)
        assert(dok, "pkg-config knows no " .. name)
        local pkg = owner(dir:gsub("%s+$", "") .. "/" .. name .. ".pc")
        assert.truthy(pkg, name .. ".pc belongs to no package")
        assert.is_true(build[pkg] == true, name .. " comes from " .. tostring(pkg) .. ", not in the build group")
      end
    end
  end)

  it("every Lua module the library and scripts require comes from a build-group package", function()
    local build = group("build")
    local ok, out = run("grep -rhoE 'require *\\(? *\"[a-z.]+\"' lua scripts")
    assert.is_true(ok)
    local mods = {}
    for m in out:gmatch('"([%w.]+)"') do
      if not m:find("^alex") then mods[m:match("^[^.]+")] = true end
    end
    assert.truthy(mods.cjson and mods.argparse and mods.lfs)
    for m in pairs(mods) do
      local found = package.searchpath(m, package.path) or package.searchpath(m, package.cpath)
      assert.truthy(found, "no file for Lua module " .. m)
      local pkg = owner(found)
      assert.is_true(build[pkg] == true, m .. " (" .. found .. ") comes from " .. tostring(pkg))
    end
  end)
end)
