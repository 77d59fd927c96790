-- luacheck configuration for alexlua: `luacheck -q lua scripts spec bench tools` (make lint).
-- Everything runs on Lua 5.4 (alexlua embeds it; tools/ run under lua5.4).
std = "lua54"
max_line_length = 120
exclude_files = { "build/**", "bench/out/**", ".alex/**" }

-- Specs and their support files run under busted (spec/run.lua): its globals
-- (describe, it, setup, finally, assert, spy, ...) are fine there.
files["spec/**/*.lua"] = { std = "+busted" }
