-- Talking to an AWS service: what the Data API client (alex.dataapi) and the
-- RDS control-plane client (alex.rds) share, so that both resolve their
-- settings, sign, send and retry the same way.
--
--   local aws = require "alex.aws"
--   local s, err = aws.settings("rds-data", opts)   -- nil, one-line message when misconfigured
--   local client = aws.client { settings = s, content_type = "application/json" }
--   local result, err = client:call { operation = "ExecuteStatement", path = "/Execute", body = "...",
--                                     parse = function(res, req) ... end }
--   client:backoff(n)  client:sleep(seconds)  client:debug_log(line)  client:close()
--
-- ---------- settings ----------
--
-- aws.settings(service, opts): service is the signing name ("rds-data", "rds");
-- its endpoint variable is AWS_ENDPOINT_URL_<NAME> (RDS_DATA, RDS) and its key in
-- a `[services x]` section <name> (rds_data, rds), as the SDKs derive them from
-- the service id.  opts (all optional): env (function(name) -> value, default
-- os.getenv), home, files (an alex.ini.files, default one made from env, home
-- and profile), profile, region, endpoint, max_attempts, retry_mode, retry_base
-- (each an option that wins over everything else), arn = { region =, called =,
-- source = } (the ARN of the resource the calls are about: its region is the
-- last resort, and a region that differs from it is refused unless the endpoint
-- is overridden), no_region (text appended to the error when no region is found).
--
-- Precedence for every setting: option > environment > the profile in the shared
-- config file > default.
--   profile       AWS_PROFILE, AWS_DEFAULT_PROFILE, "default"
--   endpoint      AWS_ENDPOINT_URL_<NAME>, AWS_ENDPOINT_URL, the profile's `services`
--                 section (`<name> =` then `  endpoint_url = ...`), the profile's
--                 endpoint_url; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true (or the
--                 profile's ignore_configured_endpoint_urls = true) switches these off,
--                 not the option; default https://<service>.<region>.amazonaws.com
--                 (.com.cn in China)
--   region        AWS_REGION, AWS_DEFAULT_REGION, the profile's region, the ARN's.
--                 DEFAULT_AWS_REGION is not read: no AWS SDK or the AWS CLI reads it,
--                 so with it the same environment would send `aws rds-data ...` and
--                 alexlua to different regions; the ARN names the region anyway.
--   max_attempts  AWS_MAX_ATTEMPTS, the profile's max_attempts, default 3 (1 to 100)
--   retry_mode    AWS_RETRY_MODE, the profile's retry_mode, default standard.  The
--                 standard mode is what runs: legacy and adaptive are accepted (the
--                 file and the environment are shared with other AWS tools) and run
--                 as standard, which the debug log says once; adaptive only adds a
--                 client-side rate limit that matters to many concurrent callers,
--                 and alexlua makes one call at a time.  Anything else is an error.
--   retry_base    ALEX_RETRY_BASE (seconds, default 1): the base of the backoff
--
-- The settings: { service, profile, endpoint, region, max_attempts, retry_mode
-- ("standard"), retry_base, source = { <field> = "option" | "environment" |
-- "config-file" | "default" | arn.source }, source_detail = { <field> = the
-- variable or file, nil for options and defaults }, files, env, notes (lines for
-- the debug log) }.  They hold no credentials; `files` holds the parsed shared
-- files and is not for printing.
--
-- ---------- the client ----------
--
-- aws.client(opts): opts.settings (from aws.settings; required), content_type
-- (of every request body), credentials (a provider with :get(); default the
-- alex.credentials chain over the settings' files and env), debug (true logs
-- every attempt; default: ALEX_DEBUG set and not 0), log (function(line); default
-- "alexlua: <line>" on stderr), sleep (function(seconds)), random (function() ->
-- [0, 1)), now (function() -> epoch seconds; the signing clock), connect_timeout,
-- timeout.  Public fields: settings, debug, stats = { calls = { [operation] = n },
-- retries, seconds, bytes_out, bytes_in } (a caller may add its own counters).
--
-- client:call(req) -> what req.parse returned, or nil and an alex.errors value
-- (err.attempts set).  One POST of req.body to endpoint .. req.path per attempt,
-- signed with one alex.sigv4.signer per credential set.  req: operation (for
-- errors, logs and stats), path, body, parse (function(res, req) -> result, or
-- nil and an error value: the protocol's reading of an answer), describe (the
-- debug log's text, default the operation), policy, wait (function(err, req) ->
-- seconds to wait before trying again without using up an attempt, false to give
-- up, nil to apply the standard rules: a caller's own waits).  req is the
-- caller's table, for its per-call state.
--
-- The standard retry mode: throttling and transient errors (alex.errors sets
-- err.retryable) are tried again up to max_attempts in all, after a full-jitter
-- backoff (client:backoff); a signature refused because the clock is off is
-- tried once more at the server's time (its Date header), as the AWS SDKs do.
-- An error whose outcome is unknown (the request may have run) is not tried
-- again unless the policy says it may be: policy.idempotent (running it twice
-- is harmless, outside a transaction), policy.in_transaction (never, whatever
-- idempotent says: the caller must roll back), policy.repeatable (even inside
-- a transaction: a rollback ends it once), policy.min_attempts (at least this
-- many attempts, whatever max_attempts says).
local alex_env = require "alex.env"
local ini = require "alex.ini"
local credentials = require "alex.credentials"
local errors = require "alex.errors"
local http = require "alex.http"
local sigv4 = require "alex.sigv4"
local clock = require "alex.clock"
local host = require "alex.host"

local is_true, pick = alex_env.is_true, alex_env.pick

local aws = {}

aws.DEFAULT_MAX_ATTEMPTS = 3
aws.DEFAULT_RETRY_BASE = 1
aws.RETRY_CAP = 20
aws.RETRY_MODES = { standard = true, legacy = true, adaptive = true }
aws.USER_AGENT = "alexlua/" .. host.version .. " lua/" .. _VERSION:match("%d.*")

-- ---------- names ----------

-- Region names: two letters, one or more letter groups, a number (us-east-1, us-gov-west-1).
function aws.valid_region(r)
  if type(r) ~= "string" then return false end
  local parts = {}
  for p in (r .. "-"):gmatch("([^-]*)%-") do parts[#parts + 1] = p end
  if #parts < 3 or not parts[1]:match("^%l%l$") or not parts[#parts]:match("^%d+$") then return false end
  for i = 2, #parts - 1 do
    if not parts[i]:match("^%l+$") then return false end
  end
  return true
end

-- The partition a region belongs to.
function aws.partition(region)
  if region:match("^cn%-") then return "aws-cn" end
  if region:match("^us%-gov%-") then return "aws-us-gov" end
  return "aws"
end

function aws.default_endpoint(service, region)
  local suffix = region:match("^cn%-") and "amazonaws.com.cn" or "amazonaws.com"
  return ("https://%s.%s.%s"):format(service, region, suffix)
end

-- http(s)://host[:port] with an optional trailing "/" -> the normalized URL (no
-- trailing slash, scheme lower-cased), or nil and why not.
function aws.parse_endpoint(url)
  local scheme, rest = url:match("^(%a+)://(.*)$")
  if not scheme then return nil, "it does not start with http:// or https://" end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return nil, ("its scheme %q is not http or https"):format(scheme)
  end
  rest = rest:gsub("/$", "")
  local hostname, port
  if rest:sub(1, 1) == "[" then
    hostname, port = rest:match("^(%[[%x:%.]+%])(.*)$")
  else
    hostname, port = rest:match("^([%w%.%-]+)(.*)$")
  end
  if not hostname or hostname:match("^[%.%-]") or hostname:match("%.%.") then
    return nil, "its host is missing or not a host name or IP address"
  end
  if port ~= "" then
    local digits = port:match("^:(%d+)$")
    if not digits then
      return nil, "only http(s)://host[:port] is accepted: no path, query, user or password"
    end
    local n = tonumber(digits)
    if n < 1 or n > 65535 then return nil, ("port %s is out of range"):format(digits) end
  end
  return scheme .. "://" .. hostname .. port
end

-- Parses an RFC 7231 Date header to epoch seconds (for clock-skew correction).
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
                 Nov = 11, Dec = 12 }
function aws.parse_http_date(s)
  local d, mon, y, hh, mm, ss = (s or ""):match("%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT")
  if not d or not MONTHS[mon] then return nil end
  local days = credentials.days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) -- no local time zone involved
  return days * 86400 + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
