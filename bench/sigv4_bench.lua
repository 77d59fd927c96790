-- Signatures per second: alex.sigv4.sign vs botocore's SigV4Auth.add_auth, same
-- rds-data Execute request (~300-byte JSON body), same run.
-- Usage: alexlua --no-env-file bench/sigv4_bench.lua [seconds-per-measurement]
-- Needs Debian's /usr/bin/python3 with python3-botocore (tools/deps.sh installs it).
local sigv4 = require "alex.sigv4"
local cjson = require "cjson"

local seconds = tonumber(arg and arg[1]) or 2
local ok_clock, clock = pcall(require, "alex.clock")
local now = ok_clock and clock.monotonic or os.clock

local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "bench"

local REQ = {
  method = "POST",
  url = "https://rds-data.us-east-1.amazonaws.com/Execute",
  headers = { ["Content-Type"] = "application/json" },
  body = '{"resourceArn":"arn:aws:rds:us-east-1:123456789012:cluster:planner-prod",'
    .. '"secretArn":"arn:aws:secretsmanager:us-east-1:123456789012:secret:planner-db-AbCdEf",'
    .. '"database":"planner","sql":"SELECT id, name, amount FROM accounts WHERE owner_id = :owner",'
    .. '"parameters":[{"name":"owner","value":{"longValue":42}}],"includeResultMetadata":true}',
  access_key = "AKIDEXAMPLE",
  secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  region = "us-east-1",
  service = "rds-data",
}

-- Like the Python side, each call builds its request (options table) afresh and
-- signs at the current time.
local function sign_once()
  return sigv4.sign{
    method = REQ.method, url = REQ.url, headers = { ["Content-Type"] = "application/json" },
    body = REQ.body, access_key = REQ.access_key, secret_key = REQ.secret_key,
    region = REQ.region, service = REQ.service,
  }
end

local function rate(fn)
  for _ = 1, 1000 do fn() end
  local n, batch = 0, 5000
  local start = now()
  while true do
    for _ = 1, batch do fn() end
    n = n + batch
    local elapsed = now() - start
    if elapsed >= seconds then return n / elapsed end
  end
end

assert(sign_once().authorization:find("^AWS4%-HMAC%-SHA256 Credential="))
local lua_rate = rate(sign_once)

local tmp = os.tmpname()
local f = assert(io.open(tmp, "wb"))
f:write(cjson.encode(REQ))
f:close()
local py = io.popen(("/usr/bin/python3 %s/sigv4_botocore.py %g < %s"):format(here, seconds, tmp))
local out = py:read("a")
py:close()
os.remove(tmp)
local fresh, reused, version = out:match("^(%S+) (%S+) (%S+)")
assert(fresh, "botocore benchmark failed: " .. out)
fresh, reused = tonumber(fresh), tonumber(reused)
local best = math.max(fresh, reused)

print(("request: POST %s, %d-byte JSON body, no session token"):format(REQ.url, #REQ.body))
print(("alexlua  alex.sigv4.sign:           %12.0f signatures/s"):format(lua_rate))
print(("botocore %-8s add_auth (new auth): %9.0f signatures/s"):format(version, fresh))
print(("botocore %-8s add_auth (reused):   %9.0f signatures/s"):format(version, reused))
print(("ratio alexlua / botocore (faster):   %9.1fx"):format(lua_rate / best))
