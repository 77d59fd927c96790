-- The Data API's protocol over alex.aws: one operation = one JSON POST to its
-- path, answered with JSON or a JSON error; plus its own policy, the wait for
-- Aurora's auto-pause resume (DatabaseResumingException), and its counters.
-- Signing, sending and the standard retry mode are alex.aws's; alex.db builds
-- requests and reads results.
--
--   local client, err = dataapi.new(opts)   -- nil, message for a bad setting
--   local decoded, err = client:call("ExecuteStatement", request_or_body, summary, policy)
--
-- opts: settings (alex.aws settings for rds-data, from alex.config.load),
--   credentials (a provider with :get(); default the chain over the settings'
--   shared files), env (function(name) -> value, default os.getenv), debug,
--   log, random, sleep, now, connect_timeout, timeout (as alex.aws.client),
--   resume_timeout (seconds, default ALEX_RESUME_TIMEOUT or 120), resume_base
--   (seconds, default ALEX_RESUME_BASE or 1).
local aws = require "alex.aws"
local json = require "alex.json"
local errors = require "alex.errors"
local clock = require "alex.clock"
local alex_env = require "alex.env"

local dataapi = {}

local PATHS = {
  ExecuteStatement = "/Execute",
  BatchExecuteStatement = "/BatchExecute",
  BeginTransaction = "/BeginTransaction",
  CommitTransaction = "/CommitTransaction",
  RollbackTransaction = "/RollbackTransaction",
}
dataapi.OPERATIONS = {
  "ExecuteStatement", "BatchExecuteStatement", "BeginTransaction", "CommitTransaction", "RollbackTransaction",
}

local now = clock.monotonic

-- A non-negative number of seconds: option `field`, else the variable; nil
-- and the message when it is not one.
local function seconds(field, value, getenv, variable, default)
  return alex_env.number(field, { { value, "option" }, { getenv(variable), "environment", variable },
    { default, "default" } }, { says = "a non-negative number of seconds", default = default, min = 0 })
end

local Client = {}
Client.__index = Client

function dataapi.new(opts)
  local getenv = alex_env.wrap(opts.env, "alex.dataapi")
  local resume_timeout, terr = seconds("resume_timeout", opts.resume_timeout, getenv, "ALEX_RESUME_TIMEOUT", 120)
  if not resume_timeout then return nil, terr end
  local resume_base, berr = seconds("resume_base", opts.resume_base, getenv, "ALEX_RESUME_BASE", 1)
  if not resume_base then return nil, berr end
  local transport = aws.client {
    settings = opts.settings, credentials = opts.credentials, content_type = "application/json",
    debug = opts.debug, log = opts.log, random = opts.random, sleep = opts.sleep, now = opts.now,
    connect_timeout = opts.connect_timeout, timeout = opts.timeout,
  }
  local self = setmetatable({
    transport = transport,
    stats = transport.stats,
    -- Aurora resuming from auto-pause takes 10-30 s, sometimes more.
    resume_timeout = resume_timeout,
    resume_base = resume_base,
  }, Client)
  self.stats.resume_waits = 0
  for _, op in ipairs(dataapi.OPERATIONS) do self.stats.calls[op] = 0 end
  return self
end

function Client:close()
  self.transport:close()
end

-- What alex.db's whole-transaction retry and rollback wait use: the
-- transport's backoff, sleep and debug log.
function Client:backoff(n) return self.transport:backoff(n) end
function Client:sleep(s) return self.transport:sleep(s) end
function Client:debug_log(line) return self.transport:debug_log(line) end

