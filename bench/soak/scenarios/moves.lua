-- moves: the test user's holding of one symbol is spread over the three
-- accounts, then 3-4 move_position.lua at once (all, or a quantity): the
-- total is conserved, no quantity <= 0, and some order of the successful
-- moves (plus any commit-unknown ones) leads from the start to the end
-- holdings; restoring the holding must give back the canonical state.
local canonical = require "soak.canonical"
local children = require "soak.children"
local faults = require "soak.faults"
local state = require "soak.state"
local tally = require "soak.tally"

local moves = {}

local TEST_USER = "test_user_001"
local ACCOUNTS = { "401(k)", "Roth IRA", "Taxable Brokerage" }
local SYMBOLS = { "SPY", "QQQ", "BND", "VEA", "GLD" } -- the test user's holdings

local psql, literal = state.psql, state.literal

-- Holdings of one symbol by account name, as numbers (absent = 0).
local function holdings(ctx, symbol)
  local out = {}
  for _, a in ipairs(ACCOUNTS) do out[a] = 0 end
  local rows = psql(ctx, ([[SELECT a.account_name || '|' || p.quantity FROM positions p
    JOIN accounts a ON a.id = p.account_id
    WHERE a.clerk_user_id = %s AND p.symbol = %s]]):format(literal(TEST_USER), literal(symbol)))
  for line in rows:gmatch("[^\n]+") do
    local name, q = line:match("^(.*)|(.*)$")
    out[name] = (out[name] or 0) + tonumber(q)
  end
  return out, rows
end

-- move semantics of Positions:move: nil when the move fails in this state.
local function apply_move(s, m)
  local have = s[m.from] or 0
  if have <= 0 then return nil end
  local amount = m.quantity or have
  if amount > have then return nil end
  local new = {}
  for k, v in pairs(s) do new[k] = v end
  new[m.from] = have - amount
  new[m.to] = (new[m.to] or 0) + amount
  return new
end

local function equal_state(a, b)
  for _, name in ipairs(ACCOUNTS) do
    if math.abs((a[name] or 0) - (b[name] or 0)) > 1e-9 then return false end
  end
  return true
end

-- Is there an order of the moves that must have happened (and some of the
-- maybe-happened ones) that leads from start to final?
function moves.serial_outcome(start, must, maybe, final)
  local search
  -- tries each move of list next; rest_of(list without it) -> the search's
  -- remaining must and maybe lists
  local function try_each(s, list, rest_of)
    for i, m in ipairs(list) do
      local nxt = apply_move(s, m)
      if nxt then
        local rest = { table.unpack(list) }
        table.remove(rest, i)
        if search(nxt, rest_of(rest)) then return true end
      end
    end
    return false
  end
  search = function(s, left_must, left_maybe)
    if #left_must == 0 and equal_state(s, final) then return true end
    return try_each(s, left_must, function(rest) return rest, left_maybe end)
      or try_each(s, left_maybe, function(rest) return left_must, rest end)
  end
  return search(start, must, maybe)
end

