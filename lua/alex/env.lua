-- Reading settings: what config, credentials and the RDS client share.
local env = {}

function env.trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- wrap(fn, who) -> getenv(name): fn (default os.getenv) with values trimmed
-- and empty values read as unset, as the AWS SDKs treat them.
function env.wrap(fn, who)
  fn = fn or os.getenv
  if type(fn) ~= "function" then error((who or "alex") .. ": env must be a function(name) -> value", 3) end
  return function(name)
    local v = fn(name)
    if v == nil then return nil end
    v = env.trim(tostring(v))
    if v == "" then return nil end
    return v
  end
end

-- option(opts, k) -> opts[k], a string trimmed and "" read as unset: an
-- option given in code counts as a setting only when it says something.
function env.option(opts, k)
  local v = opts[k]
  if type(v) == "string" then
    v = env.trim(v)
    if v == "" then return nil end
  end
  return v
end

function env.is_true(v)
  return v ~= nil and tostring(v):lower() == "true"
end

-- pick{ {value, source, detail}, ... } -> the first candidate with a value,
-- and where it came from: settings are resolved in precedence order this way.
function env.pick(candidates)
  for _, c in ipairs(candidates) do
    if c[1] ~= nil and c[1] ~= "" then return c[1], c[2], c[3] end
  end
  return nil
end

return env
