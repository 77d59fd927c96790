-- Move a holding (or part of it) from one account to another of the same
-- user, both sides in one transaction.
--   alexlua scripts/fixes/move_position.lua test_user_001 GLD "401(k)" "Roth IRA" [--quantity 10] [--apply]
local fix = require "alex.fix"
local cli = require "alex.cli"
local models = require "alex.models"

fix.run {
  description = "Move a position between two accounts of one user.",
  arguments = function(parser)
    parser:argument("user", "clerk_user_id of the owner.")
    parser:argument("symbol", "Instrument symbol.")
    parser:argument("from", "Name of the account it leaves.")
    parser:argument("to", "Name of the account it joins.")
    parser:option("--quantity", "How much to move (default: all of it).")
  end,
  change = function(tx, args)
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
    m.positions:move(args.symbol, by_name[args.from].id, by_name[args.to].id, args.quantity)
  end,
}