-- The SQL that deletes the test user's holding of symbol, and that gives one
-- account a quantity of it (the quantity's text as written in the SQL).
local function delete_holding(symbol)
  return ("DELETE FROM positions WHERE symbol = %s AND account_id IN " ..
    "(SELECT id FROM accounts WHERE clerk_user_id = %s);"):format(literal(symbol), literal(TEST_USER))
end

local function insert_holding(symbol, name, quantity)
  return ([[INSERT INTO positions (account_id, symbol, quantity) SELECT id, %s, %s FROM accounts
        WHERE clerk_user_id = %s AND account_name = %s;]]):format(literal(symbol), quantity,
        literal(TEST_USER), literal(name))
end

function moves.run(ctx)
  tally.begin_scenario(ctx, "moves")
  if not canonical.ensure(ctx) then tally.end_scenario(ctx) return end
  local symbol = SYMBOLS[math.random(#SYMBOLS)]
  local canonical_holdings = holdings(ctx, symbol)
  local total = 0
  for _, q in pairs(canonical_holdings) do total = total + q end
  -- spread the holding over the three accounts (some may hold none)
  local a = math.random(0, total)
  local b = math.random(0, total - a)
  local start = { [ACCOUNTS[1]] = a, [ACCOUNTS[2]] = b, [ACCOUNTS[3]] = total - a - b }
  local set = { delete_holding(symbol) }
  for _, name in ipairs(ACCOUNTS) do
    if start[name] > 0 then set[#set + 1] = insert_holding(symbol, name, ("%d"):format(start[name])) end
  end
  psql(ctx, table.concat(set, "\n"))
  local k = math.random(3, 4)
  local planned, jobs = {}, {}
  for i = 1, k do
    -- mostly from an account that holds some at the start, mostly a part of it
    local from = math.random(3)
    for _ = 1, 4 do
      if start[ACCOUNTS[from]] > 0 then break end
      from = math.random(3)
    end
    local to = (from + math.random(1, 2) - 1) % 3 + 1
    local m = { from = ACCOUNTS[from], to = ACCOUNTS[to] }
    if math.random() < 0.7 then m.quantity = math.random(1, math.max(1, start[ACCOUNTS[from]] // 2)) end
    planned[i] = m
    local args = { TEST_USER, symbol, m.from, m.to }
    if m.quantity then args[#args + 1] = "--quantity"; args[#args + 1] = tostring(m.quantity) end
    args[#args + 1] = "--apply"
    args[#args + 1] = "--again"
    jobs[i] = { script = "scripts/fixes/move_position.lua", args = args }
  end
  local f = faults.mix(math.random() * 0.15)
  faults.set(ctx, f)
  local rs = children.run(ctx, jobs)
  faults.clear(ctx)
  local final, raw = holdings(ctx, symbol)
  local sum = 0
  for _, q in pairs(final) do sum = sum + q end
  local must, maybe, names = {}, {}, {}
  for i, r in ipairs(rs) do
    local m = planned[i]
    local mark = r.rc == 0 and "" or (r.commit_unknown and "?" or "x")
    names[i] = ("%s>%s:%s%s"):format(m.from:sub(1, 1), m.to:sub(1, 1), m.quantity or "all", mark)
    if r.rc == 0 then
      must[#must + 1] = m
    elseif r.commit_unknown then
      maybe[#maybe + 1] = m
    end
  end
  local zero = psql(ctx, ([[SELECT count(*) FROM positions p JOIN accounts a ON a.id = p.account_id
    WHERE a.clerk_user_id = %s AND p.symbol = %s AND p.quantity <= 0]]):format(literal(TEST_USER),
    literal(symbol)))
  if math.abs(sum - total) > 1e-9 then
    ctx:violation("%s total went from %d to %s after moves %s: %s", symbol, total, tostring(sum),
      table.concat(names, " "), raw:gsub("\n", ", "))
  elseif zero ~= "0" then
    ctx:violation("%s: %s positions with a quantity <= 0 after moves %s", symbol, zero, table.concat(names, " "))
  elseif not moves.serial_outcome(start, must, maybe, final) then
    ctx:violation("%s holdings %s are no serial outcome of moves %s from %d/%d/%d", symbol, raw:gsub("\n", ", "),
      table.concat(names, " "), start[ACCOUNTS[1]], start[ACCOUNTS[2]], start[ACCOUNTS[3]])
  end
  if ctx.current.violated then for _, r in ipairs(rs) do ctx:keep(r) end end
  -- back to the canonical holding; then nothing else may differ
  local restore = { set[1] }
  for name, q in pairs(canonical_holdings) do
    if q > 0 then restore[#restore + 1] = insert_holding(symbol, name, tostring(q)) end
  end
  psql(ctx, table.concat(restore, "\n"))
  state.after_concurrent_fixes(ctx, rs, "concurrent moves")
  ctx:say("moves   #%-3d %-4s %d/%d/%d -> %d/%d/%d  %-40s %s", ctx.current.n, symbol, start[ACCOUNTS[1]],
    start[ACCOUNTS[2]], start[ACCOUNTS[3]], final[ACCOUNTS[1]], final[ACCOUNTS[2]], final[ACCOUNTS[3]],
    table.concat(names, " "), faults.describe(f))
  tally.end_scenario(ctx)
end

return moves
