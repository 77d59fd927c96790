-- The soak's settings: the knobs read from the environment and the fixed
-- bounds the scenarios and the report share.
local bl = require "benchlib"

local settings = {}

local env_number = bl.env_number

local function env_path(name, default)
  local v = os.getenv(name)
  if not v or v == "" then return default end
  return v
end

-- read(root) -> the settings; a bad knob raises a one-line error.
function settings.read(root)
  local seconds = env_number("SOAK_SECONDS", 180, 1)
  local seed = math.floor(env_number("SOAK_SEED", os.time(), 0))
  return {
    root = root,
    seconds = seconds, -- scenarios are not started after it
    seed = seed,
    report = os.getenv("SOAK_REPORT") or (root .. "/bench/SOAK.md"),
    alexlua = bl.alexlua(root .. "/build/alexlua"),
    dataapi = env_path("ALEX_DATAAPI", root .. "/build/alex-dataapi"),
    child_timeout = 90, -- seconds; a child still running then is killed (and reported)
    -- The reset after a killed one must be done within this: only the journal's
    -- recovery can meet it, the service expiring the orphan takes far longer.
    unblocked_seconds = 5,
    scenarios = { "reset", "exhaust", "kill", "migrate", "prices", "moves" }, -- the report's order
  }
end

return settings
