-- The one table the soak's parts share, passed to each explicitly:
--   cfg          the settings (soak/settings.lua)
--   stack        the private stack (spec/support/stack.lua)
--   tally        the counters (soak/tally.lua)
--   current      the scenario running now { name, n, violated, ... }
--   logdir       the temp folder of the children's output
--   canonical    the fingerprint after a clean reset with test data
--   violations, notes, kept_logs, probe_result: what the report and the exit status tell
local tally = require "soak.tally"

local context = {}
local Context = {}
Context.__index = Context

function context.new(cfg, stack)
  return setmetatable({ cfg = cfg, stack = stack, tally = tally.new(cfg.scenarios), child_seq = 0,
                        violations = {}, notes = {}, kept_logs = {}, probe_result = "not run" }, Context)
end

function Context.say(_, ...)
  io.stdout:write("soak: ", string.format(...), "\n")
  io.stdout:flush()
end

-- A broken promise: counted against the current scenario, and the exit status 1.
function Context:violation(fmt, ...)
  local msg = fmt:format(...)
  local current = self.current
  self.violations[#self.violations + 1] = ("[%s #%d] %s"):format(current.name, current.n, msg)
  local t = self.tally.by[current.name]
  if t then t.violations = t.violations + 1 end
  current.violated = true
  self:say("VIOLATION: %s", msg)
end

-- Something the report should mention that is no violation.
function Context:note(text)
  self.notes[#self.notes + 1] = text
end

-- Keeps a child's log for the list printed at the end of a failed soak.
function Context:keep(r)
  self.kept_logs[#self.kept_logs + 1] = r.log
end

return context
