-- Error values for the Data API client: tables a script can act on, with a
-- one-line tostring.  Fields:
--   name       AWS error code ("DatabaseErrorException") or a local kind
--              ("TransportError", "ConfigError", "CredentialsError", "ParameterError")
--   message    what went wrong, never containing a secret
--   status     HTTP status (nil for transport and local errors)
--   sqlstate   PostgreSQL's SQLState when PostgreSQL produced the error
--   retryable  true when the AWS standard retry mode would retry it
--   outcome_unknown  true when the request may have run (timeout or connection
--              lost after sending): a retry could apply it twice
--   operation  "ExecuteStatement", ... ; attempts: how many were made
local errors = {}

local Error = {}
Error.__index = Error
Error.__name = "alex.error"

function Error.__tostring(e)
  local parts = { e.name or "Error", ": ", e.message or "(no message)" }
  local ctx = {}
  if e.operation then ctx[#ctx + 1] = e.operation end
  if e.status then ctx[#ctx + 1] = "HTTP " .. e.status end
  if e.attempts and e.attempts > 1 then ctx[#ctx + 1] = e.attempts .. " attempts" end
  if #ctx > 0 then parts[#parts + 1] = " (" .. table.concat(ctx, ", ") .. ")" end
  return table.concat(parts)
end

function errors.is_error(v)
  return getmetatable(v) == Error
end

function errors.new(fields)
  return setmetatable(fields, Error)
end

-- Codes the AWS standard retry mode retries (throttling and transient).
local RETRYABLE_CODES = {}
for code in ([[Throttling ThrottlingException ThrottledException RequestThrottledException
  TooManyRequestsException ProvisionedThroughputExceededException TransactionInProgressException
  RequestLimitExceeded BandwidthLimitExceeded LimitExceededException RequestThrottled SlowDown
  PriorRequestNotComplete EC2ThrottledException RequestTimeout RequestTimeoutException]]):gmatch("%S+") do
  RETRYABLE_CODES[code] = true
end
local RETRYABLE_STATUS = { [500] = true, [502] = true, [503] = true, [504] = true }
errors.THROTTLING = RETRYABLE_CODES

-- AWS codes arrive as "Name", "Name:http://...", or "namespace#Name".
local function clean_code(code)
  if type(code) ~= "string" or code == "" then return nil end
  code = code:match("^([^:]*)") or code
  code = code:match("#(.*)$") or code
  return code
end

-- Builds an error from a non-200 Data API response.
function errors.from_response(operation, res, body)
  local header = res.headers and res.headers["x-amzn-errortype"]
  local code = clean_code(header)
  local message
  if type(body) == "table" then
    code = code or clean_code(body.__type) or clean_code(body.code) or clean_code(body.Code)
    message = body.message or body.Message
  end
  code = code or ("HTTP" .. tostring(res.status))
  if type(message) ~= "string" or message == "" then
    message = "the service answered HTTP " .. tostring(res.status) .. " with no message"
  end
  local e = errors.new {
    name = code,
    message = message,
    status = res.status,
    operation = operation,
    sqlstate = message:match("SQLState: (%w+)"),
    retryable = RETRYABLE_CODES[code] or RETRYABLE_STATUS[res.status] or false,
    resuming = code == "DatabaseResumingException",
    request_id = res.headers and res.headers["x-amzn-requestid"],
  }
  -- An internal error (500) or a bad gateway (502) may come after the statement
  -- ran; "service unavailable" and "database unavailable" mean it never started.
  if (res.status == 500 or res.status == 502)
     and code ~= "ServiceUnavailableError" and code ~= "DatabaseUnavailableException" then
    e.outcome_unknown = true
  end
  return e
end

-- Transport kinds from alex.http.  dns/connect (and tls, which fails during the
-- handshake) happen before the request is sent: always safe to retry.
local BEFORE_SEND = { dns = true, connect = true }
local RETRYABLE_TRANSPORT = { dns = true, connect = true, timeout = true, reset = true, protocol = true }

function errors.from_transport(operation, message, kind)
  return errors.new {
    name = kind == "interrupted" and "Interrupted" or "TransportError",
    kind = kind,
    message = message,
    operation = operation,
    retryable = RETRYABLE_TRANSPORT[kind] or false,
    outcome_unknown = not BEFORE_SEND[kind] and kind ~= "tls" and kind ~= "interrupted" or nil,
  }
end

return errors
