-- Signatures per second: alex.sigv4.sign and a signer's signer:sign (credentials,
-- region and service bound once) vs botocore's SigV4Auth.add_auth, same
-- rds-data Execute request (~300-byte JSON body), same run.  Every side runs
-- ROUNDS timed rounds of SECONDS each, the Lua ones around the Python one (the
-- machine may be shared: the best and the median round are reported).
-- Usage: alexlua --no-env-file bench/sigv4_bench.lua [SECONDS [ROUNDS]]
-- Needs Debian's /usr/bin/python3 with python3-botocore (tools/deps.sh installs it).
local sigv4 = require "alex.sigv4"
local cjson = require "cjson"

local seconds = tonumber(arg and arg[1]) or 1
local rounds = math.tointeger(tonumber(arg and arg[2]) or 5) or 5
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

-- Like the Python side, each call builds its request (the options table and
-- its headers) afresh and signs at the current time.
local function sign_once()
  return sigv4.sign{
    method = REQ.method, url = REQ.url, headers = { ["Content-Type"] = "application/json" },
    body = REQ.body, access_key = REQ.access_key, secret_key = REQ.secret_key,
    region = REQ.region, service = REQ.service,
  }
end

-- A signer as a client keeps one per set of credentials; each call builds its
-- request table afresh, headers included, and signs at the current time.
local signer = sigv4.signer {
  access_key = REQ.access_key, secret_key = REQ.secret_key, region = REQ.region, service = REQ.service,
}
local function signer_once()
  return signer:sign { method = REQ.method, url = REQ.url, headers = { ["Content-Type"] = "application/json" },
                       body = REQ.body }
end

local function rate(fn)
  local n, batch = 0, 5000
  local start = now()
  while true do
    for _ = 1, batch do fn() end
    n = n + batch
    local elapsed = now() - start
    if elapsed >= seconds then return n / elapsed end
  end
end

local function summary(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  return t[#t], t[(#t + 1) // 2]
end

-- the results are real signatures of this request, the same from both
local s = sign_once()
assert(s.authorization:find("^AWS4%-HMAC%-SHA256 Credential=AKIDEXAMPLE/%d+/us%-east%-1/rds%-data/"))
assert(s.canonical_request:find("\n" .. sigv4.sha256_hex(REQ.body) .. "$"))
local fixed = { method = REQ.method, url = REQ.url, headers = REQ.headers, body = REQ.body,
                amz_date = "20150830T123600Z" }
local by_signer = signer:sign(fixed)
local by_sign = sigv4.sign { method = REQ.method, url = REQ.url, headers = REQ.headers, body = REQ.body,
  access_key = REQ.access_key, secret_key = REQ.secret_key, region = REQ.region, service = REQ.service,
  amz_date = "20150830T123600Z" }
assert(by_signer.Authorization == by_sign.authorization, "signer:sign and sign disagree")

local function lua_rounds(fn, k)
  local out = {}
  for i = 1, k do out[i] = rate(fn) end
  return out
end
for _ = 1, 20000 do sign_once() end -- warm-up
for _ = 1, 20000 do signer_once() end
local lua_rates = lua_rounds(sign_once, math.max(1, rounds // 2))
local signer_rates = lua_rounds(signer_once, math.max(1, rounds // 2))

local tmp = os.tmpname()
local f = assert(io.open(tmp, "wb"))
f:write(cjson.encode(REQ))
f:close()
local py = assert(io.popen(("/usr/bin/python3 %s/sigv4_botocore.py %g %d < %s")
  :format(here, seconds, rounds, tmp)))
local fresh, reused, version = {}, {}, "?"
for line in py:lines() do
  local a, b = line:match("^(%S+) (%S+)$")
  if a and tonumber(a) then
    fresh[#fresh + 1], reused[#reused + 1] = tonumber(a), tonumber(b)
  else
    version = line:match("^version (%S+)") or version
  end
end
py:close()
os.remove(tmp)
assert(#fresh == rounds, "botocore benchmark failed (is python3-botocore installed?)")
for _, r in ipairs(lua_rounds(sign_once, rounds - #lua_rates)) do lua_rates[#lua_rates + 1] = r end
for _, r in ipairs(lua_rounds(signer_once, rounds - #signer_rates)) do signer_rates[#signer_rates + 1] = r end
-- For information: the same under Lua's generational collector (the host runs
-- the default incremental one, which the ratios use).
collectgarbage("generational")
for _ = 1, 20000 do signer_once() end
local gen_rates = lua_rounds(signer_once, rounds)
collectgarbage("incremental")

local lb, lm = summary(lua_rates)
local sb, sm = summary(signer_rates)
local gb, gm = summary(gen_rates)
local fb, fm = summary(fresh)
local rb, rm = summary(reused)
local bb, bm = math.max(fb, rb), math.max(fm, rm)
print(("request: POST %s, %d-byte JSON body, no session token; %d rounds of %gs"):format(
  REQ.url, #REQ.body, rounds, seconds))
print(("%-52s %10s %10s"):format("signatures/s", "best", "median"))
print(("%-52s %10.0f %10.0f"):format("alexlua alex.sigv4.sign", lb, lm))
print(("%-52s %10.0f %10.0f"):format("alexlua signer:sign", sb, sm))
print(("%-52s %10.0f %10.0f"):format("alexlua signer:sign, generational GC", gb, gm))
print(("%-52s %10.0f %10.0f"):format("botocore " .. version .. " add_auth, new SigV4Auth each", fb, fm))
print(("%-52s %10.0f %10.0f"):format("botocore " .. version .. " add_auth, one SigV4Auth", rb, rm))
print(("%-52s %9.1fx %9.1fx"):format("ratio alex.sigv4.sign / faster botocore", lb / bb, lm / bm))
print(("%-52s %9.1fx %9.1fx"):format("ratio signer:sign / faster botocore", sb / bb, sm / bm))
print(("%-52s %9.1fx %9.1fx"):format("ratio signer:sign (generational GC) / faster botocore", gb / bb, gm / bm))
