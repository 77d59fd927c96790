-- `require "alex"`: the library's modules by name, each loaded on first use
-- (alex.db, alex.models, alex.migrate, ...), and the version.
local alex = { version = require("alex.host").version }

return setmetatable(alex, {
  __index = function(t, name)
    if type(name) ~= "string" or not name:find("^[%a_][%w_]*$") then return nil end
    local module = require("alex." .. name)
    rawset(t, name, module)
    return module
  end,
})
