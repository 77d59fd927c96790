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

-- state_home(getenv) -> $XDG_STATE_HOME, else $HOME/.local/state (the XDG
-- default), else nil; empty variables count as unset.
function env.state_home(getenv)
  local base = getenv("XDG_STATE_HOME")
  if base and base ~= "" then return base end
  local home = getenv("HOME")
  if home and home ~= "" then return home .. "/.local/state" end
  return nil
end

-- number(field, candidates, rule) -> pick(candidates)'s value as a number,
-- its source and detail; or nil and "<where it came from> must be <rule.says>
-- (the default is <rule.default>), got <value>".  rule: { says, default, min,
-- max (none: no limit), integer }.
function env.number(field, candidates, rule)
  local value, source, detail = env.pick(candidates)
  local n = tonumber(value)
  if n and rule.integer then n = math.tointeger(n) end
  if not n or n ~= n or n == math.huge or n < rule.min or (rule.max and n > rule.max) then
    return nil, ("%s must be %s (the default is %d), got %q"):format(source == "option" and "option " .. field
      or detail, rule.says, rule.default, tostring(value))
  end
  return n, source, detail
end

return env
