-- Fingerprints of a database, for specs, benches and the soak: one owner
-- of "is this the same database?".
--
--   local fingerprint = require "fingerprint"
--   fingerprint.exact(psql)     -- one string: every row, oid and timestamp
--   fingerprint.content(psql)   -- { [key] = "count|md5" }, tables: the schema and
--                               -- the rows without ids and timestamps
--   fingerprint.diff(a, b), fingerprint.same(a, b), fingerprint.digest(fp)
-- psql(sql) -> the query's output (tuples only, unaligned) or raises.
local fingerprint = {}

-- Every table's rows (md5 of all row texts, timestamps included) and oid, every
-- index, trigger and function: any change to the database changes it.
fingerprint.EXACT_SQL = [[
SELECT coalesce(string_agg(item, E'\n' ORDER BY item), '(empty)') FROM (
  SELECT 'table ' || c.relname || ' ' || c.oid || ' ' ||
    (xpath('/row/h/text()', query_to_xml(format(
      'SELECT md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) AS h FROM %I.%I t',
      '|', '', n.nspname, c.relname), false, true, '')))[1]::text AS item
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public' AND c.relkind = 'r'
  UNION ALL
  SELECT 'index ' || indexname FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL
  SELECT 'trigger ' || tgname || ' ' || oid FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL
  SELECT 'function ' || p.proname || ' ' || p.oid FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
) x]]

-- exact(psql) -> one string: any change to the database changes it.
function fingerprint.exact(psql)
  return psql(fingerprint.EXACT_SQL)
end

-- What two resets that ran the same inputs share: columns whose values are
-- made anew each time (ids, timestamps, the uuids of foreign keys) left out,
-- positions keyed by their account's owner and name instead.
local VOLATILE = { id = true, created_at = true, updated_at = true, applied_at = true, duration_ms = true,
                   as_of_date = true, started_at = true, completed_at = true, account_id = true, job_id = true }

-- The schema's parts; %s: a SQL array of table names left out (with their
-- indexes and constraints).
local SCHEMA_SQL = [[
SELECT 'schema.relations|' || count(*) || '|' || md5(coalesce(string_agg(c.relname || ':' || c.relkind::text, ','
         ORDER BY c.relname), ''))
  FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'i', 'S', 'v', 'm')
   AND c.relname <> ALL(%s) AND NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
     WHERE i.indexrelid = c.oid AND t.relname = ANY(%s))
UNION ALL
SELECT 'schema.columns|' || count(*) || '|' || md5(coalesce(string_agg(table_name || '.' || column_name || ' ' ||
         data_type || ' ' || coalesce(column_default, '') || ' ' || is_nullable, ',' ORDER BY table_name,
         ordinal_position), ''))
  FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> ALL(%s)
UNION ALL
SELECT 'schema.constraints|' || count(*) || '|' || md5(coalesce(string_agg(conrelid::regclass::text || '.' ||
         conname || ':' || pg_get_constraintdef(oid), ',' ORDER BY conrelid::regclass::text, conname), ''))
  FROM pg_constraint WHERE connamespace = current_schema()::regnamespace AND conrelid::regclass::text <> ALL(%s)
UNION ALL
SELECT 'schema.triggers|' || count(*) || '|' || md5(coalesce(string_agg(tgrelid::regclass::text || '.' || tgname,
         ',' ORDER BY tgrelid::regclass::text, tgname), ''))
  FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'schema.functions|' || count(*) || '|' || md5(coalesce(string_agg(p.proname, ',' ORDER BY p.proname), ''))
  FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace]]

local COLUMNS_SQL = [[SELECT table_name || '|' || column_name || '|' || data_type FROM information_schema.columns
  WHERE table_schema = current_schema() AND table_name IN (SELECT relname FROM pg_class
    WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r')
  ORDER BY table_name, ordinal_position]]

-- content(psql [, without]) -> the fingerprint, and the set of tables;
-- without: names of tables left out (one tool's own ledger, say).
function fingerprint.content(psql, without)
  local skip, names = {}, {}
  for _, t in ipairs(without or {}) do
    assert(t:find("^[%w_]+$"), "table names only")
    skip[t] = true
    names[#names + 1] = "'" .. t .. "'"
  end
  local array = ("ARRAY[%s]::text[]"):format(table.concat(names, ","))
  local fp, tables, cols, order = {}, {}, {}, {}
  for line in psql(COLUMNS_SQL):gmatch("[^\n]+") do
    local t, c, ty = line:match("^([^|]+)|([^|]+)|(.*)$")
    if not skip[t] then
      if not tables[t] then
        tables[t] = true
        cols[t] = {}
        order[#order + 1] = t
      end
      if not VOLATILE[c] and ty ~= "uuid" then cols[t][#cols[t] + 1] = ('t."%s"'):format(c) end
    end
  end
  local parts = { SCHEMA_SQL:format(array, array, array, array) }
  for _, t in ipairs(order) do
    local list = cols[t]
    local from = ('"%s" t'):format(t)
    if t == "positions" and tables.accounts then
      list = { "a.clerk_user_id", "a.account_name" }
      for _, c in ipairs(cols[t]) do list[#list + 1] = c end
      from = from .. " LEFT JOIN accounts a ON a.id = t.account_id"
    elseif t == "agent_logs" and tables.jobs then
      list = { "j.job_type" }
      for _, c in ipairs(cols[t]) do list[#list + 1] = c end
      from = from .. " LEFT JOIN jobs j ON j.id = t.job_id"
    end
    local row = #list > 0 and ("row(%s)::text"):format(table.concat(list, ", ")) or "''"
    parts[#parts + 1] = ([[SELECT 'table.%s|' || count(*) || '|' || md5(coalesce(string_agg(x, E'\n' ORDER BY x), ''))
  FROM (SELECT %s AS x FROM %s) s]]):format(t, row, from)
  end
  for line in psql(table.concat(parts, "\nUNION ALL\n")):gmatch("[^\n]+") do
    local key, value = line:match("^([^|]+)|(.*)$")
    fp[key] = value
  end
  return fp, tables
end

-- The keys where a and b differ, as "key (a -> b)".
function fingerprint.diff(a, b)
  local keys, seen = {}, {}
  for k in pairs(a) do keys[#keys + 1] = k; seen[k] = true end
  for k in pairs(b) do if not seen[k] then keys[#keys + 1] = k end end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    if a[k] ~= b[k] then
      out[#out + 1] = ("%s (%s -> %s)"):format(k, (a[k] or "absent"):sub(1, 14), (b[k] or "absent"):sub(1, 14))
    end
  end
  return out
end

function fingerprint.same(a, b) return #fingerprint.diff(a, b) == 0 end

-- digest(fp) -> one line for a content fingerprint.
function fingerprint.digest(fp)
  local keys = {}
  for k in pairs(fp) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. "=" .. fp[k] end
  return require("alex.sigv4").sha256_hex(table.concat(parts, "\n")):sub(1, 16) .. " (" .. #keys .. " parts)"
end

return fingerprint
