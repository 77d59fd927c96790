-- JSON for the Data API wire, on top of lua-cjson, fixing the two places where
-- Debian's lua-cjson loses data:
--   * it encodes numbers with 14 significant digits (2^53 + 1 comes out as
--     9.007199254741e+15), so requests are encoded here: integers exactly,
--     floats with 17 digits (enough to round-trip any double);
--   * it decodes every number as a float, so 64-bit `longValue`s above 2^53
--     would be rounded: `decode_response` turns them into digit strings before
--     cjson sees them, and the caller turns those into Lua integers.
local cjson = require "cjson.safe"

local json = {}

local concat, type, pairs, ipairs = table.concat, type, pairs, ipairs
local math_type, fmt, huge = math.type, string.format, math.huge

json.null = cjson.null
-- Marks a table to be encoded as a JSON array even when empty.
json.array_mt = cjson.array_mt or { __name = "alex.json.array" }
-- Marks a table to be encoded as a JSON object even when empty.
json.object_mt = { __name = "alex.json.object" }

local encode_string = cjson.encode -- strings only: cjson escapes them correctly

local function is_array(t)
  local mt = getmetatable(t)
  if mt == json.array_mt then return true end
  if mt == json.object_mt then return false end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if math_type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local encode_value

local function encode_number(v, path)
  if math_type(v) == "integer" then return fmt("%d", v) end
  if v ~= v or v == huge or v == -huge then
    return nil, (path or "value") .. ": " .. tostring(v) .. " cannot be sent as JSON"
  end
  if v == math.floor(v) and v >= -2^53 and v <= 2^53 then return fmt("%.1f", v) end
  -- the shortest text that reads back as the same double
  for _, f in ipairs { "%.15g", "%.16g" } do
    local s = fmt(f, v)
    if tonumber(s) == v then return s end
  end
  return fmt("%.17g", v)
end

-- Appends the encoding of v to buf; returns true or nil, err.
function encode_value(v, buf, path, depth)
  local t = type(v)
  if t == "string" then
    buf[#buf + 1] = encode_string(v)
  elseif t == "number" then
    local s, err = encode_number(v, path)
    if not s then return nil, err end
    buf[#buf + 1] = s
  elseif t == "boolean" then
    buf[#buf + 1] = v and "true" or "false"
  elseif v == nil or v == cjson.null then
    buf[#buf + 1] = "null"
  elseif t == "table" then
    if depth > 100 then return nil, (path or "value") .. ": nested too deeply (cycle?)" end
    if is_array(v) then
      buf[#buf + 1] = "["
      for i, item in ipairs(v) do
        if i > 1 then buf[#buf + 1] = "," end
        local ok, err = encode_value(item, buf, path and (path .. "[" .. i .. "]"), depth + 1)
        if not ok then return nil, err end
      end
      buf[#buf + 1] = "]"
    else
      buf[#buf + 1] = "{"
      local first = true
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then
          return nil, (path or "value") .. ": object key " .. tostring(k) .. " is not a string"
        end
        keys[#keys + 1] = k
      end
      table.sort(keys) -- stable output: same input, same bytes (and checksums)
      for _, k in ipairs(keys) do
        if not first then buf[#buf + 1] = "," end
        first = false
        buf[#buf + 1] = encode_string(k)
        buf[#buf + 1] = ":"
        local ok, err = encode_value(v[k], buf, path and (path .. "." .. k), depth + 1)
        if not ok then return nil, err end
      end
      buf[#buf + 1] = "}"
    end
  else
    return nil, (path or "value") .. ": a " .. t .. " cannot be sent as JSON"
  end
  return true
end

-- encode(value [, path]) -> text, or nil and a message naming `path`.
function json.encode(v, path)
  local buf = {}
  local ok, err = encode_value(v, buf, path, 0)
  if not ok then return nil, err end
  return concat(buf)
end

-- Appends to an existing buffer (the request builder uses one buffer per request).
function json.encode_into(buf, v, path)
  return encode_value(v, buf, path, 0)
end

json.encode_string = encode_string

function json.decode(text)
  return cjson.decode(text)
end

local function quote_longs(list)
  return "[" .. list:gsub("(-?%d+)", '"%1"') .. "]"
end

-- Decodes a Data API response body with every `longValue` / `longValues`
-- number turned into its digit string.  Inside JSON strings every quote is
-- escaped, so the unescaped `"longValue":` can only be a real object key.
function json.decode_response(text)
  if text:find('"longValue', 1, true) then
    text = text:gsub('"longValue"%s*:%s*(-?%d+)', '"longValue":"%1"')
    text = text:gsub('"longValues"%s*:%s*%[([^%]]*)%]', function(list)
      return '"longValues":' .. quote_longs(list)
    end)
  end
  return cjson.decode(text)
end

return json
