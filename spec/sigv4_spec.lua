-- luacheck: std +busted
-- alex.sigv4 (bindings/sigv4.c over bindings/sigv4_core.c): the AWS SigV4 test
-- suite, the botocore rds-data vectors, the verify path and the error paths.
local sigv4 = require "alex.sigv4"
local cjson = require "cjson"
local lfs = require "lfs"
local servers = require "servers"

-- spec/fixtures/sigv4 (see its PROVENANCE.md), found from this file's path so
-- the spec runs from any folder.
local function fixtures_dir()
  local src = debug.getinfo(1, "S").source:match("^@(.*)$") or ""
  local spec_dir = src:match("^(.*)/[^/]*$") or "spec"
  if spec_dir:sub(1, 1) ~= "/" then spec_dir = lfs.currentdir() .. "/" .. spec_dir end
  return spec_dir .. "/fixtures"
end
local SUITE = fixtures_dir() .. "/sigv4"

local function slurp(path) return (assert(servers.read_file(path))) end

local FIXED = {
  access_key = "AKIDEXAMPLE",
  secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  region = "us-east-1",
  service = "service",
  amz_date = "20150830T123600Z",
}

-- Parses a suite .req: request line (method up to the first space, version
-- after the last), header lines with obsolete folding kept raw, blank line, body.
local function parse_req(text)
  local head, body = text:match("^(.-)\n\n(.*)$")
  if not head then head, body = text, "" end
  head = head:gsub("\n$", "")
  local lines = {}
  for line in (head .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
  local reqline = lines[1]
  local sp1 = assert(reqline:find(" ", 1, true))
  local method = reqline:sub(1, sp1 - 1)
  local last = sp1
  while true do
    local nxt = reqline:find(" ", last + 1, true)
    if not nxt then break end
    last = nxt
  end
  assert(last > sp1, "request line without version")
  local target = reqline:sub(sp1 + 1, last - 1)
  assert(reqline:sub(last + 1):match("^HTTP/"), "bad version")
  local headers = {}
  for i = 2, #lines do
    local line = lines[i]
    if line:match("^[ \t]") then
      local prev = assert(headers[#headers], "continuation before any header")
      prev[2] = prev[2] .. "\n" .. line
    else
      local name, value = line:match("^([^:]+):(.*)$")
      assert(name, "bad header line: " .. line)
      headers[#headers + 1] = { name, value }
    end
  end
  return { method = method, target = target, headers = headers, body = body }
end

local function header_value(headers, name)
  for _, h in ipairs(headers) do
    if h[1]:lower() == name:lower() then return h[2] end
  end
end

local function count_named(headers, name)
  local n = 0
  for _, h in ipairs(headers) do
    if h[1]:lower() == name:lower() then n = n + 1 end
  end
  return n
end

local with = servers.with

-- A typical request used by several tests below.
local BASE = {
  method = "POST", url = "https://rds-data.us-east-1.amazonaws.com/Execute",
  headers = { ["Content-Type"] = "application/json" },
  body = '{"sql":"SELECT 1"}', access_key = "AKIDEXAMPLE",
  secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  region = "us-east-1", service = "rds-data", amz_date = "20150830T123600Z",
}

describe("alex.sigv4 against the AWS SigV4 test suite", function()
  local manifest = cjson.decode(slurp(SUITE .. "/MANIFEST.json"))

  it("finds all 34 cases, in MANIFEST.json and on disk alike", function()
    local listed = {}
    for _, c in ipairs(manifest.cases) do listed[#listed + 1] = c.name end
    table.sort(listed)
    local found = {}
    local function walk(dir, rel)
      for entry in lfs.dir(dir) do
        if entry ~= "." and entry ~= ".." then
          local path = dir .. "/" .. entry
          local name = rel and (rel .. "/" .. entry) or entry
          if lfs.attributes(path, "mode") == "directory" then
            walk(path, name)
          elseif entry:match("%.req$") then
            found[#found + 1] = name:gsub("/[^/]*%.req$", "")
          end
        end
      end
    end
    walk(SUITE)
    table.sort(found)
    assert.equal(34, #listed)
    assert.same(listed, found)
  end)

  for _, case in ipairs(manifest.cases) do
    it("signs " .. case.name .. " byte for byte", function()
      local base = case.name:match("([^/]+)$")
      local dir = SUITE .. "/" .. case.name .. "/" .. base
      local req = parse_req(slurp(dir .. ".req"))
      local host = assert(header_value(req.headers, "host")):match("^%s*(.-)%s*$")
      local token = case.inputs.session_token
      if token == cjson.null then token = nil end
      local s = sigv4.sign(with(FIXED, {
        method = req.method, url = "https://" .. host .. req.target,
        headers = req.headers, body = req.body, session_token = token,
      }))
      assert.equal(slurp(dir .. ".creq"), s.canonical_request)
      assert.equal(slurp(dir .. ".sts"), s.string_to_sign)
      assert.equal(slurp(dir .. ".authz"), s.authorization)
      assert.equal(s.authorization, header_value(s.headers, "Authorization"))
      assert.equal(1, count_named(s.headers, "host"))
      assert.equal(1, count_named(s.headers, "x-amz-date"))
      assert.equal(token and 1 or count_named(req.headers, "x-amz-security-token"),
                   count_named(s.headers, "x-amz-security-token"))
      -- every input header is sent, in order, ahead of the added ones
      for i, h in ipairs(req.headers) do assert.same(h, s.headers[i]) end
    end)
  end
end)

describe("alex.sigv4 against the botocore rds-data vectors", function()
  local vectors = {}
  for line in slurp(SUITE .. "/rds-data-vectors.jsonl"):gmatch("[^\n]+") do
    vectors[#vectors + 1] = cjson.decode(line)
  end

  local function sign_vector(v, headers)
    local token = v.session_token
    if token == cjson.null then token = nil end
    return sigv4.sign{
      method = v.method, url = v.url, headers = headers or v.headers, body = v.body,
      access_key = v.access_key, secret_key = v.secret_key, session_token = token,
      region = v.region, service = v.service, amz_date = v.amz_date,
    }
  end

  it("has the 12 vectors", function() assert.equal(12, #vectors) end)

  for i = 1, 12 do
    it("matches vector " .. i, function()
      local v = assert(vectors[i])
      local e = v.expected
      local s = sign_vector(v)
      assert.equal(e.canonical_request, s.canonical_request)
      assert.equal(e.string_to_sign, s.string_to_sign)
      assert.equal(e.signature, s.signature)
      assert.equal(e.authorization, s.authorization)
      assert.equal(e.signed_headers, s.signed_headers)
      assert.equal(e.payload_hash, s.canonical_request:match("\n(%x+)$"))
      assert.equal(cjson.null, e.x_amz_content_sha256)
      assert.equal(0, count_named(s.headers, "x-amz-content-sha256"))
      -- What the signer added.  botocore leaves Host to the HTTP layer (so it
      -- is not in headers_added); this binding adds it, with the value botocore signs.
      local added = {}
      for _, h in ipairs(s.headers) do
        local given = false
        for name in pairs(v.headers) do given = given or name:lower() == h[1]:lower() end
        if not given then
          assert.is_nil(added[h[1]], "added twice: " .. h[1])
          added[h[1]] = h[2]
        end
      end
      assert.equal(e.host, added.Host)
      added.Host = nil
      assert.same(e.headers_added, added)
      local n_in, n_added = 0, 1 -- Host
      for _ in pairs(v.headers) do n_in = n_in + 1 end
      for _ in pairs(e.headers_added) do n_added = n_added + 1 end
      assert.equal(n_in + n_added, #s.headers)
    end)
  end

  it("gives the same result after the signing-key cache switches keys back and forth", function()
    for _ = 1, 2 do
      for _, i in ipairs({ 1, 2, 1, 7, 2, 12 }) do
        assert.equal(vectors[i].expected.authorization, sign_vector(vectors[i]).authorization)
      end
    end
  end)

  it("signs the same with headers as a map or as an array of pairs", function()
    for _, v in ipairs(vectors) do
      local arr = {}
      for name, value in pairs(v.headers) do arr[#arr + 1] = { name, value } end
      local a, m = sign_vector(v, arr), sign_vector(v)
      assert.equal(v.expected.authorization, a.authorization)
      assert.equal(m.canonical_request, a.canonical_request)
      assert.equal(#m.headers, #a.headers)
    end
  end)
end)

describe("alex.sigv4.sign behaviour", function()
  it("keeps array order and repeated names, sorts a map by name", function()
    local s = sigv4.sign(with(BASE, { headers = {
      { "X-B", "2" }, { "x-a", "1" }, { "X-B", "  3   three " }, { "Content-Type", "application/json" } } }))
    assert.same({ "X-B", "2" }, s.headers[1])
    assert.same({ "x-a", "1" }, s.headers[2])
    assert.same({ "X-B", "  3   three " }, s.headers[3]) -- sent as given
    assert.truthy(s.canonical_request:find("\nx-a:1\nx-amz-date:20150830T123600Z\nx-b:2,3 three\n", 1, true))
    local m = sigv4.sign(with(BASE, { headers = { Zeta = "z", Alpha = "a", ["Content-Type"] = "x" } }))
    local names = {}
    for i, h in ipairs(m.headers) do names[i] = h[1] end
    assert.same({ "Alpha", "Content-Type", "Zeta", "Host", "X-Amz-Date", "Authorization" }, names)
  end)

  it("accepts numbers as header values", function()
    local s = sigv4.sign(with(BASE, { headers = { ["Content-Length"] = 18 } }))
    assert.same({ "Content-Length", "18" }, s.headers[1])
    assert.truthy(s.canonical_request:find("content-length:18\n", 1, true))
  end)

  it("never adds Host or X-Amz-Date twice, whatever their case", function()
    local s = sigv4.sign(with(BASE, { headers = {
      { "host", "Rds-Data.Example:9" }, { "x-amz-date", "20150830T123600Z" } } }))
    assert.equal(1, count_named(s.headers, "host"))
    assert.equal(1, count_named(s.headers, "x-amz-date"))
    assert.equal("Rds-Data.Example:9", header_value(s.headers, "host"))
    assert.truthy(s.canonical_request:find("\nhost:Rds-Data.Example:9\n", 1, true))
    -- only the header: it sets the signing time
    local only = with(BASE, { headers = { ["X-AMZ-DATE"] = "20200229T235959Z" } })
    only.amz_date = nil
    local h = sigv4.sign(only)
    assert.equal("20200229T235959Z", h.amz_date)
    assert.truthy(h.string_to_sign:find("\n20200229/us-east-1/rds-data/aws4_request\n", 1, true))
    assert.equal(1, count_named(h.headers, "x-amz-date"))
  end)

  it("derives Host from the URL like botocore", function()
    local cases = {
      { "https://RDS-Data.US-East-1.amazonaws.com/Execute", "rds-data.us-east-1.amazonaws.com" },
      { "https://h.example:443/", "h.example" },
      { "http://h.example:80/", "h.example" },
      { "https://h.example:80/", "h.example:80" },
      { "http://h.example:443/", "h.example:443" },
      { "http://127.0.0.1:8123/Execute?x=1#frag", "127.0.0.1:8123" },
      { "https://[::1]:8443/", "[::1]:8443" },
      { "https://[::1]/", "[::1]" },
      { "https://h.example", "h.example" },
    }
    for _, c in ipairs(cases) do
      local s = sigv4.sign(with(BASE, { url = c[1], headers = {} }))
      assert.equal(c[2], header_value(s.headers, "Host"), c[1])
    end
    local s = sigv4.sign(with(BASE, { url = "https://h.example", headers = {} }))
    local want = "POST\n/\n\nhost:h.example\n"
    assert.equal(want, s.canonical_request:sub(1, #want))
  end)

  it("adds and signs X-Amz-Security-Token with a token, unless present", function()
    local s = sigv4.sign(with(BASE, { session_token = "TOKEN/EXAMPLE+=" }))
    assert.equal("TOKEN/EXAMPLE+=", header_value(s.headers, "X-Amz-Security-Token"))
    assert.equal("content-type;host;x-amz-date;x-amz-security-token", s.signed_headers)
    local p = sigv4.sign(with(BASE, { session_token = "TOKEN/EXAMPLE+=",
                                      headers = { { "x-amz-security-token", "TOKEN/EXAMPLE+=" } } }))
    assert.equal(1, count_named(p.headers, "x-amz-security-token"))
    local none = sigv4.sign(with(BASE, { session_token = "" }))
    assert.equal(0, count_named(none.headers, "x-amz-security-token"))
    assert.equal("content-type;host;x-amz-date", none.signed_headers)
  end)

  it("sends but does not sign User-Agent, Expect, X-Amzn-Trace-Id and hop-by-hop headers", function()
    local unsigned = { "User-Agent", "Expect", "X-Amzn-Trace-Id", "Transfer-Encoding", "Connection",
                       "Keep-Alive", "TE", "Trailer", "Upgrade", "Proxy-Authorization" }
    local hs = { { "Accept", "application/json" } }
    for _, n in ipairs(unsigned) do hs[#hs + 1] = { n, "v" } end
    local s = sigv4.sign(with(BASE, { headers = hs }))
    assert.equal("accept;host;x-amz-date", s.signed_headers)
    for _, n in ipairs(unsigned) do assert.equal(1, count_named(s.headers, n)) end
  end)

  it("replaces an Authorization header given as input", function()
    local s = sigv4.sign(with(BASE, { headers = { { "Authorization", "old" }, { "A", "1" } } }))
    assert.equal(1, count_named(s.headers, "authorization"))
    assert.same({ "A", "1" }, s.headers[1])
    assert.equal(s.authorization, header_value(s.headers, "authorization"))
    assert.equal("a;host;x-amz-date", s.signed_headers)
  end)

  it("canonicalizes paths and queries", function()
    local function creq(url) return sigv4.sign(with(BASE, { url = url, headers = {} })).canonical_request end
    local function line(url, n)
      local lines = {}
      for l in (creq(url) .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
      return lines[n]
    end
    -- the URL, the line of the canonical request (2: path, 3: query), what it holds
    for _, c in ipairs {
      { "https://h/a%20b/c", 2, "/a%2520b/c" }, -- encoded once more (non-S3)
      { "https://h/a/b/../", 2, "/a/" },
      { "https://h/a/b/..", 2, "/a" },
      { "https://h/a/.", 2, "/a" },
      { "https://h/../../..", 2, "/" },
      { "https://h//$x//\195\169", 2, "/%24x/%C3%A9" },
      { "https://h?a=1", 2, "/" },
      { "https://h?a=1", 3, "a=1" },
      { "https://h/?&&b&a=1&", 3, "a=1&b=" },
      { "https://h/?a=b=d&a=b=c", 3, "a=b%3Dc&a=b%3Dd" },
      { "https://h/?k=a+b%20c", 3, "k=a%2Bb%20c" },
      { "https://h/?k=%zz%", 3, "k=%25zz%25" },
      { "https://h/?a=3&B=1&A=2", 3, "A=2&B=1&a=3" },
    } do
      assert.equal(c[3], line(c[1], c[2]))
    end
  end)

  it("fills amz_date with the current UTC time when absent", function()
    local before = os.time()
    local opts = with(BASE)
    opts.amz_date = nil
    local s = sigv4.sign(opts)
    local after = os.time()
    assert.matches("^%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ$", s.amz_date)
    local ok = false
    for t = before, after + 1 do ok = ok or os.date("!%Y%m%dT%H%M%SZ", t) == s.amz_date end
    assert.is_true(ok, s.amz_date)
    assert.equal(s.amz_date, header_value(s.headers, "X-Amz-Date"))
    assert.truthy(s.string_to_sign:find("\n" .. s.amz_date .. "\n" .. s.amz_date:sub(1, 8) .. "/", 1, true))
  end)

  it("accepts leap days and rejects impossible dates", function()
    assert.equal("20240229T000000Z", sigv4.sign(with(BASE, { amz_date = "20240229T000000Z" })).amz_date)
    for _, bad in ipairs({ "20230229T000000Z", "20150830T123600", "20150830 123600Z", "2015083T123600Z",
                           "20151330T123600Z", "20150800T123600Z", "20150830T243600Z", "20150830T126000Z",
                           "20150830T123660Z", "19691231T235959Z", "2015-08-30T12:36:00Z", "",
                           "20150830T123600Z\0" }) do
      local ok, err = pcall(sigv4.sign, with(BASE, { amz_date = bad }))
      assert.is_false(ok, bad)
      assert.matches("amz_date", err)
    end
  end)
end)

describe("alex.sigv4.sign errors", function()
  local SECRET = "SeCrEtKeYdoNotLeak/0123456789abcdefEXAMPLE"
  local TOKEN = "ToKeNdoNotLeakEXAMPLE"
  local function fails(opts, field)
    local ok, err = pcall(sigv4.sign, opts)
    assert.is_false(ok)
    assert.is_string(err)
    assert.matches("sigv4.sign", err, 1, true)
    if field then assert.matches(field, err, 1, true) end
    assert.is_nil(err:find(SECRET, 1, true), "secret in message")
    assert.is_nil(err:find(TOKEN, 1, true), "token in message")
    return err
  end
  local good = with(BASE, { secret_key = SECRET, session_token = TOKEN })

  it("refuses a non-table argument", function()
    -- Lua names the function as the call site spelt it: 'sign' or 'alex.sigv4.sign'
    assert.error_matches(function() sigv4.sign() end,
      "^bad argument #1 to '[%w.]*sign' %(table expected, got no value%)$")
    assert.error_matches(function() sigv4.sign("x") end,
      "^bad argument #1 to '[%w.]*sign' %(table expected, got string%)$")
  end)

  it("names each missing required field", function()
    for _, f in ipairs({ "method", "url", "access_key", "secret_key", "region", "service" }) do
      local o = with(good)
      o[f] = nil
      assert.matches(f .. ": missing", fails(o, f), 1, true)
    end
  end)

  it("names each ill-typed field", function()
    for _, f in ipairs({ "method", "url", "body", "access_key", "secret_key", "session_token", "region",
                         "service", "amz_date", "signed_headers" }) do
      fails(with(good, { [f] = 42 }), f)
      fails(with(good, { [f] = {} }), f)
    end
    fails(with(good, { headers = "Content-Type: x" }), "headers")
  end)

  it("refuses empty or malformed credentials and scope parts", function()
    fails(with(good, { access_key = "" }), "access_key")
    fails(with(good, { secret_key = "" }), "secret_key")
    fails(with(good, { access_key = "AK/ID" }), "access_key")
    fails(with(good, { access_key = "AK ID" }), "access_key")
    fails(with(good, { region = "" }), "region")
    fails(with(good, { region = "us/east" }), "region")
    fails(with(good, { service = "rds data" }), "service")
    fails(with(good, { method = "" }), "method")
    fails(with(good, { method = "GE T" }), "method")
    fails(with(good, { session_token = "a\r\nX-Evil: 1" }), "session_token")
  end)

  it("refuses URLs it cannot parse", function()
    for _, u in ipairs({ "", "rds-data.us-east-1.amazonaws.com/Execute", "ftp://h/", "https:///x",
                         "https://h:99999/", "https://h:0/", "https://h:/", "https://h:x/",
                         "https://user:pw@h/", "https://h h/", "https://[::1/", "https://[zz]/" }) do
      fails(with(good, { url = u }), "url")
    end
  end)

  it("refuses bad headers", function()
    fails(with(good, { headers = { { "Bad Name", "x" } } }), "headers[1]")
    fails(with(good, { headers = { { "", "x" } } }), "headers[1]")
    fails(with(good, { headers = { { "A", "x" }, { "B:", "x" } } }), "headers[2]")
    fails(with(good, { headers = { { "A", "x\r\nX-Injected: 1" } } }), "headers[1]")
    fails(with(good, { headers = { { "A", "x\nY" } } }), "headers[1]")
    fails(with(good, { headers = { { "A", "x\0" } } }), "headers[1]")
    fails(with(good, { headers = { { "A", {} } } }), "headers[1]")
    fails(with(good, { headers = { { 1, "x" } } }), "headers[1]")
    fails(with(good, { headers = { "A: x" } }), "headers[1]")
    fails(with(good, { headers = { { "A", "x" }, B = "y" } }), "headers")
    fails(with(good, { headers = { [true] = "y" } }), "headers")
    fails(with(good, { headers = { ["X-Amz-Date"] = "yesterday" } }), "X-Amz-Date")
    fails(with(good, { headers = { ["X-Amz-Date"] = "20150830T123601Z" } }), "amz_date")
  end)

  it("refuses a signed_headers list naming an absent header", function()
    local err = fails(with(good, { signed_headers = "content-type;host;x-absent" }), "x-absent")
    assert.matches("not among the headers", err, 1, true)
    fails(with(good, { signed_headers = "" }), "signed header")
  end)
end)

describe("alex.sigv4 hashing helpers", function()
  local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end

  it("sha256_hex matches FIPS 180 values", function()
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", sigv4.sha256_hex(""))
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", sigv4.sha256_hex("abc"))
    assert.equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
                 sigv4.sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
    assert.error_matches(function() sigv4.sha256_hex({}) end,
      "^bad argument #1 to '[%w.]*sha256_hex' %(string expected, got table%)$")
  end)

  it("hmac_sha256 matches RFC 4231 test cases 1, 2 and 6", function()
    local d = sigv4.hmac_sha256(("\11"):rep(20), "Hi There")
    assert.equal(32, #d)
    assert.equal("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", hex(d))
    assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                 hex(sigv4.hmac_sha256("Jefe", "what do ya want for nothing?")))
    assert.equal("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
                 hex(sigv4.hmac_sha256(("\170"):rep(131), "Test Using Larger Than Block-Size Key - Hash Key First")))
    assert.error_matches(function() sigv4.hmac_sha256("k") end,
      "^bad argument #2 to '[%w.]*hmac_sha256' %(string expected, got no value%)$")
  end)

  it("derives the documented AWS signing key", function()
    local h = sigv4.hmac_sha256
    local k = h(h(h(h("AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215"), "us-east-1"), "iam"),
                "aws4_request")
    assert.equal("f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d", hex(k))
  end)
end)

describe("alex.sigv4 verify path", function()
  local AUTH = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/rds-data/aws4_request, "
    .. "SignedHeaders=content-type;host;x-amz-date, "
    .. "Signature=2008373d1777bc5c43343a22a2a2aed6291838d942e017cdb6c516d550ab24d9"

  it("parses a good Authorization header", function()
    assert.same({ access_key = "AKIDEXAMPLE", date = "20150830", region = "us-east-1", service = "rds-data",
                  signed_headers = "content-type;host;x-amz-date",
                  signature = "2008373d1777bc5c43343a22a2a2aed6291838d942e017cdb6c516d550ab24d9" },
                sigv4.parse_authorization(AUTH))
    local compact = AUTH:gsub(", ", ",")
    assert.equal("rds-data", sigv4.parse_authorization(compact).service)
  end)

  it("rejects malformed Authorization headers with nil, message", function()
    local sig = ("a"):rep(64)
    local bad = {
      "", "AWS4-HMAC-SHA1 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=" .. sig,
      "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256Credential=A/20150830/r/s/aws4_request",
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host",
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, Signature=" .. sig,
      "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" .. sig,
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=" .. sig:sub(2),
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=" .. sig:upper(),
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=" .. sig .. "0",
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s, SignedHeaders=host, Signature=" .. sig,
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request/x, SignedHeaders=host, Signature=" .. sig,
      "AWS4-HMAC-SHA256 Credential=A/2015083/r/s/aws4_request, SignedHeaders=host, Signature=" .. sig,
      "AWS4-HMAC-SHA256 Credential=A/2015083x/r/s/aws4_request, SignedHeaders=host, Signature=" .. sig,
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws5_request, SignedHeaders=host, Signature=" .. sig,
      "AWS4-HMAC-SHA256 Credential=/20150830/r/s/aws4_request, SignedHeaders=host, Signature=" .. sig,
      "AWS4-HMAC-SHA256 Credential=A/20150830//s/aws4_request, SignedHeaders=host, Signature=" .. sig,
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=, Signature=" .. sig,
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=a;;b, Signature=" .. sig,
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host;, Signature=" .. sig,
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=Host, Signature=" .. sig,
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=" .. sig
        .. ", Signature=" .. sig,
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=" .. sig
        .. ", Extra=1",
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature",
      "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request\0, SignedHeaders=host, Signature=" .. sig,
    }
    for _, s in ipairs(bad) do
      local r, err = sigv4.parse_authorization(s)
      assert.is_nil(r, s)
      assert.matches("^Authorization: ", err)
    end
    assert.error_matches(function() sigv4.parse_authorization(nil) end,
      "^bad argument #1 to '[%w.]*parse_authorization' %(string expected, got nil%)$")
  end)

  it("verifies a signed request by re-signing with the received signed-header list", function()
    local sent = sigv4.sign(with(BASE, { session_token = "TOKENEXAMPLE",
                                         headers = { { "Content-Type", "application/json" },
                                                     { "User-Agent", "alexlua/0.1" } } }))
    -- the receiving side: headers as they arrive, plus a proxy's extra header
    local received = {}
    for _, h in ipairs(sent.headers) do received[#received + 1] = { h[1]:lower(), h[2] } end
    received[#received + 1] = { "x-forwarded-for", "127.0.0.1" }
    local auth = assert(sigv4.parse_authorization(header_value(received, "authorization")))
    local function verify(hs, body)
      local again = sigv4.sign{
        method = "POST", url = "http://127.0.0.1:9/Execute", headers = hs, body = body or BASE.body,
        access_key = auth.access_key, secret_key = BASE.secret_key, region = auth.region,
        service = auth.service, signed_headers = auth.signed_headers }
      return sigv4.signature_equal(again.signature, auth.signature)
    end
    assert.is_true(verify(received))
    -- an unsigned header may change on the way
    local ua = {}
    for i, h in ipairs(received) do ua[i] = h[1] == "user-agent" and { h[1], "other" } or h end
    assert.is_true(verify(ua))
    -- a signed header, the body or the token may not
    local tampered = {}
    for i, h in ipairs(received) do tampered[i] = h[1] == "content-type" and { h[1], "text/plain" } or h end
    assert.is_false(verify(tampered))
    assert.is_false(verify(received, BASE.body .. " "))
    local notoken = {}
    for _, h in ipairs(received) do
      if h[1] ~= "x-amz-security-token" then notoken[#notoken + 1] = h end
    end
    assert.has_error(function() verify(notoken) end,
      "sigv4.sign: signed header 'x-amz-security-token' is not among the headers")
  end)

  it("signature_equal compares exactly", function()
    local a = ("0"):rep(63) .. "1"
    assert.is_true(sigv4.signature_equal(a, a))
    assert.is_false(sigv4.signature_equal(a, ("0"):rep(64)))
    assert.is_false(sigv4.signature_equal(a, a:sub(1, 63)))
    assert.is_false(sigv4.signature_equal("", ""))
    assert.is_false(sigv4.signature_equal(a .. "\0x", a .. "\0y"))
  end)
end)

describe("alex.sigv4.signer", function()
  local manifest = cjson.decode(slurp(SUITE .. "/MANIFEST.json"))
  local vectors = {}
  for line in slurp(SUITE .. "/rds-data-vectors.jsonl"):gmatch("[^\n]+") do
    vectors[#vectors + 1] = cjson.decode(line)
  end
  local function null_to_nil(v) if v == cjson.null then return nil end return v end
  local function without(t, key)
    local c = with(t)
    c[key] = nil
    return c
  end

  local function vector_signer(v)
    return sigv4.signer { access_key = v.access_key, secret_key = v.secret_key,
                          session_token = null_to_nil(v.session_token), region = v.region, service = v.service }
  end
  local function vector_request(v)
    return { method = v.method, url = v.url, headers = v.headers, body = v.body, amz_date = v.amz_date }
  end

  -- What sign() added to the input headers, as a map.
  local function added_by_sign(s, input)
    local given = {}
    for _, h in ipairs(input) do given[h[1]:lower()] = true end
    for name in pairs(input) do if type(name) == "string" then given[name:lower()] = true end end
    local added = {}
    for _, h in ipairs(s.headers) do
      if not given[h[1]:lower()] or h[1]:lower() == "authorization" then added[h[1]] = h[2] end
    end
    return added
  end

  it("agrees byte for byte with sign() and the files of every AWS SigV4 test suite case", function()
    local signers = {}
    for _, case in ipairs(manifest.cases) do
      local base = case.name:match("([^/]+)$")
      local dir = SUITE .. "/" .. case.name .. "/" .. base
      local req = parse_req(slurp(dir .. ".req"))
      local host = assert(header_value(req.headers, "host")):match("^%s*(.-)%s*$")
      local token = null_to_nil(case.inputs.session_token)
      signers[token or ""] = signers[token or ""] or sigv4.signer {
        access_key = FIXED.access_key, secret_key = FIXED.secret_key, session_token = token,
        region = FIXED.region, service = FIXED.service }
      local r = { method = req.method, url = "https://" .. host .. req.target, headers = req.headers,
                  body = req.body, amz_date = FIXED.amz_date }
      local headers, details = signers[token or ""]:explain(r)
      assert.equal(slurp(dir .. ".creq"), details.canonical_request, case.name)
      assert.equal(slurp(dir .. ".sts"), details.string_to_sign, case.name)
      assert.equal(slurp(dir .. ".authz"), headers.Authorization, case.name)
      local s = sigv4.sign(with(FIXED, { method = r.method, url = r.url, headers = r.headers, body = r.body,
                                         session_token = token }))
      assert.equal(s.canonical_request, details.canonical_request)
      assert.equal(s.signature, details.signature)
      assert.equal(s.signed_headers, details.signed_headers)
      assert.same(added_by_sign(s, req.headers), headers, case.name)
      assert.same(headers, signers[token or ""]:sign(r), case.name)
    end
  end)

  it("agrees with the botocore rds-data vectors and with sign() on each", function()
    for i, v in ipairs(vectors) do
      local e = v.expected
      local headers, details = vector_signer(v):explain(vector_request(v))
      assert.equal(e.canonical_request, details.canonical_request, i)
      assert.equal(e.string_to_sign, details.string_to_sign, i)
      assert.equal(e.signature, details.signature, i)
      assert.equal(e.signed_headers, details.signed_headers, i)
      assert.equal(e.authorization, headers.Authorization, i)
      assert.equal(v.amz_date, details.amz_date, i)
      -- the headers botocore adds, and Host, which it leaves to the HTTP layer
      assert.equal(e.host, headers.Host, i)
      local rest = with(headers)
      rest.Host = nil
      assert.same(e.headers_added, rest, i)
      local s = sigv4.sign(with(vector_request(v), { access_key = v.access_key, secret_key = v.secret_key,
        session_token = null_to_nil(v.session_token), region = v.region, service = v.service }))
      assert.same(added_by_sign(s, v.headers), headers, i)
      -- sign() without the diagnostics gives the same headers
      assert.same(headers, vector_signer(v):sign(vector_request(v)), i)
    end
  end)

  it("keeps the signing key of the current date and derives a new one when the date changes", function()
    -- vectors 1 and 11: the same credentials, region and service, 2015 and 2024
    local v1, v11 = vectors[1], vectors[11]
    assert.equal(v1.secret_key, v11.secret_key)
    assert.are_not.equal(v1.amz_date:sub(1, 8), v11.amz_date:sub(1, 8))
    local signer = vector_signer(v1)
    local function sign(v, amz_date)
      return signer:sign(with(vector_request(v), { amz_date = amz_date })).Authorization
    end
    assert.same({ signatures = 0, key_derivations = 0 }, signer:stats())
    assert.equal(v1.expected.authorization, sign(v1))
    assert.equal(1, signer:stats().key_derivations)
    -- later that day: the same key
    local later = sign(v1, v1.amz_date:sub(1, 8) .. "T235959Z")
    assert.equal(sigv4.sign(with(vector_request(v1), { access_key = v1.access_key, secret_key = v1.secret_key,
      region = v1.region, service = v1.service, amz_date = v1.amz_date:sub(1, 8) .. "T235959Z" })).authorization,
      later)
    assert.equal(v1.expected.authorization, sign(v1))
    assert.same({ signatures = 3, key_derivations = 1 }, signer:stats())
    -- another date: a new key, and the right signature with it
    assert.equal(v11.expected.authorization, sign(v11))
    assert.equal(v11.expected.authorization, sign(v11))
    assert.same({ signatures = 5, key_derivations = 2 }, signer:stats())
    -- and back
    assert.equal(v1.expected.authorization, sign(v1))
    assert.same({ signatures = 6, key_derivations = 3 }, signer:stats())
  end)

  local SIGNER = { access_key = BASE.access_key, secret_key = BASE.secret_key, region = BASE.region,
                   service = BASE.service }
  local REQ = { method = BASE.method, url = BASE.url, headers = BASE.headers, body = BASE.body,
                amz_date = BASE.amz_date }

  it("adds Host, X-Amz-Date and the token, and uses those already among the headers", function()
    local h = sigv4.signer(with(SIGNER, { session_token = "TOKEN/EXAMPLE+=" })):sign(REQ)
    local names = {}
    for name in pairs(h) do names[#names + 1] = name end
    table.sort(names)
    assert.same({ "Authorization", "Host", "X-Amz-Date", "X-Amz-Security-Token" }, names)
    assert.equal("rds-data.us-east-1.amazonaws.com", h.Host)
    assert.equal(BASE.amz_date, h["X-Amz-Date"])
    assert.equal("TOKEN/EXAMPLE+=", h["X-Amz-Security-Token"])
    assert.matches("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,", h.Authorization, 1, true)
    -- given: used as they are, not added
    local given = sigv4.signer(with(SIGNER, { session_token = "TOKEN/EXAMPLE+=" })):sign(with(REQ, {
      headers = { host = "Rds-Data.Example:9", ["x-amz-date"] = BASE.amz_date, ["Content-Type"] = "x",
                  ["X-AMZ-SECURITY-TOKEN"] = "TOKEN/EXAMPLE+=" } }))
    assert.same({ "Authorization" }, (function()
      local t = {}
      for name in pairs(given) do t[#t + 1] = name end
      return t
    end)())
    local s = sigv4.sign(with(BASE, { session_token = "TOKEN/EXAMPLE+=", headers = {
      { "Content-Type", "x" }, { "host", "Rds-Data.Example:9" }, { "x-amz-date", BASE.amz_date },
      { "X-AMZ-SECURITY-TOKEN", "TOKEN/EXAMPLE+=" } } }))
    assert.equal(s.authorization, given.Authorization)
    -- no token: no header
    assert.is_nil(sigv4.signer(SIGNER):sign(REQ)["X-Amz-Security-Token"])
    assert.is_nil(sigv4.signer(with(SIGNER, { session_token = "" })):sign(REQ)["X-Amz-Security-Token"])
  end)

  it("signs into a table given as into, leaving its other entries", function()
    local signer = sigv4.signer(SIGNER)
    local into = { ["Content-Type"] = "application/json", ["User-Agent"] = "alexlua/test" }
    local out = signer:sign(REQ, into)
    assert.equal(into, out)
    assert.equal("application/json", into["Content-Type"])
    assert.equal("alexlua/test", into["User-Agent"])
    assert.equal(signer:sign(REQ).Authorization, into.Authorization)
    -- the next request overwrites what the signer set
    signer:sign(with(REQ, { amz_date = "20150830T123601Z" }), into)
    assert.equal("20150830T123601Z", into["X-Amz-Date"])
    assert.equal(signer:sign(with(REQ, { amz_date = "20150830T123601Z" })).Authorization, into.Authorization)
  end)

  it("adds and signs X-Amz-Content-Sha256 when asked to", function()
    local h = sigv4.signer(with(SIGNER, { content_sha256 = true })):sign(REQ)
    assert.equal(sigv4.sha256_hex(BASE.body), h["X-Amz-Content-Sha256"])
    local s = sigv4.sign(with(BASE, { headers = { ["Content-Type"] = "application/json",
                                                  ["X-Amz-Content-Sha256"] = sigv4.sha256_hex(BASE.body) } }))
    assert.equal(s.authorization, h.Authorization)
    assert.matches("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,", h.Authorization, 1, true)
    assert.is_nil(sigv4.signer(SIGNER):sign(REQ)["X-Amz-Content-Sha256"])
  end)

  it("signs at the current UTC time when amz_date is absent", function()
    local before = os.time()
    local h, details = sigv4.signer(SIGNER):explain(without(REQ, "amz_date"))
    local after = os.time()
    local ok = false
    for t = before, after + 1 do ok = ok or os.date("!%Y%m%dT%H%M%SZ", t) == h["X-Amz-Date"] end
    assert.is_true(ok, h["X-Amz-Date"])
    assert.equal(h["X-Amz-Date"], details.amz_date)
    local s = sigv4.sign(with(BASE, { amz_date = h["X-Amz-Date"] }))
    assert.equal(s.authorization, h.Authorization)
  end)

  it("takes numbers as header values, also while the collector runs at every step", function()
    local signer = sigv4.signer(SIGNER)
    -- Pause 0: a collection cycle starts as soon as one ends.  Without
    -- amz_date, the first signature of each second makes the X-Amz-Date string
    -- after the headers are read, so the loop runs across two new seconds.
    collectgarbage("incremental", 0, 1000)
    local ok, err = pcall(function()
      local seconds, last, i = 0, nil, 0
      while seconds < 2 do
        i = i + 1
        local r = without(with(REQ, { headers = { ["Content-Length"] = #BASE.body, ["X-N"] = i + 0.5,
                                                  ["Content-Type"] = "application/json" } }), "amz_date")
        local h, details = signer:explain(r)
        if h["X-Amz-Date"] ~= last then
          seconds, last = seconds + (last and 1 or 0), h["X-Amz-Date"]
        end
        assert.truthy(details.canonical_request:find("\ncontent-length:" .. #BASE.body .. "\n", 1, true))
        assert.truthy(details.canonical_request:find("\nx-n:" .. (i + 0.5) .. "\n", 1, true))
        assert.equal(sigv4.sign(with(BASE, { headers = r.headers, amz_date = h["X-Amz-Date"] })).authorization,
          h.Authorization)
      end
    end)
    collectgarbage("incremental", 200, 100) -- Lua's defaults
    assert(ok, err)
  end)

  it("gives the canonical request and string to sign only through explain", function()
    local h = sigv4.signer(SIGNER):sign(REQ)
    for name in pairs(h) do assert.matches("^[%u][%w-]*$", name) end
    assert.is_nil(h.canonical_request)
    local _, details = sigv4.signer(SIGNER):explain(REQ)
    local s = sigv4.sign(BASE)
    assert.same({ authorization = s.authorization, signature = s.signature, signed_headers = s.signed_headers,
                  canonical_request = s.canonical_request, string_to_sign = s.string_to_sign,
                  amz_date = s.amz_date }, details)
  end)

  it("shows no credential: tostring, fields, metatable, user values", function()
    local SECRET, TOKEN = "SeCrEtKeYdoNotLeak/0123456789abcdefEXAMPLE", "ToKeNdoNotLeakEXAMPLE"
    local signer = sigv4.signer(with(SIGNER, { access_key = "AKIDNOTSHOWN", secret_key = SECRET,
                                               session_token = TOKEN }))
    signer:sign(REQ)
    assert.equal("alex.sigv4.signer (us-east-1/rds-data)", tostring(signer))
    assert.equal("private", getmetatable(signer))
    for _, k in ipairs { "access_key", "secret_key", "session_token", "token", "secret", 1 } do
      assert.is_nil(signer[k])
    end
    for i = 1, 4 do
      local v = debug.getuservalue(signer, i)
      if type(v) == "string" then
        assert.is_nil(v:find(SECRET, 1, true))
        assert.is_nil(v:find(TOKEN, 1, true))
        assert.is_nil(v:find("AKIDNOTSHOWN", 1, true))
      else
        assert.is_nil(v)
      end
    end
  end)

  describe("errors", function()
    local SECRET, TOKEN = "SeCrEtKeYdoNotLeak/0123456789abcdefEXAMPLE", "ToKeNdoNotLeakEXAMPLE"
    local good = with(SIGNER, { secret_key = SECRET, session_token = TOKEN })
    local function fails(fn, message)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert.is_string(err)
      assert.is_nil(err:find(SECRET, 1, true), "secret in message")
      assert.is_nil(err:find(TOKEN, 1, true), "token in message")
      assert.equal(message, (err:gsub("^[^:]*:%d+: ", "")))
    end

    it("name the option the constructor refuses", function()
      local new = sigv4.signer
      fails(function() new() end, "sigv4.signer: expects a table {access_key=, secret_key=, session_token=, "
        .. "region=, service=} (got no value)")
      for _, f in ipairs { "access_key", "secret_key", "region", "service" } do
        fails(function() new(without(good, f)) end, "sigv4.signer: " .. f .. ": missing")
        fails(function() new(with(good, { [f] = 42 })) end, "sigv4.signer: " .. f .. ": must be a string (got number)")
      end
      -- the good options with one change, and the message
      for _, c in ipairs {
        { { session_token = {} }, "session_token: must be a string (got table)" },
        { { access_key = "" }, "access_key: empty, or has blanks, control characters or / , ; =" },
        { { access_key = "AK/ID" }, "access_key: empty, or has blanks, control characters or / , ; =" },
        { { secret_key = "" }, "secret_key: empty or contains a NUL byte" },
        { { session_token = TOKEN .. "\r\nX-Evil: 1" }, "session_token: contains a line break or NUL byte" },
        { { region = "us east 1" }, "region: empty, or has blanks, control characters or / , ; =" },
        { { service = "rds/data" }, "service: empty, or has blanks, control characters or / , ; =" },
        { { service = "s3" }, "service: s3 needs S3's own canonical path rules, which alex.sigv4 does not implement" },
        { { content_sha256 = "yes" }, "content_sha256: must be a boolean (got string)" },
        { { regoin = "us-east-1" }, "unknown option 'regoin'" },
        { { "positional" }, "options must be named fields (got a number key)" },
      } do
        fails(function() new(with(good, c[1])) end, "sigv4.signer: " .. c[2])
      end
    end)

    it("name the request field sign and explain refuse", function()
      local signer = sigv4.signer(good)
      for _, m in ipairs { "sign", "explain" } do
        local who = "signer:" .. m
        local function call(r, ...) return signer[m](signer, r, ...) end
        fails(function() call("POST") end, who .. ": expects a request table {method=, url=, headers=, body=, "
          .. "amz_date=} (got string)")
        for _, f in ipairs { "method", "url" } do
          fails(function() call(without(REQ, f)) end, who .. ": " .. f .. ": missing")
        end
        for _, f in ipairs { "method", "url", "body", "amz_date" } do
          fails(function() call(with(REQ, { [f] = 42 })) end, who .. ": " .. f .. ": must be a string (got number)")
        end
        -- the request with one change, and the message
        for _, c in ipairs {
          { { method = "" }, "method: empty" },
          { { amz_date = "2015-08-30" }, "amz_date: malformed (want YYYYMMDDTHHMMSSZ)" },
          { { url = "ftp://h/" }, "url: not an absolute http:// or https:// URL" },
          { { headers = "Content-Type: x" }, "headers: must be a table (got string)" },
          { { headers = { { "A", "x\r\nX-Injected: 1" } } }, "headers[1]: header value has a bare line break" },
          { { headers = { ["Bad Name"] = "x" } }, "headers: invalid header name" },
          { { headers = { Authorization = "old" } }, "headers: has Authorization, which the signer makes" },
          { { headers = { ["X-Amz-Date"] = "20150830T123601Z" } }, "amz_date: differs from the X-Amz-Date header" },
        } do
          fails(function() call(with(REQ, c[1])) end, who .. ": " .. c[2])
        end
        local ok, err = pcall(call, with(REQ, { headers = { ["X-A"] = "1", ["x-a"] = "2" } }))
        assert.is_false(ok)
        assert.matches(who .. ": headers: two names for one header (", err, 1, true)
        assert.matches("); give repeated headers as an array of {name, value} pairs", err, 1, true)
        -- as an array, the order is the caller's: accepted
        assert.is_table(call(with(REQ, { headers = { { "X-A", "1" }, { "x-a", "2" } } })))
      end
      fails(function() signer:sign(REQ, "into") end, "signer:sign: into: must be a table (got string)")
      local h = { ["Content-Type"] = "application/json" }
      fails(function() signer:sign(with(REQ, { headers = h }), h) end, "signer:sign: into: is the request's "
        .. "headers table; give another one (the signer must not read back what it wrote)")
      fails(function() signer.sign(REQ) end, "signer:sign: not called on a signer (use a colon: signer:method(...))")
      fails(function() signer.stats() end, "signer:stats: not called on a signer (use a colon: signer:method(...))")
    end)
  end)
end)
