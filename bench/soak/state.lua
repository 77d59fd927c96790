-- The database the scenarios look at: psql on the stack, fingerprints
-- (spec/support/fingerprint.lua), duplicates, and the perturbations that make
-- the state before a reset differ from the canonical one.
local fp_mod = require "fingerprint"

local state = {}

state.diff, state.same = fp_mod.diff, fp_mod.same

-- psql(ctx, sql) -> its output (tuples only, unaligned); raises when psql fails.
function state.psql(ctx, sql)
  local out, err = ctx.stack:psql(sql)
  if not out then error("psql failed: " .. tostring(err) .. "\nSQL: " .. sql:sub(1, 400), 0) end
  return out
end
local psql = state.psql

function state.literal(s)
  return "'" .. tostring(s):gsub("'", "''") .. "'"
end

-- fingerprint(ctx) -> fp, tables (fingerprint.content: rows without the volatile columns, and the schema).
function state.fingerprint(ctx)
  return fp_mod.content(function(sql) return psql(ctx, sql) end)
end

-- Business-level duplicates, whatever the fingerprint says.
-- The data-fix ledger after children that each applied one fix: one applied
-- run per child that succeeded, none per child that failed (a commit whose
-- answer was lost may have recorded its run or not).  The ledger is then
-- emptied, so the state compares with the canonical one again.  Returns a
-- problem, or nil.
local function check_ledger(ctx, succeeded, unknown)
  local applied = tonumber(state.psql(ctx, "SELECT count(*) FROM data_fix_runs WHERE status = 'applied'"))
  local other = tonumber(state.psql(ctx, "SELECT count(*) FROM data_fix_runs WHERE status <> 'applied'"))
  state.psql(ctx, "DELETE FROM data_fix_runs") -- its changes go with it (ON DELETE CASCADE)
  if applied < succeeded or applied > succeeded + unknown or other > 0 then
    return ("the data-fix ledger holds %d applied and %d other runs for %d children that succeeded (%d with" ..
      " their outcome unknown)"):format(applied, other, succeeded, unknown)
  end
  return nil
end

-- The end of a scenario of concurrent fixes, once the data is restored:
-- the ledger as check_ledger says, then nothing else may differ from the
-- canonical state; the tally counts the run.  rs: the children's results.
function state.after_concurrent_fixes(ctx, rs, what)
  local succeeded, unknown = 0, 0
  for _, r in ipairs(rs) do
    if r.rc == 0 then succeeded = succeeded + 1 elseif r.commit_unknown then unknown = unknown + 1 end
  end
  local ledger = check_ledger(ctx, succeeded, unknown)
  if ledger then ctx:violation("%s", ledger) end
  local d = state.diff(ctx.canonical, state.fingerprint(ctx))
  if #d > 0 then ctx:violation("%s changed something else: %s", what, table.concat(d, "; ")) end
  if not ctx.current.violated then
    local t = ctx.tally.by[ctx.current.name]
    if succeeded == #rs then t.ok = t.ok + 1 else t.intact = t.intact + 1 end
  end
end

function state.duplicate_check(ctx, tables)
  local problems = {}
  if tables.accounts then
    local dup = psql(ctx, [[SELECT clerk_user_id || '/' || account_name || ' x' || count(*) FROM accounts
      GROUP BY clerk_user_id, account_name HAVING count(*) > 1]])
    if dup ~= "" then problems[#problems + 1] = "duplicate accounts: " .. dup:gsub("\n", ", ") end
  end
  if tables.schema_migrations then
    local dup = psql(ctx, "SELECT version || ' x' || count(*) FROM schema_migrations GROUP BY version" ..
      " HAVING count(*) > 1")
    if dup ~= "" then problems[#problems + 1] = "migrations recorded twice: " .. dup:gsub("\n", ", ") end
  end
  return problems
end

-- Everything the schema owns (its declaration says what), and the ledger.
state.DROP_ALL = (function()
  local owned = require("alex.schema").owned()
  local parts = { ("DROP TABLE IF EXISTS %s, schema_migrations CASCADE;"):format(table.concat(owned.tables, ", ")) }
  for _, f in ipairs(owned.functions) do parts[#parts + 1] = ("DROP FUNCTION IF EXISTS %s() CASCADE;"):format(f) end
  return table.concat(parts, " ")
end)()

-- Perturbations make the state before a reset differ from the canonical one,
-- so "exactly as before" and "complete new state" can be told apart.
local PERTURBATIONS = {
  { name = "edited rows", needs = { "instruments", "users", "accounts" }, sql = function(n)
    return ([[UPDATE instruments SET current_price = current_price + 1.5
        WHERE symbol = (SELECT symbol FROM instruments ORDER BY symbol OFFSET %d LIMIT 1);
      INSERT INTO users (clerk_user_id, display_name) VALUES ('soak_%d', 'soak user');
      INSERT INTO accounts (clerk_user_id, account_name, cash_balance) VALUES ('soak_%d', 'extra', %d);]])
      :format(n % 20, n, n, n)
  end },
  { name = "deleted and added rows", needs = { "positions", "jobs", "users", "instruments", "price_history" },
    sql = function(n)
      return ([[DELETE FROM positions WHERE id = (SELECT id FROM positions ORDER BY symbol LIMIT 1);
        INSERT INTO jobs (clerk_user_id, job_type, request_payload)
          SELECT clerk_user_id, 'soak', '{"n": %d}' FROM users ORDER BY clerk_user_id LIMIT 1;
        INSERT INTO price_history (symbol, price_date, close_price)
          SELECT symbol, DATE '2024-01-01' + %d, 100 + %d FROM instruments ORDER BY symbol LIMIT 3;]])
        :format(n, n % 300, n % 50)
    end },
  { name = "a dropped table, half migrated",
    needs = { "agent_logs", "price_history", "schema_migrations", "instruments" },
    sql = function(n)
      return ([[DROP TABLE agent_logs; DROP TABLE price_history;
        DELETE FROM schema_migrations WHERE version = '002';
        INSERT INTO instruments (symbol, name) VALUES ('ZZ%d', 'soak marker');]]):format(n)
    end },
  { name = "empty database", needs = {}, sql = function() return state.DROP_ALL end },
  { name = "unchanged", needs = {}, sql = function() return nil end },
}

-- perturb(ctx, tables, n) -> the name of a perturbation possible with these tables, applied.
function state.perturb(ctx, tables, n)
  local choices = {}
  for _, p in ipairs(PERTURBATIONS) do
    local ok = true
    for _, t in ipairs(p.needs) do if not tables[t] then ok = false end end
    if ok then choices[#choices + 1] = p end
  end
  local p = choices[math.random(#choices)]
  local sql = p.sql(n)
  if sql then psql(ctx, sql) end
  return p.name
end

return state
