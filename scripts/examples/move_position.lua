-- Ad-hoc fix: move a holding (or part of it) from one account to another of
-- the same user, both sides in one transaction.
--   alexlua scripts/examples/move_position.lua test_user_001 GLD "401(k)" "Roth IRA" [--quantity 10]
local cli = require "alex.cli"
local models = require "alex.models"

local parser = cli.parser("move_position.lua", "Move a position between two accounts of one user.")
parser:argument("user", "clerk_user_id of the owner.")
parser:argument("symbol", "Instrument symbol.")
parser:argument("from", "Name of the account it leaves.")
parser:argument("to", "Name of the account it joins.")
parser:option("--quantity", "How much to move (default: all of it).")
local args = cli.parse(parser)

cli.run(function()
  local conn = cli.connect()
  conn:transaction(function(tx)
    local m = models.bind(tx)
    local by_name, twice = {}, {}
    for _, a in ipairs(m.accounts:for_user(args.user)) do
      if by_name[a.account_name] then twice[a.account_name] = true end
      by_name[a.account_name] = a
    end
    for _, name in ipairs { args.from, args.to } do
      if not by_name[name] then cli.refuse(("user %s has no account named %q"):format(args.user, name)) end
      -- the table does not forbid it (rows written around the models): say so rather than pick one
      if twice[name] then cli.refuse(("user %s has two accounts named %q"):format(args.user, name)) end
    end
    local from, to = by_name[args.from], by_name[args.to]
    local row = m.positions:move(args.symbol, from.id, to.id, args.quantity)
    print(("moved %s %s from %s to %s (now %s there)"):format(args.quantity or "all", args.symbol, args.from,
      args.to, row.quantity))
  end)
end)
