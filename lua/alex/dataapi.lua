-- One Data API operation = one signed HTTPS POST, with the AWS standard retry
-- mode, a separate wait for Aurora's auto-pause resume, logging and counters.
-- alex.db builds requests and reads results; this module only moves them.
local http = require "alex.http"
local sigv4 = require "alex.sigv4"
local json = require "alex.json"
local errors = require "alex.errors"
local host = require "alex.host"
local clock = require "alex.clock"

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

local USER_AGENT = "alexlua/" .. host.version .. " lua/" .. _VERSION:match("%d.*")

local now = clock.monotonic

local function sleep(seconds)
  if seconds > 0 then clock.sleep(seconds) end
end
dataapi.sleep = sleep

local function env_number(getenv, name, default)
  local v = getenv(name)
  if v == nil or v == "" then return default end
  local n = tonumber(v)
  if not n or n < 0 then error(("%s must be a non-negative number, got %q"):format(name, v), 0) end
  return n
end

local Client = {}
Client.__index = Client

-- opts: config (from alex.config), credentials (a provider with :get()),
--   getenv, log (function(line)), random (function() -> [0,1)), sleep,
--   connect_timeout, timeout.
function dataapi.new(opts)
  local getenv = opts.getenv or os.getenv
  local self = setmetatable({
    config = opts.config,
    credentials = opts.credentials,
    http = http.new { connect_timeout = opts.connect_timeout or 10, timeout = opts.timeout or 60 },
    max_attempts = opts.max_attempts or opts.config.max_attempts or 3,
    -- Standard mode: full jitter over base * 2^(attempt-1), capped at 20 s.
    retry_base = opts.retry_base or env_number(getenv, "ALEX_RETRY_BASE", 1),
    retry_cap = 20,
    -- Aurora resuming from auto-pause takes 10-30 s, sometimes more.
    resume_timeout = opts.resume_timeout or env_number(getenv, "ALEX_RESUME_TIMEOUT", 120),
    resume_base = opts.resume_base or env_number(getenv, "ALEX_RESUME_BASE", 1),
    debug = opts.debug or (getenv("ALEX_DEBUG") or "") ~= "" and getenv("ALEX_DEBUG") ~= "0",
    log = opts.log or function(line) io.stderr:write("alexlua: ", line, "\n") end,
    random = opts.random or math.random,
    sleep = opts.sleep or sleep,
    clock_skew = 0,
    stats = { calls = {}, retries = 0, resume_waits = 0, seconds = 0, bytes_out = 0, bytes_in = 0 },
  }, Client)
  for _, op in ipairs(dataapi.OPERATIONS) do self.stats.calls[op] = 0 end
  return self
end

function Client:close()
  self.http:close()
end

local function amz_date(skew)
  return os.date("!%Y%m%dT%H%M%SZ", os.time() + skew)
end

-- Parses an RFC 7231 Date header to epoch seconds (for clock-skew correction).
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
                 Nov = 11, Dec = 12 }
local function parse_http_date(s)
  local d, mon, y, hh, mm, ss = (s or ""):match("%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT")
  if not d or not MONTHS[mon] then return nil end
  -- days from civil (proleptic Gregorian), no dependence on the local time zone
  local yy, m = tonumber(y), MONTHS[mon]
  if m <= 2 then yy = yy - 1 end
  local era = yy // 400
  local yoe = yy - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + tonumber(d) - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
end
dataapi.parse_http_date = parse_http_date

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

