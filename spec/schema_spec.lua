-- The table declarations (alex.schema) against the database the migrations
-- build, on a private local stack: every table, column (type, nullability,
-- default), primary key, unique constraint, foreign key, index, trigger and
-- function must be on both sides, so a migration that drifts from the
-- declaration (or a declaration that drifts from the migrations) fails here.
local migrate = require "alex.migrate"
local schema = require "alex.schema"
local ops = require "dbops"

-- What the catalogue of the current schema holds, one query per kind of object.
local COLUMNS_SQL = [[
SELECT c.relname AS tbl, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS def
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped]]

local RELATIONS_SQL = [[
SELECT c.relname AS name, c.relkind::text AS kind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind NOT IN ('i', 'I')]]

local function cols_of(array, relation)
  return ([[(SELECT string_agg(a.attname, ',' ORDER BY u.i) FROM unnest(%s) WITH ORDINALITY u(n, i)
             JOIN pg_attribute a ON a.attrelid = %s AND a.attnum = u.n)]]):format(array, relation)
end

local CONSTRAINTS_SQL = ([[
SELECT c.relname AS tbl, k.conname AS name, k.contype::text AS kind, %s AS cols,
       f.relname AS ref_table, %s AS ref_cols, k.confdeltype::text AS on_delete
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class f ON f.oid = k.confrelid
WHERE n.nspname = current_schema()]]):format(cols_of("k.conkey", "k.conrelid"), cols_of("k.confkey", "k.confrelid"))

-- Indexes other than those backing a constraint (primary key, unique).
local INDEXES_SQL = [[
SELECT t.relname AS tbl, i.relname AS name, x.indisunique AS is_unique,
       (SELECT string_agg(pg_get_indexdef(x.indexrelid, k, true), ',' ORDER BY k)
        FROM generate_series(1, x.indnatts) k) AS cols
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema()
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid)]]

local TRIGGERS_SQL = [[
SELECT c.relname AS tbl, g.tgname AS name, pg_get_triggerdef(g.oid) AS def
FROM pg_trigger g
JOIN pg_class c ON c.oid = g.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND NOT g.tgisinternal]]

local FUNCTIONS_SQL = [[
SELECT p.proname AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = current_schema()]]

local keys = require("servers").sorted_keys

local ON_DELETE = { a = "no action", r = "restrict", c = "cascade", n = "set null", d = "set default" }
local KIND = { r = "table", p = "table", S = "sequence", v = "view", m = "materialized view",
  c = "composite type", f = "foreign table" }

