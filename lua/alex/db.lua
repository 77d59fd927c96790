-- The Data API client scripts use:
--
--   local db = assert(require("alex.db").connect())   -- nil, err when not configured
--   local rows = db:query("SELECT * FROM users WHERE clerk_user_id = :id", { id = "u1" })
--   db:transaction(function(tx) tx:execute(...) end)
--
-- Methods raise error values (alex.errors: fields name, message, status,
-- sqlstate, retryable; tostring gives one line).  `db.safe` is the twin whose
-- methods return nil, err instead, as cjson.safe is to cjson.
--
-- Lua -> Data API parameters                   Data API results -> Lua
--   integer        longValue (exact, 64-bit)     int2/int4/int8   integer (exact)
--   float          doubleValue                   float4/float8    number
--   string         stringValue (varchar)         bool             boolean
--   boolean        booleanValue                  NULL             nil (db.null inside arrays)
--   table          stringValue + typeHint JSON   json/jsonb       decoded table
--   db.null        isNull                        numeric/decimal  exact string ("450.2500")
--   db.decimal(s)  stringValue + DECIMAL         uuid/date/time/timestamp/text  string
--   db.uuid(s)     stringValue + UUID            bytea            string of bytes
--   db.date(s)     stringValue + DATE            1-D arrays       Lua arrays
--   db.time(s)     stringValue + TIME
--   db.timestamp(s) stringValue + TIMESTAMP
--   db.blob(s)     blobValue (base64)
--   db.json(v)     stringValue + JSON (also for arrays, empty tables, strings)
local json = require "alex.json"
local errors = require "alex.errors"
local base64 = require "alex.base64"
local dataapi = require "alex.dataapi"
local journal = require "alex.journal"

local db = {}

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local math_type, tointeger, concat, fmt = math.type, math.tointeger, table.concat, string.format

-- Sentinel for SQL NULL in parameter tables (nil cannot sit in a table).
db.null = setmetatable({}, { __name = "alex.db.null", __tostring = function() return "db.null" end })

-- ---------------------------------------------------------------- wrappers

local Typed = { __name = "alex.db.typed" }
Typed.__index = Typed
function Typed.__tostring(t) return ("db.%s(%s)"):format(t.kind, tostring(t.value)) end

local PATTERNS = {
  uuid = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$",
  date = "^%d%d%d%d%-%d%d%-%d%d$",
  time = "^%d%d:%d%d:%d%d%.?%d*$",
  timestamp = "^%d%d%d%d%-%d%d%-%d%d[ T]%d%d:%d%d:%d%d%.?%d*$",
  decimal = "^[-+]?%d+%.?%d*$",
}
local HINTS = { uuid = "UUID", date = "DATE", time = "TIME", timestamp = "TIMESTAMP", decimal = "DECIMAL" }

local function wrapper(kind)
  return function(value)
    return setmetatable({ kind = kind, value = value }, Typed)
  end
end
db.uuid, db.date, db.time, db.timestamp, db.blob = wrapper "uuid", wrapper "date", wrapper "time",
  wrapper "timestamp", wrapper "blob"
db.json = wrapper "json"
function db.decimal(v)
  if math_type(v) == "integer" then v = fmt("%d", v)
  elseif type(v) == "number" then v = json.encode(v) end
  return setmetatable({ kind = "decimal", value = v }, Typed)
end

-- ---------------------------------------------------------------- parameters

local NAME = "^[%a_][%w_]*$"

local function param_error(name, msg)
  return errors.new { name = "ParameterError", message = ("parameter '%s': %s"):format(name, msg) }
end

-- Returns the SqlParameter table for one value, or nil, err.
local function to_parameter(name, v)
  local t = type(v)
  if t == "string" then
    return { name = name, value = { stringValue = v } }
  elseif t == "number" then
    if math_type(v) == "integer" then return { name = name, value = { longValue = v } } end
    if v ~= v or v == math.huge or v == -math.huge then
      return nil, param_error(name, tostring(v) .. " is not a finite number")
    end
    return { name = name, value = { doubleValue = v } }
  elseif t == "boolean" then
    return { name = name, value = { booleanValue = v } }
  elseif v == db.null then
    return { name = name, value = { isNull = true } }
  elseif t == "table" and getmetatable(v) == Typed then
    local kind, value = v.kind, v.value
    if value == nil or value == db.null then return { name = name, value = { isNull = true } } end
    if kind == "json" then
      local text, err = json.encode(value, name)
      if not text then return nil, param_error(name, err) end
      return { name = name, value = { stringValue = text }, typeHint = "JSON" }
    end
    if type(value) ~= "string" then
      return nil, param_error(name, ("db.%s needs a string, got %s"):format(kind, type(value)))
    end
    if kind == "blob" then return { name = name, value = { blobValue = base64.encode(value) } } end
    if not value:find(PATTERNS[kind]) then
      return nil, param_error(name, ("%q is not a valid %s"):format(value, kind))
    end
    if kind == "timestamp" then value = value:gsub("T", " ", 1) end
    return { name = name, value = { stringValue = value }, typeHint = HINTS[kind] }
  elseif t == "table" then
    local text, err = json.encode(v, name)
    if not text then return nil, param_error(name, err) end
    return { name = name, value = { stringValue = text }, typeHint = "JSON" }
  end
  return nil, param_error(name, "a " .. t .. " cannot be sent")
end

