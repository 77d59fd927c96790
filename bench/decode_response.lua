-- Writes a 1 MiB ExecuteStatement response (the shape the Data API returns
-- with includeResultMetadata and longReturnType STRING, as alex.db asks) to arg[1], then times alex.db decoding it into
-- rows arg[2] times.  Prints "alexlua_seconds_per_decode <s>".
local db = require "alex.db"
local json = require "alex.json"
local clock = require "alex.clock"

local out_path, rounds = arg[1], tonumber(arg[2] or "20")
local columns = {
  { "id", "uuid" }, { "symbol", "varchar" }, { "quantity", "numeric" }, { "shares", "int8" },
  { "price", "float8" }, { "active", "bool" }, { "allocation", "jsonb" }, { "note", "text" },
}
local meta = {}
for i, c in ipairs(columns) do
  meta[i] = ('{"name":"%s","label":"%s","typeName":"%s","type":12,"nullable":1,"precision":0,"scale":0,' ..
    '"schemaName":"","tableName":"positions","isAutoIncrement":false,"isSigned":false,"isCurrency":false,' ..
    '"isCaseSensitive":true,"arrayBaseColumnType":0}'):format(c[1], c[1], c[2])
end
local records, size, n = {}, 0, 0
while size < 1024 * 1024 - 4096 do
  n = n + 1
  local rec = ('[{"stringValue":"%08x-0000-4000-8000-%012x"},{"stringValue":"SYM%d"},' ..
    '{"stringValue":"%d.12345678"},{"stringValue":"%d"},{"doubleValue":%d.25},{"booleanValue":%s},' ..
    '{"stringValue":"{\\"equity\\": 70, \\"fixed_income\\": 30}"},{"isNull":true}]'):format(
    n, n, n % 1000, n * 7, 9007199254740000 + n, n % 500, n % 2 == 0 and "true" or "false")
  records[n] = rec
  size = size + #rec + 1
end
local body = '{"columnMetadata":[' .. table.concat(meta, ",") .. '],"records":[' .. table.concat(records, ",") ..
  '],"numberOfRecordsUpdated":0}'
local f = assert(io.open(out_path, "wb"))
f:write(body)
f:close()

local rows
local t0 = clock.monotonic()
for _ = 1, rounds do rows = db.to_rows(json.decode_response(body)) end
local per = (clock.monotonic() - t0) / rounds
assert(#rows == n and rows[n].shares == 9007199254740000 + n and rows[1].allocation.equity == 70)
io.stderr:write(("decoded %d bytes, %d rows x %d columns\n"):format(#body, n, #columns))
print(("alexlua_seconds_per_decode %.6f"):format(per))
