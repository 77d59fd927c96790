-- The canonical state: what a clean reset with test data leaves, which
-- verify.lua must pass, and which scenarios start from.
local cjson = require "cjson"
local children = require "soak.children"
local faults = require "soak.faults"
local state = require "soak.state"

local canonical = {}

-- clean_reset(ctx) -> the fingerprint after a reset without faults.
function canonical.clean_reset(ctx)
  local r = children.run_one(ctx, { script = "scripts/reset.lua", args = { "--with-test-data" } })
  if r.rc ~= 0 then error("a reset without faults failed (exit " .. r.rc .. "): " .. r.err:sub(-2000), 0) end
  return state.fingerprint(ctx)
end

local function verify_json(r)
  local ok, report = pcall(cjson.decode, r.out)
  if ok and type(report) == "table" and report.checks then return report end
  return nil
end

-- verify.lua under the given faults; a canonical state must pass.  Aborted by
-- faults (no report): run again without faults.
function canonical.check_verify(ctx, f, env)
  local vt = ctx.tally.verify
  vt.runs = vt.runs + 1
  if f then faults.set(ctx, f) end
  local r = children.run_one(ctx, { script = "scripts/verify.lua", args = { "--json" }, env = env })
  faults.clear(ctx)
  local report = verify_json(r)
  if not report then
    vt.aborted = vt.aborted + 1
    r = children.run_one(ctx, { script = "scripts/verify.lua", args = { "--json" } })
    report = verify_json(r)
  end
  if not report then
    ctx:violation("verify.lua gave no report even without faults (exit %d): %s", r.rc, r.log)
    ctx:keep(r)
    return
  end
  if report.ok then
    vt.passed = vt.passed + 1
  else
    vt.failed_checks = vt.failed_checks + 1
    local bad = {}
    for _, c in ipairs(report.checks) do if not c.ok then bad[#bad + 1] = c.name end end
    ctx:violation("verify.lua failed on the canonical state: %s (%s)", table.concat(bad, ", "), r.log)
    ctx:keep(r)
  end
end

-- establish(ctx): the first clean reset; its fingerprint becomes ctx.canonical,
-- its row counts must be the seed's and verify.lua must pass it.
function canonical.establish(ctx)
  ctx.current = { name = "reset", n = 0 }
  ctx.canonical = canonical.clean_reset(ctx)
  local base_counts = state.psql(ctx, [[SELECT (SELECT count(*) FROM users) || '/' ||
    (SELECT count(*) FROM accounts) || '/' || (SELECT count(*) FROM positions) || '/' ||
    (SELECT count(*) FROM instruments)]])
  ctx:say("canonical state: users/accounts/positions/instruments = %s", base_counts)
  assert(base_counts:match("^1/3/5/%d+$"), "the canonical state is not the seeded one: " .. base_counts)
  canonical.check_verify(ctx, nil, nil)
end

-- ensure(ctx) -> true when the database is (again) the canonical state; a clean
-- reset that does not give it is a violation.
function canonical.ensure(ctx)
  local fp = state.fingerprint(ctx)
  if not state.same(fp, ctx.canonical) then fp = canonical.clean_reset(ctx) end
  if not state.same(fp, ctx.canonical) then
    ctx:violation("a clean reset did not give the canonical state: %s",
      table.concat(state.diff(ctx.canonical, fp), "; "))
    return false
  end
  return true
end

return canonical
