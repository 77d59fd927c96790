-- Declarative record schemas: what a row must look like before it is written.
--
--   local records = require "alex.records"
--   local clean, errs = records.check("PositionCreate", { account_id = id, symbol = "SPY", quantity = 100 })
--   if not clean then return nil, records.format_errors(errs, "position") end
--
-- records.check(schema_or_name, record) -> cleaned record | nil, errors
--   Every problem of the record is reported at once: errors is a list of
--   { field = "allocation_regions.europe", message = "..." } in schema order
--   (unknown fields last, sorted).  Paths: `a.b` for a table key, `a[2]` for
--   an array element, `a["odd key"]` for keys that are not plain words;
--   field is "" for the record itself.
--   The cleaned record is a new table holding only the fields given (absent
--   optional fields stay absent, so the database defaults apply):
--     decimal  -> canonical decimal string ("100", "0.1", "-2.5"): exact, ready
--                 to send with a DECIMAL type hint;
--     integer  -> Lua integer (25.0 from a JSON decoder becomes 25);
--     uuid     -> lower case;
--     allocation -> new table of percentages (integral floats as integers)
--                 marked with json.object_mt so {} encodes as an object;
--     record / array -> cleaned recursively; everything else as given.
--   JSON null (json.null, or alex.db's db.null) counts as absent.
-- records.format_errors(errors, prefix) -> "prefix: a: msg; b.c: msg"
-- records.decimal(value) -> canonical decimal string | nil, message
--
-- Field attributes (in the spirit of Kong's schema fields):
--   type      string | integer | number | decimal | boolean | uuid | date |
--             allocation | json | record | array
--   required  true: absent (or null) is an error
--   default   value used when absent (tables are copied)
--   len_min, len_max   string length in characters (UTF-8), array length
--   min, max, gt, between = { lo, hi }   inclusive bounds (gt: exclusive)
--   one_of    array of allowed values
--   match, match_message   Lua pattern a string must match
--   places, precision      decimal: at most `places` digits after the point,
--                          at most precision - places before it (DECIMAL(p,s))
--   kind      allocation: "regions" | "sectors" | "asset_class"
--   schema    record: the nested schema (table or name)
--   elements  array: the field definition of every element
--   unique    array of records: no two elements share this field's value
--             (checked on the elements as given, so it is reported even when
--             an element has other problems)
--   custom_check = function(value) -> true | nil, message   (runs last)
-- Schema: { name = "...", fields = { { name = def }, ... },
--           entity_checks = { { at_least_one_of = { "a", "b" } } } }
--
-- Allocations: each key is checked against validate.REGIONS / SECTORS /
-- ASSET_CLASSES and each value must be a number in [0, 100] (one error per
-- offending key, with its path); the entries that pass are then given to the
-- C binding, validate.allocation, which has the last word on the sum
-- (100 +- 0.05), reported on the field itself.  An empty allocation is
-- refused: validate.allocation, which scripts/verify.lua applies to every
-- stored instrument, refuses it too.
--
-- The planner's records (InstrumentCreate, UserCreate, AccountCreate,
-- PositionCreate, JobCreate, JobUpdate) are built from the table declarations
-- (alex.schema, lua/alex/schema/<table>.lua), where their rules are; the seed
-- files' records (InstrumentSeed, PositionSeed, AccountSeed, UserSeed) are
-- built from those at the end of this file.
--
-- Decisions:
--   * Strings may not contain NUL: PostgreSQL text cannot hold it.
--   * Decimal strings must be plain notation ("100000", "-0.5", "+1.", ".5");
--     exponent forms ("1e5") are refused with a hint, since they usually come
--     from float formatting and hide the real precision.  Lua numbers are
--     written with up to 15 significant digits; a float that needs more to
--     round-trip (0.1 + 0.2) is refused as too precise: pass a string.
--   * Strings are not trimmed or case-folded (a lower-case symbol is an error,
--     not silently fixed); uuids are the exception (case is meaningless).
local validate = require "alex.validate"
local json = require "alex.json"

local records = {}

local type, pairs, ipairs, tostring, tonumber, error = type, pairs, ipairs, tostring, tonumber, error
local fmt, find, match, sub, rep = string.format, string.find, string.match, string.sub, string.rep
local concat, sort = table.concat, table.sort
local math_type, tointeger, huge = math.type, math.tointeger, math.huge
local utf8_len = utf8.len

local null = json.null

-- JSON null, or alex.db's NULL sentinel (recognised by name: alex.db is not
-- loaded here), both meaning "no value".
local function is_null(v)
  if v == null then return true end
  if type(v) ~= "table" then return false end
  local mt = getmetatable(v)
  return mt ~= nil and mt.__name == "alex.db.null"
