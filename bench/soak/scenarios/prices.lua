-- prices: 3-4 reprice.lua at once on one instrument: the final price is one
-- a successful (or commit-unknown) child wrote, the original only when none
-- succeeded; restoring the price must give back the canonical state.
local canonical = require "soak.canonical"
local children = require "soak.children"
local faults = require "soak.faults"
local state = require "soak.state"
local tally = require "soak.tally"

local prices = {}

function prices.run(ctx)
  tally.begin_scenario(ctx, "prices")
  if not canonical.ensure(ctx) then tally.end_scenario(ctx) return end
  local psql, literal = state.psql, state.literal
  local symbols = {}
  for sym in psql(ctx, "SELECT symbol FROM instruments ORDER BY symbol"):gmatch("[^\n]+") do
    symbols[#symbols + 1] = sym
  end
  local symbol = symbols[math.random(#symbols)]
  local original = psql(ctx, "SELECT current_price FROM instruments WHERE symbol = " .. literal(symbol))
  local k = math.random(3, 4)
  local wanted, jobs = {}, {}
  for i = 1, k do
    wanted[i] = ("%d.%04d"):format(math.random(1, 9999), math.random(0, 9999))
    -- --again: two children may set the same price, each a run of its own
    jobs[i] = { script = "scripts/fixes/reprice.lua", args = { symbol, wanted[i], "--apply", "--again" } }
  end
  local f = faults.mix(math.random() * 0.15)
  faults.set(ctx, f)
  local rs = children.run(ctx, jobs)
  faults.clear(ctx)
  local final = psql(ctx, "SELECT current_price FROM instruments WHERE symbol = " .. literal(symbol))
  local allowed, succeeded, names = {}, 0, {}
  for i, r in ipairs(rs) do
    if r.rc == 0 then succeeded = succeeded + 1 end
    if r.rc == 0 or r.commit_unknown then allowed[#allowed + 1] = wanted[i] end
    names[i] = wanted[i] .. (r.rc == 0 and "" or (r.commit_unknown and "?" or "x"))
  end
  if succeeded == 0 then allowed[#allowed + 1] = original end
  local match = false
  for _, p in ipairs(allowed) do
    if tonumber(p) == tonumber(final) then match = true end
  end
  if not match then
    ctx:violation("%s ended at %s, not a serial outcome of %s (from %s; x = failed, ? = commit unknown)", symbol,
      final, table.concat(names, ", "), original)
    for _, r in ipairs(rs) do ctx:keep(r) end
  end
  psql(ctx, ("UPDATE instruments SET current_price = %s WHERE symbol = %s"):format(original, literal(symbol)))
  state.after_concurrent_fixes(ctx, rs, "concurrent price updates")
  ctx:say("prices  #%-3d %-5s %s -> %s %-30s %s", ctx.current.n, symbol, original, final, table.concat(names, " "),
    faults.describe(f))
  tally.end_scenario(ctx)
end

return prices