-- One attempt: returns decoded body, or nil and an error value.
function Client:attempt(op, body)
  local creds, cerr = self.credentials:get()
  if not creds then
    return nil, errors.new { name = "CredentialsError", message = tostring(cerr), operation = op }
  end
  local cfg = self.config
  local signed = sigv4.sign {
    method = "POST",
    url = cfg.endpoint .. PATHS[op],
    headers = { { "Content-Type", "application/json" }, { "User-Agent", USER_AGENT } },
    body = body,
    access_key = creds.access_key,
    secret_key = creds.secret_key,
    session_token = creds.session_token,
    region = cfg.region,
    service = "rds-data",
    amz_date = amz_date(self.clock_skew),
  }
  local res, msg, kind = self.http:request {
    method = "POST", url = cfg.endpoint .. PATHS[op], headers = signed.headers, body = body,
  }
  if not res then return nil, errors.from_transport(op, msg, kind) end
  self.stats.bytes_in = self.stats.bytes_in + #res.body
  if res.status == 200 then
    local decoded, derr = json.decode_response(res.body)
    if decoded == nil then
      return nil, errors.new { name = "InvalidResponse", operation = op, status = 200,
                               message = "the service sent a body that is not JSON: " .. tostring(derr) }
    end
    return decoded, nil, res
  end
  local decoded = json.decode(res.body)
  local e = errors.from_response(op, res, decoded)
  -- A wrong clock shows up as a signature error: correct the skew from the
  -- server's Date and retry once, as the JS SDK does.
  if e.name == "InvalidSignatureException" and e.message:find("Signature ", 1, true)
     and (e.message:find("expired", 1, true) or e.message:find("not yet current", 1, true)) then
    local server = parse_http_date(res.headers.date)
    if server then
      self.clock_skew = server - os.time()
      e.retryable = true
      e.clock_skew = true
    end
  end
  return nil, e, res
end

-- call(op, request_table_or_body_text, summary, policy) -> decoded response, or nil, err.
-- policy.in_transaction: never retry an outcome-unknown failure (the caller
-- must roll back); policy.idempotent: retry even those outside a transaction;
-- policy.repeatable: retry them even inside one (a rollback: running it twice
-- ends the transaction once); policy.min_attempts: at least this many
-- attempts whatever AWS_MAX_ATTEMPTS says.
function Client:call(op, body, summary, policy)
  assert(PATHS[op], "unknown Data API operation")
  if type(body) == "table" then body = assert(json.encode(body)) end
  policy = policy or {}
  self.stats.calls[op] = self.stats.calls[op] + 1
  self.stats.bytes_out = self.stats.bytes_out + #body
  local started = now()
  local attempt, resume_started = 0, nil
  local skew_retried = false
  local max_attempts = math.max(self.max_attempts, policy.min_attempts or 0)
  while true do
    attempt = attempt + 1
    local t0 = now()
    local result, err = self:attempt(op, body)
    local ms = (now() - t0) * 1000
    if self.debug then
      self.log(("%s -> %s attempt %d %.1f ms"):format(describe(op, summary),
        result and "200" or (err.status and (err.status .. " " .. err.name) or err.name), attempt, ms))
    end
    if result then
      self.stats.seconds = self.stats.seconds + (now() - started)
      return result
    end
    err.attempts = attempt
    local retry, delay = false, 0
    if err.resuming then
      -- Not retried by the SDK; Aurora needs time to wake.  A separate budget.
      resume_started = resume_started or now()
      local waited = now() - resume_started
      if waited < self.resume_timeout then
        if self.stats.resume_waits == 0 or self.debug then
          io.stderr:write(("alexlua: the Aurora cluster is resuming from auto-pause; waiting (up to %ds)...\n")
            :format(math.floor(self.resume_timeout)))
        end
        self.stats.resume_waits = self.stats.resume_waits + 1
        retry = true
        delay = math.min(self.resume_base * 2 ^ math.min(self.stats.resume_waits - 1, 5), 10,
                         self.resume_timeout - waited)
        attempt = attempt - 1 -- resume waits do not use up ordinary attempts
      end
    elseif err.clock_skew and not skew_retried then
      skew_retried, retry, attempt = true, true, attempt - 1
    elseif err.retryable and attempt < max_attempts then
      if err.outcome_unknown and not policy.repeatable and (policy.in_transaction or not policy.idempotent) then
        retry = false -- it may have run: repeating it could apply it twice
      else
        retry = true
        delay = self.random() * math.min(self.retry_cap, self.retry_base * 2 ^ (attempt - 1))
      end
    end
    if not retry then
      self.stats.seconds = self.stats.seconds + (now() - started)
      if err.outcome_unknown and err.retryable then
        err.message = err.message .. " (not retried: the request may have run, and running it again could" ..
          " apply it twice)"
      end
      return nil, err
    end
    self.stats.retries = self.stats.retries + 1
    if self.debug then self.log(("retrying %s in %.2f s"):format(op, delay)) end
    self.sleep(delay)
  end
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
