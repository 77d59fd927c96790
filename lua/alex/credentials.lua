-- AWS credentials, found the way the AWS SDKs' default chain finds them:
--   1. environment      AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
--                       (AWS_CREDENTIAL_EXPIRATION optional)
--   2. shared credentials file  AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, [<profile>]
--   3. config file      AWS_CONFIG_FILE or ~/.aws/config, [profile <profile>] / [default]
--   4. credential_process  from the profile (the credentials file's setting wins),
--                       run through /bin/sh; its stderr passes through
--   5. container        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (http://169.254.170.2 + uri)
--                       or AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http to a loopback
--                       or ECS/EKS agent address), with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
--                       or AWS_CONTAINER_AUTHORIZATION_TOKEN as the Authorization header
--   6. EC2 IMDSv2       AWS_EC2_METADATA_SERVICE_ENDPOINT (default http://169.254.169.254),
--                       off with AWS_EC2_METADATA_DISABLED=true; 1 s timeouts, 1 attempt
--                       (AWS_METADATA_SERVICE_TIMEOUT / _NUM_ATTEMPTS change them)
-- Profile: opts.profile, AWS_PROFILE, AWS_DEFAULT_PROFILE, "default".  A profile
-- named explicitly that neither file has is an error, as in the SDKs.
-- A source that is configured but fails (a partial key pair, a failing
-- credential_process, a container endpoint answering 403) stops the chain with
-- its error rather than falling through to another identity.
--
--   local provider = require("alex.credentials").chain(opts)
--   local creds, err = provider:get()
-- opts: env (function(name) -> value, default os.getenv), home, profile,
--   files (an alex.ini.files for the profile, shared with the settings that
--   were resolved from it, so that the files are read once; it then decides
--   the profile and the files; default: made from env, home and profile),
--   container_base (replaces http://169.254.170.2, for tests), imds_endpoint,
--   now (function() -> epoch seconds, default os.time), refresh_window (seconds
--   before expiration when get() refreshes, default 300), retry_interval (how long
--   to keep still-valid credentials after a refresh that failed or returned soon-
--   expiring ones, default 30).
-- creds: { access_key, secret_key, session_token, expiration (epoch or nil),
--   source = "environment" | "shared-credentials-file" | "config-file" |
--   "credential_process" | "container" | "imds" }; tostring(creds) shows the
--   source and the access key id with its middle masked, nothing else.
local alex_env = require "alex.env"
local trim, is_true = alex_env.trim, alex_env.is_true
local function env_wrap(fn) return alex_env.wrap(fn, "alex.credentials") end
local ini = require "alex.ini"
local cjson = require "cjson.safe"

local credentials = {}

credentials.DEFAULT_REFRESH_WINDOW = 300
credentials.DEFAULT_RETRY_INTERVAL = 30
credentials.CONTAINER_BASE = "http://169.254.170.2"
credentials.IMDS_ENDPOINT = "http://169.254.169.254"
credentials.IMDS_ENDPOINT_IPV6 = "http://[fd00:ec2::254]"
credentials.IMDS_TOKEN_TTL = 21600

-- ---------- time ----------

-- Days since 1970-01-01 of a proleptic Gregorian date (no time zone involved).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end
credentials.days_from_civil = days_from_civil

local function days_in_month(y, m)
  if m == 2 then
    return (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28
  end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

-- "2026-11-22T10:00:00Z", "...T10:00:00.123Z", "...T10:00:00+00:00", "+0100", "-05"
-- -> epoch seconds (UTC, fraction dropped), or nil and why not.  A time without
-- a zone is refused: it would be ambiguous.
function credentials.parse_iso8601(s)
  if type(s) ~= "string" then return nil, "not a string" end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil, "not an ISO 8601 date-time (YYYY-MM-DDTHH:MM:SSZ)" end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > days_in_month(y, mo) or h > 23 or mi > 59 or sec > 60 then
    return nil, "a date or time field is out of range"
  end
  if sec == 60 then sec = 59 end -- a leap second: close enough for an expiry
  rest = rest:gsub("^[%.,]%d+", "")
  local offset
  if rest == "Z" or rest == "z" then
    offset = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then
      sign, oh = rest:match("^([+-])(%d%d)$")
      om = "00"
    end
    if not sign then return nil, "no time zone (Z or +HH:MM)" end
    oh, om = tonumber(oh), tonumber(om)
    if oh > 23 or om > 59 then return nil, "time zone offset out of range" end
    offset = (oh * 3600 + om * 60) * (sign == "-" and -1 or 1)
  end
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset
end

local function iso(epoch)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", epoch)
end
credentials.format_iso8601 = iso

-- ---------- the credentials value ----------

local Creds = { __name = "alex.credentials" }

-- "AKIA************MPLE": the id's first and last four characters.
function credentials.mask(id)
  id = tostring(id or "")
  if #id < 12 then return string.rep("*", #id > 0 and 4 or 0) end
  return id:sub(1, 4) .. string.rep("*", #id - 8) .. id:sub(-4)
end

function Creds.__tostring(c)
  local s = ("AWS credentials %s from %s"):format(credentials.mask(c.access_key), c.source)
  if c.expiration then s = s .. ", expiring " .. iso(c.expiration) end
  return s
end

local function new_creds(t)
  return setmetatable(t, Creds)
end

function credentials.is_credentials(v)
  return getmetatable(v) == Creds
end

-- ---------- helpers ----------

-- From a decoded JSON document with AccessKeyId/SecretAccessKey/<token_field>/Expiration.
-- `what` names the source for messages; no value from the document is ever put in one.
local function creds_from_document(doc, what, source, token_field)
  if type(doc) ~= "table" or #doc > 0 then return false, what .. " is not a JSON object" end
  local id, secret, token, exp = doc.AccessKeyId, doc.SecretAccessKey, doc[token_field], doc.Expiration
  if type(id) ~= "string" or id == "" then return false, what .. " has no AccessKeyId" end
  if type(secret) ~= "string" or secret == "" then return false, what .. " has no SecretAccessKey" end
  if token ~= nil and token ~= cjson.null and type(token) ~= "string" then
    return false, what .. ": " .. token_field .. " is not a string"
  end
  local expiration
  if exp ~= nil and exp ~= cjson.null then
    local why
    expiration, why = credentials.parse_iso8601(exp)
    if not expiration then
      return false, ("%s: Expiration %s is %s"):format(what,
        type(exp) == "string" and ("%q"):format(exp:sub(1, 40)) or "(" .. type(exp) .. ")", why)
    end
  end
  return new_creds {
    access_key = id, secret_key = secret,
    session_token = type(token) == "string" and token ~= "" and token or nil,
    expiration = expiration, source = source,
  }
end

local function http_client(connect_timeout, timeout)
  local ok, http = pcall(require, "alex.http")
  if not ok or type(http) ~= "table" or type(http.new) ~= "function" then
    return nil, "alex.http is not available in this build"
  end
  return http.new { connect_timeout = connect_timeout, timeout = timeout }
end

local function close_client(c)
  if c and c.close then c:close() end
end

-- scheme://host[:port] of a URL (what messages show: paths may carry ids).
local function origin(url)
  return url:match("^(%a+://[^/?#]+)") or "(malformed URL)"
end

-- ---------- the chain ----------

local Chain = {}
Chain.__index = Chain

function credentials.chain(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("alex.credentials.chain: opts must be a table", 2) end
  local getenv = env_wrap(opts.env)
  return setmetatable({
    getenv = getenv,
    files = opts.files or ini.files { getenv = getenv, home = opts.home, profile = opts.profile },
    container_base = (opts.container_base or credentials.CONTAINER_BASE):gsub("/$", ""),
    imds_endpoint = opts.imds_endpoint,
    now = opts.now or os.time,
    refresh_window = opts.refresh_window or credentials.DEFAULT_REFRESH_WINDOW,
    retry_interval = opts.retry_interval or credentials.DEFAULT_RETRY_INTERVAL,
  }, Chain)
end

-- The profile, with both files read (once per chain: alex.ini.files keeps
-- what it read).  Returns a context table or false, err.
function Chain:load_profile()
  local files = self.files
  local name, from = files.profile, files.profile_from
  local config_path, creds_path = files.config_path, files.creds_path
  local ctx = { name = name, from = from, config_path = config_path, creds_path = creds_path }
  local function read(sections, err, kind)
    if sections then return sections end
    if kind == "missing" then return nil, err end
    return false, err
  end
  local err
  ctx.creds_sections, err = read(files:credentials())
  if ctx.creds_sections == false then return false, "cannot use the shared credentials file: " .. err end
  ctx.creds_missing = err
  ctx.config_sections, err = read(files:config())
  if ctx.config_sections == false then return false, "cannot use the AWS config file: " .. err end
  ctx.config_missing = err
  ctx.creds = ini.credentials_profile(ctx.creds_sections, name)
  ctx.config = ini.config_profile(ctx.config_sections, name)
  if from and not ctx.creds and not ctx.config then
    return false, ("profile %q (from %s) is in neither %s nor %s: run `aws configure --profile %s`, or correct %s")
      :format(name, from, tostring(creds_path), tostring(config_path), name, from)
  end
  ctx.section_creds = ("[%s]"):format(name)
  ctx.section_config = name == "default" and "[default]" or ("[profile %s]"):format(name)
  return ctx
end

function Chain:from_environment()
  local env = self.getenv
  local id, secret = env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")
  if not id and not secret then
    return nil, "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"
  end
  if not id then
    return false, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both AWS_ACCESS_KEY_ID and"
      .. " AWS_SECRET_ACCESS_KEY (in .env or the environment), or neither"
  end
  if not secret then
    return false, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both AWS_ACCESS_KEY_ID and"
      .. " AWS_SECRET_ACCESS_KEY (in .env or the environment), or neither"
  end
  local expiration
  local exp = env("AWS_CREDENTIAL_EXPIRATION")
  if exp then
    local why
    expiration, why = credentials.parse_iso8601(exp)
    if not expiration then
      return false, ("AWS_CREDENTIAL_EXPIRATION %q is %s"):format(exp:sub(1, 40), why)
    end
  end
  return new_creds {
    access_key = id, secret_key = secret,
    session_token = env("AWS_SESSION_TOKEN") or env("AWS_SECURITY_TOKEN"),
    expiration = expiration, source = "environment",
  }
end

local function static_from_profile(section, where, source)
  local id, secret = section.aws_access_key_id, section.aws_secret_access_key
  if type(id) ~= "string" or id == "" then id = nil end
  if type(secret) ~= "string" or secret == "" then secret = nil end
  if not id and not secret then return nil, where .. ": no aws_access_key_id" end
  if not id or not secret then
    return false, ("%s has %s but not %s: add the missing key (`aws configure` writes both) or remove the other")
      :format(where, id and "aws_access_key_id" or "aws_secret_access_key",
        id and "aws_secret_access_key" or "aws_access_key_id")
  end
  local token = section.aws_session_token or section.aws_security_token
  return new_creds {
    access_key = id, secret_key = secret,
    session_token = type(token) == "string" and token ~= "" and token or nil,
    source = source,
  }
end

-- Static keys from the profile's section (headed `header`) of one shared
-- file: `where` names the file, `sections` is what it parsed to (nil:
-- unreadable or absent, `missing` saying why).
local function from_shared_file(where, sections, missing, section, header, source)
  if not sections then return nil, where .. ": " .. missing end
  if not section then return nil, ("%s: no %s section"):format(where, header) end
  return static_from_profile(section, where .. " " .. header, source)
end

function Chain.from_credentials_file(_, ctx)
  return from_shared_file("shared credentials file " .. tostring(ctx.creds_path), ctx.creds_sections,
    ctx.creds_missing, ctx.creds, ctx.section_creds, "shared-credentials-file")
end

function Chain.from_config_file(_, ctx)
  return from_shared_file("config file " .. tostring(ctx.config_path), ctx.config_sections, ctx.config_missing,
    ctx.config, ctx.section_config, "config-file")
end

function Chain.from_process(_, ctx)
  local cmd, where
  local function setting(section, path, header)
    local v = section and section.credential_process
    if type(v) == "string" and v ~= "" then
      cmd, where = v, ("%s %s"):format(path, header)
      return true
    end
  end
  if not (setting(ctx.creds, ctx.creds_path, ctx.section_creds)
          or setting(ctx.config, ctx.config_path, ctx.section_config)) then
    return nil, ("credential_process: not set in profile %q"):format(ctx.name)
  end
  -- Only the program's name goes into messages: arguments may hold anything.
  local program = cmd:match("^%s*\"([^\"]+)\"") or cmd:match("^%s*'([^']+)'") or cmd:match("^%s*(%S+)")
  local what = ("credential_process %q (%s)"):format(program, where)
  local f, perr = io.popen(cmd, "r")
  if not f then return false, ("%s could not be started: %s"):format(what, tostring(perr)) end
  local out = f:read("a") or ""
  local ok, how, code = f:close()
  if not ok then
    if how == "signal" then
      return false, ("%s was killed by signal %d; its error output, if any, is above"):format(what, code)
    end
    if code == 127 then
      return false, ("%s failed with exit status 127: the shell could not find the program"):format(what)
    end
    return false, ("%s failed with exit status %s; its error output, if any, is above"):format(what, tostring(code))
  end
  if trim(out) == "" then return false, what .. " printed nothing on standard output" end
  local doc, jerr = cjson.decode(out)
  if doc == nil then
    -- The output is not shown: it may hold a secret key.
    return false, ("%s printed %d bytes that are not valid JSON (%s)"):format(what, #out,
      tostring(jerr):gsub(" at character.*", ""))
  end
  if type(doc) ~= "table" or #doc > 0 then return false, what .. " printed JSON that is not an object" end
  if doc.Version ~= 1 then
    return false, ("%s printed Version %s; only Version 1 is defined"):format(what,
      (type(doc.Version) == "number" or type(doc.Version) == "string") and tostring(doc.Version) or "(missing)")
  end
  return creds_from_document(doc, what .. " output", "credential_process", "SessionToken")
end

-- Loopback and the ECS/EKS agent addresses, as the SDKs allow for plain http.
local function container_host_allowed(host)
  host = host:lower()
  if host == "localhost" or host == "[::1]" or host == "169.254.170.2" or host == "169.254.170.23"
      or host == "[fd00:ec2::23]" then
    return true
  end
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a == "127" and tonumber(b) < 256 and tonumber(c) < 256 and tonumber(d) < 256
end

function Chain:from_container()
  local env = self.getenv
  local rel, full = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), env("AWS_CONTAINER_CREDENTIALS_FULL_URI")
  if not rel and not full then
    return nil, "container: neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor AWS_CONTAINER_CREDENTIALS_FULL_URI"
      .. " is set"
  end
  local url, what
  if rel then
    url = self.container_base .. (rel:sub(1, 1) == "/" and rel or "/" .. rel)
    what = ("container credentials endpoint %s (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)"):format(self.container_base)
  else
    url = full
    local scheme, host = full:match("^(%a+)://([^/:?#]+)")
    if full:match("^%a+://%[") then scheme, host = full:match("^(%a+)://(%[[^%]]*%])") end
    what = ("container credentials endpoint %s (AWS_CONTAINER_CREDENTIALS_FULL_URI)"):format(origin(full))
    scheme = scheme and scheme:lower()
    if scheme ~= "https" and not (scheme == "http" and host and container_host_allowed(host)) then
      return false, ("AWS_CONTAINER_CREDENTIALS_FULL_URI must be an https:// URL or an http:// URL to a loopback"
        .. " address (127.0.0.0/8, localhost, [::1]) or the ECS/EKS agent (169.254.170.2, 169.254.170.23); %s is"
        .. " neither"):format(origin(full))
    end
  end
  local headers = { Accept = "application/json" }
  local token
  local token_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
  if token_file then
    local f, ferr = io.open(token_file, "rb")
    if not f then
      return false, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: " .. tostring(ferr)
    end
    token = trim(f:read("a") or "")
    f:close()
    if token == "" then return false, ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s is empty"):format(token_file) end
    if token:find("[\r\n]") then
      return false, ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s holds more than one line"):format(token_file)
    end
  else
    token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    if token and token:find("[\r\n]") then
      return false, "AWS_CONTAINER_AUTHORIZATION_TOKEN holds a line break"
    end
  end
  if token then headers.Authorization = token end

  local client, cerr = http_client(1, 2)
  if not client then return false, what .. ": " .. cerr end
  local res, msg
  for _ = 1, 2 do -- one retry for a transient failure, as the SDKs retry
    res, msg = client:request { method = "GET", url = url, headers = headers }
    if res and res.status < 500 then break end
  end
  close_client(client)
  if not res then return false, ("%s: %s"):format(what, tostring(msg)) end
  if res.status ~= 200 then
    local hint = ""
    if res.status == 401 or res.status == 403 then
      hint = token and "; the authorization token was refused"
        or "; no AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) is set"
    end
    return false, ("%s answered HTTP %d%s"):format(what, res.status, hint)
  end
  local doc = cjson.decode(res.body)
  if doc == nil then return false, what .. " answered with a body that is not JSON" end
  return creds_from_document(doc, what .. " answer", "container", "Token")
end

function Chain:from_imds()
  local env = self.getenv
  if is_true(env("AWS_EC2_METADATA_DISABLED")) then
    return nil, "EC2 instance metadata: disabled by AWS_EC2_METADATA_DISABLED=true"
  end
  local endpoint = self.imds_endpoint or env("AWS_EC2_METADATA_SERVICE_ENDPOINT")
  if not endpoint then
    local mode = env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE")
    endpoint = mode and mode:lower() == "ipv6" and credentials.IMDS_ENDPOINT_IPV6 or credentials.IMDS_ENDPOINT
  end
  endpoint = endpoint:gsub("/+$", "")
  if not endpoint:match("^https?://[^/?#]+$") then
    return false, ("AWS_EC2_METADATA_SERVICE_ENDPOINT %q is not http(s)://host[:port]"):format(endpoint)
  end
  local what = ("EC2 instance metadata (IMDS) at %s"):format(endpoint)
  local timeout = tonumber(env("AWS_METADATA_SERVICE_TIMEOUT") or "") or 1
  local attempts = math.tointeger(tonumber(env("AWS_METADATA_SERVICE_NUM_ATTEMPTS") or "")) or 1
  if timeout <= 0 then timeout = 1 end
  if attempts < 1 then attempts = 1 end
  local client, cerr = http_client(timeout, timeout)
  if not client then return nil, what .. ": " .. cerr end

  local function call(method, path, headers)
    local res, msg
    for _ = 1, attempts do
      res, msg = client:request { method = method, url = endpoint .. path, headers = headers }
      if res and res.status < 500 then break end
    end
    return res, msg
  end

  local result, note = (function()
    local res, msg = call("PUT", "/latest/api/token",
      { ["X-aws-ec2-metadata-token-ttl-seconds"] = tostring(credentials.IMDS_TOKEN_TTL) })
    if not res then return nil, ("%s: not reachable (%s)"):format(what, tostring(msg)) end
    local headers = {}
    if res.status == 200 and res.body ~= "" then
      headers["X-aws-ec2-metadata-token"] = res.body
    elseif res.status == 403 or res.status == 404 or res.status == 405 then
      -- No IMDSv2 here: IMDSv1 unless the user turned it off.
      if is_true(env("AWS_EC2_METADATA_V1_DISABLED")) then
        return nil, ("%s: the IMDSv2 token request got HTTP %d and AWS_EC2_METADATA_V1_DISABLED=true forbids"
          .. " IMDSv1"):format(what, res.status)
      end
    else
      return nil, ("%s: the IMDSv2 token request got HTTP %d"):format(what, res.status)
    end
    local base = "/latest/meta-data/iam/security-credentials/"
    res, msg = call("GET", base, headers)
    if not res then return nil, ("%s: %s"):format(what, tostring(msg)) end
    if res.status == 404 then return nil, what .. ": no IAM role is attached to this instance" end
    if res.status ~= 200 then return nil, ("%s: the role list request got HTTP %d"):format(what, res.status) end
    local role = trim(res.body:match("^[^\n]*"))
    if not role:match("^[%w+=,%.@_%-]+$") then
      return nil, what .. ": the role list did not hold a role name"
    end
    res, msg = call("GET", base .. role, headers)
    if not res then return nil, ("%s: %s"):format(what, tostring(msg)) end
    if res.status ~= 200 then
      return nil, ("%s: the credentials request for role %s got HTTP %d"):format(what, role, res.status)
    end
    local doc = cjson.decode(res.body)
    if type(doc) ~= "table" then return nil, ("%s: role %s: the answer is not JSON"):format(what, role) end
    if doc.Code ~= nil and doc.Code ~= "Success" then
      return nil, ("%s: role %s: Code %s"):format(what, role, tostring(doc.Code):sub(1, 60))
    end
    local c, err = creds_from_document(doc, ("%s role %s answer"):format(what, role), "imds", "Token")
    if not c then return nil, err end
    return c
  end)()
  close_client(client)
  return result, note
end

local FIX = "To fix: run `aws configure` (it writes ~/.aws/credentials), or put AWS_ACCESS_KEY_ID and"
  .. " AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys) in .env, or set AWS_PROFILE to a profile"
  .. " that has keys or a credential_process."

local UNSUPPORTED = { "role_arn", "sso_session", "sso_start_url", "web_identity_token_file", "login_session" }

-- Runs the chain once.  Returns creds, or nil and the message.
function Chain:resolve(now)
  now = now or self.now()
  local tried = {}
  local ctx
  local steps = {
    function() return self:from_environment() end,
    function()
      local c, err = self:load_profile()
      if not c then return false, err end
      ctx = c
      return self:from_credentials_file(ctx)
    end,
    function() return self:from_config_file(ctx) end,
    function() return self:from_process(ctx) end,
    function() return self:from_container() end,
    function() return self:from_imds() end,
  }
  for _, step in ipairs(steps) do
    local c, why = step()
    if c then
      if c.expiration and c.expiration <= now then
        return nil, ("the credentials from %s expired at %s: renew them"):format(c.source, iso(c.expiration))
      end
      return c
    end
    if c == false then return nil, why end
    tried[#tried + 1] = ("  %d. %s"):format(#tried + 1, why)
  end
  local lines = { "no AWS credentials found; tried, in order:" }
  for _, t in ipairs(tried) do lines[#lines + 1] = t end
  local hint = FIX
  local profile = ctx and (ctx.creds or ctx.config)
  if ctx then
    for _, key in ipairs(UNSUPPORTED) do
      local section = (ctx.creds and ctx.creds[key]) and ctx.creds or ctx.config
      if section and section[key] then
        hint = hint .. (" Profile %q uses %s, which alexlua does not follow: add `credential_process = aws"
          .. " configure export-credentials --profile %s --format process` to another profile and use that one.")
          :format(ctx.name, key, ctx.name)
        break
      end
    end
  end
  if not profile and self.getenv("AWS_WEB_IDENTITY_TOKEN_FILE") then
    hint = hint .. " (AWS_WEB_IDENTITY_TOKEN_FILE is set, but web identity credentials are not supported.)"
  end
  lines[#lines + 1] = hint
  return nil, table.concat(lines, "\n")
end

-- Cached credentials, refreshed `refresh_window` seconds before they expire.
-- A refresh that fails while the cached credentials are still valid keeps them
-- for `retry_interval` seconds more; once they have expired the error is returned.
function Chain:get()
  local now = self.now()
  local cached = self.cached
  if cached then
    if not cached.expiration or now < cached.expiration - self.refresh_window then return cached end
    if now < cached.expiration and self.retry_after and now < self.retry_after then return cached end
  end
  local fresh, err = self:resolve(now)
  self.retry_after = now + self.retry_interval
  if fresh then
    self.cached = fresh
    return fresh
  end
  if cached and now < cached.expiration then return cached end
  self.cached = nil
  return nil, err
end

-- Forgets cached credentials: the next get() runs the chain again.
function Chain:invalidate()
  self.cached = nil
  self.retry_after = nil
end

-- A provider that always returns the given keys (e.g. for the local stack).
function credentials.static(t)
  assert(type(t) == "table" and t.access_key and t.secret_key, "credentials.static{access_key=, secret_key=}")
  local c = new_creds {
    access_key = t.access_key, secret_key = t.secret_key, session_token = t.session_token,
    source = t.source or "static",
  }
  return { get = function() return c end, invalidate = function() end }
end

return credentials