-- params (a table keyed by name) -> array of SqlParameter, sorted names; or nil, err.
local function to_parameters(params)
  local list, names = setmetatable({}, json.array_mt), {}
  if params == nil then return list, names end
  if type(params) ~= "table" then
    return nil, errors.new { name = "ParameterError", message = "parameters must be a table keyed by name" }
  end
  for k in pairs(params) do
    if type(k) ~= "string" or not k:find(NAME) then
      return nil, errors.new { name = "ParameterError",
        message = ("parameter name %s is not an identifier (letters, digits, _)"):format(tostring(k)) }
    end
    names[#names + 1] = k
  end
  table.sort(names)
  for i, k in ipairs(names) do
    local p, err = to_parameter(k, params[k])
    if not p then return nil, err end
    list[i] = p
  end
  return list, names
end
db.to_parameters = to_parameters

-- ---------------------------------------------------------------- results

local JSON_TYPES = { json = true, jsonb = true }

-- JSON numbers decode as floats; give integral ones back as integers, and
-- JSON null as db.null, so what a script stored is what it reads.
local function normalize_json(v)
  local t = type(v)
  if t == "number" then
    return tointeger(v) or v
  elseif t == "table" then
    for k, item in pairs(v) do v[k] = normalize_json(item) end
    return v
  elseif v == json.null then
    return db.null
  end
  return v
end

local function array_value(av)
  local list = av.longValues
  if list then
    local out = {}
    for i = 1, #list do
      local s = list[i]
      out[i] = s == json.null and db.null or tointeger(tonumber(s))
    end
    return out
  end
  list = av.stringValues or av.doubleValues or av.booleanValues
  if list then
    for i = 1, #list do if list[i] == json.null then list[i] = db.null end end
    return list
  end
  list = av.arrayValues
  if list then
    local out = {}
    for i = 1, #list do out[i] = array_value(list[i]) end
    return out
  end
  return {}
end

local function field_value(f, typename)
  local v = f.stringValue
  if v ~= nil then
    if JSON_TYPES[typename] then
      local decoded = json.decode(v)
      if decoded == nil then return v end
      return normalize_json(decoded)
    end
    return v
  end
  v = f.longValue
  if v ~= nil then return tointeger(tonumber(v)) or tonumber(v) end
  v = f.doubleValue
  if v ~= nil then return v end
  v = f.booleanValue
  if v ~= nil then return v end
  if f.isNull then return nil end
  v = f.blobValue
  if v ~= nil then return (base64.decode(v)) end
  v = f.arrayValue
  if v ~= nil then return array_value(v) end
  return nil
end

-- Integers are asked for as strings (resultSetOptions.longReturnType =
-- STRING): lua-cjson would turn a JSON number above 2^53 into a rounded
-- float, while the digit string converts to an exact Lua integer.
local INT_TYPES = { int2 = true, int4 = true, int8 = true, serial = true, bigserial = true, smallserial = true }

local function to_integer(s)
  return tointeger(tonumber(s)) or tonumber(s)
end

local function to_json(s)
  local decoded = json.decode(s)
  if decoded == nil then return s end
  return normalize_json(decoded)
end

local decode_json_column -- defined below, used by to_rows

local function int_array(list)
  for i = 1, #list do
    local v = list[i]
    if type(v) == "string" then list[i] = to_integer(v) end
  end
  return list
end

decode_json_column = function(rows, name)
  local texts, at = {}, {}
  for r = 1, #rows do
    local v = rows[r][name]
    if v ~= nil then
      texts[#texts + 1] = v
      at[#at + 1] = r
    end
  end
  if #texts == 0 then return end
  local all = json.decode("[" .. concat(texts, ",") .. "]")
  if type(all) == "table" and #all == #texts then
    for i = 1, #at do rows[at[i]][name] = normalize_json(all[i]) end
  else -- some cell is not valid JSON: decode one by one, keeping bad text as is
    for i = 1, #at do rows[at[i]][name] = to_json(texts[i]) end
  end
end

-- How a column's stringValue becomes a Lua value (nil: stays a string).
local function string_converter(typename)
  if INT_TYPES[typename] then return to_integer end
  if JSON_TYPES[typename] then return to_json end
  return nil
end

-- A field that is not a stringValue: numbers, booleans, NULL, bytes, arrays.
local function other_value(f, typename)
  local v = field_value(f, typename)
  if type(v) == "table" and INT_TYPES[(typename or ""):sub(2)] then v = int_array(v) end
  return v
end

-- Row makers are generated per column list, so each row is one table
-- constructor of the right size instead of a table grown key by key (a third
-- of the decoding time of a large result).  Cached by the column signature.
local maker_cache = setmetatable({}, { __mode = "v" })

local function row_maker(names, types, convert)
  local sig = {}
  for i = 1, #names do sig[i] = names[i] .. "\0" .. tostring(types[i]) end
  local key = table.concat(sig, "\1")
  local maker = maker_cache[key]
  if maker then return maker end
  local src = { "local names, types, convert, other = ...\n" }
  for i = 1, #names do
    src[#src + 1] = ("local conv%d, type%d = convert[%d], types[%d]\n"):format(i, i, i, i)
  end
  src[#src + 1] = "return function(rec)\n"
  for i = 1, #names do
    src[#src + 1] = ("  local f%d = rec[%d]; local v%d = f%d.stringValue\n" ..
      "  if v%d == nil then v%d = other(f%d, type%d) elseif conv%d then v%d = conv%d(v%d) end\n")
      :format(i, i, i, i, i, i, i, i, i, i, i, i)
  end
  local fields = {}
  for i = 1, #names do fields[i] = ("[%q] = v%d"):format(names[i], i) end
  src[#src + 1] = "  return { " .. table.concat(fields, ", ") .. " }\nend\n"
  local factory = assert(load(table.concat(src), "=row maker", "t", {}))
  maker = factory(names, types, convert, other_value)
  maker_cache[key] = maker
  return maker
end

-- Response -> rows: an array of tables keyed by column name, with
-- rows.columns (names in order), rows.types (PostgreSQL type names) and
-- rows.updated (numberOfRecordsUpdated).
local function to_rows(resp)
  local rows = {}
  local meta = resp.columnMetadata
  local names, types, convert = {}, {}, {}
  if meta and meta ~= json.null then
    for i, m in ipairs(meta) do
      names[i] = m.label or m.name
      types[i] = m.typeName
      convert[i] = string_converter(m.typeName) or false
    end
  end
  -- JSON columns are decoded afterwards, a whole column in one cjson call:
  -- cjson's cost per call, not per byte, dominates small documents.
  local json_columns = {}
  for i = 1, #names do
    if convert[i] == to_json then
      convert[i] = false
      json_columns[#json_columns + 1] = names[i]
    end
  end
  local records = resp.records
  if records and records ~= json.null and #records > 0 then
    local make = row_maker(names, types, convert)
    for r = 1, #records do rows[r] = make(records[r]) end
    for _, name in ipairs(json_columns) do decode_json_column(rows, name) end
  end
  rows.columns, rows.types = names, types
  rows.updated = tointeger(tonumber(resp.numberOfRecordsUpdated or 0)) or 0
  return rows
end
db.to_rows = to_rows

-- ---------------------------------------------------------------- connection

local Connection = {}
Connection.__index = Connection
Connection.__name = "alex.db.connection"

local function raise(err) error(err, 0) end

local function check_sql(sql)
  if type(sql) ~= "string" or sql:find("^%s*$") then
    raise(errors.new { name = "ParameterError", message = "sql must be a non-empty string" })
  end
end

function Connection:_base_request(sql)
  local cfg = self._config
  local req = { resourceArn = cfg.cluster_arn, secretArn = cfg.secret_arn, database = cfg.database }
  if sql then req.sql = sql end
  if self._tx then
    if self._tx.finished then
      raise(errors.new { name = "TransactionFinished",
        message = "this transaction object was used after its transaction block ended" })
    end
    req.transactionId = self._tx.id
  end
  return req
end

-- A call's error, raised with what the caller needs to know added.
function Connection:_raise_call_error(err)
  if err.sqlstate == "55P03" then -- lock_not_available: the lock timeout set at begin
    err.lock_timeout = true
    err.message = ("waited %d ms for a lock that another transaction holds (another alexlua run, or an" ..
      " Alex agent, is using these tables; the transaction of a run that crashed ends 3 minutes after its" ..
      " last call): try again later, or raise ALEX_LOCK_TIMEOUT [%s]"):format(
      self._config.lock_timeout or 0, err.message)
  end
  if self._tx and err.name == "TransactionNotFoundException" then
    err.message = err.message .. " (the transaction is gone: expired after 3 minutes idle, or ended;" ..
      " nothing in it was committed)"
  end
  raise(err)
end

-- A call's log summary and retry policy on this connection: whether it is
-- in a transaction decides what may be retried.
function Connection:_call_terms(summary, policy)
  policy = policy or {}
  policy.in_transaction = self._tx ~= nil
  summary.transaction = self._tx ~= nil
  return summary, policy
end

function Connection:_call(op, req, summary, policy)
  summary, policy = self:_call_terms(summary, policy)
  local resp, err = self._client:call(op, req, summary, policy)
  if not resp then self:_raise_call_error(err) end
  return resp
end

local RESULT_OPTIONS = { longReturnType = "STRING", decimalReturnType = "STRING" }

-- execute(sql, params [, opts]) -> rows affected, rows (RETURNING / SELECT).
-- opts.idempotent: the statement may be retried even when a previous attempt's
-- outcome is unknown (safe for upserts and SELECTs).
function Connection:execute(sql, params, opts)
  check_sql(sql)
  local parameters, names = to_parameters(params)
  if not parameters then raise(names) end
  local req = self:_base_request(sql)
  req.parameters = parameters
  req.includeResultMetadata = true
  req.resultSetOptions = RESULT_OPTIONS
  local resp = self:_call("ExecuteStatement", req, { sql = sql, param_names = names },
                          { idempotent = opts and opts.idempotent })
  local rows = to_rows(resp)
  return rows.updated, rows
end

local READ_ONLY = { select = true, with = true, show = true, values = true, table = true, explain = true }
local function looks_read_only(sql)
  local word = sql:match("^%s*(%a+)")
  return word and READ_ONLY[word:lower()] or false
end

-- query(sql, params) -> rows.  A plain SELECT is retried like any read.
function Connection:query(sql, params, opts)
  check_sql(sql)
  local idempotent = opts and opts.idempotent
  if idempotent == nil then idempotent = looks_read_only(sql) end
  local _, rows = self:execute(sql, params, { idempotent = idempotent })
  return rows
end

-- query_one(sql, params) -> the first row, or nil when there is none.
function Connection:query_one(sql, params, opts)
  return self:query(sql, params, opts)[1]
end

-- ---------------------------------------------------------------- batch

-- packer(limit, base) -> { add(item, cost), finish() -> chunks }: items in
-- order, in chunks whose costs, starting at base, stay within limit.
local function packer(limit, base)
  local p = { chunks = {}, current = {}, size = base }
  function p.add(item, cost)
    if p.size + cost > limit and #p.current > 0 then
      p.chunks[#p.chunks + 1] = p.current
      p.current, p.size = {}, base
    end
    p.current[#p.current + 1] = item
    p.size = p.size + cost
  end
  function p.finish()
    p.chunks[#p.chunks + 1] = p.current
    return p.chunks
  end
  return p
end

-- send(conn) over every chunk -> what it returns, the number of requests: in
-- the open transaction, else, when it takes more than one request, in one of
-- its own, so that it is all-or-nothing like a single call.
function Connection:_all_or_nothing(send, requests)
  if requests > 1 and not self._tx then return self:transaction(send), requests end
  return send(self), requests
end

-- Requests must stay under 4 MiB including headers; keep room for them.
local MAX_REQUEST = 4 * 1024 * 1024
local HEADER_ROOM = 16 * 1024

-- batch(sql, param_sets [, opts]) -> number of parameter sets executed, calls made.
-- Every set is checked before anything is sent.  When the sets need more than
-- one request and no transaction is open, they run in one transaction, so the
-- batch is all-or-nothing like a single call.
function Connection:batch(sql, param_sets, opts)
  check_sql(sql)
  opts = opts or {}
  if type(param_sets) ~= "table" then
    raise(errors.new { name = "ParameterError", message = "param_sets must be an array of parameter tables" })
  end
  local n = #param_sets
  if n == 0 then return 0, 0 end
  local encoded, names = {}, nil
  for i = 1, n do
    local list, err = to_parameters(param_sets[i])
    if not list then
      err.message = ("parameter set %d: %s"):format(i, err.message)
      raise(err)
    end
    if not names then names = err end
    encoded[i] = assert(json.encode(list))
  end
  -- the envelope without parameterSets, to know what each request costs
  local base = self:_base_request(sql)
  local limit = (opts.max_request_bytes or MAX_REQUEST) - HEADER_ROOM
  local envelope = #assert(json.encode(base)) + #'"parameterSets":[],' + 64
  local pack = packer(limit, envelope)
  for i = 1, n do
    local cost = #encoded[i] + 1
    if envelope + cost > limit then
      raise(errors.new { name = "ParameterError",
        message = ("parameter set %d alone makes a request of %d bytes, over the %d-byte Data API limit")
          :format(i, envelope + cost, limit + HEADER_ROOM) })
    end
    pack.add(encoded[i], cost)
  end
  local chunks = pack.finish()

  local function send(conn)
    local total = 0
    for _, chunk in ipairs(chunks) do
      local req = conn:_base_request(sql)
      local head = assert(json.encode(req))
      -- splice the pre-encoded sets into the envelope
      local body = head:sub(1, -2) .. ',"parameterSets":[' .. concat(chunk, ",") .. "]}"
      local resp = conn:_call("BatchExecuteStatement", body,
        { sql = sql, param_names = names, sets = #chunk }, { idempotent = opts.idempotent })
      local results = resp.updateResults
      total = total + (type(results) == "table" and #results or #chunk)
    end
    return total
  end

  return self:_all_or_nothing(send, #chunks)
end

-- ---------------------------------------------------------------- insert

local function ident_list(list, what)
  for _, name in ipairs(list) do
    if type(name) ~= "string" or not name:find(NAME) then
      raise(errors.new { name = "ParameterError", message = ("%s: %q is not a column name"):format(what,
        tostring(name)) })
    end
  end
  return concat(list, ", ")
end

local function hex(bytes)
  return (tostring(bytes):gsub(".", function(c) return fmt("%02x", c:byte()) end))
end

local function is_null(v)
  return v == nil or v == db.null or (getmetatable(v) == Typed and (v.value == nil or v.value == db.null))
end

-- A value as JSON text that jsonb_populate_recordset reads into the column's
-- own type.  Strings through cjson's C escaper, integers exactly; documents
-- and floats through alex.json (exact where cjson would round).
local encode_string = json.encode_string
local function json_value(v, name)
  local t = type(v)
  if t == "string" then return encode_string(v) end
  if t == "number" then
    if math_type(v) == "integer" then return fmt("%d", v) end
    if v ~= v or v == math.huge or v == -math.huge then
      raise(param_error(name, tostring(v) .. " is not a finite number"))
    end
    return json.encode(v)
  end
  if t == "boolean" then return v and "true" or "false" end
  if is_null(v) then return "null" end
  if t == "table" and getmetatable(v) == Typed then
    if v.kind == "blob" then return encode_string("\\x" .. hex(v.value)) end -- bytea reads hex text
    if v.kind ~= "json" then return encode_string(tostring(v.value)) end
    v = v.value
  end
  local text, err = json.encode(v, name)
  if not text then raise(param_error(name, err)) end
  return text
end

-- What text costs once escaped into the request's JSON: '"', '\' and '/'
-- one byte more, a control character at most five.
local find, gsub, lower = string.find, string.gsub, string.lower
local function escaped_size(text)
  if not find(text, '[%c"\\/]') then return #text end
  local _, plain = gsub(text, '["\\/]', "")
  local _, control = gsub(text, "%c", "")
  return #text + plain + 5 * control
end

-- A value that is not a plain string as its text for an array element, or
-- nil for NULL.  A JSON column gets the value as a JSON document, as
-- jsonb_populate_recordset would read it.
local function element_value(v, name, as_json)
  if is_null(v) then return nil end
  if as_json then return json_value(v, name) end
  local t = type(v)
  if t == "string" then return v end
  if t == "number" and math_type(v) == "integer" then return fmt("%d", v) end
  if t == "boolean" then return v and "true" or "false" end
  if t == "table" and getmetatable(v) == Typed and v.kind ~= "json" then
    return v.kind == "blob" and "\\x" .. hex(v.value) or tostring(v.value)
  end
  return json_value(v, name) -- a float, or a document kept in a text column
end

-- A value as one element of a PostgreSQL array literal, which CAST(... AS
-- type[]) reads into the column's type -> the element, what it costs in the
-- request.  Quoted when the array syntax needs it.
local function element(v, name, as_json)
  if as_json or type(v) ~= "string" then
    v = element_value(v, name, as_json)
    if v == nil then return "NULL", 4 end
  end
  -- the common case first: only characters neither syntax needs to escape
  if not find(v, "[^%w%-%.:_+@]") and v ~= "" and not (#v == 4 and lower(v) == "null") then return v, #v end
  if v == "" or find(v, '[{},"\\%s]') or lower(v) == "null" then v = '"' .. gsub(v, '["\\]', "\\%0") .. '"' end
  return v, escaped_size(v)
end

local function conflict_clause(oc)
  if oc == nil then return "" end
  if oc == "nothing" then return " ON CONFLICT DO NOTHING" end
  if type(oc) ~= "table" or type(oc.columns) ~= "table" or #oc.columns == 0 then
    raise(errors.new { name = "ParameterError",
      message = 'on_conflict must be "nothing" or { columns = { ... }, update = { ... } }' })
  end
  local target = ident_list(oc.columns, "on_conflict.columns")
  if not oc.update or #oc.update == 0 then return (" ON CONFLICT (%s) DO NOTHING"):format(target) end
  ident_list(oc.update, "on_conflict.update")
  local sets = {}
  for i, c in ipairs(oc.update) do sets[i] = ("%s = EXCLUDED.%s"):format(c, c) end
  return (" ON CONFLICT (%s) DO UPDATE SET %s"):format(target, concat(sets, ", "))
end

-- A table's columns as the catalog has them, read once per client (a
-- failed insert reads them again): name -> { type = "numeric(20,8)", json =
-- whether it holds JSON, nested = an array or composite type, which unnest
-- would take apart }.
local table_columns = setmetatable({}, { __mode = "k" })
local COLUMNS_SQL = [[
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       b.typname IN ('json', 'jsonb') AS json, b.typcategory = 'A' OR b.typtype = 'c' AS nested
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = CAST(:alex_table AS regclass) AND a.attnum > 0 AND NOT a.attisdropped]]

-- Up to this many rows, an insert into a table whose columns are not known
-- yet goes as one JSON document (one call, where the arrays need two).
local ARRAYS_FROM_ROWS = 1000

-- The tables whose columns this connection's client has read: name -> columns.
function Connection:_known_columns()
  local known = table_columns[self._client]
  if not known then
    known = {}
    table_columns[self._client] = known
  end
  return known
end

-- -> columns, calls made
function Connection:_columns_of(tbl)
  local known = self:_known_columns()
  if known[tbl] then return known[tbl], 0 end
  local cols = {}
  for _, r in ipairs(self:query(COLUMNS_SQL, { alex_table = tbl }, { idempotent = true })) do cols[r.name] = r end
  known[tbl] = cols
  return cols, 1
end

local function row_error(i)
  raise(errors.new { name = "ParameterError", message = ("row %d is not a table"):format(i) })
end

local function too_large(i)
  raise(errors.new { name = "ParameterError",
    message = ("row %d alone makes a request over the Data API limit"):format(i) })
end

-- Rows as typed arrays, one per column, read back into rows by unnest:
-- no key repeated per row, and little for either side to escape.
-- -> chunks (per chunk, per column, the element texts), params(chunk)
local function array_chunks(rows, columns, cols, limit)
  local ncol, as_json = #columns, {}
  for c, name in ipairs(columns) do as_json[c] = cols[name].json end
  local base = 64 * ncol -- per parameter: its name, type and the braces
  local chunks, current, size, count = {}, nil, 0, 0
  local function new_chunk()
    current, size, count = {}, base, 0
    for c = 1, ncol do current[c] = {} end
    chunks[#chunks + 1] = current
  end
  new_chunk()
  local texts = {}
  for i = 1, #rows do
    local row = rows[i]
    if type(row) ~= "table" then row_error(i) end
    local cost = 0
    for c = 1, ncol do
      local e, n = element(row[columns[c]], columns[c], as_json[c])
      texts[c] = e
      cost = cost + n + 1
    end
    if base + cost > limit then too_large(i) end
    if size + cost > limit and count > 0 then new_chunk() end
    count = count + 1
    for c = 1, ncol do current[c][count] = texts[c] end
    size = size + cost
  end
  return chunks, function(chunk)
    local p = {}
    for c = 1, ncol do p["alex_c" .. c] = "{" .. concat(chunk[c], ",") .. "}" end
    return p
  end
end

-- Rows as one JSON document per chunk, for jsonb_populate_recordset: for
-- tables with array or composite columns.  -> chunks, params(chunk)
local function document_chunks(rows, columns, limit)
  local pack = packer(limit, 2)
  -- parts: key, value, key, value, ..., "}"; what each costs in the request,
  -- where every '"' and '\' of the row's JSON is escaped once more
  local parts, ncol, key_cost = {}, #columns, 0
  for c, name in ipairs(columns) do
    local key = (c == 1 and "{" or ",") .. encode_string(name) .. ":"
    parts[2 * c - 1] = key
    key_cost = key_cost + escaped_size(key)
  end
  local last = 2 * ncol + 1
  parts[last] = "}"
  for i = 1, #rows do
    local row = rows[i]
    if type(row) ~= "table" then row_error(i) end
    local cost = key_cost + 2 -- "}" and the comma between rows
    for c = 1, ncol do
      local v = row[columns[c]]
      if type(v) == "string" then v = encode_string(v) else v = json_value(v, columns[c]) end
      parts[2 * c] = v
      cost = cost + escaped_size(v)
    end
    if 2 + cost > limit then too_large(i) end
    pack.add(concat(parts, "", 1, last), cost)
  end
  return pack.finish(), function(chunk) return { alex_rows = "[" .. concat(chunk, ",") .. "]" } end
end

-- insert(table, rows [, opts]) -> rows written, calls made.  The rows (tables
-- keyed by column) go as one typed array per column per request, read back
-- into rows by unnest and cast to the table's own column types (read from
-- the catalog once per connection): one INSERT ... SELECT per chunk under
-- the request cap, where db:batch sends one statement per row.  Up to 1000
-- rows into a table not read yet, and any table with array or composite
-- columns, get a JSON document per chunk instead (jsonb_populate_recordset
-- does the casts).  opts.columns: the columns written (default:
-- every key of any row; a row without one of them writes NULL there, a
-- column no row names gets its default).  opts.on_conflict: "nothing", or {
-- columns = { target }, update = { columns set from the new row } }.  In a
-- transaction when one is open; else, when it takes more than one request,
-- in its own, so that it is all-or-nothing like a single call.
function Connection:insert(tbl, rows, opts)
  opts = opts or {}
  if type(tbl) ~= "string" or not (tbl:find(NAME) or tbl:find("^[%a_][%w_]*%.[%a_][%w_]*$")) then
    raise(errors.new { name = "ParameterError", message = ("table %q is not a table name"):format(tostring(tbl)) })
  end
  if type(rows) ~= "table" then
    raise(errors.new { name = "ParameterError", message = "rows must be an array of tables keyed by column" })
  end
  if #rows == 0 then return 0, 0 end
  local columns = opts.columns
  if not columns then
    local seen = {}
    columns = {}
    for i, row in ipairs(rows) do
      if type(row) ~= "table" then row_error(i) end
      for k in pairs(row) do
        if not seen[k] then seen[k] = true columns[#columns + 1] = k end
      end
    end
    table.sort(columns, function(a, b) return tostring(a) < tostring(b) end)
  end
  local list = ident_list(columns, "columns")
  local conflict = conflict_clause(opts.on_conflict)
  -- Reading the columns is a call more: worth it for many rows, or free
  -- once they are known.  A few rows go as one document either way.
  local known = self:_known_columns()
  local cols, lookups, as_document = nil, 0, true
  if known[tbl] or #rows > ARRAYS_FROM_ROWS then
    cols, lookups = self:_columns_of(tbl)
    as_document = false
    for _, name in ipairs(columns) do
      if not cols[name] then
        raise(errors.new { name = "ParameterError", message = ("columns: %q is not a column of %s"):format(name,
          tbl) })
      end
      as_document = as_document or cols[name].nested
    end
  end

  local sql
  if as_document then
    local picked = {}
    for i, c in ipairs(columns) do picked[i] = "alex_r." .. c end
    sql = ("INSERT INTO %s (%s) SELECT %s FROM jsonb_populate_recordset(NULL::%s, CAST(:alex_rows AS jsonb))" ..
      " AS alex_r%s"):format(tbl, list, concat(picked, ", "), tbl, conflict)
  else
    local arrays = {}
    for i, c in ipairs(columns) do arrays[i] = ("CAST(:alex_c%d AS %s[])"):format(i, cols[c].type) end
    sql = ("INSERT INTO %s (%s) SELECT * FROM unnest(%s) AS alex_r%s"):format(tbl, list, concat(arrays, ", "),
      conflict)
  end
  local limit = (opts.max_request_bytes or MAX_REQUEST) - HEADER_ROOM - #sql - 1024
  local chunks, params
  if as_document then chunks, params = document_chunks(rows, columns, limit)
  else chunks, params = array_chunks(rows, columns, cols, limit) end

  local function send(conn)
    local total = 0
    for _, chunk in ipairs(chunks) do
      total = total + conn:execute(sql, params(chunk), { idempotent = opts.on_conflict ~= nil })
    end
    return total
  end
  -- forgotten unless the insert succeeds: a failure may mean that the table
  -- changed since its columns were read
  known[tbl] = nil
  local written, calls = self:_all_or_nothing(send, #chunks)
  known[tbl] = cols
  return written, calls + lookups
end

-- ---------------------------------------------------------------- transactions

local savepoint_counter = 0

-- transaction(fn [, opts]) -> what fn returned.  fn(tx) gets a connection bound
-- to the transaction; returning commits, any error (Ctrl-C included) rolls back
-- and is raised again.  Inside a transaction, a nested call uses a savepoint.
-- opts.retries: run the whole block again (after its rollback) when it failed
-- with a retryable error; a commit whose outcome is unknown is never repeated.
function Connection:transaction(fn, opts)
  if type(fn) ~= "function" then error("transaction needs a function", 2) end
  opts = opts or {}
  if self._tx then return self:_savepoint(fn) end
  local retries, tries = opts.retries or 0, 0
  while true do
    local ok, result = self:_transaction_once(fn)
    if ok then return table.unpack(result, 1, result.n) end
    local err = result
    local again = retries > 0 and errors.is_error(err) and (err.retryable or err.resuming)
                  and not err.commit_unknown and not err.left_open
    if not again then raise(err) end
    retries, tries = retries - 1, tries + 1
    self._client:debug_log("retrying the whole transaction after: " .. tostring(err))
    self._client:backoff(tries)
  end
end

-- How long a rollback waits for the transaction's statement in flight (one
-- whose answer an interruption abandoned, or a dead process's last call): the
-- Data API refuses a second call on a busy transaction, and no statement runs
-- past the 45 s call limit unless continueAfterTimeout was asked for.
local ROLLBACK_WAIT_SECONDS = 50

local function transaction_busy(err)
  return err.name == "DatabaseErrorException" and tostring(err.message):find("still running a query", 1, true)
end

-- Rolls tx back -> true, or false and the error; third, whether the
-- transaction has ended (rolled back, or not found: it had ended already).
-- A rollback is repeatable
-- (a second one finds the transaction gone), so every retryable failure is
-- retried, at least 3 attempts in all whatever AWS_MAX_ATTEMPTS says, and a
-- busy transaction is waited for: a transaction left open holds its locks (a
-- reset's DROP locks every table) until it expires, minutes later.  An error
-- that is not a Data API error (a second Ctrl-C, a bug) is raised: it is not
-- the rollback's to swallow.
local function rollback(tx)
  local clock = require "alex.clock"
  local req = tx:_base_request(nil)
  req.database = nil
  local started, told = clock.monotonic(), false
  while true do
    local ok, err = pcall(tx._call, tx, "RollbackTransaction", req, {}, { repeatable = true, min_attempts = 3 })
    if ok then return true, nil, true end
    if not errors.is_error(err) then error(err, 0) end
    -- "not found" after an attempt whose answer was lost: that attempt ended it
    if err.name == "TransactionNotFoundException" and (err.attempts or 1) > 1 then return true, nil, true end
    local waited = clock.monotonic() - started
    if not transaction_busy(err) or waited >= ROLLBACK_WAIT_SECONDS then
      return false, err, err.name == "TransactionNotFoundException"
    end
    if not told and waited >= 1 then
      told = true
      io.stderr:write("alexlua: waiting for the statement in flight to finish before rolling back",
        " (interrupt again to leave it: the next run rolls it back)\n")
    end
    tx._client:sleep(0.2)
  end
end

-- Begins a transaction -> a connection bound to it, recorded in the journal
-- until it ends, with the lock timeout set; raises when it could not begin
-- (then nothing is left open).  first_sql runs before anything else (SET
-- TRANSACTION must come before any query).
function Connection:_begin(first_sql)
  local req = self:_base_request(nil)
  local resp = self:_call("BeginTransaction", req, {}, { idempotent = true })
  local tx = setmetatable({
    _client = self._client, _config = self._config, _journal = self._journal, _parent = self,
    _tx = { id = resp.transactionId },
  }, Connection)
  if self._journal then tx._tx.entry = self._journal:record(resp.transactionId, self._config.database) end
  local ms = self._config.lock_timeout
  local ok, err = true, nil
  if first_sql then ok, err = pcall(tx.execute, tx, first_sql) end
  if ok and ms and ms > 0 then
    -- A statement that waits for another transaction's lock fails after ms
    -- with a message that says so, not after the 45 s call limit.
    ok, err = pcall(tx.execute, tx, "SELECT set_config('lock_timeout', :ms, true)", { ms = ms .. "ms" })
  end
  if not ok then
    local _, _, ended = rollback(tx)
    self:_ended(tx, ended)
    raise(err)
  end
  return tx
end

-- Marks tx finished; its journal entry goes when the transaction is known to
-- have ended (else the next run, finding this process gone, rolls it back).
function Connection:_ended(tx, ended)
  tx._tx.finished = true
  if ended and self._journal then self._journal:forget(tx._tx.entry) end
end

function Connection:_transaction_once(fn)
  local begun, tx = pcall(self._begin, self)
  if not begun then return false, tx end -- nothing started: the block may run again
  local result = table.pack(pcall(fn, tx))
  if result[1] then
    local commit = tx:_base_request(nil)
    commit.database = nil
    local ok, err = pcall(tx._call, tx, "CommitTransaction", commit, {}, {})
    if not ok then
      -- A transaction the commit did not end keeps its locks until it expires:
      -- roll it back.  That succeeds only when nothing was committed, which
      -- also settles an unknown outcome.
      local rolled, _, ended = rollback(tx)
      if not errors.is_error(err) then
        -- a stop (or a bug) while the commit was in flight: it may have run.
        -- A rollback that finds the transaction gone says the commit most
        -- likely went through: the stop is raised as an outcome unknown.
        if not rolled and type(err) == "string" then
          err = errors.new { name = "Interrupted", message = err .. " while the commit was in flight: the" ..
            " transaction has ended, so the commit was most likely applied", operation = "CommitTransaction",
            commit_unknown = true }
        end
      elseif rolled then
        err.outcome_unknown = nil
        err.message = err.message .. " (rolled back: nothing was committed)"
      elseif err.outcome_unknown then
        err.commit_unknown = true
      elseif not ended then
        err.left_open = true
      end
      self:_ended(tx, ended)
      return false, err
    end
    self:_ended(tx, true)
    return true, table.pack(table.unpack(result, 2, result.n))
  end
  local err = result[2]
  local rolled, rerr, ended = rollback(tx)
  self:_ended(tx, ended)
  if not rolled then
    self._client:debug_log("rollback failed (the transaction ends anyway when it expires): " .. tostring(rerr))
    -- its locks stay until it expires: running the block again would wait on them
    if errors.is_error(err) and not ended then err.left_open = true end
  end
  return false, err
end

function Connection:_savepoint(fn)
  savepoint_counter = savepoint_counter + 1
  local name = "alex_sp_" .. savepoint_counter
  self:execute("SAVEPOINT " .. name)
  local result = table.pack(pcall(fn, self))
  if result[1] then
    self:execute("RELEASE SAVEPOINT " .. name)
    return table.unpack(result, 2, result.n)
  end
  pcall(self.execute, self, "ROLLBACK TO SAVEPOINT " .. name)
  raise(result[2])
end

-- ---------------------------------------------------------------- paging

local PAGE_TARGET_BYTES = 512 * 1024
local SERIAL_TYPES = { serial = "integer", bigserial = "bigint", smallserial = "smallint", serial4 = "integer",
                       serial8 = "bigint", serial2 = "smallint" }

-- A page of a cursor as formattedRecords (one JSON document: far less to
-- read than the typed records), converted as the typed first page showed the
-- columns to be: integers and JSON arrive as strings, bytes as base64.
local function formatted_rows(text, columns, types)
  local list = json.decode(text)
  if type(list) ~= "table" then
    raise(errors.new { name = "InvalidResponse", message = "formattedRecords is not a JSON array" })
  end
  local conv, converted = {}, {}
  for i, name in ipairs(columns) do
    local t = types[i]
    if INT_TYPES[t] then conv[name] = to_integer
    elseif JSON_TYPES[t] then conv[name] = to_json
    elseif t == "bytea" then conv[name] = function(v) return (base64.decode(v)) end end
    if conv[name] then converted[#converted + 1] = name end
  end
  local null = json.null
  if text:find(":null", 1, true) then -- some cell is NULL (or holds that text): look at every cell
    for r = 1, #list do
      local row = list[r]
      for k, v in pairs(row) do
        if v == null then row[k] = nil
        elseif conv[k] and type(v) == "string" then row[k] = conv[k](v) end
      end
    end
  elseif #converted > 0 then -- only the columns that need it
    for r = 1, #list do
      local row = list[r]
      for _, k in ipairs(converted) do
        local v = row[k]
        if type(v) == "string" then row[k] = conv[k](v) end
      end
    end
  end
  list.columns, list.types = columns, types
  return list
end

local cursor_counter = 0

-- each(sql, params, opts) -> iterator over rows, paging under the 1 MiB
-- response limit so a script never meets it.  Two modes:
--   opts.key = "column": keyset paging, `WHERE key > last ORDER BY key`; the
--     column must be unique and in the select list.  Works across calls
--     without a transaction and stays fast on large tables.
--   default: a server-side cursor (DECLARE, then FETCH page by page, as
--     Python's DB-API driver for the Data API pages) in one transaction: a
--     consistent snapshot, each row read once whatever the table's size.
--     Pages after the first come as one JSON document (formatRecordsAs).
--     The transaction expires after 3 minutes without a page fetch; inside a
--     caller's transaction the cursor lives in that one.
-- opts.page_size: first page size (default 1000); later pages adapt to the
-- bytes per row seen, and a page over the limit is fetched again smaller.
function Connection:each(sql, params, opts)
  check_sql(sql)
  opts = opts or {}
  local key = opts.key
  if key ~= nil and (type(key) ~= "string" or not key:find(NAME)) then
    error("each: opts.key must be a column name (letters, digits, _)", 2)
  end
  for k in pairs(params or {}) do
    if type(k) == "string" and k:sub(1, 5) == "alex_" then
      error("each: parameter names starting with alex_ are reserved", 2)
    end
  end
  local inner = sql:gsub("%s*;%s*$", "")
  local page_size = opts.page_size or 1000
  local conn, owned_tx = self, nil
  local buffer, pos, done, offset, last, key_type = {}, 1, false, 0, nil, nil
  local count = 0
  local cursor, columns, types -- snapshot mode: the cursor and its columns
  local requested -- the size of the page asked for last
  -- Snapshot mode in a transaction of its own: the next page is asked for,
  -- on a connection of its own, while this one is decoded and looped over
  -- (nothing else uses that transaction; a caller's transaction would find
  -- it busy, so there pages are asked for one at a time).
  local companion, ahead, bytes_per_row

  local function page_request(size)
    local req = conn:_base_request(("FETCH FORWARD %d FROM %s"):format(size, cursor))
    req.formatRecordsAs = "JSON"
    req.resultSetOptions = RESULT_OPTIONS
    return req
  end

  -- Asks for the next `size` rows on client -> the page on its way.
  local function send_page(client, size)
    local req = page_request(size)
    local summary, policy = conn:_call_terms({ sql = req.sql }, { idempotent = true })
    return { size = size, client = client, call = client:start("ExecuteStatement", req, summary, policy, true) }
  end

  -- A page on its way -> its answer's JSON text; its size in `requested`.
  local function receive_page(page)
    requested = page.size
    local text, err = page.client:finish(page.call)
    if text == nil then conn:_raise_call_error(err) end
    return text
  end

  -- The next page through the cursor, declared at the first call.
  local function fetch_cursor()
    if not cursor then
      if not conn._tx then
        owned_tx = self:_begin() -- one transaction, one snapshot, for every page
        conn = owned_tx
      end
      cursor_counter = cursor_counter + 1
      cursor = "alex_each_" .. cursor_counter
      -- SCROLL: a page refused as too large is fetched again, smaller, from
      -- where the last good one ended
      conn:execute(("DECLARE %s SCROLL CURSOR FOR %s"):format(cursor, inner), params)
    end
    if not columns then
      requested = page_size
      local rows = conn:query(("FETCH FORWARD %d FROM %s"):format(page_size, cursor), nil, { idempotent = true })
      columns, types = rows.columns, rows.types
      if owned_tx then companion = conn._client:companion() end
      return rows
    end
    local page = ahead or send_page(conn._client, page_size)
    ahead = nil
    local text = receive_page(page)
    -- The next page on its way while this one is decoded, unless this one is
    -- plainly short, so the last (the row count is known only once decoded:
    -- a wrong guess costs an empty page, or the overlap of one).
    if companion and (not bytes_per_row or #text >= 0.75 * bytes_per_row * requested) then
      ahead = send_page(companion, page_size)
    end
    local resp, err = dataapi.decode_answer(text, "ExecuteStatement")
    if not resp then raise(err) end
    return formatted_rows(resp.formattedRecords or "[]", columns, types)
  end

  local function fetch()
    local p = {}
    for k, v in pairs(params or {}) do p[k] = v end
    p.alex_limit = page_size
    if key then requested = page_size end
    local q
    if key then
      if last == nil then
        q = ("SELECT * FROM (%s) AS alex_page ORDER BY alex_page.%s LIMIT :alex_limit"):format(inner, key)
      else
        q = ("SELECT * FROM (%s) AS alex_page WHERE alex_page.%s > CAST(:alex_after AS %s)" ..
             " ORDER BY alex_page.%s LIMIT :alex_limit"):format(inner, key, key_type, key)
        p.alex_after = type(last) == "table" and db.json(last) or last
      end
    end
    local before = (conn._client.stats.bytes_in)
    local ok, rows
    if key then ok, rows = pcall(conn.query, conn, q, p, { idempotent = true })
    else ok, rows = pcall(fetch_cursor) end
    if not ok then
      local err = rows
      if errors.is_error(err) and err.name == "UnsupportedResultException" and err.message:find("size limit")
         and requested > 1 then
        page_size = math.max(1, requested // 4)
        if cursor then conn:execute(("MOVE ABSOLUTE %d IN %s"):format(offset, cursor)) end
        return fetch()
      end
      raise(err)
    end
    local bytes = conn._client.stats.bytes_in - before
    local got = #rows
    if key and got > 0 then
      local k_index
      for i, name in ipairs(rows.columns) do if name == key then k_index = i end end
      if not k_index then
        raise(errors.new { name = "ParameterError",
          message = ("each: key column '%s' is not in the query's result"):format(key) })
      end
      -- the Data API names a serial column's type as declared ("bigserial"),
      -- which is no type a CAST takes
      key_type = SERIAL_TYPES[rows.types[k_index]] or rows.types[k_index]
      if not key_type:find("^[%w_ ]+$") then key_type = "text" end
      last = rows[got][key]
    end
    offset = offset + got
    if got < requested then done = true end
    if got > 0 then
      bytes_per_row = bytes / got
      page_size = math.max(1, math.min(100000, math.floor(PAGE_TARGET_BYTES / bytes_per_row)))
    end
    buffer, pos = rows, 1
  end

  local function finish()
    if ahead then -- a page nobody will read, and its errors
      pcall(receive_page, ahead)
      ahead = nil
    end
    if companion then
      companion:close()
      companion = nil
    end
    if owned_tx and not owned_tx._tx.finished then
      -- read only: rolling back ends it as a commit would, and is repeatable
      local _, _, ended = rollback(owned_tx)
      self:_ended(owned_tx, ended)
    elseif cursor and not owned_tx and conn._tx and not conn._tx.finished then
      pcall(conn.execute, conn, "CLOSE " .. cursor) -- in the caller's transaction
      cursor = nil
    end
  end

  local iterator = function()
    while pos > #buffer do
      if done then
        finish()
        return nil
      end
      fetch()
    end
    local row = buffer[pos]
    pos = pos + 1
    count = count + 1
    return row, count
  end
  -- the closing value ends the snapshot transaction when a loop breaks early
  local closer = setmetatable({}, { __close = finish })
  return iterator, nil, nil, closer
end

-- ---------------------------------------------------------------- crash recovery

-- Rolls back the journal's transactions whose process is gone, so the locks
-- a crashed run left do not block this one.  Failures are reported, not
-- raised: the entry stays for the next run, and this run may still succeed.
function Connection:_recover()
  local jr = self._journal
  if not jr then return 0 end
  local rolled_back = 0
  local settled, failed = jr:recover(function(e)
    local tx = setmetatable({ _client = self._client, _config = self._config, _tx = { id = e.id } }, Connection)
    local rolled, err, ended = rollback(tx)
    if rolled then rolled_back = rolled_back + 1 return true end
    if ended then return true end -- it had ended (expired) already
    return nil, err
  end)
  if rolled_back > 0 and not self._quiet then
    io.stderr:write(("alexlua: rolled back %d transaction%s left open by a run that ended without closing it\n")
      :format(rolled_back, rolled_back == 1 and "" or "s"))
  end
  for _, f in ipairs(failed) do
    io.stderr:write(("alexlua: warning: could not roll back transaction %s left open by process %s (%s); it" ..
      " ends by itself 3 minutes after its last call\n"):format(tostring(f.entry.id):sub(1, 12) .. "...",
      tostring(f.entry.pid), tostring(f.err)))
  end
  return settled
end

-- ---------------------------------------------------------------- the safe twin

local SafeConnection = {}
SafeConnection.__index = function(_, name)
  local method = Connection[name]
  if type(method) ~= "function" or name:sub(1, 1) == "_" then return nil end
  return function(self, ...)
    local result = table.pack(pcall(method, self._conn, ...))
    if result[1] then return table.unpack(result, 2, result.n) end
    return nil, result[2]
  end
end

-- ---------------------------------------------------------------- connect

function Connection:close()
  if self._client then self._client:close() end
end

function Connection:stats()
  return self._client.stats
end

local function wrap_connection(client, cfg)
  local conn = setmetatable({ _client = client, _config = cfg }, Connection)
  conn.safe = setmetatable({ _conn = conn }, SafeConnection)
  conn.config = cfg
  return conn
end

-- connect(opts) -> connection, or nil and an error value saying what to set.
-- opts: the settings of alex.config.load (cluster_arn, region, endpoint,
-- max_attempts, retry_base, ...), env, credentials, debug (true logs every call,
-- as ALEX_DEBUG=1 does), log, sleep, random, now, timeouts and the resume wait
-- (alex.dataapi, alex.aws), quiet, journal, use_local.
function db.connect(opts)
  opts = opts or {}
  local config = require "alex.config"
  local getenv = opts.env or os.getenv
  local local_target = opts.cluster_arn == nil and config.is_local_target(getenv)
  local local_state
  if local_target and opts.use_local ~= false then
    local local_stack = require "alex.local_stack"
    local_state = local_stack.paths(getenv).state
    local env, err = local_stack.ensure { getenv = getenv, quiet = opts.quiet }
    if not env then return nil, errors.new { name = "LocalStackError", message = err } end
    local base = getenv
    getenv = function(name)
      local v = env[name]
      if v ~= nil then return v end
      return base(name)
    end
  end
  local load_opts = {}
  for k, v in pairs(opts) do load_opts[k] = v end
  load_opts.env = getenv
  local cfg, cerr, settings = config.load(load_opts)
  if not cfg then return nil, errors.new { name = "ConfigError", message = cerr } end
  local client, derr = dataapi.new {
    settings = settings, credentials = opts.credentials, env = getenv, debug = opts.debug, log = opts.log,
    random = opts.random, sleep = opts.sleep, now = opts.now, resume_base = opts.resume_base,
    resume_timeout = opts.resume_timeout, timeout = opts.timeout, connect_timeout = opts.connect_timeout,
  }
  if not client then return nil, errors.new { name = "ConfigError", message = derr } end
  local conn = wrap_connection(client, cfg)
  conn._quiet = opts.quiet
  if opts.journal ~= false then
    local dir = journal.default_dir(getenv, local_state)
    conn._journal = journal.open(dir, { cluster_arn = cfg.cluster_arn, endpoint = cfg.endpoint })
    conn:_recover()
  end
  if (getenv("ALEX_STATS") or "") ~= "" and getenv("ALEX_STATS") ~= "0" then
    -- printed when the state closes (alexlua's os.exit closes it too)
    conn._stats_reporter = setmetatable({}, { __gc = function()
      io.stderr:write("alexlua: stats: ", client:stats_report(), "\n")
    end })
  end
  return conn
end

db.Connection = Connection
return db
