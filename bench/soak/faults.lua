-- The faults the private stack's service injects: random mixes, their
-- description, and the service's counters.
local dbops = require "dbops"

local faults = {}

faults.KINDS = { "throttle", "resuming", "5xx", "drop", "drop_after" }
local RATE_NAMES = { throttle = "throttle_rate", resuming = "resuming_rate", ["5xx"] = "5xx_rate",
                     drop = "drop_rate", drop_after = "drop_after_rate" }

function faults.set(ctx, f) assert(ctx.stack:set_faults(f)) end

function faults.clear(ctx) ctx.stack:clear_faults() end

-- A fault mix: a total rate split at random over the five kinds.
function faults.mix(total)
  local w, sum = {}, 0
  for i = 1, #faults.KINDS do
    w[i] = math.random() + 0.05
    sum = sum + w[i]
  end
  local f = { seed = math.random(1, 2 ^ 31), latency_ms = math.random(0, 2) }
  for i, k in ipairs(faults.KINDS) do f[RATE_NAMES[k]] = math.floor(total * w[i] / sum * 1000) / 1000 end
  return f
end

function faults.describe(f)
  local parts = {}
  for _, k in ipairs(faults.KINDS) do
    if (f[RATE_NAMES[k]] or 0) > 0 then parts[#parts + 1] = ("%s=%.3f"):format(k, f[RATE_NAMES[k]]) end
  end
  return ("seed=%d %s"):format(f.seed or 0, #parts > 0 and table.concat(parts, " ") or "none")
end

-- The service's counters: faults injected by kind, and operations in all (ops).
function faults.counts(ctx)
  local st = assert(ctx.stack:stats())
  local out = { ops = dbops.calls(ctx.stack) }
  for _, k in ipairs(faults.KINDS) do out[k] = st.faults[k] or 0 end
  return out
end

return faults
