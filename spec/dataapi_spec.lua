-- luacheck: std +busted
-- The local Data API service (local/*.c, the alex-dataapi binary) on a private
-- PostgreSQL 15 (spec/support/stack.lua), driven over HTTP with alex.http and
-- signed with alex.sigv4: every operation and member, the type table both
-- ways, named parameters, transactions, limits, errors, authentication, fault
-- injection, admin statistics, settings and the graceful stop.
--
-- lua-cjson decodes every number as a float, so 64-bit values are checked on
-- the raw body text or through alex.json.decode_response (digit strings).
local stack = require "stack"
local http = require "alex.http"
local sigv4 = require "alex.sigv4"
local json = require "alex.json"
local cjson = require "cjson"
local clock = require "alex.clock"
local servers = require "servers"
local shell_quote, read_file, write_file = servers.q, servers.read_file, servers.write_file

local PATHS = {
  Execute = "/Execute", BatchExecute = "/BatchExecute", BeginTransaction = "/BeginTransaction",
  CommitTransaction = "/CommitTransaction", RollbackTransaction = "/RollbackTransaction",
}

local function array(t) return setmetatable(t or {}, json.array_mt) end

local S        -- the private stack
local H        -- one alex.http client
local DEFAULT  -- the stack's own service
local BIN      -- the service binary

-- ---- requests ----------------------------------------------------------

-- Signs and sends body (text) to path; o: svc, unsigned, sign_body, access_key,
-- secret_key, session_token, region, amz_date, headers (extra, unsigned), method.
local function raw(path, body, o)
  o = o or {}
  local svc = o.svc or DEFAULT
  local url = svc.endpoint .. path
  local headers
  if o.unsigned then
    headers = { { "Content-Type", "application/json" } }
  else
    local signed = sigv4.sign {
      method = o.method or "POST", url = url, headers = { { "Content-Type", "application/json" } },
      body = o.sign_body or body, access_key = o.access_key or svc.access_key,
      secret_key = o.secret_key or svc.secret_key, session_token = o.session_token or svc.session_token,
      region = o.region or svc.region, service = "rds-data", amz_date = o.amz_date,
    }
    headers = signed.headers
  end
  for _, h in ipairs(o.headers or {}) do headers[#headers + 1] = h end
  return (o.client or H):request { method = o.method or "POST", url = url, headers = headers, body = body }
end

-- call(op, request table or text, o) -> status, decoded body, response
local function call(op, req, o)
  local body = type(req) == "string" and req or assert(json.encode(req))
  local res, msg, kind = raw(PATHS[op] or op, body, o)
  assert(res, ("%s: %s (%s)"):format(op, tostring(msg), tostring(kind)))
  local ok, decoded
  if res.status == 200 then
    ok, decoded = pcall(json.decode_response, res.body)
  else
    ok, decoded = pcall(cjson.decode, res.body)
  end
  assert(ok, "not JSON: " .. res.body)
  return res.status, decoded, res
end

local function base(t)
  t = t or {}
  t.resourceArn = t.resourceArn or S.cluster_arn
  t.secretArn = t.secretArn or S.secret_arn
  return t
end

local function exec(sql, params, extra, o)
  local r = base(extra)
  r.sql = sql
  r.parameters = params
  return call("Execute", r, o)
end

local function ok_exec(sql, params, extra, o)
  local st, d, res = exec(sql, params, extra, o)
  assert.are.equal(200, st, res.body)
  return d, res
end

-- Expects an error: checks status, type (header and body), returns message, response.
local function expect_error(status, typ, st, d, res)
  assert.are.equal(status, st, res.body)
  assert.are.equal(typ, d.__type, res.body)
  assert.are.equal(typ, res.headers["x-amzn-errortype"])
  assert.is_string(d.message)
  return d.message, res
end

local function P(name, value, hint) return { name = name, value = value, typeHint = hint } end

local function one(sql, params, extra)
  local d = ok_exec(sql, params, extra)
  return d.records[1][1], d
end

local function begin(o, extra)
  local st, d, res = call("BeginTransaction", base(extra), o)
  assert.are.equal(200, st, res.body)
  return d.transactionId
end

local function finish(op, id, o)
  return call(op, base { transactionId = id }, o)
end

-- ---- extra services on the stack's database ----------------------------

-- A second alex-dataapi (Stack:extra_service) with its own settings
-- (command-line options and ALEX_DATAAPI_<NAME> variables) over the stack's
-- config file, signed for like the stack's; the stack's stop() ends it too.
local function start_service(opts, env)
  local svc = S:extra_service(env, { args = opts })
  svc.access_key, svc.secret_key, svc.region = DEFAULT.access_key, DEFAULT.secret_key, DEFAULT.region
  return svc
end

-- A request sent by curl in the background (for concurrency); returns a waiter.
local function background(op, req, o)
  o = o or {}
  local svc = o.svc or DEFAULT
  local url = svc.endpoint .. PATHS[op]
  local body = assert(json.encode(req))
  local signed = sigv4.sign {
    method = "POST", url = url, headers = { { "Content-Type", "application/json" } }, body = body,
    access_key = svc.access_key, secret_key = svc.secret_key, region = svc.region, service = "rds-data",
  }
  local tag = os.tmpname()
  write_file(tag .. ".body", body)
  local cmd = { "curl -s -m 30 -o " .. shell_quote(tag .. ".resp") .. " -w '%{http_code}' -X POST" }
  for _, h in ipairs(signed.headers) do cmd[#cmd + 1] = "-H " .. shell_quote(h[1] .. ": " .. h[2]) end
  cmd[#cmd + 1] = "--data-binary @" .. shell_quote(tag .. ".body") .. " " .. shell_quote(url)
  os.execute("(" .. table.concat(cmd, " ") .. " > " .. shell_quote(tag .. ".code") .. ".tmp; mv " ..
    shell_quote(tag .. ".code") .. ".tmp " .. shell_quote(tag .. ".code") .. ") &")
  return function()
    for _ = 1, 600 do
      local code = read_file(tag .. ".code")
      if code and code ~= "" then
        local resp = read_file(tag .. ".resp") or ""
        for _, sfx in ipairs { "", ".body", ".resp", ".code" } do os.remove(tag .. sfx) end
        return tonumber(code), resp
      end
      clock.sleep(0.05)
    end
    error("background request did not finish")
  end
end

local function admin(method, path, body, svc)
  local res = assert(H:request { method = method, url = (svc or DEFAULT).endpoint .. "/_alex" .. path,
                                 headers = method == "GET" and {} or S:admin_headers(), body = body })
  return res.status, cjson.decode(res.body), res
end

local function psql(sql)
  local out, err = S:psql(sql)
  assert(out, err)
  return out
end

-- ---- the suite -----------------------------------------------------------

describe("alex-dataapi", function()
  lazy_setup(function()
    BIN = assert(os.getenv("ALEX_DATAAPI"), "run through `make test` (ALEX_DATAAPI names the binary)")
    S = stack.start {}
    H = http.new { connect_timeout = 5, timeout = 60 }
    DEFAULT = {
      endpoint = S.endpoint, access_key = S.env.AWS_ACCESS_KEY_ID, secret_key = S.env.AWS_SECRET_ACCESS_KEY,
      region = S.env.AWS_REGION,
    }
    ok_exec([[CREATE TABLE kinds (
      id serial PRIMARY KEY, i2 int2, i4 int4 NOT NULL DEFAULT 0, i8 int8, num numeric(10,4), f4 float4, f8 float8,
      b bool, t text, vc varchar(20), ch char(5), u uuid, j json, jb jsonb, d date, tm time, ts timestamp,
      tz timestamptz, by bytea, ia int[], ta text[])]])
    ok_exec("CREATE TABLE items (k int PRIMARY KEY, v text)")
  end)

  lazy_teardown(function()
    if H then H:close() end
    -- stops the extra services too, and fails on a sanitizer report in any one's stderr
    if S then S:stop() end
  end)

  describe("admin API", function()
    it("answers health on loopback without a signature", function()
      local st, d = admin("GET", "/health")
      assert.are.equal(200, st)
      assert.are.same({ status = "ok" }, d)
    end)

    it("rejects unknown admin paths and wrong methods", function()
      assert.are.equal(404, (admin("GET", "/nope")))
      assert.are.equal(405, (admin("POST", "/health", "{}")))
    end)
  end)

  describe("ExecuteStatement results", function()
    it("returns every integer as longValue, exactly, and as stringValue with longReturnType STRING", function()
      local sql = "SELECT 7::int2 AS a, (-2147483648)::int4 AS b, 9007199254740993::int8 AS c, " ..
                  "(-9223372036854775808)::int8 AS d"
      local d, res = ok_exec(sql)
      assert.matches('"longValue":9007199254740993', res.body, 1, true)
      assert.matches('"longValue":-9223372036854775808', res.body, 1, true)
      assert.are.same({ { { longValue = "7" }, { longValue = "-2147483648" }, { longValue = "9007199254740993" },
                          { longValue = "-9223372036854775808" } } }, d.records)
      local d2 = ok_exec(sql, nil, { resultSetOptions = { longReturnType = "STRING" } })
      assert.are.same({ stringValue = "9007199254740993" }, d2.records[1][3])
      assert.are.same({ stringValue = "7" }, d2.records[1][1])
    end)

    it("returns numeric scale-padded as stringValue, or long/double with DOUBLE_OR_LONG", function()
      local sql = "SELECT 123456.789::numeric(10,4) AS a, 12::numeric AS b, 1.5::numeric AS c, 'NaN'::numeric AS n"
      local d = ok_exec(sql)
      assert.are.same({ stringValue = "123456.7890" }, d.records[1][1])
      assert.are.same({ stringValue = "12" }, d.records[1][2])
      local _, res = ok_exec(sql, nil, { resultSetOptions = { decimalReturnType = "DOUBLE_OR_LONG" } })
      assert.matches('[{"doubleValue":123456.789},{"longValue":12},{"doubleValue":1.5},{"stringValue":"NaN"}]',
                     res.body, 1, true)
    end)

    it("returns floats as doubleValue, float4 widened to double", function()
      local _, res = ok_exec("SELECT 0.1::float4 AS a, 0.1::float8 AS b, 1e300::float8 AS c, 'NaN'::float8 AS n")
      assert.matches('[{"doubleValue":0.10000000149011612},{"doubleValue":0.1},{"doubleValue":1e+300},' ..
                     '{"stringValue":"NaN"}]', res.body, 1, true)
    end)

    it("returns text-like types as stringValue in PostgreSQL's UTC rendering", function()
      local d = ok_exec([[SELECT true AS b, 'héllo "q"'::text AS t, 'ab'::char(5) AS c, 'v'::varchar(3) AS v,
        'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid AS u, '{"b": 1,  "a": [1, 2]}'::jsonb AS jb,
        '{"b": 1,  "a": 2}'::json AS j, '2024-02-29'::date AS d, '12:34:56.5'::time AS tm,
        '2020-08-28 16:08:27.988319'::timestamp AS ts, '2020-08-28 16:08:27'::timestamp AS ts0,
        '2024-01-15 12:34:56+09'::timestamptz AS tz, '0044-03-15 10:00:00+00 BC'::timestamptz AS bc,
        'pg_class'::name AS nm, 1259::oid AS o, '10.0.0.1/8'::inet AS ip]])
      assert.are.same({
        { booleanValue = true }, { stringValue = 'héllo "q"' }, { stringValue = "ab   " }, { stringValue = "v" },
        { stringValue = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" }, { stringValue = '{"a": [1, 2], "b": 1}' },
        { stringValue = '{"b": 1,  "a": 2}' }, { stringValue = "2024-02-29" }, { stringValue = "12:34:56.5" },
        { stringValue = "2020-08-28 16:08:27.988319" }, { stringValue = "2020-08-28 16:08:27" },
        { stringValue = "2024-01-15 03:34:56" }, { stringValue = "0044-03-15 10:00:00 BC" },
        { stringValue = "pg_class" }, { stringValue = "1259" }, { stringValue = "10.0.0.1/8" },
      }, d.records[1])
    end)

    it("returns bytea as base64 blobValue, NULL as isNull and void as an empty string", function()
      local d = ok_exec("SELECT '\\x00ff10'::bytea AS b, ''::bytea AS e, NULL::int AS n, pg_sleep(0) AS v")
      assert.are.same({ { blobValue = "AP8Q" }, { blobValue = "" }, { isNull = true }, { stringValue = "" } },
                      d.records[1])
    end)

    it("returns 1-D arrays as typed arrayValue", function()
      local _, res = ok_exec([[SELECT ARRAY[1,NULL,3]::int8[] AS a, ARRAY['x', NULL, 'a "b", c', 'NULL']::text[] AS t,
        ARRAY[0.5, 2]::float8[] AS f, ARRAY[true,false] AS b, '{}'::int[] AS e, ARRAY[1.50]::numeric[] AS n,
        '[0:1]={7,8}'::int[] AS lb, ARRAY['2024-01-15 12:00:00+09']::timestamptz[] AS tz]])
      assert.matches('{"arrayValue":{"longValues":[1,null,3]}}', res.body, 1, true)
      assert.matches('{"arrayValue":{"stringValues":["x",null,"a \\"b\\", c","NULL"]}}', res.body, 1, true)
      assert.matches('{"arrayValue":{"doubleValues":[0.5,2]}}', res.body, 1, true)
      assert.matches('{"arrayValue":{"booleanValues":[true,false]}}', res.body, 1, true)
      assert.matches('{"arrayValue":{"longValues":[]}}', res.body, 1, true)
      assert.matches('{"arrayValue":{"stringValues":["1.50"]}}', res.body, 1, true)
      assert.matches('{"arrayValue":{"longValues":[7,8]}}', res.body, 1, true)
      assert.matches('{"arrayValue":{"stringValues":["2024-01-15 03:00:00"]}}', res.body, 1, true)
    end)

    it("refuses multidimensional arrays and unsupported types", function()
      local msg = expect_error(400, "UnsupportedResultException", exec("SELECT ARRAY[[1,2],[3,4]] AS m"))
      assert.are.equal("The result contains a multidimensional array", msg)
      for typ, sql in pairs { interval = "SELECT '1 day'::interval", money = "SELECT 1::money",
                              xml = "SELECT '<a/>'::xml", char = "SELECT 'a'::\"char\"",
                              point = "SELECT point(1,2)", regtype = "SELECT ARRAY['int4'::regtype]" } do
        msg = expect_error(400, "UnsupportedResultException", exec(sql .. " AS x"))
        assert.are.equal("The result contains the unsupported data type " .. typ, msg)
      end
      -- the usual workaround works
      assert.are.same({ stringValue = "1 day" }, (one("SELECT '1 day'::interval::text")))
    end)

    it("answers infinite dates and timestamps as PostgreSQL writes them", function()
      local d = ok_exec("SELECT 'infinity'::date, '-infinity'::date, 'infinity'::timestamp, " ..
                        "'-infinity'::timestamp, 'infinity'::timestamptz, '-infinity'::timestamptz")
      assert.are.same({ { stringValue = "infinity" }, { stringValue = "-infinity" }, { stringValue = "infinity" },
                        { stringValue = "-infinity" }, { stringValue = "infinity" }, { stringValue = "-infinity" } },
                      d.records[1])
      d = ok_exec("SELECT 'infinity'::timestamptz AS t", nil, { formatRecordsAs = "JSON" })
      assert.are.same({ { t = "infinity" } }, cjson.decode(d.formattedRecords))
    end)

    it("reads enums, domains and arrays of them through the catalogue", function()
      ok_exec("CREATE TYPE mood AS ENUM ('sad', 'happy')")
      ok_exec("CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)")
      local d = ok_exec("SELECT 'happy'::mood AS m, 5::posint AS p, ARRAY['sad','happy']::mood[] AS ms",
                        nil, { includeResultMetadata = true })
      assert.are.same({ { stringValue = "happy" }, { longValue = "5" },
                        { arrayValue = { stringValues = { "sad", "happy" } } } }, d.records[1])
      assert.are.equal("mood", d.columnMetadata[1].typeName)
      assert.are.equal("_mood", d.columnMetadata[3].typeName)
      assert.are.equal(2003, d.columnMetadata[3].type)
    end)

    it("counts updated rows and returns RETURNING rows as records", function()
      ok_exec("INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')")
      local d = ok_exec("UPDATE items SET v = v || '!' WHERE k >= 2")
      assert.are.equal(2, d.numberOfRecordsUpdated)
      assert.are.same({}, d.generatedFields)
      assert.is_nil(d.records)
      d = ok_exec("UPDATE items SET v = 'z' WHERE k = 1 RETURNING k, v")
      assert.are.same({ { { longValue = "1" }, { stringValue = "z" } } }, d.records)
      assert.are.equal(1, d.numberOfRecordsUpdated)
      d = ok_exec("SELECT k FROM items ORDER BY k")
      assert.are.equal(3, #d.records)
      assert.are.equal(0, d.numberOfRecordsUpdated)
      ok_exec("DELETE FROM items")
    end)

    it("accepts a single trailing semicolon and any content type", function()
      assert.are.same({ longValue = "1" }, (one("SELECT 1;")))
      local body = json.encode(base { sql = "SELECT 2" })
      for _, ct in ipairs { "application/x-amz-json-1.1", "text/plain" } do
        local res = assert(raw("/Execute", body, { headers = { { "X-Unsigned", "1" } } }))
        assert.are.equal(200, res.status)
        local signed = sigv4.sign { method = "POST", url = DEFAULT.endpoint .. "/Execute",
          headers = { { "Content-Type", ct } }, body = body, access_key = DEFAULT.access_key,
          secret_key = DEFAULT.secret_key, region = DEFAULT.region, service = "rds-data" }
        res = assert(H:request { method = "POST", url = DEFAULT.endpoint .. "/Execute", headers = signed.headers,
                                 body = body })
        assert.are.equal(200, res.status, res.body)
        assert.are.equal("application/json", res.headers["content-type"])
        assert.is_truthy(res.headers["x-amzn-requestid"])
      end
    end)
  end)

  describe("columnMetadata", function()
    it("is only there with includeResultMetadata, also for 0-row SELECTs, never for plain DML", function()
      local d = ok_exec("SELECT id, i4, t, num, ts, tz FROM kinds WHERE false", nil, { includeResultMetadata = true })
      assert.are.same({}, d.records)
      assert.are.equal(6, #d.columnMetadata)
      local m = d.columnMetadata
      local keys = {}
      for k in pairs(m[1]) do keys[#keys + 1] = k end
      table.sort(keys)
      assert.are.same({ "arrayBaseColumnType", "isAutoIncrement", "isCaseSensitive", "isCurrency", "isSigned",
                        "label", "name", "nullable", "precision", "scale", "schemaName", "tableName", "type",
                        "typeName" }, keys)
      assert.are.same({ name = "id", label = "id", typeName = "serial", type = 4, isAutoIncrement = true,
                        nullable = 0, tableName = "kinds", schemaName = "", isSigned = true, isCurrency = false,
                        isCaseSensitive = false, precision = 10, scale = 0, arrayBaseColumnType = 0 }, m[1])
      assert.are.equal(0, m[2].nullable)      -- NOT NULL
      assert.are.equal(1, m[3].nullable)      -- nullable column
      assert.are.equal(2147483647, m[3].precision)
      assert.is_true(m[3].isCaseSensitive)
      assert.are.same({ 2, "numeric", 10, 4 }, { m[4].type, m[4].typeName, m[4].precision, m[4].scale })
      assert.are.same({ 93, "timestamp", 6 }, { m[5].type, m[5].typeName, m[5].scale })
      assert.are.same({ 93, "timestamptz" }, { m[6].type, m[6].typeName })
      assert.is_nil(ok_exec("SELECT 1", nil, {}).columnMetadata)
      d = ok_exec("DELETE FROM kinds WHERE false", nil, { includeResultMetadata = true })
      assert.is_nil(d.columnMetadata)
      d = ok_exec("SELECT 1 + 1 AS two, 'x' AS \"Label\"", nil, { includeResultMetadata = true })
      assert.are.same({ 2, "", "Label" }, { d.columnMetadata[1].nullable, d.columnMetadata[1].tableName,
                                            d.columnMetadata[2].label })
    end)
  end)

  describe("formatRecordsAs JSON", function()
    it("returns formattedRecords only, typed as documented", function()
      local d = ok_exec([[SELECT 1 AS id, 'Jane' AS name, 1.5::numeric AS n, 0.5::float8 AS f, true AS ok,
        NULL::text AS z, '\x0102'::bytea AS b, ARRAY[1,2] AS a, '2024-01-15 12:34:56+09'::timestamptz AS tz,
        9007199254740993::int8 AS big]], nil, { formatRecordsAs = "JSON", includeResultMetadata = true })
      assert.is_nil(d.records)
      assert.is_nil(d.columnMetadata)
      assert.is_string(d.formattedRecords)
      assert.matches('"big":9007199254740993', d.formattedRecords, 1, true)
      local rows = cjson.decode(d.formattedRecords)
      rows[1].big = nil -- checked on the text above (cjson reads numbers as doubles)
      assert.are.same({ { id = 1, name = "Jane", n = "1.5", f = 0.5, ok = true, z = cjson.null, b = "AQI=",
                          a = { 1, 2 }, tz = "2024-01-15 03:34:56" } }, rows)
      local d2 = ok_exec("SELECT 1 AS id, 2.5::numeric AS n", nil,
        { formatRecordsAs = "JSON",
          resultSetOptions = { longReturnType = "STRING", decimalReturnType = "DOUBLE_OR_LONG" } })
      assert.are.equal('[{"id":"1","n":2.5}]', d2.formattedRecords)
      assert.are.equal("[]", ok_exec("SELECT 1 AS x WHERE false", nil, { formatRecordsAs = "JSON" }).formattedRecords)
    end)

    it("is ignored for DML and refuses duplicate labels", function()
      local d = ok_exec("DELETE FROM items WHERE false", nil, { formatRecordsAs = "JSON" })
      assert.is_nil(d.formattedRecords)
      assert.are.equal(0, d.numberOfRecordsUpdated)
      expect_error(400, "UnsupportedResultException", exec("SELECT 1 AS a, 2 AS a", nil, { formatRecordsAs = "JSON" }))
      -- without JSON, duplicate labels are fine
      assert.are.equal(2, #ok_exec("SELECT 1 AS a, 2 AS a").records[1])
    end)
  end)

  describe("parameters", function()
    it("rewrites :name outside strings, identifiers, comments and dollar quotes, keeping :: casts", function()
      local d = ok_exec([[SELECT :a::int + :a AS twice, ':a' AS lit, E'\':a' AS esc, 'q' AS ":a", -- :a
        /* :a /* nested :a */ */ $$ :a $$ AS dq, $tag$ :a; $tag$ AS dq2, :b_2 AS b]],
        { P("a", { longValue = 21 }), P("b_2", { stringValue = "B" }), P("unused", { longValue = 1 }) })
      assert.are.same({ { longValue = "42" }, { stringValue = ":a" }, { stringValue = "':a" },
                        { stringValue = "q" }, { stringValue = " :a " }, { stringValue = " :a; " },
                        { stringValue = "B" } }, d.records[1])
    end)

    it("binds long, double, bool, blob, string and null with their types", function()
      local d, res = ok_exec([[SELECT pg_typeof(:l)::text, :l, pg_typeof(:d)::text, :d, pg_typeof(:b)::text, :b,
        pg_typeof(:y)::text, :y, pg_typeof(:s)::text, :s, :n::int IS NULL]], {
        P("l", { longValue = 9007199254740993 }), P("d", { doubleValue = 0.1 }), P("b", { booleanValue = true }),
        P("y", { blobValue = "AP8AAQ==" }), P("s", { stringValue = "héllo" }), P("n", { isNull = true }) })
      assert.are.same({ { stringValue = "bigint" }, { longValue = "9007199254740993" },
        { stringValue = "double precision" }, { doubleValue = 0.1 }, { stringValue = "boolean" },
        { booleanValue = true }, { stringValue = "bytea" }, { blobValue = "AP8AAQ==" },
        { stringValue = "character varying" }, { stringValue = "héllo" }, { booleanValue = true } }, d.records[1])
      assert.matches('{"longValue":9007199254740993}', res.body, 1, true)
      local _, res2 = ok_exec("SELECT :d::float8", { P("d", { doubleValue = 1.0000000000000002 }) })
      assert.matches('{"doubleValue":1.0000000000000002}', res2.body, 1, true)
    end)

    it("binds an un-hinted string as varchar, so typed columns reject it as Aurora does", function()
      ok_exec("DELETE FROM kinds")
      local msg = expect_error(400, "DatabaseErrorException", exec("INSERT INTO kinds (u) VALUES (:u)",
        { P("u", { stringValue = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" }) }))
      assert.are.equal('ERROR: column "u" is of type uuid but expression is of type character varying; ' ..
                       'Hint: You will need to rewrite or cast the expression.; Position: 31; SQLState: 42804', msg)
      for col, v in pairs { jb = '{"a":1}', d = "2024-01-15", ts = "2024-01-15 10:00:00" } do
        msg = expect_error(400, "DatabaseErrorException", exec(("INSERT INTO kinds (%s) VALUES (:v)"):format(col),
          { P("v", { stringValue = v }) }))
        assert.matches("but expression is of type character varying", msg, 1, true)
      end
      -- a cast in the SQL works
      ok_exec("INSERT INTO kinds (u) VALUES (:u::uuid)",
              { P("u", { stringValue = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" }) })
      ok_exec("DELETE FROM kinds")
    end)

    it("binds typeHints as their types, and into matching columns", function()
      ok_exec("DELETE FROM kinds")
      local d = ok_exec([[INSERT INTO kinds (u, jb, j, d, tm, ts, tz, num)
        VALUES (:u, :jb, :j, :d, :tm, :ts, :tz, :num) RETURNING u, jb, j, d, tm, ts, tz, num]], {
        P("u", { stringValue = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11" }, "UUID"),
        P("jb", { stringValue = '{"b":1,"a":2}' }, "JSON"), P("j", { stringValue = '{"b":1}' }, "JSON"),
        P("d", { stringValue = "2024-01-15" }, "DATE"), P("tm", { stringValue = "10:11:12.345" }, "TIME"),
        P("ts", { stringValue = "2024-01-15 10:11:12.345" }, "TIMESTAMP"),
        P("tz", { stringValue = "2024-01-15 10:11:12" }, "TIMESTAMP"),
        P("num", { stringValue = "12.5" }, "DECIMAL") })
      assert.are.same({ { stringValue = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" }, { stringValue = '{"a": 2, "b": 1}' },
        { stringValue = '{"b":1}' }, { stringValue = "2024-01-15" }, { stringValue = "10:11:12.345" },
        { stringValue = "2024-01-15 10:11:12.345" }, { stringValue = "2024-01-15 10:11:12" },
        { stringValue = "12.5000" } }, d.records[1])
      local types = ok_exec("SELECT pg_typeof(:a)::text, pg_typeof(:b)::text", {
        P("a", { stringValue = "1.5" }, "DECIMAL"), P("b", { stringValue = "{}" }, "JSON") }).records[1]
      assert.are.same({ { stringValue = "numeric" }, { stringValue = "json" } }, types)
      -- a hinted value compared with a varchar column fails the other way
      local msg = expect_error(400, "DatabaseErrorException", exec("SELECT 1 FROM kinds WHERE vc = :v",
        { P("v", { stringValue = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" }, "UUID") }))
      assert.matches("operator does not exist: character varying = uuid", msg, 1, true)
      -- NULL is untyped: it goes into any column
      ok_exec("INSERT INTO kinds (u, jb, d) VALUES (:n1, :n2, :n3)",
              { P("n1", { isNull = true }), P("n2", { isNull = true }), P("n3", { isNull = true }) })
      ok_exec("DELETE FROM kinds")
    end)

    it("round-trips every type through a table", function()
      ok_exec("DELETE FROM kinds")
      local blob = "AAEC/f7/"
      ok_exec([[INSERT INTO kinds (i2, i4, i8, num, f4, f8, b, t, vc, ch, by, ia, ta)
        VALUES (:i2, :i4, :i8, :num, :f4, :f8, :b, :t, :vc, :ch, :by, :ia::int[], :ta::text[])]], {
        P("i2", { longValue = -32768 }), P("i4", { longValue = 2147483647 }),
        P("i8", { longValue = math.maxinteger }), P("num", { stringValue = "-0.0001" }, "DECIMAL"),
        P("f4", { doubleValue = 1.5 }), P("f8", { doubleValue = -2.5e-300 }), P("b", { booleanValue = false }),
        P("t", { stringValue = "line\nbreak\ttab\"quote\\" }), P("vc", { stringValue = "ünï" }),
        P("ch", { stringValue = "ab" }), P("by", { blobValue = blob }), P("ia", { stringValue = "{1,2,3}" }),
        P("ta", { stringValue = '{"a,b",c}' }) })
      local d, res = ok_exec("SELECT i2, i4, i8, num, f4, f8, b, t, vc, ch, by, ia, ta FROM kinds")
      assert.are.same({ { longValue = "-32768" }, { longValue = "2147483647" },
        { longValue = tostring(math.maxinteger) }, { stringValue = "-0.0001" }, { doubleValue = 1.5 },
        { doubleValue = -2.5e-300 }, { booleanValue = false }, { stringValue = "line\nbreak\ttab\"quote\\" },
        { stringValue = "ünï" }, { stringValue = "ab   " }, { blobValue = blob },
        { arrayValue = { longValues = { "1", "2", "3" } } }, { arrayValue = { stringValues = { "a,b", "c" } } },
      }, d.records[1])
      assert.matches('"longValue":9223372036854775807', res.body, 1, true)
      ok_exec("DELETE FROM kinds")
    end)

    it("refuses a placeholder without a parameter, array parameters and malformed values", function()
      local msg = expect_error(400, "ValidationException", exec("SELECT :missing", { P("other", { longValue = 1 }) }))
      assert.are.equal("Cannot find parameter: missing", msg)
      msg = expect_error(400, "ValidationException",
        exec("SELECT :a", { P("a", { arrayValue = { longValues = { 1, 2 } } }) }))
      assert.are.equal("Array parameters are not supported.", msg)
      expect_error(400, "ValidationException", exec("SELECT :a", { P("a", { longValue = 1.5 }) }))
      expect_error(400, "ValidationException", exec("SELECT :a", { P("a", { longValue = 1, stringValue = "x" }) }))
      expect_error(400, "ValidationException", exec("SELECT :a", { P("a", { blobValue = "not base64!" }) }))
      expect_error(400, "ValidationException", exec("SELECT :a", { P("a", { stringValue = "x" }, "BOGUS") }))
      expect_error(400, "ValidationException", exec("SELECT :a", { { name = "a" } }))
      -- an unreferenced array parameter is refused too
      expect_error(400, "ValidationException", exec("SELECT 1", { P("z", { arrayValue = { longValues = { 1 } } }) }))
    end)
  end)

  describe("errors", function()
    it("reports PostgreSQL errors as DatabaseErrorException in Aurora's one-line form", function()
      local msg = expect_error(400, "DatabaseErrorException", exec("SELECT * FROM no_such_table_xyz"))
      assert.are.equal('ERROR: relation "no_such_table_xyz" does not exist; Position: 15; SQLState: 42P01', msg)
      msg = expect_error(400, "DatabaseErrorException", exec("SELEKT 1"))
      assert.are.equal('ERROR: syntax error at or near "SELEKT"; Position: 1; SQLState: 42601', msg)
      msg = expect_error(400, "DatabaseErrorException", exec("SELECT 1 FROM items WHERE k = 'x'::text"))
      assert.are.equal("ERROR: operator does not exist: integer = text; Hint: No operator matches the given name " ..
        "and argument types. You might need to add explicit type casts.; Position: 29; SQLState: 42883", msg)
      msg = expect_error(400, "DatabaseErrorException", exec("INSERT INTO kinds (i4) VALUES (NULL)"))
      assert.are.equal('ERROR: null value in column "i4" of relation "kinds" violates not-null constraint; ' ..
                       "SQLState: 23502", msg)
    end)

    it("validates members", function()
      local st, d, res = call("Execute", base {})
      assert.matches("'sql'", expect_error(400, "ValidationException", st, d, res), 1, true)
      expect_error(400, "ValidationException", call("Execute", { secretArn = S.secret_arn, sql = "SELECT 1" }))
      expect_error(400, "ValidationException", exec("SELECT 1", nil, { includeResultMetadata = "yes" }))
      expect_error(400, "ValidationException", exec("SELECT 1", nil, { formatRecordsAs = "XML" }))
      expect_error(400, "ValidationException", exec("SELECT 1", nil, { resultSetOptions = { longReturnType = "INT" } }))
      expect_error(400, "ValidationException", exec("SELECT 1", nil, { resourceArn = "short" }))
      expect_error(400, "ValidationException", exec("SELECT 1", nil, { database = ("d"):rep(65) }))
      expect_error(400, "BadRequestException", call("Execute", "{not json"))
      expect_error(400, "BadRequestException", call("Execute", "[1,2]"))
      expect_error(400, "BadRequestException", call("Execute", ""))
    end)

    it("refuses several statements but not semicolons in strings, comments or dollar quotes", function()
      local msg = expect_error(400, "ValidationException", exec("SELECT 1; SELECT 2"))
      assert.are.equal("Multistatements aren't supported.", msg)
      expect_error(400, "ValidationException", exec("SELECT 1;;DELETE FROM items"))
      assert.are.same({ stringValue = "a;b" }, (one("SELECT 'a;b' -- ; trailing\n;")))
      assert.are.same({ stringValue = ";" }, (one("SELECT $x$;$x$ /* ; */ ;  ; ")))
      ok_exec([[CREATE FUNCTION f_semi() RETURNS int AS $$ BEGIN PERFORM 1; RETURN 2; END; $$ LANGUAGE plpgsql]])
      assert.are.same({ longValue = "2" }, (one("SELECT f_semi()")))
    end)

    it("refuses the schema member, over-long SQL and unknown ARNs and secrets", function()
      local msg = expect_error(400, "ValidationException", exec("SELECT 1", nil, { schema = "public" }))
      assert.are.equal("The schema parameter isn't supported", msg)
      local long = "SELECT 1" .. (" "):rep(65536 - 8)
      ok_exec(long)
      expect_error(400, "ValidationException", exec(long .. " "))
      msg = expect_error(400, "HttpEndpointNotEnabledException",
        exec("SELECT 1", nil, { resourceArn = "arn:aws:rds:us-east-1:000000000000:cluster:other" }))
      assert.matches("HttpEndpoint isn't enabled", msg, 1, true)
      expect_error(400, "SecretsErrorException",
        exec("SELECT 1", nil, { secretArn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:nope" }))
    end)

    it("answers unknown paths and ExecuteSql with errors", function()
      expect_error(404, "UnknownOperationException", call("/Nope", base { sql = "SELECT 1" }))
      local st, d, res = call("/ExecuteSql", { dbClusterOrInstanceArn = S.cluster_arn, sqlStatements = "SELECT 1" })
      expect_error(400, "BadRequestException", st, d, res)
    end)

    it("reports an unknown database", function()
      local msg = expect_error(400, "DatabaseErrorException", exec("SELECT 1", nil, { database = "no_such_db" }))
      assert.matches('database "no_such_db" does not exist', msg, 1, true)
    end)
  end)

  describe("autocommit", function()
    it("does not let session state leak between calls", function()
      for _ = 1, 6 do
        ok_exec("SET application_name = 'leaked'")
        ok_exec("CREATE TEMP TABLE tmp_leak (x int)")
        ok_exec("SET TIME ZONE 'Asia/Tokyo'")
      end
      for _ = 1, 6 do
        local d = ok_exec([[SELECT current_setting('application_name'), current_setting('TimeZone'),
          to_regclass('tmp_leak') IS NULL]])
        assert.are.same({ { stringValue = "alex-dataapi" }, { stringValue = "UTC" }, { booleanValue = true } },
                        d.records[1])
      end
    end)

    it("does not hand out a pooled session the server closed while idle", function()
      for _ = 1, 3 do ok_exec("SELECT 1") end
      -- with a timeout pg_terminate_backend waits until the session is gone:
      -- "closed while idle", not closing while the next call arrives
      assert.are_not.equal("0", psql("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity " ..
                                     "WHERE application_name = 'alex-dataapi' AND pid <> pg_backend_pid()"))
      for _ = 1, 6 do assert.are.same({ longValue = "1" }, (one("SELECT 1"))) end
    end)

    it("runs a statement whose result is refused to its end (its effects stay)", function()
      ok_exec("INSERT INTO items VALUES (1, 'x')")
      expect_error(400, "UnsupportedResultException", exec("UPDATE items SET v = 'y' RETURNING '1 s'::interval"))
      assert.are.same({ stringValue = "y" }, (one("SELECT v FROM items WHERE k = 1")))
      assert.are.same({ longValue = "1" }, (one("SELECT 1"))) -- the session is fine afterwards
      ok_exec("DELETE FROM items")
    end)
  end)

  describe("size limits", function()
    it("measures results like DataRow payloads against 1 MiB", function()
      -- 2 + (4 + 2000) bytes per row: 522 rows fit, 523 do not (as on Aurora)
      local d = ok_exec("SELECT repeat('é', 1000) FROM generate_series(1, 522)")
      assert.are.equal(522, #d.records)
      local msg = expect_error(400, "UnsupportedResultException",
        exec("SELECT repeat('é', 1000) FROM generate_series(1, 523)"))
      assert.are.equal("The result exceeds the size limit 1 MB.", msg)
      -- one uuid column: 2 + 4 + 36 = 42 bytes per row, 24966 rows fit
      assert.are.equal(24966, #ok_exec("SELECT gen_random_uuid() FROM generate_series(1, 24966)").records)
      expect_error(400, "UnsupportedResultException", exec("SELECT gen_random_uuid() FROM generate_series(1, 24967)"))
      -- the same bound applies to formattedRecords
      expect_error(400, "UnsupportedResultException",
        exec("SELECT repeat('é', 1000) AS x FROM generate_series(1, 523)", nil, { formatRecordsAs = "JSON" }))
    end)

    it("enforces max_request_bytes and row_size_limit when configured", function()
      local svc = start_service { max_request_bytes = 4096, row_size_limit = 100 }
      local st, d, res = exec("SELECT '" .. ("x"):rep(5000) .. "'", nil, nil, { svc = svc })
      expect_error(413, "RequestEntityTooLargeException", st, d, res)
      assert.are.equal(200, (exec("SELECT repeat('x', 94)", nil, nil, { svc = svc })))
      expect_error(400, "UnsupportedResultException", exec("SELECT repeat('x', 95)", nil, nil, { svc = svc }))
      svc.stop()
    end)
  end)

  describe("transactions", function()
    it("commit: isolated until committed, then visible; the id is opaque base64 of 184 chars", function()
      local id = begin()
      assert.matches("^[A-Za-z0-9+/]+$", id)
      assert.are.equal(184, #id)
      ok_exec("INSERT INTO items VALUES (10, 'tx')", nil, { transactionId = id })
      assert.are.equal("0", psql("SELECT count(*) FROM items WHERE k = 10"))
      assert.are.same({ longValue = "1" },
                      (one("SELECT count(*) FROM items WHERE k = 10", nil, { transactionId = id })))
      local st, d = finish("CommitTransaction", id)
      assert.are.equal(200, st)
      assert.are.same({ transactionStatus = "Transaction Committed" }, d)
      assert.are.equal("1", psql("SELECT count(*) FROM items WHERE k = 10"))
      local msg = expect_error(404, "TransactionNotFoundException", finish("CommitTransaction", id))
      assert.are.equal("Transaction " .. id .. " is not found. Transaction may be expired.", msg)
      ok_exec("DELETE FROM items")
    end)

    it("rollback, session state kept inside the transaction, unknown ids", function()
      local id = begin()
      ok_exec("SET LOCAL application_name = 'inside'", nil, { transactionId = id })
      ok_exec("CREATE TEMP TABLE tx_tmp (x int)", nil, { transactionId = id })
      ok_exec("INSERT INTO items VALUES (11, 'tx')", nil, { transactionId = id })
      local d = ok_exec("SELECT current_setting('application_name'), to_regclass('tx_tmp') IS NOT NULL", nil,
                        { transactionId = id })
      assert.are.same({ { stringValue = "inside" }, { booleanValue = true } }, d.records[1])
      local st, r = finish("RollbackTransaction", id)
      assert.are.equal(200, st)
      assert.are.same({ transactionStatus = "Rollback Complete" }, r)
      assert.are.equal("0", psql("SELECT count(*) FROM items WHERE k = 11"))
      expect_error(404, "TransactionNotFoundException", finish("RollbackTransaction", id))
      expect_error(404, "TransactionNotFoundException", exec("SELECT 1", nil, { transactionId = "bogus" }))
      expect_error(400, "ValidationException", call("CommitTransaction", base {}))
    end)

    it("a failed statement leaves the transaction open but aborted (25P02)", function()
      local id = begin()
      ok_exec("INSERT INTO items VALUES (12, 'a')", nil, { transactionId = id })
      expect_error(400, "DatabaseErrorException",
                   exec("INSERT INTO items VALUES (12, 'dup')", nil, { transactionId = id }))
      local msg = expect_error(400, "DatabaseErrorException", exec("SELECT 1", nil, { transactionId = id }))
      assert.are.equal("ERROR: current transaction is aborted, commands ignored until end of transaction block; " ..
                       "SQLState: 25P02", msg)
      -- committing it cannot succeed: it is rolled back and reported
      msg = expect_error(400, "DatabaseErrorException", finish("CommitTransaction", id))
      assert.matches("25P02", msg, 1, true)
      assert.are.equal("0", psql("SELECT count(*) FROM items WHERE k = 12"))
      expect_error(404, "TransactionNotFoundException", finish("RollbackTransaction", id))
    end)

    it("runs one statement at a time per transaction", function()
      local id = begin()
      local wait = background("Execute", base { sql = "SELECT pg_sleep(1.5)", transactionId = id })
      local busy
      for _ = 1, 40 do
        clock.sleep(0.05)
        local st, d = exec("SELECT 1", nil, { transactionId = id })
        if st ~= 200 then
          busy = d
          break
        end
      end
      assert.is_table(busy, "the concurrent call was not rejected")
      assert.are.equal("DatabaseErrorException", busy.__type)
      assert.are.equal("Transaction is still running a query", busy.message)
      local code = wait()
      assert.are.equal(200, code)
      assert.are.equal(200, (finish("CommitTransaction", id)))
    end)

    it("uses the database given at Begin and refuses unknown ones", function()
      local id = begin(nil, { database = S.database })
      assert.are.same({ stringValue = S.database },
                      (one("SELECT current_database()", nil, { transactionId = id, database = "ignored" })))
      assert.are.equal(200, (finish("RollbackTransaction", id)))
      expect_error(400, "DatabaseErrorException", call("BeginTransaction", base { database = "no_such_db" }))
    end)

    it("expires idle transactions (rolled back, id forgotten)", function()
      local svc = start_service { tx_idle_timeout = "1" }
      local id = begin({ svc = svc })
      ok_exec("INSERT INTO items VALUES (13, 'lost')", nil, { transactionId = id }, { svc = svc })
      local _, stats = admin("GET", "/stats", nil, svc)
      assert.are.equal(1, stats.open_transactions)
      clock.sleep(2.2)
      local msg = expect_error(404, "TransactionNotFoundException",
        exec("SELECT 1", nil, { transactionId = id }, { svc = svc }))
      assert.are.equal("Transaction " .. id .. " is not found. Transaction may be expired.", msg)
      assert.are.equal("0", psql("SELECT count(*) FROM items WHERE k = 13"))
      _, stats = admin("GET", "/stats", nil, svc)
      assert.are.equal(0, stats.open_transactions)
      svc.stop()
    end)
  end)

  describe("statement timeout", function()
    local svc
    lazy_setup(function() svc = start_service { statement_timeout = "0.5" } end)
    lazy_teardown(function() svc.stop() end)

    it("cancels a statement at the call limit with StatementTimeoutException", function()
      local t0 = clock.monotonic()
      local st, d, res = exec("INSERT INTO items SELECT 20, 'slow' FROM pg_sleep(3)", nil, nil, { svc = svc })
      assert.is_true(clock.monotonic() - t0 < 2.5)
      expect_error(400, "StatementTimeoutException", st, d, res)
      assert.is_number(d.dbConnectionId)
      clock.sleep(0.2)
      assert.are.equal("0", psql("SELECT count(*) FROM items WHERE k = 20"))
      assert.are.equal(200, (exec("SELECT 1", nil, nil, { svc = svc })))
    end)

    it("with continueAfterTimeout the statement runs on (autocommit: and commits)", function()
      expect_error(400, "StatementTimeoutException", exec("INSERT INTO items SELECT 21, 'on' FROM pg_sleep(1)", nil,
        { continueAfterTimeout = true }, { svc = svc }))
      assert.are.equal("0", psql("SELECT count(*) FROM items WHERE k = 21"))
      clock.sleep(1.2)
      assert.are.equal("1", psql("SELECT count(*) FROM items WHERE k = 21"))
      -- in a transaction it keeps the transaction busy until it ends
      local id = begin({ svc = svc })
      expect_error(400, "StatementTimeoutException", exec("INSERT INTO items SELECT 22, 'tx' FROM pg_sleep(1)", nil,
        { continueAfterTimeout = true, transactionId = id }, { svc = svc }))
      local msg = expect_error(400, "DatabaseErrorException", finish("CommitTransaction", id, { svc = svc }))
      assert.are.equal("Transaction is still running a query", msg)
      clock.sleep(1.0)
      assert.are.equal(200, (finish("CommitTransaction", id, { svc = svc })))
      assert.are.equal("1", psql("SELECT count(*) FROM items WHERE k = 22"))
      ok_exec("DELETE FROM items")
    end)
  end)

  describe("BatchExecuteStatement", function()
    it("runs one SQL per parameter set and answers one updateResult each", function()
      local sets = {}
      for i = 1, 2000 do
        sets[i] = { P("k", { longValue = i }), P("v", i % 3 == 0 and { isNull = true } or { stringValue = "v" .. i }) }
      end
      local t0 = clock.monotonic()
      local st, d, res = call("BatchExecute", base { sql = "INSERT INTO items VALUES (:k, :v)", parameterSets = sets })
      local dt = clock.monotonic() - t0
      assert.are.equal(200, st, res.body)
      assert.are.equal(2000, #d.updateResults)
      assert.are.same({ generatedFields = {} }, d.updateResults[1])
      assert.are.equal("2000|666", psql("SELECT count(*), count(*) FILTER (WHERE v IS NULL) FROM items"))
      assert.is_true(dt < 5, "2000 inserts took " .. dt .. " s")
      ok_exec("DELETE FROM items")
    end)

    it("is all-or-nothing outside a transaction", function()
      local st, d, res = call("BatchExecute", base { sql = "INSERT INTO items VALUES (:k, 'x')", parameterSets = {
        { P("k", { longValue = 1 }) }, { P("k", { longValue = 2 }) }, { P("k", { longValue = 1 }) } } })
      local msg = expect_error(400, "DatabaseErrorException", st, d, res)
      assert.matches("duplicate key value violates unique constraint", msg, 1, true)
      assert.are.equal("0", psql("SELECT count(*) FROM items"))
      -- a bad parameter in any set runs nothing
      expect_error(400, "ValidationException", call("BatchExecute", base { sql = "INSERT INTO items VALUES (:k, 'x')",
        parameterSets = { { P("k", { longValue = 1 }) }, { P("z", { longValue = 2 }) } } }))
      assert.are.equal("0", psql("SELECT count(*) FROM items"))
    end)

    it("runs nothing without parameter sets, and parameterless SQL with [[]]", function()
      local st, d = call("BatchExecute", base { sql = "INSERT INTO no_such_table VALUES (1)" })
      assert.are.equal(200, st)
      assert.are.same({}, d.updateResults)
      st, d = call("BatchExecute", base { sql = "INSERT INTO no_such_table VALUES (1)", parameterSets = array() })
      assert.are.equal(200, st)
      assert.are.same({}, d.updateResults)
      st, d = call("BatchExecute", base { sql = "INSERT INTO items VALUES (5, 'p') RETURNING k",
                                          parameterSets = array { array() } })
      assert.are.equal(200, st)
      assert.are.same({ { generatedFields = {} } }, d.updateResults)
      assert.are.equal("1", psql("SELECT count(*) FROM items WHERE k = 5"))
      ok_exec("DELETE FROM items")
    end)

    it("runs inside a transaction; a failure there aborts it", function()
      local id = begin()
      local st = call("BatchExecute", base { transactionId = id, sql = "INSERT INTO items VALUES (:k, :v)",
        parameterSets = { { P("k", { longValue = 1 }), P("v", { stringValue = "a" }) },
                          { P("k", { longValue = 2 }), P("v", { isNull = true }) } } })
      assert.are.equal(200, st)
      assert.are.equal("0", psql("SELECT count(*) FROM items"))
      expect_error(400, "DatabaseErrorException", call("BatchExecute", base { transactionId = id,
        sql = "INSERT INTO items VALUES (:k, 'x')", parameterSets = { { P("k", { longValue = 1 }) } } }))
      local msg = expect_error(400, "DatabaseErrorException", exec("SELECT 1", nil, { transactionId = id }))
      assert.matches("25P02", msg, 1, true)
      assert.are.equal(200, (finish("RollbackTransaction", id)))
      assert.are.equal("0", psql("SELECT count(*) FROM items"))
    end)

    it("refuses multistatements and over-sized members like ExecuteStatement", function()
      expect_error(400, "ValidationException", call("BatchExecute", base { sql = "SELECT 1; SELECT 2",
        parameterSets = array { array() } }))
      expect_error(400, "ValidationException", call("BatchExecute", base { sql = "SELECT 1", parameterSets = "x" }))
    end)
  end)

  describe("authentication", function()
    local function status_type(o, body)
      body = body or json.encode(base { sql = "SELECT 1" })
      local res = assert(raw("/Execute", body, o))
      local d = cjson.decode(res.body)
      return res.status, d.__type, d.message, res
    end

    it("requires a signature", function()
      local st, typ, msg = status_type { unsigned = true }
      assert.are.same({ 403, "MissingAuthenticationTokenException", "Missing Authentication Token" }, { st, typ, msg })
      st, typ = status_type { unsigned = true, headers = { { "Authorization", "Bearer abc" } } }
      assert.are.same({ 403, "IncompleteSignatureException" }, { st, typ })
      st, typ = status_type { unsigned = true, headers = { { "Authorization",
        "AWS4-HMAC-SHA256 Credential=" .. DEFAULT.access_key .. "/20240101/us-east-1/rds-data/aws4_request" } } }
      assert.are.same({ 403, "IncompleteSignatureException" }, { st, typ })
    end)

    it("refuses unknown keys, wrong secrets, tampered bodies, other regions", function()
      local st, typ, msg = status_type { access_key = "AKIAUNKNOWNKEY000000" }
      assert.are.same({ 403, "UnrecognizedClientException", "The security token included in the request is invalid." },
                      { st, typ, msg })
      st, typ, msg = status_type { secret_key = "wrong" }
      assert.are.same({ 403, "InvalidSignatureException" }, { st, typ })
      assert.matches("^The request signature we calculated does not match the signature you provided%.", msg)
      st, typ = status_type { sign_body = json.encode(base { sql = "SELECT 2" }) }
      assert.are.same({ 403, "InvalidSignatureException" }, { st, typ })
      st, typ, msg = status_type { region = "eu-west-1" }
      assert.are.same({ 403, "InvalidSignatureException" }, { st, typ })
      assert.matches("region", msg, 1, true)
      -- a session token the service does not expect
      st, typ = status_type { session_token = "token" }
      assert.are.same({ 403, "UnrecognizedClientException" }, { st, typ })
    end)

    it("refuses dates more than 5 minutes off", function()
      local old = os.date("!%Y%m%dT%H%M%SZ", os.time() - 600)
      local st, typ, msg = status_type { amz_date = old }
      assert.are.same({ 403, "InvalidSignatureException" }, { st, typ })
      assert.matches("^Signature expired: " .. old .. " is now earlier than %d+T%d+Z %(%d+T%d+Z %- 5 min%.%)$", msg)
      local future = os.date("!%Y%m%dT%H%M%SZ", os.time() + 600)
      st, typ, msg = status_type { amz_date = future }
      assert.are.same({ 403, "InvalidSignatureException" }, { st, typ })
      assert.matches("^Signature not yet current: " .. future ..
                     " is still later than %d+T%d+Z %(%d+T%d+Z %+ 5 min%.%)$", msg)
      local near = os.date("!%Y%m%dT%H%M%SZ", os.time() - 200)
      assert.are.equal(200, (status_type { amz_date = near }))
    end)

    it("requires the configured session token when there is one", function()
      local svc = start_service({}, { session_token = "the-session-token" })
      svc.session_token = "the-session-token"
      local body = json.encode(base { sql = "SELECT 1" })
      assert.are.equal(200, (status_type({ svc = svc }, body)))
      local st, typ = status_type({ svc = svc, session_token = "other-token" }, body)
      assert.are.same({ 403, "UnrecognizedClientException" }, { st, typ })
      svc.session_token = nil
      st, typ = status_type({ svc = svc }, body)
      assert.are.same({ 403, "UnrecognizedClientException" }, { st, typ })
      -- the token never reaches the log
      svc.stop()
      assert.is_nil((read_file(svc.log) or ""):find("the-session-token", 1, true))
    end)
  end)

  describe("fault injection", function()
    local svc
    lazy_setup(function() svc = start_service {} end)
    lazy_teardown(function() svc.stop() end)
    before_each(function()
      admin("POST", "/faults", '{"seed":0,"latency_ms":0,"throttle_rate":0,"resuming_rate":0,"5xx_rate":0,' ..
                               '"drop_rate":0,"drop_after_rate":0}', svc)
      admin("POST", "/stats/reset", "{}", svc)
    end)

    it("is off by default and settable through /_alex/faults", function()
      local st, f = admin("GET", "/faults", nil, svc)
      assert.are.equal(200, st)
      assert.are.same({ seed = 0, latency_ms = 0, throttle_rate = 0, resuming_rate = 0, ["5xx_rate"] = 0,
                        drop_rate = 0, drop_after_rate = 0 }, f)
      st, f = admin("POST", "/faults", '{"throttle_rate":0.25,"latency_ms":1}', svc)
      assert.are.equal(200, st)
      assert.are.same({ 0.25, 1 }, { f.throttle_rate, f.latency_ms })
      assert.are.equal(400, (admin("POST", "/faults", '{"throttle_rate":2}', svc)))
      assert.are.equal(400, (admin("POST", "/faults", '{"nope":1}', svc)))
      assert.are.equal(400, (admin("POST", "/faults", 'not json', svc)))
    end)

    it("throttles, resumes and fails with 5xx as AWS does", function()
      admin("POST", "/faults", '{"throttle_rate":1}', svc)
      local msg = expect_error(400, "ThrottlingException", exec("SELECT 1", nil, nil, { svc = svc }))
      assert.are.equal("Rate exceeded", msg)
      admin("POST", "/faults", '{"throttle_rate":0,"resuming_rate":1}', svc)
      msg = expect_error(400, "DatabaseResumingException", exec("SELECT 1", nil, nil, { svc = svc }))
      assert.matches("^The Aurora DB instance alex%-local%-instance%-1 is resuming after being auto%-paused%.", msg)
      -- Commit/Rollback are never answered with DatabaseResumingException
      expect_error(404, "TransactionNotFoundException", finish("CommitTransaction", "nope", { svc = svc }))
      admin("POST", "/faults", '{"resuming_rate":0,"5xx_rate":1}', svc)
      local seen = {}
      for _ = 1, 12 do
        local st, d = exec("SELECT 1", nil, nil, { svc = svc })
        seen[st .. " " .. d.__type] = true
      end
      assert.is_true(seen["500 InternalServerErrorException"] and seen["503 ServiceUnavailableError"] or false)
      local _, stats = admin("GET", "/stats", nil, svc)
      assert.are.same({ throttle = 1, resuming = 1, ["5xx"] = 12, drop = 0, drop_after = 0 }, stats.faults)
      assert.are.equal(14, stats.operations.ExecuteStatement)
      assert.are.equal(1, stats.operations.CommitTransaction)
    end)

    it("drops connections before or after executing", function()
      -- a fresh client each time: libcurl resends a request whose reused connection closed unanswered
      admin("POST", "/faults", '{"drop_rate":1}', svc)
      local h = http.new { connect_timeout = 5, timeout = 30 }
      local res, _, kind = raw("/Execute", json.encode(base { sql = "INSERT INTO items VALUES (30, 'drop')" }),
                               { svc = svc, client = h })
      h:close()
      assert.is_nil(res)
      assert.is_string(kind)
      assert.are.equal("0", psql("SELECT count(*) FROM items WHERE k = 30"))
      admin("POST", "/faults", '{"drop_rate":0,"drop_after_rate":1}', svc)
      h = http.new { connect_timeout = 5, timeout = 30 }
      res = raw("/Execute", json.encode(base { sql = "INSERT INTO items VALUES (31, 'after')" }),
                { svc = svc, client = h })
      h:close()
      assert.is_nil(res)
      assert.are.equal("1", psql("SELECT count(*) FROM items WHERE k = 31"))
      local _, stats = admin("GET", "/stats", nil, svc)
      assert.are.same({ 1, 1 }, { stats.faults.drop, stats.faults.drop_after })
      ok_exec("DELETE FROM items")
    end)

    it("reproduces the same fault sequence from the same seed", function()
      local function run(seed)
        admin("POST", "/faults", ('{"seed":%d,"throttle_rate":0.3,"5xx_rate":0.3}'):format(seed), svc)
        local seq = {}
        for i = 1, 30 do seq[i] = (exec("SELECT 1", nil, nil, { svc = svc })) end
        return table.concat(seq, ",")
      end
      local a, b, c = run(42), run(42), run(7)
      assert.are.equal(a, b)
      assert.are_not.equal(a, c)
      assert.matches("200", a, 1, true)
      assert.matches("400", a, 1, true)
    end)

    it("adds latency", function()
      admin("POST", "/faults", '{"latency_ms":300}', svc)
      local t0 = clock.monotonic()
      assert.are.equal(200, (exec("SELECT 1", nil, nil, { svc = svc })))
      assert.is_true(clock.monotonic() - t0 >= 0.29)
      -- never on admin paths
      t0 = clock.monotonic()
      admin("GET", "/health", nil, svc)
      assert.is_true(clock.monotonic() - t0 < 0.25)
    end)
  end)

  describe("statistics", function()
    it("counts every call that reached an operation, and the bytes", function()
      local svc = start_service {}
      local st, stats = admin("POST", "/stats/reset", "{}", svc)
      assert.are.equal(200, st)
      assert.are.equal(0, stats.operations.ExecuteStatement)
      local _
      exec("SELECT 1", nil, nil, { svc = svc })
      exec("SELECT * FROM nope", nil, nil, { svc = svc })
      call("BatchExecute", base { sql = "SELECT 1" }, { svc = svc })
      local id = begin({ svc = svc })
      finish("CommitTransaction", id, { svc = svc })
      finish("RollbackTransaction", "nope", { svc = svc })
      raw("/Execute", "{}", { svc = svc, secret_key = "wrong" }) -- refused at the door: not an operation call
      _, stats = admin("GET", "/stats", nil, svc)
      assert.are.same({ ExecuteStatement = 2, BatchExecuteStatement = 1, BeginTransaction = 1,
                        CommitTransaction = 1, RollbackTransaction = 1 }, stats.operations)
      assert.is_true(stats.bytes_in > 100)
      assert.is_true(stats.bytes_out > 100)
      assert.are.equal(0, stats.open_transactions)
      svc.stop()
    end)
  end)

  describe("settings and lifecycle", function()
    local function run_bin(args, env)
      local cmd = (env or "") .. " " .. shell_quote(BIN) .. " " .. args .. " 2>&1"
      local p = assert(io.popen(cmd))
      local out = p:read("a")
      local _, _, code = p:close()
      return code, out
    end

    it("refuses secrets on the command line, non-loopback addresses and missing settings", function()
      local code, out = run_bin("--config " .. shell_quote(S.dir .. "/dataapi.env") .. " --secret-key=abc")
      assert.are.equal(2, code)
      assert.matches("not accepted on the command line", out, 1, true)
      assert.is_nil(out:find("abc", 1, true))
      code, out = run_bin("--config " .. shell_quote(S.dir .. "/dataapi.env") .. " --listen 0.0.0.0:1")
      assert.are_not.equal(0, code)
      assert.matches("non-loopback", out, 1, true)
      code, out = run_bin("--listen 127.0.0.1:1", "env -i")
      assert.are.equal(2, code)
      assert.matches("required", out, 1, true)
      code, out = run_bin("--config " .. shell_quote(S.dir .. "/dataapi.env") .. " --bogus 1")
      assert.are.equal(2, code)
      assert.matches("unknown option", out, 1, true)
      code, out = run_bin("--help")
      assert.are.equal(0, code)
      assert.matches("fault_drop_after_rate", out, 1, true)
    end)

    it("stops gracefully on SIGTERM: open transactions rolled back, pidfile removed", function()
      local svc = start_service {}
      local id = begin({ svc = svc })
      ok_exec("INSERT INTO items VALUES (40, 'open')", nil, { transactionId = id }, { svc = svc })
      assert.are.equal("1", psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' " ..
                                 "AND application_name = 'alex-dataapi'"))
      -- a running statement is cancelled and answered
      local wait = background("Execute", base { sql = "SELECT pg_sleep(20)" }, { svc = svc })
      for _ = 1, 100 do
        if psql("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)'") == "1" then break end
        clock.sleep(0.05)
      end
      local t0 = clock.monotonic()
      assert.is_true(svc.stop())
      assert.is_true(clock.monotonic() - t0 < 5)
      local code, body = wait()
      assert.are.equal(503, code)
      assert.are.equal("ServiceUnavailableError", cjson.decode(body).__type)
      assert.is_nil(read_file(svc.pidfile))
      assert.are.equal("0", psql("SELECT count(*) FROM items WHERE k = 40"))
      assert.are.equal("0", psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' " ..
                                 "AND application_name = 'alex-dataapi'"))
      local log = read_file(svc.log) or ""
      assert.matches("rolling back 1 open transaction", log, 1, true)
      assert.is_nil(log:find(S.env.AWS_SECRET_ACCESS_KEY, 1, true))
    end)
  end)
end)