end

-- ---------- settings ----------

-- The profile's section of the shared config file ({} when there is none), or
-- nil and the message for a config file that exists but cannot be used.
function aws.config_profile(files)
  local sections, err, kind = files:config()
  if not sections and kind ~= "missing" then
    return nil, ("cannot use the AWS config file: %s (AWS_CONFIG_FILE names another file)"):format(err)
  end
  return ini.config_profile(sections, files.profile) or {}
end

local option = alex_env.option

function aws.settings(service, opts)
  opts = opts or {}
  if type(service) ~= "string" or not service:match("^%l[%l%-]*$") then
    error("alex.aws.settings: service must be a signing name such as rds-data", 2)
  end
  local getenv = alex_env.wrap(opts.env, "alex.aws")
  local files = opts.files or ini.files { getenv = getenv, home = opts.home, profile = option(opts, "profile") }
  local s = { service = service, source = {}, source_detail = {}, files = files, env = getenv, notes = {} }
  local function set(field, value, source, detail)
    s[field], s.source[field], s.source_detail[field] = value, source, detail
  end
  local function called(field)
    if s.source[field] == "option" then return "option " .. field end
    return s.source_detail[field] or field
  end

  local from = files.profile_from
  set("profile", files.profile, from == "option profile" and "option" or from and "environment" or "default",
    from or "default profile")
  local profile, perr = aws.config_profile(files)
  if not profile then return nil, perr end
  local where = ("%s [%s]"):format(tostring(files.config_path),
    files.profile == "default" and "default" or "profile " .. files.profile)
  local function prof(key)
    local v = profile[key]
    if type(v) ~= "string" or v == "" then return nil end
    return v
  end

  -- endpoint (before region: an override relaxes the region check)
  local var = "AWS_ENDPOINT_URL_" .. service:upper():gsub("%-", "_")
  local key = service:gsub("%-", "_")
  local candidates = { { option(opts, "endpoint"), "option" } }
  if not (is_true(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) or is_true(prof("ignore_configured_endpoint_urls")))
  then
    local services_name = prof("services")
    local section = services_name and ini.services((files:config()), services_name)
    local service_cfg = section and section[key]
    local service_url = type(service_cfg) == "table" and service_cfg.endpoint_url or nil
    candidates[#candidates + 1] = { getenv(var), "environment", var }
    candidates[#candidates + 1] = { getenv("AWS_ENDPOINT_URL"), "environment", "AWS_ENDPOINT_URL" }
    if service_url and service_url ~= "" then
      candidates[#candidates + 1] = { service_url, "config-file",
        ("endpoint_url under %s in [services %s] of %s"):format(key, services_name, files.config_path) }
    end
    candidates[#candidates + 1] = { prof("endpoint_url"), "config-file", "endpoint_url in " .. where }
  end
  local endpoint, esource, edetail = pick(candidates)
  if endpoint then
    local normalized, why = aws.parse_endpoint(endpoint)
    if not normalized then
      return nil, ("%s %q is not an endpoint URL: %s; expected http(s)://host[:port], e.g. http://127.0.0.1:8080"
        .. " for the local stack or %s"):format(esource == "option" and "option endpoint" or edetail, endpoint, why,
        aws.default_endpoint(service, "us-east-1"))
    end
    set("endpoint", normalized, esource, edetail)
  end

  -- region
  local arn = opts.arn
  set("region", pick {
    { option(opts, "region"), "option" },
    { getenv("AWS_REGION"), "environment", "AWS_REGION" },
    { getenv("AWS_DEFAULT_REGION"), "environment", "AWS_DEFAULT_REGION" },
    { prof("region"), "config-file", "region in " .. where },
    { arn and arn.region, arn and arn.source, arn and ("the region of " .. arn.called) },
  })
  if not s.region then
    return nil, "no region: set AWS_REGION in .env" .. (opts.no_region or "")
  end
  if not aws.valid_region(s.region) then
    return nil, ("%s %q is not an AWS region name like us-east-1 or eu-west-2; set AWS_REGION in .env%s"):format(
      called("region"), s.region, arn and (" to the region of %s (%s)"):format(arn.called, arn.region) or "")
  end
  if arn and s.region ~= arn.region and not s.endpoint then
    return nil, ("%s is %s but %s is in %s: requests would be signed for and sent to %s, where the cluster does"
      .. " not exist; %s, or set %s when an emulator or proxy is meant"):format(
      called("region"), s.region, arn.called, arn.region, s.region,
      s.source.region == "option" and ("pass region = %q"):format(arn.region)
        or ("set AWS_REGION=%s in .env (or in the environment, which wins over .env and the config file)")
          :format(arn.region), var)
  end
  if not s.endpoint then set("endpoint", aws.default_endpoint(service, s.region), "default") end

  -- attempts
  local n, asource, adetail = alex_env.number("max_attempts", {
    { opts.max_attempts, "option" },
    { getenv("AWS_MAX_ATTEMPTS"), "environment", "AWS_MAX_ATTEMPTS" },
    { prof("max_attempts"), "config-file", "max_attempts in " .. where },
    { aws.DEFAULT_MAX_ATTEMPTS, "default" },
  }, { says = "a whole number from 1 to 100", default = aws.DEFAULT_MAX_ATTEMPTS, min = 1, max = 100,
       integer = true })
  if not n then return nil, asource end
  set("max_attempts", n, asource, adetail)

  -- retry mode: standard is what runs
  local mode, msource, mdetail = pick {
    { option(opts, "retry_mode"), "option" },
    { getenv("AWS_RETRY_MODE"), "environment", "AWS_RETRY_MODE" },
    { prof("retry_mode"), "config-file", "retry_mode in " .. where },
    { "standard", "default" },
  }
  local mname = msource == "option" and "option retry_mode" or mdetail
  if type(mode) ~= "string" or not aws.RETRY_MODES[mode:lower()] then
    return nil, ("%s %q is not a retry mode: use standard (legacy and adaptive are accepted, and run as"
      .. " standard)"):format(mname, tostring(mode))
  end
  set("retry_mode", "standard", msource, mdetail)
  if mode:lower() ~= "standard" then
    s.notes[#s.notes + 1] = ("%s is %s: alexlua retries in the standard mode (full-jitter backoff, max_attempts"
      .. " %d)"):format(mname, mode:lower(), n)
  end

  -- the backoff's base
  local b, bsource, bdetail = alex_env.number("retry_base", {
    { opts.retry_base, "option" },
    { getenv("ALEX_RETRY_BASE"), "environment", "ALEX_RETRY_BASE" },
    { aws.DEFAULT_RETRY_BASE, "default" },
  }, { says = "a non-negative number of seconds", default = aws.DEFAULT_RETRY_BASE, min = 0 })
  if not b then return nil, bsource end
  set("retry_base", b, bsource, bdetail)
  return s
end

-- One line for logs (no secrets: the settings hold none).
function aws.describe(s)
  return ("%s: region %s (%s), endpoint %s (%s), profile %s, %s retry mode, max %d attempts"):format(s.service,
    s.region, s.source_detail.region or s.source.region, s.endpoint, s.source_detail.endpoint or s.source.endpoint,
    s.profile, s.retry_mode, s.max_attempts)
end

-- ---------- the client ----------

local Client = {}
Client.__index = Client

local function real_sleep(seconds)
  if seconds > 0 then clock.sleep(seconds) end
end

local monotonic = clock.monotonic

function aws.client(opts)
  local s = opts.settings
  if type(s) ~= "table" or not s.endpoint then error("alex.aws.client: settings from alex.aws.settings needed", 2) end
  local debug = opts.debug
  if debug == nil then
    local v = s.env("ALEX_DEBUG")
    debug = v ~= nil and v ~= "0"
  end
  local self = setmetatable({
    settings = s,
    debug = debug and true or false,
    stats = { calls = {}, retries = 0, seconds = 0, bytes_out = 0, bytes_in = 0 },
    _credentials = opts.credentials or credentials.chain { env = s.env, files = s.files },
    _http_opts = { connect_timeout = opts.connect_timeout or 10, timeout = opts.timeout or 60 },
    _content_type = opts.content_type or "application/octet-stream",
    _log = opts.log or function(line) io.stderr:write("alexlua: ", line, "\n") end,
    _sleep = opts.sleep or real_sleep,
    _random = opts.random or math.random,
    _now = opts.now or os.time,
    _skew = 0, -- seconds to add to the local clock: corrected from a server's Date
  }, Client)
  self._http = http.new(self._http_opts)
  -- the request the signer reads (its headers: those signed), reused for every attempt
  self._request = { method = "POST", headers = { ["Content-Type"] = self._content_type } }
  if self.debug then
    for _, note in ipairs(s.notes or {}) do self._log(note) end
  end
  return self
end

function Client:close()
  if self._http then self._http:close() end
end

-- companion() -> a client on the same settings, credentials and stats with a
-- connection of its own: a request started on it (start) can be in flight
-- while this one makes calls.  close() closes only its connection.
function Client:companion()
  return setmetatable({
    _http = http.new(self._http_opts),
    _request = { method = "POST", headers = { ["Content-Type"] = self._content_type } },
    _signed_for = false, -- so that it makes its own signer and header table
  }, { __index = self })
end

-- debug_log(line): writes line to the log when debug is on.
function Client:debug_log(line)
  if self.debug then self._log(line) end
end

-- sleep(seconds) through the sleep the client was given.
function Client:sleep(seconds)
  self._sleep(seconds)
end

-- The standard mode's wait before retry n (1 for the first): full jitter over
-- retry_base * 2^(n-1), capped at 20 s.
function Client:backoff_delay(n)
  return self._random() * math.min(aws.RETRY_CAP, self.settings.retry_base * 2 ^ (n - 1))
end

-- backoff(n): sleeps backoff_delay(n) through the client's sleep; returns it.
function Client:backoff(n)
  local delay = self:backoff_delay(n)
  self._sleep(delay)
  return delay
end

-- The signer for a credential set: one per set, kept while the provider returns
-- the same keys; refreshed credentials (another key or token) need a new one.
-- Returns it, or nil and a CredentialsError (keys it cannot sign with).
function Client:_signer_for(creds, operation)
  local last = self._signed_for
  if last == creds then return self._signer end
  if not (last and last.access_key == creds.access_key and last.session_token == creds.session_token
          and last.secret_key == creds.secret_key) then
    local ok, signer = pcall(sigv4.signer, {
      access_key = creds.access_key, secret_key = creds.secret_key, session_token = creds.session_token,
      region = self.settings.region, service = self.settings.service,
    })
    if not ok then
      self._signed_for, self._signer = nil, nil
      return nil, errors.new { name = "CredentialsError", operation = operation,
        message = ("the credentials from %s cannot sign a request: %s"):format(tostring(creds.source or "the provider"),
          tostring(signer):gsub("^sigv4%.signer: ", "")) }
    end
    self._signer = signer
    -- what is sent: the signed headers, User-Agent, then what the signer adds
    -- (Host, X-Amz-Date, X-Amz-Security-Token, Authorization), overwritten at
    -- every signature; a new table so that an old token does not stay
    self._send = { ["Content-Type"] = self._content_type, ["User-Agent"] = aws.USER_AGENT }
  end
  self._signed_for = creds
  return self._signer
end

-- An error that says the signature's time is too far from the server's.
local SKEW_CODES = { RequestTimeTooSkewed = true, RequestExpired = true, RequestInTheFuture = true }
local function clock_skew_error(err)
  if SKEW_CODES[err.name] then return true end
  local m = type(err.message) == "string" and err.message or ""
  return (err.name == "InvalidSignatureException" or err.name == "SignatureDoesNotMatch")
    and m:find("Signature ", 1, true) ~= nil
    and (m:find("expired", 1, true) ~= nil or m:find("not yet current", 1, true) ~= nil)
end

-- Sends one attempt of req on its way -> true, or nil and an error value.
function Client:_send_attempt(req)
  local op = req.operation
  local creds, cerr = self._credentials:get()
  if not creds then
    return nil, errors.new { name = "CredentialsError", message = tostring(cerr), operation = op }
  end
  local signer, serr = self:_signer_for(creds, op)
  if not signer then return nil, serr end
  local url = self.settings.endpoint .. req.path
  local r = self._request
  r.url, r.body = url, req.body
  r.amz_date = os.date("!%Y%m%dT%H%M%SZ", self._now() + self._skew)
  signer:sign(r, self._send)
  local sent, msg, kind = self._http:send { method = "POST", url = url, headers = self._send, body = req.body }
  if not sent then return nil, errors.from_transport(op, msg, kind) end
  return true
end

-- The answer to the attempt sent -> the parsed result, nil and the HTTP
-- status; or nil and an error value.
function Client:_receive_attempt(req)
  local op = req.operation
  local res, msg, kind = self._http:receive()
  if not res then return nil, errors.from_transport(op, msg, kind) end
  self.stats.bytes_in = self.stats.bytes_in + #res.body
  local result, err = req.parse(res, req)
  if result ~= nil then return result, nil, res.status end
  -- A wrong clock shows up as a signature error: correct the skew from the
  -- server's Date and try once more, as the SDKs do.
  if clock_skew_error(err) then
    local server = aws.parse_http_date(res.headers.date)
    if server then
      self._skew = server - self._now()
      err.retryable = true
      err.clock_skew = true
    end
  end
  return nil, err
end

local NO_POLICY = {}

local function next_attempt(self, req)
  req.attempt = req.attempt + 1
  req.attempt_started = monotonic()
  local sent, err = self:_send_attempt(req)
  req.send_error = not sent and err or nil
end

-- start(req) -> req, its first attempt on its way: the caller may work
-- while the server answers, then finish(req).  Nothing else may use this
-- client in between (a companion may).
function Client:start(req)
  local stats = self.stats
  stats.calls[req.operation] = (stats.calls[req.operation] or 0) + 1
  stats.bytes_out = stats.bytes_out + #req.body
  req.started, req.attempt, req.skew_retried = monotonic(), 0, false
  next_attempt(self, req)
  return req
end

-- finish(req) -> the parsed result, or nil and an error value, after the
-- retries the policy allows.
function Client:finish(req)
  local op, policy, stats = req.operation, req.policy or NO_POLICY, self.stats
  local max_attempts = math.max(self.settings.max_attempts, policy.min_attempts or 0)
  while true do
    local result, err, status
    if req.send_error then err = req.send_error else result, err, status = self:_receive_attempt(req) end
    local attempt = req.attempt
    if self.debug then
      self._log(("%s -> %s attempt %d %.1f ms"):format(req.describe or op,
        result ~= nil and tostring(status) or (err.status and (err.status .. " " .. err.name) or err.name), attempt,
        (monotonic() - req.attempt_started) * 1000))
    end
    if result ~= nil then
      stats.seconds = stats.seconds + (monotonic() - req.started)
      return result
    end
    err.attempts = attempt
    local retry, delay = false, 0
    local wait = req.wait and req.wait(err, req)
    if wait then
      retry, delay = true, wait
      req.attempt = attempt - 1 -- the caller's waits do not use up attempts
    elseif wait == false then
      retry = false
    elseif err.clock_skew and not req.skew_retried then
      req.skew_retried, retry, req.attempt = true, true, attempt - 1
    elseif err.retryable and attempt < max_attempts then
      if err.outcome_unknown and not policy.repeatable and (policy.in_transaction or not policy.idempotent) then
        retry = false -- it may have run: repeating it could apply it twice
      else
        retry, delay = true, self:backoff_delay(attempt)
      end
    end
    if not retry then
      stats.seconds = stats.seconds + (monotonic() - req.started)
      if err.outcome_unknown and err.retryable then
        err.message = err.message .. " (not retried: the request may have run, and running it again could" ..
          " apply it twice)"
      end
      return nil, err
    end
    stats.retries = stats.retries + 1
    if self.debug then self._log(("retrying %s in %.2f s"):format(op, delay)) end
    self._sleep(delay)
    next_attempt(self, req)
  end
end

-- call(req) -> the parsed result, or nil and an error value.
function Client:call(req)
  return self:finish(self:start(req))
end

return aws
