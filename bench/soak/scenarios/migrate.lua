-- migrate: three migrate.lua at once on an empty database under light
-- faults.  No run may meet an "already exists" error, the applied versions
-- are a prefix of the files, and once all are applied (a last run without
-- faults completes a partial result) the schema is the canonical one.
local migrations = require "alex.migrate"
local children = require "soak.children"
local faults = require "soak.faults"
local state = require "soak.state"
local tally = require "soak.tally"

local migrate = {}

-- The versions of schema/'s migrations, in order, as migrate.lua reads them.
local function migration_versions(root)
  local list = {}
  for i, m in ipairs(assert(migrations.load(root .. "/schema"))) do list[i] = m.version end
  return list
end

local function applied(ctx)
  local tbl = migrations.TABLE
  if state.psql(ctx, ("SELECT to_regclass(%s) IS NULL"):format(state.literal(tbl))) == "t" then
    return "" -- no run got that far
  end
  return state.psql(ctx, ("SELECT coalesce(string_agg(version, ',' ORDER BY version), '') FROM %s"):format(tbl))
end

function migrate.run(ctx)
  tally.begin_scenario(ctx, "migrate")
  local t = ctx.tally.by.migrate
  state.psql(ctx, state.DROP_ALL)
  local f = faults.mix(math.random() * 0.12)
  faults.set(ctx, f)
  local jobs = {}
  for i = 1, 3 do jobs[i] = { script = "scripts/migrate.lua" } end
  local rs = children.run(ctx, jobs)
  faults.clear(ctx)
  local failed = 0
  for _, r in ipairs(rs) do
    if r.rc ~= 0 then failed = failed + 1 end
    if r.err:find("already exists", 1, true) or r.err:find("SQLState: 42P07", 1, true)
       or r.err:find("SQLState: 42710", 1, true) then
      ctx:violation("a migrate.lua applied a migration that was already applied (%s): %s", faults.describe(f),
        r.log)
      ctx:keep(r)
    end
  end
  local expected = migration_versions(ctx.cfg.root)
  local got = applied(ctx)
  -- migrations run in order: what is applied must be a prefix of the list
  local prefix_ok = false
  for n = 0, #expected do
    if got == table.concat(expected, ",", 1, n) then prefix_ok = true end
  end
  if not prefix_ok then ctx:violation("migrations applied out of order or unknown: %q (files: %s)", got,
    table.concat(expected, ",")) end
  local fp, tables = state.fingerprint(ctx)
  for _, p in ipairs(state.duplicate_check(ctx, tables)) do ctx:violation("%s after concurrent migrate", p) end
  local outcome = ("%d of 3 runs failed"):format(failed)
  if got == table.concat(expected, ",") then
    local d = {}
    for _, line in ipairs(state.diff(ctx.canonical, fp)) do if line:find("^schema") then d[#d + 1] = line end end
    if #d > 0 then
      ctx:violation("concurrent migrate left a schema unlike the canonical one: %s", table.concat(d, "; "))
    end
  else
    -- a run failed under the faults: one more, without faults, must finish the job
    local r = children.run_one(ctx, { script = "scripts/migrate.lua" })
    if r.rc ~= 0 then ctx:violation("migrate.lua without faults failed after a partial concurrent run: %s", r.log) end
    got = applied(ctx)
    if got ~= table.concat(expected, ",") then ctx:violation("migrations after a final run: %q", got) end
    outcome = outcome .. ", completed by a final run"
  end
  for _, line in ipairs(state.diff(ctx.canonical, state.fingerprint(ctx))) do
    if line:find("^schema") then ctx:violation("schema after migrate: %s", line) end
  end
  if not ctx.current.violated then
    if failed == 0 then t.ok = t.ok + 1 else t.intact = t.intact + 1 end
  end
  ctx:say("migrate #%-3d %-44s -> %s", ctx.current.n, faults.describe(f), outcome)
  tally.end_scenario(ctx)
end

return migrate