-- Adds "<what>: in the database, not declared" and "<what>: declared, not in
-- the database" for the keys of one set missing from the other.
local function compare_sets(problems, in_db, declared)
  for k in pairs(in_db) do
    if not declared[k] then problems[#problems + 1] = k .. ": in the database, not declared" end
  end
  for k in pairs(declared) do
    if not in_db[k] then problems[#problems + 1] = k .. ": declared, not in the database" end
  end
end

-- drift(conn) -> sorted list of every difference between the declarations
-- and the database's catalogue (empty when they agree).  The migrations'
-- own ledger, schema_migrations (alex.migrate), is not part of the schema.
local function drift(conn)
  local problems = {}
  local ledger = migrate.TABLE

  -- relations: tables both ways, and nothing else (views...) but the
  -- sequences behind declared column defaults (a bigserial's nextval)
  local db_tables, declared_tables, declared_sequences = {}, {}, {}
  for _, t in ipairs(schema.TABLES) do
    for _, c in ipairs(t.column_list) do
      local seq = (t.columns[c].sql_default or ""):match("^nextval%('([%w_]+)'::regclass%)$")
      if seq then declared_sequences[seq] = true end
    end
  end
  for _, r in ipairs(conn:query(RELATIONS_SQL)) do
    if KIND[r.kind] == "table" then
      if r.name ~= ledger then db_tables["table " .. r.name] = true end
    elseif KIND[r.kind] == "sequence" and declared_sequences[r.name] then
      db_tables["table " .. r.name] = nil -- a column's own sequence: declared with its default
    elseif r.name ~= ledger then
      problems[#problems + 1] = ("%s %s: in the database, not declared"):format(KIND[r.kind] or r.kind, r.name)
    end
  end
  for _, t in ipairs(schema.TABLES) do declared_tables["table " .. t.name] = true end
  compare_sets(problems, db_tables, declared_tables)

  -- columns: both ways, then type, nullability and default of each
  local db_columns, declared_columns, found = {}, {}, {}
  for _, r in ipairs(conn:query(COLUMNS_SQL)) do
    if r.tbl ~= ledger then
      db_columns[r.tbl .. "." .. r.col] = true
      found[r.tbl .. "." .. r.col] = r
    end
  end
  for _, t in ipairs(schema.TABLES) do
    local pk = {}
    for _, c in ipairs(t.primary_key) do pk[c] = true end
    for _, c in ipairs(t.column_list) do
      local what, def = t.name .. "." .. c, t.columns[c]
      declared_columns[what] = true
      local r = found[what]
      if r then
        if r.type ~= def.sql_type then
          problems[#problems + 1] = ("%s: type is %s in the database, declared %s"):format(what, r.type, def.sql_type)
        end
        local not_null = (def.not_null or pk[c]) and true or false
        if r.not_null ~= not_null then
          problems[#problems + 1] = ("%s: %s in the database, declared %s"):format(what,
            r.not_null and "NOT NULL" or "nullable", not_null and "NOT NULL" or "nullable")
        end
        if r.def ~= def.sql_default then
          problems[#problems + 1] = ("%s: default is %s in the database, declared %s"):format(what,
            r.def or "none", def.sql_default or "none")
        end
      end
    end
  end
  compare_sets(problems, db_columns, declared_columns)

  -- constraints: primary keys, unique constraints and foreign keys both
  -- ways; any other kind (CHECK, EXCLUDE) is not part of the declarations
  -- one wording of a constraint for both sides, so that they compare
  local function primary_key(tbl, cols) return ("%s: primary key (%s)"):format(tbl, cols) end
  local function unique(tbl, cols) return ("%s: unique (%s)"):format(tbl, cols) end
  local function foreign_key(tbl, cols, ref_table, ref_cols, on_delete)
    return ("%s: foreign key (%s) references %s(%s) on delete %s"):format(tbl, cols, ref_table, ref_cols, on_delete)
  end
  local db_constraints, declared_constraints = {}, {}
  for _, r in ipairs(conn:query(CONSTRAINTS_SQL)) do
    if r.tbl ~= ledger then
      if r.kind == "p" then
        db_constraints[primary_key(r.tbl, r.cols)] = true
      elseif r.kind == "u" then
        db_constraints[unique(r.tbl, r.cols)] = true
      elseif r.kind == "f" then
        db_constraints[foreign_key(r.tbl, r.cols, r.ref_table, r.ref_cols,
          ON_DELETE[r.on_delete] or r.on_delete)] = true
      else
        problems[#problems + 1] = ("%s: constraint %s (contype %s): in the database, not declared"):format(r.tbl,
          r.name, r.kind)
      end
    end
  end
  for _, t in ipairs(schema.TABLES) do
    declared_constraints[primary_key(t.name, table.concat(t.primary_key, ","))] = true
    for _, u in ipairs(t.unique or {}) do
      declared_constraints[unique(t.name, table.concat(u, ","))] = true
    end
    for _, c in ipairs(t.column_list) do
      local def = t.columns[c]
      if def.references then
        local rt, rc = def.references:match("^(.-)%.(.*)$")
        declared_constraints[foreign_key(t.name, c, rt, rc, def.on_delete or "no action")] = true
      end
    end
  end
  compare_sets(problems, db_constraints, declared_constraints)

  -- indexes (those not backing a constraint), with their columns
  local db_indexes, declared_indexes = {}, {}
  for _, r in ipairs(conn:query(INDEXES_SQL)) do
    if r.tbl ~= ledger then
      db_indexes[("%s: %sindex %s (%s)"):format(r.tbl, r.is_unique and "unique " or "", r.name, r.cols)] = true
    end
  end
  for _, t in ipairs(schema.TABLES) do
    for _, ix in ipairs(t.indexes or {}) do
      declared_indexes[("%s: index %s (%s)"):format(t.name, ix.name, table.concat(ix.columns, ","))] = true
    end
  end
  compare_sets(problems, db_indexes, declared_indexes)

  -- triggers: when they fire and what they execute
  local db_triggers, declared_triggers = {}, {}
  for _, r in ipairs(conn:query(TRIGGERS_SQL)) do
    local event, rest = r.def:match("^CREATE TRIGGER %S+ (.-) ON %S+ (.*)$")
    db_triggers[("%s: trigger %s %s %s"):format(r.tbl, r.name, event or "?", rest or r.def)] = true
  end
  for _, t in ipairs(schema.TABLES) do
    for _, tr in ipairs(t.triggers or {}) do
      declared_triggers[("%s: trigger %s %s FOR EACH ROW %sEXECUTE FUNCTION %s()"):format(t.name, tr.name, tr.event,
        tr.when and ("WHEN (%s) "):format(tr.when) or "", tr.execute)] = true
    end
  end
  compare_sets(problems, db_triggers, declared_triggers)

  -- functions
  local db_functions, declared_functions = {}, {}
  for _, r in ipairs(conn:query(FUNCTIONS_SQL)) do db_functions["function " .. r.name] = true end
  for _, f in ipairs(schema.FUNCTIONS) do declared_functions["function " .. f] = true end
  compare_sets(problems, db_functions, declared_functions)

  table.sort(problems)
  return problems
end

describe("alex.schema", function()
  -- A declaration of table t with `over` merged in (a false value removes).
  local function declared(over)
    local t = { name = "t", primary_key = { "id" }, fields = {
      { id = { sql_type = "uuid", sql_default = "gen_random_uuid()", auto = true } },
      { label = { sql_type = "character varying(30)", not_null = true, required = true } },
    } }
    for k, v in pairs(over or {}) do t[k] = v or nil end
    return t
  end

  it("derives each column's rules from its SQL type, its references and its own", function()
    assert.same({ type = "string", required = true, len_min = 1, len_max = 20, match = "^[A-Z0-9.%-]+$",
      match_message = "must contain only upper-case letters, digits, '.' and '-'" },
      schema.rules("positions", "symbol")) -- instruments.symbol's rules, and required of its own
    local inherited = schema.rules("price_history", "symbol") -- not required: price_history has no records
    assert.same({ "len_max", "len_min", "match", "match_message", "type" }, keys(inherited))
    assert.same({ type = "string", len_min = 1, len_max = 255 }, schema.rules("users", "display_name"))
    assert.same({ type = "decimal", min = 0, max = 1, precision = 5, places = 4 },
      schema.rules("accounts", "cash_interest"))
    -- one_of bounds a string already: no length rule besides it
    assert.is_nil(schema.rules("jobs", "status").len_max)
    assert.same({ type = "uuid", required = true }, schema.rules("positions", "account_id"))
    assert.equal("::numeric", schema.cast("positions", "quantity"))
    assert.equal("::jsonb", schema.cast("jobs", "report_payload"))
    assert.equal("", schema.cast("users", "clerk_user_id"))
    assert.has_error(function() schema.table("nope") end, 'alex.schema: no table "nope"')
  end)

  it("owns the tables in creation order, with their indexes, triggers and the trigger function", function()
    local owned = schema.owned()
    assert.same({ "users", "instruments", "accounts", "positions", "jobs", "price_history", "agent_logs",
                  "data_fix_runs", "data_fix_changes" },
      owned.tables)
    assert.equal(10, #owned.indexes)
    assert.equal(13, #owned.triggers) -- 6 keeping updated_at, 7 capturing a data fix's changes
    assert.same({ "update_updated_at_column", "data_fix_capture" }, owned.functions)
  end)

  it("refuses a declaration with a mistake, naming the table and the mistake", function()
    local cases = {
      { { colour = "red" }, "alex.schema: t: unknown attribute colour" },
      { { name = false }, "alex.schema: ?: a table needs a name" },
      { { primary_key = { "nope" } }, "alex.schema: t: primary_key names unknown column nope" },
      { { fields = { { id = { sql_type = "varchar" } } } },
        'alex.schema: t: id: sql_type "varchar" is not one this declaration knows' },
      { { fields = { { id = { sql_type = "uuid", references = "users.nope" } } } },
        "alex.schema: t: id references users.nope, not a column of a table declared before" },
      { { fields = { { id = { sql_type = "uuid", references = "users.clerk_user_id", on_delete = "explode" } } } },
        "alex.schema: t: id: on_delete needs references and one of cascade, restrict, set null, set default" },
      { { indexes = { { name = "idx_t", columns = { "lable" } } } },
        "alex.schema: t: index idx_t names unknown column lable" },
      { { records = { { name = "TCreate", fields = { "id", "label" } } } },
        "alex.schema: t: record TCreate: column id is auto, never written from a record" },
      { { fields = { { id = { sql_type = "uuid" } }, { label = { sql_type = "text", not_null = true } } },
          records = { { name = "TCreate" } } },
        "alex.schema: t: label is NOT NULL with no default: record TCreate must require it" },
    }
    for _, c in ipairs(cases) do
      assert.has_error(function() schema.check(declared(c[1])) end, c[2])
    end
    local t = schema.check(declared { records = { { name = "TCreate" } } })
    assert.same({ "label" }, t.writable)
    assert.same({ "label" }, t.records[1].fields)
  end)
end)

describe("alex.schema against the migrated database", function()
  local s, conn, dirs

  ops.connected_stack({}, function(...) s, conn, dirs = ... end)

  -- A fresh database migrated with schema/*.sql plus `extra` as a last migration.
  local function migrated(extra)
    ops.wipe(s)
    local dir = "schema"
    if extra then
      dir = ops.schema_copy()
      dirs[#dirs + 1] = dir
      ops.write(dir .. "/999_drift.sql", extra) -- after any real migration
    end
    migrate.run(conn, assert(migrate.load(dir)))
  end

  it("the migrations build exactly what the declarations say", function()
    migrated()
    assert.same({}, drift(conn))
    -- the comparison saw the whole schema: every declared table, with columns
    assert.equal(9, #schema.TABLES)
    local n = tonumber(assert(s:psql([[SELECT count(*) FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name <> 'schema_migrations']])))
    local declared = 0
    for _, t in ipairs(schema.TABLES) do declared = declared + #t.column_list end
    assert.equal(declared, n)
  end)

  -- Each migration drifts in one way; drift() must name exactly that.
  local CASES = {
    { "ALTER TABLE accounts ADD COLUMN undeclared_note text;",
      { "accounts.undeclared_note: in the database, not declared" } },
    { "ALTER TABLE jobs DROP COLUMN error_message;", { "jobs.error_message: declared, not in the database" } },
    { "ALTER TABLE positions ALTER COLUMN quantity TYPE numeric(24,8);",
      { "positions.quantity: type is numeric(24,8) in the database, declared numeric(20,8)" } },
    { "ALTER TABLE accounts ALTER COLUMN account_purpose SET NOT NULL;",
      { "accounts.account_purpose: NOT NULL in the database, declared nullable" } },
    { "ALTER TABLE agent_logs ALTER COLUMN message DROP NOT NULL;",
      { "agent_logs.message: nullable in the database, declared NOT NULL" } },
    { "ALTER TABLE accounts ALTER COLUMN cash_balance SET DEFAULT 1;",
      { "accounts.cash_balance: default is 1 in the database, declared 0" } },
    { "ALTER TABLE jobs ALTER COLUMN status DROP DEFAULT;",
      { "jobs.status: default is none in the database, declared 'pending'::character varying" } },
    { "CREATE TABLE notes (id int PRIMARY KEY);", { "notes.id: in the database, not declared",
      "notes: primary key (id): in the database, not declared", "table notes: in the database, not declared" } },
    { "ALTER TABLE price_history DROP CONSTRAINT price_history_pkey;",
      { "price_history: primary key (id): declared, not in the database" } },
    { "ALTER TABLE price_history DROP CONSTRAINT price_history_symbol_price_date_key;",
      { "price_history: unique (symbol,price_date): declared, not in the database" } },
    { [[ALTER TABLE positions DROP CONSTRAINT positions_symbol_fkey;
        ALTER TABLE positions ADD FOREIGN KEY (symbol) REFERENCES instruments(symbol) ON DELETE CASCADE;]],
      { "positions: foreign key (symbol) references instruments(symbol) on delete cascade: in the database, "
        .. "not declared",
        "positions: foreign key (symbol) references instruments(symbol) on delete no action: declared, "
        .. "not in the database" } },
    { "ALTER TABLE positions ADD CONSTRAINT small CHECK (quantity < 150);",
      { "positions: constraint small (contype c): in the database, not declared" } },
    { "DROP INDEX idx_jobs_status;", { "jobs: index idx_jobs_status (status): declared, not in the database" } },
    { "CREATE UNIQUE INDEX idx_users_name ON users(display_name);",
      { "users: unique index idx_users_name (display_name): in the database, not declared" } },
    { "DROP TRIGGER update_jobs_updated_at ON jobs;", { "jobs: trigger update_jobs_updated_at BEFORE UPDATE FOR "
      .. "EACH ROW EXECUTE FUNCTION update_updated_at_column(): declared, not in the database" } },
    { "CREATE SEQUENCE note_numbers;", { "sequence note_numbers: in the database, not declared" } },
    { "CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1';",
      { "function one: in the database, not declared" } },
  }

  it("fails a migration that drifts from the declarations, whichever side lacks what", function()
    for _, case in ipairs(CASES) do
      migrated(case[1])
      assert.same(case[2], drift(conn), case[1])
    end
  end)
end)
