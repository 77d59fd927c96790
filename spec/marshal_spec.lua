-- The client's pure-Lua parts: JSON with exact 64-bit integers, base64,
-- parameter marshalling and result conversion, error values.
local json = require "alex.json"
local base64 = require "alex.base64"
local db = require "alex.db"
local errors = require "alex.errors"

describe("alex.json", function()
  it("encodes integers exactly, above 2^53 too", function()
    assert.equal("[9007199254740993,-9223372036854775808,9223372036854775807]",
      json.encode { 9007199254740993, math.mininteger, math.maxinteger })
  end)

  it("encodes floats so they read back identical", function()
    for _, v in ipairs { 0.1, 1 / 3, 1e300, -2.5e-300, 123456.789, 3.0 } do
      local text = json.encode(v)
      assert.equal(v, tonumber(text))
      assert.equal("float", math.type(tonumber(text)))
    end
    assert.equal("0.1", json.encode(0.1))
  end)

  it("refuses NaN, infinity and functions, naming the path", function()
    local text, err = json.encode({ a = { b = 0 / 0 } }, "p")
    assert.is_nil(text)
    assert.matches("p%.a%.b", err)
    assert.is_nil(json.encode(math.huge))
    assert.is_nil(json.encode({ f = print }))
    assert.is_nil(json.encode({ [true] = 1 }))
  end)

  it("encodes arrays, objects, empties and escapes", function()
    assert.equal('{"a":[1,2],"b":{},"c":"q\\"\\n"}', json.encode { a = { 1, 2 }, b = {}, c = 'q"\n' })
    assert.equal("[]", json.encode(setmetatable({}, json.array_mt)))
    assert.equal('{"1":1,"3":3}', json.encode { ["1"] = 1, ["3"] = 3 })
    assert.is_nil(json.encode { [1] = 1, [3] = 3 }) -- a sparse array is refused, not guessed
  end)

  it("decodes longValue and longValues as exact digit strings", function()
    local r = json.decode_response(
      '{"records":[[{"longValue":9007199254740993},{"stringValue":"\\"longValue\\":5"},' ..
      '{"arrayValue":{"longValues":[1,null,-9223372036854775808]}}]]}')
    assert.equal("9007199254740993", r.records[1][1].longValue)
    assert.equal('"longValue":5', r.records[1][2].stringValue)
    assert.equal("-9223372036854775808", r.records[1][3].arrayValue.longValues[3])
  end)
end)

describe("alex.base64", function()
  it("round-trips every byte and the RFC 4648 vectors", function()
    local cases = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==", fooba = "Zm9vYmE=",
                    foobar = "Zm9vYmFy" }
    for plain, enc in pairs(cases) do
      assert.equal(enc, base64.encode(plain))
      assert.equal(plain, base64.decode(enc))
    end
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    all = table.concat(all)
    assert.equal(all, base64.decode(base64.encode(all)))
  end)

  it("rejects what is not base64", function()
    assert.is_nil(base64.decode("abc"))
    assert.is_nil(base64.decode("ab!="))
    assert.is_nil(base64.decode("a=bc"))
  end)
end)