end

---------------------------------------------------------------------------
-- small helpers

local function type_name(v)
  if is_null(v) then return "null" end
  local t = type(v)
  if t == "number" then return math_type(v) == "integer" and "integer" or "number" end
  return t
end

local function key_path(prefix, key)
  if type(key) == "string" then
    if match(key, "^[%a_][%w_]*$") then
      return prefix == "" and key or prefix .. "." .. key
    end
    local shown = #key > 60 and sub(key, 1, 60) .. "..." or key
    return prefix .. "[" .. fmt("%q", shown):gsub("\\\n", "\\n") .. "]"
  end
  return prefix .. "[" .. tostring(key) .. "]"
end

-- Sort order for mixed table keys: by type name, then value.
local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "string" or ta == "number" then return a < b end
  return tostring(a) < tostring(b)
end

local function index_path(prefix, i)
  return prefix .. "[" .. i .. "]"
end

local function num_text(x)
  if math_type(x) == "integer" then return fmt("%d", x) end
  if x == huge then return "inf" elseif x == -huge then return "-inf" end
  local t = tointeger(x)
  if t then return fmt("%d", t) end
  return fmt("%.15g", x)
end

-- Edit distance counting a swap of two neighbours as one edit (optimal
-- string alignment), for "did you mean" hints on short names.
local function distance(a, b)
  if #a > 64 or #b > 64 then return huge end
  local before, prev, cur = {}, {}, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    cur[0] = i
    local ca = a:byte(i)
    for j = 1, #b do
      local cb = b:byte(j)
      local d = prev[j - 1] + (ca == cb and 0 or 1)
      if prev[j] + 1 < d then d = prev[j] + 1 end
      if cur[j - 1] + 1 < d then d = cur[j - 1] + 1 end
      if i > 1 and j > 1 and ca == b:byte(j - 1) and a:byte(i - 1) == cb and before[j - 2] + 1 < d then
        d = before[j - 2] + 1
      end
      cur[j] = d
    end
    before, prev, cur = prev, cur, before
  end
  return prev[#b]
end

local function suggest(word, candidates)
  if type(word) ~= "string" then return nil end
  local best, best_d
  for _, c in ipairs(candidates) do
    local d = distance(word:lower(), c)
    if (not best_d or d < best_d) then best, best_d = c, d end
  end
  if best and best_d <= math.max(1, #word // 3) then return best end
  return nil
end

local function quoted_list(list)
  local parts = {}
  for i, v in ipairs(list) do parts[i] = fmt("%q", v) end
  return concat(parts, ", ")
end

---------------------------------------------------------------------------
-- decimals

-- Plain decimal text of a float, from its shortest (<= 15 digit) form.
local function float_text(v)
  local s = fmt("%.15g", v)
  if tonumber(s) ~= v then return nil end
  local sign, int, frac, exp = match(s, "^(%-?)(%d+)%.?(%d*)e([-+]%d+)$")
  if not sign then return s end
  local digits, point = int .. frac, #int + tonumber(exp)
  if point <= 0 then
    return sign .. "0." .. rep("0", -point) .. digits
  elseif point >= #digits then
    return sign .. digits .. rep("0", point - #digits)
  end
  return sign .. sub(digits, 1, point) .. "." .. sub(digits, point + 1)
end

-- Canonical decimal string, its digits before and after the point.
local function parse_decimal(v)
  local s
  if type(v) == "number" then
    if v ~= v or v == huge or v == -huge then return nil, "must be a finite number" end
    if math_type(v) == "integer" then
      s = fmt("%d", v)
    else
      s = float_text(v)
      if not s then
        return nil, fmt("%.17g has more than 15 significant digits; pass the exact value as a decimal string", v)
      end
    end
  elseif type(v) == "string" then
    s = v
  else
    return nil, "expected a number or a decimal string, got " .. type_name(v)
  end
  local sign, int, frac = match(s, "^([+-]?)(%d*)%.?(%d*)$")
  if not sign or (int == "" and frac == "") then
    if type(v) == "string" and match(s, "^[+-]?%d*%.?%d*[eE][+-]?%d+$") then
      return nil, fmt("%q: exponent notation is not accepted, write the number out in full", s)
    end
    local shown = #s > 40 and sub(s, 1, 40) .. "..." or s
    return nil, fmt("%q is not a decimal number", shown)
  end
  int = match(int, "^0*(.-)$")
  frac = match(frac, "^(.-)0*$")
  if int == "" and frac == "" then return "0", 0, 0 end
  local out = (sign == "-" and "-" or "") .. (int == "" and "0" or int) .. (frac ~= "" and "." .. frac or "")
  return out, #int, #frac
end

function records.decimal(v)
  local s, err = parse_decimal(v)
  if not s then return nil, err end
  return s
end

---------------------------------------------------------------------------
-- field checks.  Each returns the cleaned value, or nil after adding errors.

local checkers = {}
local check_record -- forward
local check_value -- forward

local function add(errs, path, message)
  errs[#errs + 1] = { field = path, message = message }
end

-- True when v is of Lua type t; else false, with "expected <what>, got ..."
-- added to errs.
local function is_type(v, t, what, path, errs)
  if type(v) == t then return true end
  add(errs, path, "expected " .. what .. ", got " .. type_name(v))
  return false
end

local function check_bounds(def, x, path, errs)
  local ok = true
  -- x is finite here (NaN and infinities were refused before)
  if def.gt ~= nil and x <= def.gt then
    add(errs, path, "must be greater than " .. num_text(def.gt)); ok = false
  end
  local lo, hi = def.min, def.max
  if def.between then lo, hi = def.between[1], def.between[2] end
  if lo ~= nil and hi ~= nil then
    if x < lo or x > hi then
      add(errs, path, "must be between " .. num_text(lo) .. " and " .. num_text(hi)); ok = false
    end
  elseif lo ~= nil and x < lo then
    add(errs, path, "must be at least " .. num_text(lo)); ok = false
  elseif hi ~= nil and x > hi then
    add(errs, path, "must be at most " .. num_text(hi)); ok = false
  end
  return ok
end

local function check_one_of(def, v, path, errs)
  if not def.one_of then return true end
  for _, allowed in ipairs(def.one_of) do
    if v == allowed then return true end
  end
  local msg = "must be one of " .. quoted_list(def.one_of)
  local hint = suggest(v, def.one_of)
  if hint then msg = msg .. fmt(" (did you mean %q?)", hint) end
  add(errs, path, msg)
  return false
end

function checkers.string(def, v, path, errs)
  if not is_type(v, "string", "a string", path, errs) then return nil end
  local n = utf8_len(v)
  if not n then add(errs, path, "is not valid UTF-8"); return nil end
  if find(v, "\0", 1, true) then add(errs, path, "contains a NUL character (\\u0000)"); return nil end
  local ok = true
  if def.len_min and n < def.len_min or def.len_max and n > def.len_max then
    ok = false
    if n == 0 then -- nothing else to say about an empty string
      add(errs, path, def.len_max and fmt("length must be between %d and %d characters (got 0)", def.len_min,
        def.len_max) or fmt("length must be at least %d characters", def.len_min))
      return nil
    end
    if def.len_min and def.len_max then
      add(errs, path, fmt("length must be between %d and %d characters (got %d)", def.len_min, def.len_max, n))
    elseif def.len_min then
      add(errs, path, fmt("length must be at least %d characters", def.len_min))
    else
      add(errs, path, fmt("length must be at most %d characters (got %d)", def.len_max, n))
    end
  end
  if def.match and not find(v, def.match) then
    add(errs, path, def.match_message or ("must match the pattern " .. def.match)); ok = false
  end
  if not check_one_of(def, v, path, errs) then ok = false end
  return ok and v or nil
end

function checkers.integer(def, v, path, errs)
  local i = type(v) == "number" and tointeger(v)
  if not i then
    add(errs, path, "expected an integer, got " .. (type(v) == "number" and num_text(v) or type_name(v)))
    return nil
  end
  local ok = check_bounds(def, i, path, errs)
  if not check_one_of(def, i, path, errs) then ok = false end
  return ok and i or nil
end

function checkers.number(def, v, path, errs)
  if not is_type(v, "number", "a number", path, errs) then return nil end
  if v ~= v or v == huge or v == -huge then
    add(errs, path, "must be a finite number"); return nil
  end
  return check_bounds(def, v, path, errs) and v or nil
end

function checkers.decimal(def, v, path, errs)
  local s, int_digits, places = parse_decimal(v)
  if not s then add(errs, path, int_digits); return nil end
  local ok = true
  if def.places and places > def.places then
    add(errs, path, fmt("%s has more than %d decimal places", s, def.places)); ok = false
  end
  if def.precision then
    local max_int = def.precision - (def.places or 0)
    if int_digits > max_int then
      add(errs, path, fmt("%s has more than %d digits before the decimal point", s, max_int)); ok = false
    end
  end
  if not check_bounds(def, tonumber(s), path, errs) then ok = false end
  return ok and s or nil
end

function checkers.boolean(_, v, path, errs)
  if not is_type(v, "boolean", "a boolean", path, errs) then return nil end
  return v
end

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
function checkers.uuid(_, v, path, errs)
  if not is_type(v, "string", "a UUID string", path, errs) then return nil end
  if not find(v, UUID) then
    add(errs, path, "is not a UUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"); return nil
  end
  return v:lower()
end

local MONTH_DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
function checkers.date(_, v, path, errs)
  if not is_type(v, "string", "a date string (YYYY-MM-DD)", path, errs) then return nil end
  local y, m, d = match(v, "^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  local days = m and MONTH_DAYS[m]
  if days == 28 and (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then days = 29 end
  if not y or not days or d < 1 or d > days or y < 1 then
    add(errs, path, fmt("%q is not a valid date (expected YYYY-MM-DD)", #v > 40 and sub(v, 1, 40) .. "..." or v))
    return nil
  end
  return v
end

local ALLOCATION_SETS = {
  regions = { names = validate.REGIONS, what = "region" },
  sectors = { names = validate.SECTORS, what = "sector" },
  asset_class = { names = validate.ASSET_CLASSES, what = "asset class" },
}
for _, set in pairs(ALLOCATION_SETS) do
  set.member = {}
  for _, name in ipairs(set.names) do set.member[name] = true end
end

function checkers.allocation(def, v, path, errs)
  if not is_type(v, "table", "a table of percentages", path, errs) then return nil end
  local set = ALLOCATION_SETS[def.kind]
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  if #keys == 0 then
    add(errs, path, "must not be empty: give percentages summing to 100"); return nil
  end
  sort(keys, key_order)
  local good, bad = {}, false
  for _, k in ipairs(keys) do
    local x, kpath = v[k], key_path(path, k)
    local key_ok = true
    if type(k) ~= "string" then
      add(errs, kpath, "key must be a " .. set.what .. " name (string), got " .. type_name(k)); key_ok = false
    elseif not set.member[k] then
      local msg = fmt("unknown %s %q", set.what, #k > 60 and sub(k, 1, 60) .. "..." or k)
      local hint = suggest(k, set.names)
      msg = hint and fmt("%s (did you mean %q?)", msg, hint) or (msg .. "; expected one of " .. quoted_list(set.names))
      add(errs, kpath, msg); key_ok = false
    end
    if type(x) ~= "number" then
      add(errs, kpath, "expected a percentage (number), got " .. type_name(x)); key_ok = false
    elseif x ~= x or x == huge or x == -huge then
      add(errs, kpath, "must be a finite number"); key_ok = false
    elseif x < 0 or x > 100 then
      add(errs, kpath, "must be between 0 and 100 (got " .. num_text(x) .. ")"); key_ok = false
    end
    if key_ok then good[k] = tointeger(x) or x else bad = true end
  end
  if next(good) == nil then return nil end -- every entry already reported
  -- The C rules have the last word (the sum, with its tolerance).
  local ok, msg = validate.allocation(good, def.kind)
  if not ok then
    msg = msg:gsub("^" .. def.kind .. ": ", "")
    if bad then msg = msg .. " (counting only the valid entries)" end
    add(errs, path, msg)
    return nil
  end
  if bad then return nil end
  return setmetatable(good, json.object_mt)
end

-- JSON payloads: any table whose contents json.encode can write.
local function check_json_value(v, path, errs, depth)
  local t = type(v)
  if t == "string" then
    if find(v, "\0", 1, true) then
      add(errs, path, "contains a NUL character (\\u0000), which jsonb cannot store"); return false
    end
    return true
  end
  if t == "boolean" or is_null(v) then return true end
  if t == "number" then
    if v ~= v or v == huge or v == -huge then add(errs, path, "must be a finite number"); return false end
    return true
  end
  if t ~= "table" then add(errs, path, "cannot be stored as JSON (" .. t .. ")"); return false end
  if depth > 64 then add(errs, path, "is nested too deeply (more than 64 levels)"); return false end
  local ok, n, has_int, has_str = true, #v, false, false
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  sort(keys, key_order) -- errors in a stable order
  for _, k in ipairs(keys) do
    local x = v[k]
    if math_type(k) == "integer" and k >= 1 and k <= n then
      has_int = true
    elseif type(k) == "string" then
      has_str = true
      if find(k, "\0", 1, true) then
        add(errs, key_path(path, k), "key contains a NUL character (\\u0000), which jsonb cannot store"); ok = false
      end
    else
      add(errs, key_path(path, k), "JSON object keys must be strings"); ok = false
    end
    if not check_json_value(x, type(k) == "string" and key_path(path, k) or index_path(path, tostring(k)),
        errs, depth + 1) then
      ok = false
    end
  end
  if has_int and has_str then
    add(errs, path, "mixes array items and object keys"); ok = false
  end
  return ok
end

function checkers.json(_, v, path, errs)
  if not is_type(v, "table", "a table (JSON object or array)", path, errs) then return nil end
  return check_json_value(v, path, errs, 1) and v or nil
end

function checkers.record(def, v, path, errs)
  return check_record(def.schema, v, path, errs)
end

function checkers.array(def, v, path, errs)
  if not is_type(v, "table", "an array", path, errs) then return nil end
  local n = #v
  local ok = true
  for k in pairs(v) do
    if not (math_type(k) == "integer" and k >= 1 and k <= n) then
      add(errs, key_path(path, k), "unexpected key in an array"); ok = false
    end
  end
  if def.len_min and n < def.len_min then
    add(errs, path, fmt("must have at least %d element%s", def.len_min, def.len_min == 1 and "" or "s")); ok = false
  end
  if def.len_max and n > def.len_max then
    add(errs, path, fmt("must have at most %d elements (got %d)", def.len_max, n)); ok = false
  end
  if def.unique then
    local first = {}
    for i = 1, n do
      local x = v[i]
      local key = type(x) == "table" and not is_null(x) and x[def.unique] or nil
      if type(key) == "string" or type(key) == "number" then
        if first[key] then
          add(errs, key_path(index_path(path, i), def.unique), fmt("%s is also the %s of %s",
            type(key) == "string" and fmt("%q", #key > 60 and sub(key, 1, 60) .. "..." or key) or num_text(key),
            def.unique, index_path(path, first[key])))
          ok = false
        else
          first[key] = i
        end
      end
    end
  end
  local out = setmetatable({}, json.array_mt)
  local elem = def.elements
  for i = 1, n do
    local x, epath = v[i], index_path(path, i)
    if x == nil or is_null(x) then
      add(errs, epath, "must not be null"); ok = false
    else
      local c = check_value(elem, x, epath, errs)
      if c == nil then ok = false end
      out[i] = c
    end
  end
  return ok and out or nil
end

---------------------------------------------------------------------------
-- schemas

records.schemas = {}

local function copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return setmetatable(t, getmetatable(v))
end

local function resolve(schema)
  if type(schema) == "string" then
    local s = records.schemas[schema]
    if not s then error("records: unknown schema " .. fmt("%q", schema), 3) end
    return s
  end
  if type(schema) ~= "table" or not schema.field_index then
    error("records: expected a schema (from records.define) or a schema name", 3)
  end
  return schema
end

-- v checked by its definition's type, then by its custom_check: the value,
-- or nil with the problems added to errs.
check_value = function(def, v, path, errs)
  local c = checkers[def.type](def, v, path, errs)
  if c ~= nil and def.custom_check then
    local good, msg = def.custom_check(c)
    if not good then add(errs, path, msg or "is invalid"); return nil end
  end
  return c
end

check_record = function(schema, record, path, errs)
  schema = resolve(schema)
  if type(record) ~= "table" or is_null(record) then
    add(errs, path, "expected a table (JSON object), got " .. type_name(record)); return nil
  end
  local before = #errs
  local out = {}
  for _, f in ipairs(schema.field_list) do
    local name, def = f.name, f.def
    local v, fpath = record[name], key_path(path, name)
    if v == nil or is_null(v) then
      if def.required then
        add(errs, fpath, "required field missing")
      elseif def.default ~= nil then
        out[name] = copy(def.default)
      end
    else
      out[name] = check_value(def, v, fpath, errs)
    end
  end
  local unknown = {}
  for k in pairs(record) do
    if type(k) ~= "string" or not schema.field_index[k] then unknown[#unknown + 1] = k end
  end
  sort(unknown, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(unknown) do
    local msg = "unknown field"
    local hint = suggest(k, schema.field_names)
    if hint and record[hint] == nil then msg = fmt("unknown field (did you mean %q?)", hint) end
    add(errs, key_path(path, k), msg)
  end
  for _, ec in ipairs(schema.entity_checks) do
    if ec.at_least_one_of then
      local any = false
      for _, name in ipairs(ec.at_least_one_of) do
        if record[name] ~= nil and not is_null(record[name]) then any = true end
      end
      if not any then
        add(errs, path, "at least one of " .. concat(ec.at_least_one_of, ", ") .. " is required")
      end
    end
  end
  if #errs > before then return nil end
  return out
end

local ATTRIBUTES = {
  type = "string", required = "boolean", default = "any", len_min = "number", len_max = "number",
  min = "number", max = "number", gt = "number", between = "table", one_of = "table", match = "string",
  match_message = "string", places = "number", precision = "number", kind = "string",
  schema = "any", elements = "table", unique = "string", custom_check = "function",
}

local function check_def(name, def)
  if type(def) ~= "table" then error("records: field " .. name .. ": definition must be a table", 4) end
  for k, v in pairs(def) do
    local want = ATTRIBUTES[k]
    if not want then error(fmt("records: field %s: unknown attribute %q", name, tostring(k)), 4) end
    if want ~= "any" and type(v) ~= want then
      error(fmt("records: field %s: attribute %s must be a %s", name, k, want), 4)
    end
  end
  if not checkers[def.type] then
    error(fmt("records: field %s: unknown type %q", name, tostring(def.type)), 4)
  end
  if def.type == "allocation" and not ALLOCATION_SETS[def.kind] then
    error(fmt("records: field %s: allocation kind must be regions, sectors or asset_class", name), 4)
  end
  if def.type == "record" then
    if def.schema == nil then error("records: field " .. name .. ": record needs a schema", 4) end
    def.schema = resolve(def.schema)
  end
  if def.type == "array" then
    if not def.elements then error("records: field " .. name .. ": array needs elements", 4) end
    check_def(name .. "[]", def.elements)
  end
end

-- Builds (and, when it has a name, registers) a schema.
function records.define(spec)
  if type(spec) ~= "table" or type(spec.fields) ~= "table" then
    error("records.define: expected { name = ..., fields = { { name = def }, ... } }", 2)
  end
  local schema = { name = spec.name, field_list = {}, field_index = {}, field_names = {},
    entity_checks = spec.entity_checks or {} }
  for i, entry in ipairs(spec.fields) do
    local name, def = next(entry)
    if type(name) ~= "string" or next(entry, name) ~= nil then
      error(fmt("records.define: fields[%d] must be a table with exactly one field name", i), 2)
    end
    if schema.field_index[name] then error("records.define: field " .. name .. " defined twice", 2) end
    check_def(name, def)
    local f = { name = name, def = def }
    schema.field_list[#schema.field_list + 1] = f
    schema.field_index[name] = f
    schema.field_names[#schema.field_names + 1] = name
  end
  for _, ec in ipairs(schema.entity_checks) do
    for _, name in ipairs(ec.at_least_one_of or {}) do
      if not schema.field_index[name] then error("records.define: entity check names unknown field " .. name, 2) end
    end
  end
  if spec.name then records.schemas[spec.name] = schema end
  return schema
end

-- A schema built from another: `remove` drops fields, a `fields` entry whose
-- name exists overrides those attributes of it, a new name is appended.
function records.extend(base, spec)
  base = resolve(base)
  local removed = {}
  for _, name in ipairs(spec.remove or {}) do
    if not base.field_index[name] then error("records.extend: no field " .. name .. " to remove", 2) end
    removed[name] = true
  end
  local overrides, added = {}, {}
  for _, entry in ipairs(spec.fields or {}) do
    local name, def = next(entry)
    if base.field_index[name] then overrides[name] = def else added[#added + 1] = entry end
  end
  local fields = {}
  for _, f in ipairs(base.field_list) do
    if not removed[f.name] then
      local def = {}
      for k, v in pairs(f.def) do def[k] = v end
      for k, v in pairs(overrides[f.name] or {}) do def[k] = v end
      fields[#fields + 1] = { [f.name] = def }
    end
  end
  for _, entry in ipairs(added) do fields[#fields + 1] = entry end
  return records.define({ name = spec.name, fields = fields, entity_checks = spec.entity_checks })
end

function records.check(schema, record)
  local errs = {}
  local out = check_record(resolve(schema), record, "", errs)
  if out == nil then return nil, errs end
  return out
end

-- check_field(schema, name, value) -> cleaned value | nil, errors: one field
-- of a schema alone (its path is the field's name).
function records.check_field(schema, name, value)
  local f = resolve(schema).field_index[name]
  if not f then error("records.check_field: no field " .. tostring(name), 2) end
  local errs = {}
  local c = check_value(f.def, value, name, errs)
  if c == nil then return nil, errs end
  return c
end

-- Numbers inside a path compare as numbers: accounts[2] before accounts[10].
local function path_less(a, b)
  local i, j = 1, 1
  while i <= #a and j <= #b do
    local da, db = match(a, "^%d+", i), match(b, "^%d+", j)
    if da and db then
      if #da ~= #db then return #da < #db end
      if da ~= db then return da < db end
      i, j = i + #da, j + #db
    else
      local ca, cb = sub(a, i, i), sub(b, j, j)
      if ca ~= cb then return ca < cb end
      i, j = i + 1, j + 1
    end
  end
  return #a - i < #b - j
end

-- sort_errors(errors): by path, numbers as numbers, so the problems of one
-- record come together and in record order; stable.
function records.sort_errors(errs)
  for i, e in ipairs(errs) do e._order = i end
  sort(errs, function(x, y)
    if x.field ~= y.field then return path_less(x.field or "", y.field or "") end
    return x._order < y._order
  end)
  for _, e in ipairs(errs) do e._order = nil end
  return errs
end

function records.format_errors(errs, prefix)
  local parts = {}
  for i, e in ipairs(errs) do
    parts[i] = (e.field and e.field ~= "") and (e.field .. ": " .. e.message) or e.message
  end
  local text = concat(parts, "; ")
  if prefix and prefix ~= "" then return prefix .. ": " .. text end
  return text
end

---------------------------------------------------------------------------
-- the planner's records: each table's, from its declaration (alex.schema),
-- then the seed files' records built from those

local schema = require "alex.schema"

for _, t in ipairs(schema.TABLES) do
  -- every column's rules, checked even where no record uses the column yet
  local all = {}
  for i, c in ipairs(t.writable) do all[i] = { [c] = schema.rules(t.name, c) } end
  records.define { fields = all }
end
for _, spec in ipairs(schema.record_specs()) do records.define(spec) end

records.JOB_TYPES = schema.table("jobs").columns.job_type.one_of
records.JOB_STATUSES = schema.table("jobs").columns.status.one_of

-- Seed files: every instrument of seed/instruments.json has a price; the test
-- data (seed/test_user.json) is a user with accounts, each with positions, and
-- the ids linking them are made when the rows are inserted.
records.extend("InstrumentCreate", {
  name = "InstrumentSeed",
  fields = {
    { current_price = { required = true } },
  },
})
records.extend("PositionCreate", { name = "PositionSeed", remove = { "account_id" } })
records.extend("AccountCreate", {
  name = "AccountSeed",
  remove = { "clerk_user_id" },
  -- one position per (account, symbol), as the table's UNIQUE constraint wants
  fields = { { positions = { type = "array", elements = { type = "record", schema = "PositionSeed" },
    unique = "symbol" } } },
})
-- Account names are unique per user: the test data links positions to their
-- account by name, and the scripts find accounts by name.
records.define {
  name = "UserSeed",
  fields = {
    { user = { type = "record", required = true, schema = "UserCreate" } },
    { accounts = { type = "array", elements = { type = "record", schema = "AccountSeed" },
      unique = "account_name" } },
  },
}

return records
