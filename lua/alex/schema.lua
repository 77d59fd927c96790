-- The Alex tables, each declared once (lua/alex/schema/<table>.lua), in the
-- spirit of Kong's entity schemas: every column with its SQL type,
-- nullability, default and foreign key, the table's primary key, unique
-- constraints, indexes and triggers, plus the rules a record must pass before
-- it is written and the records (alex.records schemas) built from them.
--
-- The SQL migrations (schema/*.sql) stay what the database gets: nothing here
-- writes SQL.  spec/schema_spec.lua migrates a fresh database and compares
-- its catalogue with these declarations both ways, so the two cannot drift.
--
-- What is derived from the declarations:
--   alex.records   the planner's record schemas (records[] of each table)
--   alex.models    the columns a record may set, the casts of parameters,
--                  which columns hold JSON or exact decimals
--   reset, verify  the tables, indexes, triggers and functions the schema owns
--
-- A table: { name, what = "one row's name in messages", primary_key = { cols },
--   unique = { { cols }, ... }, fields = { { column = def }, ... },
--   indexes = { { name, columns = { cols } }, ... },
--   triggers = { { name, event = "BEFORE UPDATE", execute = function_name, when = condition as
--                pg_get_triggerdef prints it (optional) }, or { name, capture = true }: the
--                trigger that records a data fix's changes }, ... },
--   records = { { name, fields = { cols } (default: every column but the auto
--                 ones), entity_checks }, ... } }: records[1] is what a row is
--   created from, and what alex.models' generic update checks the merged row
--   against (so its fields are the ones an update carries over).
-- A column (def), SQL facts:
--   sql_type     as PostgreSQL's format_type() writes it ("character varying(20)",
--                "numeric(12,4)", "timestamp without time zone", "jsonb", ...)
--   not_null     true when the column is NOT NULL (primary key columns are)
--   sql_default  the default as pg_get_expr() writes it ("now()", "'{}'::jsonb")
--   references   "table.column" (a foreign key), on_delete = "cascade" |
--                "restrict" | "set null" | "set default" (default: no action)
--   auto         set by the database or by the model's own operations (ids,
--                timestamps, a job's start and end), never from a record
-- and any rule of alex.records (required, len_min, min, max, gt, one_of, match,
-- type = "allocation" with kind, ...).  Rules implied by the SQL type are
-- derived: the record type (varchar/text: string, integer, numeric: decimal,
-- uuid, date, jsonb: json), a varchar's length (unless one_of lists the
-- values), a numeric's precision and places.  A foreign key column is checked
-- as the column it references (its rules, not whether that one is required).
local schema = {}

-- Creation order, as the migrations create them (reset drops them in reverse).
local TABLE_NAMES = { "users", "instruments", "accounts", "positions", "jobs", "price_history", "agent_logs",
  "data_fix_runs", "data_fix_changes" }

-- The condition of the triggers that capture a data fix's changes, as
-- PostgreSQL prints it back.
schema.CAPTURE_WHEN = "(current_setting('alex.fix_run'::text, true) <> ''::text)"

-- Functions the schema owns besides its tables (the triggers' function).
schema.FUNCTIONS = { "update_updated_at_column", "data_fix_capture" }

local SQL_ATTRIBUTES = { sql_type = "string", not_null = "boolean", sql_default = "string", references = "string",
  on_delete = "string", auto = "boolean" }
local TABLE_ATTRIBUTES = { name = "string", what = "string", primary_key = "table", unique = "table",
  fields = "table", indexes = "table", triggers = "table", records = "table" }
local ON_DELETE = { cascade = true, restrict = true, ["set null"] = true, ["set default"] = true,
  ["no action"] = true }

-- What an SQL type implies: its record type, the parameter cast, the sizes.
local function sql_kind(sql_type)
  local n = sql_type:match("^character varying%((%d+)%)$")
  if n then return { type = "string", len_max = tonumber(n) } end
  local p, s = sql_type:match("^numeric%((%d+),(%d+)%)$")
  if p then return { type = "decimal", cast = "::numeric", precision = tonumber(p), places = tonumber(s) } end
  n = sql_type:match("^character%((%d+)%)$")
  if n then return { type = "string", len_max = tonumber(n) } end
  local simple = {
    text = { type = "string" }, integer = { type = "integer" }, bigint = { type = "integer" },
    uuid = { type = "uuid", cast = "::uuid" },
    date = { type = "date", cast = "::date" }, jsonb = { type = "json", cast = "::jsonb", json = true },
    ["timestamp without time zone"] = {},
  }
  return simple[sql_type]
end

local by_name = {}
schema.TABLES = {}

local function bad(t, msg, ...)
  error(("alex.schema: %s: " .. msg):format(t.name or "?", ...), 0)
end

local function column_names(t, list, what)
  if type(list) ~= "table" or #list == 0 then bad(t, "%s must be a list of column names", what) end
  for _, c in ipairs(list) do
    if not t.columns[c] then bad(t, "%s names unknown column %s", what, tostring(c)) end
  end
end

-- check(t) -> t, checked and indexed (column_list, columns, writable), or
-- raises naming the table and the problem: a declaration's mistakes are bugs.
-- References may name the tables declared before it.
function schema.check(t)
  if type(t) ~= "table" then error("alex.schema: a declaration must be a table", 0) end
  if type(t.name) ~= "string" then bad(t, "a table needs a name") end
  for k, v in pairs(t) do
    local want = TABLE_ATTRIBUTES[k]
    if not want then bad(t, "unknown attribute %s", tostring(k)) end
    if type(v) ~= want then bad(t, "%s must be a %s", k, want) end
  end
  t.column_list, t.columns = {}, {}
  for i, entry in ipairs(t.fields or {}) do
    local column, def = next(entry)
    if type(column) ~= "string" or next(entry, column) ~= nil or type(def) ~= "table" then
      bad(t, "fields[%d] must be { column = definition }", i)
    end
    if t.columns[column] then bad(t, "column %s declared twice", column) end
    for k, want in pairs(SQL_ATTRIBUTES) do
      if def[k] ~= nil and type(def[k]) ~= want then bad(t, "%s: %s must be a %s", column, k, want) end
    end
    if not def.sql_type or not sql_kind(def.sql_type) then
      bad(t, "%s: sql_type %q is not one this declaration knows", column, tostring(def.sql_type))
    end
    if def.on_delete and not (def.references and ON_DELETE[def.on_delete]) then
      bad(t, "%s: on_delete needs references and one of cascade, restrict, set null, set default", column)
    end
    if def.references then
      local rt, rc = def.references:match("^([%w_]+)%.([%w_]+)$")
      local target = by_name[rt]
      if not (target and target.columns[rc]) then
        bad(t, "%s references %s, not a column of a table declared before", column, def.references)
      end
    end
    t.column_list[#t.column_list + 1] = column
    t.columns[column] = def
  end
  column_names(t, t.primary_key, "primary_key")
  for _, u in ipairs(t.unique or {}) do column_names(t, u, "unique") end
  for _, ix in ipairs(t.indexes or {}) do
    if type(ix.name) ~= "string" then bad(t, "an index needs a name") end
    column_names(t, ix.columns, "index " .. ix.name)
  end
  for _, tr in ipairs(t.triggers or {}) do
    if tr.capture then
      -- a data fix's change capture (schema/003_data_fixes.sql): the same on every table
      tr.event, tr.execute, tr.when = "AFTER INSERT OR DELETE OR UPDATE", "data_fix_capture", schema.CAPTURE_WHEN
    end
    if type(tr.name) ~= "string" or type(tr.event) ~= "string" or type(tr.execute) ~= "string" then
      bad(t, "a trigger needs a name, an event and the function it executes")
    end
  end
  t.writable = {}
  for _, c in ipairs(t.column_list) do
    if not t.columns[c].auto then t.writable[#t.writable + 1] = c end
  end
  for i, r in ipairs(t.records or {}) do
    if type(r.name) ~= "string" then bad(t, "records[%d] needs a name", i) end
    r.fields = r.fields or t.writable
    column_names(t, r.fields, "record " .. r.name)
    for _, c in ipairs(r.fields) do
      if t.columns[c].auto then bad(t, "record %s: column %s is auto, never written from a record", r.name, c) end
    end
  end
  -- A NOT NULL column with no default must be required of the record a row
  -- is created from, or the database would be the one to refuse the row.
  local create = t.records and t.records[1]
  if create then
    for _, c in ipairs(create.fields) do
      local def = t.columns[c]
      if def.not_null and def.sql_default == nil and not def.required then
        bad(t, "%s is NOT NULL with no default: record %s must require it", c, create.name)
      end
    end
  end
  return t
end

for _, name in ipairs(TABLE_NAMES) do
  local t = require("alex.schema." .. name)
  if t.name ~= name then bad(t, "declared in alex.schema.%s", name) end
  schema.check(t)
  by_name[name] = t
  schema.TABLES[#schema.TABLES + 1] = t
end

-- table(name) -> the declaration; an unknown name is a bug.
function schema.table(name)
  local t = by_name[name]
  if not t then error(("alex.schema: no table %q"):format(tostring(name)), 2) end
  return t
end

-- The cast a parameter needs to land in the column ("::numeric", "::uuid",
-- "::date", "::jsonb"; "" for text and integers).
function schema.cast(table_name, column)
  local def = schema.table(table_name).columns[column]
  if not def then error(("alex.schema: %s has no column %q"):format(table_name, tostring(column)), 2) end
  return sql_kind(def.sql_type).cast or ""
end

-- rules(table_name, column) -> the alex.records field definition checking
-- the column's values (a new table).
function schema.rules(table_name, column)
  local t = schema.table(table_name)
  local def = t.columns[column]
  local out = {}
  if def.references then
    local rt, rc = def.references:match("^([%w_]+)%.([%w_]+)$")
    for k, v in pairs(schema.rules(rt, rc)) do
      if k ~= "required" and k ~= "default" then out[k] = v end
    end
  end
  for k, v in pairs(def) do
    if not SQL_ATTRIBUTES[k] then out[k] = v end
  end
  local kind = sql_kind(def.sql_type)
  if out.type == nil then out.type = kind.type end
  if out.type == nil then
    error(("alex.schema: %s.%s: a %s column needs a type to be checked"):format(table_name, column, def.sql_type), 2)
  end
  if out.type == "string" and kind.len_max and out.len_max == nil and out.one_of == nil then
    out.len_max = kind.len_max
  end
  if out.type == "decimal" and kind.precision then
    if out.precision == nil then out.precision = kind.precision end
    if out.places == nil then out.places = kind.places end
  end
  return out
end

-- record_specs() -> what alex.records.define takes, for every record of every
-- table, in declaration order.
function schema.record_specs()
  local out = {}
  for _, t in ipairs(schema.TABLES) do
    for _, r in ipairs(t.records or {}) do
      local fields = {}
      for i, c in ipairs(r.fields) do fields[i] = { [c] = schema.rules(t.name, c) } end
      out[#out + 1] = { name = r.name, fields = fields, entity_checks = r.entity_checks }
    end
  end
  return out
end

-- owned() -> { tables, indexes, triggers, functions }: the names of what the
-- schema creates, tables in creation order.  reset drops them; verify checks
-- they exist.
function schema.owned()
  local owned = { tables = {}, indexes = {}, triggers = {}, functions = {} }
  for _, t in ipairs(schema.TABLES) do
    owned.tables[#owned.tables + 1] = t.name
    for _, ix in ipairs(t.indexes or {}) do owned.indexes[#owned.indexes + 1] = ix.name end
    for _, tr in ipairs(t.triggers or {}) do owned.triggers[#owned.triggers + 1] = tr.name end
  end
  for i, f in ipairs(schema.FUNCTIONS) do owned.functions[i] = f end
  return owned
end

return schema