describe("alex.db marshalling", function()
  local function param(v)
    local list = assert(db.to_parameters { p = v })
    return list[1]
  end

  it("maps Lua values to Data API fields", function()
    assert.same({ name = "p", value = { longValue = 42 } }, param(42))
    assert.same({ name = "p", value = { doubleValue = 4.5 } }, param(4.5))
    assert.same({ name = "p", value = { stringValue = "s" } }, param("s"))
    assert.same({ name = "p", value = { booleanValue = false } }, param(false))
    assert.same({ name = "p", value = { isNull = true } }, param(db.null))
    assert.same({ name = "p", value = { stringValue = '{"a":1}' }, typeHint = "JSON" }, param { a = 1 })
    assert.same({ name = "p", value = { stringValue = "450.25" }, typeHint = "DECIMAL" }, param(db.decimal("450.25")))
    assert.same({ name = "p", value = { stringValue = "7" }, typeHint = "DECIMAL" }, param(db.decimal(7)))
    assert.same({ name = "p", value = { stringValue = "2024-01-02 03:04:05" }, typeHint = "TIMESTAMP" },
      param(db.timestamp("2024-01-02T03:04:05")))
    assert.same({ name = "p", value = { blobValue = "AAH/" } }, param(db.blob("\0\1\255")))
    assert.same({ name = "p", value = { stringValue = "[]" }, typeHint = "JSON" },
      param(db.json(setmetatable({}, json.array_mt))))
    assert.same({ name = "p", value = { isNull = true } }, param(db.uuid(nil)))
  end)

  it("sorts parameters by name", function()
    local list, names = db.to_parameters { b = 1, a = 2, c = 3 }
    assert.same({ "a", "b", "c" }, names)
    assert.equal("a", list[1].name)
  end)

  it("names the parameter in every error", function()
    for _, case in ipairs {
      { db.uuid("x"), "not a valid uuid" }, { db.date("2024-1-1"), "not a valid date" },
      { db.time("25h"), "not a valid time" }, { db.decimal("1e5"), "not a valid decimal" },
      { db.uuid(5), "needs a string" }, { 0 / 0, "not a finite number" }, { coroutine.create(print), "thread" },
    } do
      local list, err = db.to_parameters { the_param = case[1] }
      assert.is_nil(list)
      assert.equal("ParameterError", err.name)
      assert.matches("parameter 'the_param'", err.message)
      assert.matches(case[2], err.message)
    end
    local list, err = db.to_parameters { ["1x"] = 1 }
    assert.is_nil(list)
    assert.matches("not an identifier", err.message)
  end)

  it("turns a response into rows keyed by column", function()
    local resp = json.decode_response([==[{"columnMetadata":[{"name":"id","label":"id","typeName":"int8"},
      {"name":"doc","label":"doc","typeName":"jsonb"},{"name":"price","label":"price","typeName":"numeric"},
      {"name":"gone","label":"gone","typeName":"text"},{"name":"raw","label":"raw","typeName":"bytea"}],
      "records":[[{"longValue":9223372036854775807},{"stringValue":"{\"a\": 70, \"b\": [1, null]}"},
      {"stringValue":"450.2500"},{"isNull":true},{"blobValue":"AAH/"}]],"numberOfRecordsUpdated":0}]==])
    local rows = db.to_rows(resp)
    assert.same({ "id", "doc", "price", "gone", "raw" }, rows.columns)
    local r = rows[1]
    assert.equal(math.maxinteger, r.id)
    assert.equal(70, r.doc.a)
    assert.equal("integer", math.type(r.doc.a))
    assert.equal(db.null, r.doc.b[2])
    assert.equal("450.2500", r.price)
    assert.is_nil(r.gone)
    assert.equal("\0\1\255", r.raw)
  end)
end)

describe("alex.errors", function()
  it("reads the AWS error shape and stays one line", function()
    local e = errors.from_response("ExecuteStatement",
      { status = 400, headers = { ["x-amzn-errortype"] = "DatabaseErrorException:http://internal.amazon.com/" } },
      { message = "ERROR: relation \"x\" does not exist; Position: 15; SQLState: 42P01" })
    assert.equal("DatabaseErrorException", e.name)
    assert.equal("42P01", e.sqlstate)
    assert.is_false(e.retryable)
    assert.equal('DatabaseErrorException: ERROR: relation "x" does not exist; Position: 15; SQLState: 42P01' ..
      " (ExecuteStatement, HTTP 400)", tostring(e))
    local t = errors.from_response("BeginTransaction", { status = 400, headers = {} },
      { __type = "com.amazon#ThrottlingException", message = "Rate exceeded" })
    assert.equal("ThrottlingException", t.name)
    assert.is_true(t.retryable)
    local s = errors.from_response("ExecuteStatement", { status = 503, headers = {} }, nil)
    assert.is_true(s.retryable)
    assert.is_nil(s.outcome_unknown) -- unavailable: it never started
    local i = errors.from_response("ExecuteStatement", { status = 500, headers = {} },
      { __type = "InternalServerErrorException", message = "" })
    assert.is_true(i.retryable)
    assert.is_true(i.outcome_unknown) -- it may have run before the failure
  end)

  it("classifies transport failures", function()
    assert.is_nil(errors.from_transport("ExecuteStatement", "refused", "connect").outcome_unknown)
    assert.is_true(errors.from_transport("ExecuteStatement", "timed out", "timeout").outcome_unknown)
    assert.is_false(errors.from_transport("ExecuteStatement", "bad cert", "tls").retryable)
  end)
end)
