-- Runs busted inside alexlua, as Kong runs busted inside its own runtime, so the
-- specs load the embedded alex.* library and the real C bindings.
-- Usage: alexlua spec/run.lua [busted options] [paths]
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
package.path = here .. "/support/?.lua;" .. package.path

local args = { "--output=summary_output", "--pattern=_spec", "--no-shuffle-files" }
for i = 1, #arg do args[#args + 1] = arg[i] end
arg = args -- luacheck: ignore 121 (busted reads the global `arg`)
require "busted.runner" ({ standalone = false })