-- The request log line: operation, first SQL line, parameter names (never values).
local function describe(op, summary)
  local parts = { op }
  if summary and summary.sql then
    local first = summary.sql:match("^%s*([^\n]*)") or ""
    if #first > 80 then first = first:sub(1, 77) .. "..." end
    parts[#parts + 1] = ("%q"):format(first)
  end
  if summary and summary.param_names and #summary.param_names > 0 then
    parts[#parts + 1] = "params=" .. table.concat(summary.param_names, ",")
  end
  if summary and summary.sets then parts[#parts + 1] = "sets=" .. summary.sets end
  if summary and summary.transaction then parts[#parts + 1] = "in-transaction" end
  return table.concat(parts, " ")
end

-- An answer -> the decoded body (its text when req.raw), or nil and the
-- error it carries.
local function parse(res, req)
  if res.status == 200 and req.raw then return res.body end
  if res.status == 200 then return dataapi.decode_answer(res.body, req.operation) end
  return nil, errors.from_response(req.operation, res, json.decode(res.body))
end

-- decode_answer(text, operation) -> a successful answer's body decoded, or
-- nil and an InvalidResponse error.
function dataapi.decode_answer(text, operation)
  local decoded, derr = json.decode_response(text)
  if decoded == nil then
    return nil, errors.new { name = "InvalidResponse", operation = operation, status = 200,
                             message = "the service sent a body that is not JSON: " .. tostring(derr) }
  end
  return decoded
end

-- A cluster resuming from auto-pause: not retried by the SDKs, as Aurora needs
-- time to wake; waited for on a budget of its own (resume_timeout), with waits
-- that do not use up attempts.
local function resume_wait(err, req)
  if not err.resuming then return nil end
  local self = req.client
  local t = now()
  req.resume_started = req.resume_started or t
  local waited = t - req.resume_started
  if waited >= self.resume_timeout then return false end
  if self.stats.resume_waits == 0 or self.transport.debug then
    io.stderr:write(("alexlua: the Aurora cluster is resuming from auto-pause; waiting (up to %ds)...\n")
      :format(math.floor(self.resume_timeout)))
  end
  self.stats.resume_waits = self.stats.resume_waits + 1
  return math.min(self.resume_base * 2 ^ math.min(self.stats.resume_waits - 1, 5), 10, self.resume_timeout - waited)
end

local function request(self, op, body, summary, policy)
  local path = PATHS[op]
  assert(path, "unknown Data API operation")
  if type(body) == "table" then body = assert(json.encode(body)) end
  return {
    operation = op, path = path, body = body, parse = parse, wait = resume_wait, policy = policy, client = self,
    describe = self.transport.debug and describe(op, summary) or nil,
  }
end

-- call(op, request_table_or_body_text, summary, policy) -> decoded response, or
-- nil, err.  policy: see alex.aws (in_transaction, idempotent, repeatable,
-- min_attempts).
function Client:call(op, body, summary, policy)
  return self.transport:call(request(self, op, body, summary, policy))
end

-- start(op, body, summary, policy [, raw]) -> a call on its way; finish(call)
-- -> what call returns, or with raw the answer's JSON text, not decoded, so
-- that decoding can overlap the next call.  Nothing else may use this
-- client in between: start calls on a companion.
function Client:start(op, body, summary, policy, raw)
  local req = request(self, op, body, summary, policy)
  req.raw = raw
  return self.transport:start(req)
end

function Client:finish(call)
  return self.transport:finish(call)
end

-- companion() -> a client on the same settings and stats with a connection
-- of its own (alex.aws companion); close() closes that connection.
function Client:companion()
  return setmetatable({ transport = self.transport:companion() }, { __index = self })
end

function Client:stats_report()
  local s = self.stats
  local parts = {}
  local total = 0
  for _, op in ipairs(dataapi.OPERATIONS) do
    if s.calls[op] > 0 then parts[#parts + 1] = op .. "=" .. s.calls[op] end
    total = total + s.calls[op]
  end
  return ("%d calls (%s), %d retries, %.3f s, %d bytes sent, %d received"):format(
    total, #parts > 0 and table.concat(parts, " ") or "none", s.retries, s.seconds, s.bytes_out, s.bytes_in)
end

return dataapi
