-- SQL migrations: numbered files (schema/001_schema.sql, ...), each applied
-- once, inside one transaction, recorded with its checksum.
--
-- The Data API takes one statement per call and every call is a round trip to
-- AWS, so a migration's statements travel together in one PL/pgSQL DO block.
-- Each statement runs in its own sub-block that re-raises a failure naming the
-- file, the statement's number and its line, with PostgreSQL's SQLSTATE kept:
-- the error stays as clear as if the statement had been sent alone.
--
-- Outside a transaction consecutive Data API calls do not share a database
-- session, so a session advisory lock would protect nothing: runners take
-- pg_advisory_xact_lock inside each migration's transaction instead.
local sql = require "alex.sql"
local sigv4 = require "alex.sigv4"

local migrate = {}

migrate.TABLE = "schema_migrations"
migrate.LOCK_KEY = 4242017 -- any constant shared by every runner

local CREATE_TABLE = ([[CREATE TABLE IF NOT EXISTS %s (
  version VARCHAR(32) PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  checksum CHAR(64) NOT NULL,
  applied_at TIMESTAMP NOT NULL DEFAULT now(),
  duration_ms INTEGER NOT NULL DEFAULT 0)]]):format(migrate.TABLE)

migrate.CREATE_TABLE_SQL = CREATE_TABLE

local function statements_of(text, name)
  local list, err = sql.split(text)
  if not list then return nil, name .. ": " .. err end
  local out = {}
  for i, st in ipairs(list) do
    if type(st) == "table" then out[i] = { sql = st.sql, line = st.line or 0 }
    else out[i] = { sql = st, line = 0 } end
  end
  return out
end

-- What a migration file is called: NNN_words.sql.  Any other name ending in
-- .sql (any case) is an error rather than skipped, since a migration named
-- 003-add.sql or 003_add.SQL would otherwise never be applied and nobody told.
-- Other files (README, editor backups such as 003_x.sql~, hidden files) are
-- not migrations and are left alone.
local NAME = "^(%d+)_[%w_%-]+%.sql$"
local MAX_VERSION, MAX_NAME = 32, 255 -- the columns of schema_migrations

-- Versions compare as numbers (9 before 10) of any length: by their digits
-- without leading zeros, shorter first.
local function version_key(v)
  return (v:gsub("^0+", ""))
end

local function version_order(a, b)
  local ka, kb = version_key(a.version), version_key(b.version)
  if ka ~= kb then
    if #ka ~= #kb then return #ka < #kb end
    return ka < kb
  end
  return a.name < b.name
end

-- load(dir) -> array of migrations sorted by version, or nil, err naming the
-- folder or the file, and what kind of problem it is: "unavailable" (the
-- folder or a file cannot be used: missing, not a folder, no migrations in
-- it, unreadable, too large, not UTF-8) or "refused" (a file name or content
-- breaks the rules).  Each file is read through alex.files.
-- A migration: { version = "001", name = "001_schema.sql", path, text, checksum, statements }.
function migrate.load(dir)
  local lfs = require "lfs"
  local files = require "alex.files"
  local mode, kerr = files.kind(dir)
  if not mode then return nil, "migrations folder " .. kerr, "unavailable" end
  local shown = files.show(dir)
  if mode ~= "directory" then
    return nil, ("migrations folder %s: is not a folder (it is a %s)"):format(shown, mode), "unavailable"
  end
  local ok, iter, state = pcall(lfs.dir, dir)
  if not ok then
    return nil, ("migrations folder %s: cannot read: %s"):format(shown, tostring(iter)), "unavailable"
  end
  local found, problems = {}, {}
  for entry in iter, state do
    local version = entry:match(NAME)
    if version then
      found[#found + 1] = { version = version, name = entry }
    elseif entry:lower():find("%.sql$") then
      problems[#problems + 1] = ("%s/%s: not a migration name (expected NNN_name.sql: digits, '_', then letters," ..
        " digits, '_' or '-')"):format(shown, files.show(entry))
    end
  end
  table.sort(problems)
  if #problems > 0 then return nil, table.concat(problems, "\n"), "refused" end
  if #found == 0 then
    return nil, ("migrations folder %s: holds no migrations (NNN_name.sql files)"):format(shown), "unavailable"
  end
  table.sort(found, version_order)
  local list, seen = {}, {}
  for _, m in ipairs(found) do
    local version, name = m.version, m.name
    local path = dir .. "/" .. name
    if #version > MAX_VERSION or #name > MAX_NAME then
      return nil, ("%s: the version may have at most %d digits and the name %d characters"):format(
        files.show(path), MAX_VERSION, MAX_NAME), "refused"
    end
    local key = version_key(version)
    if seen[key] then
      return nil, ("migrations folder %s: two migrations share version %s: %s and %s"):format(shown, version,
        seen[key], name), "refused"
    end
    seen[key] = name
    local text, ferr = files.read(path)
    if not text then return nil, ferr, "unavailable" end
    local statements, err = statements_of(text, files.show(path))
    if not statements then return nil, err, "refused" end
    if #statements == 0 then return nil, files.show(path) .. ": no SQL statements", "refused" end
    list[#list + 1] = { version = version, name = name, path = path, text = text,
                        checksum = sigv4.sha256_hex(text), statements = statements }
  end
  return list
end

-- A dollar-quote tag that does not occur in the text.
local function tag_for(text, base)
  local tag, n = "$" .. base .. "$", 0
  while text:find(tag, 1, true) do
    n = n + 1
    tag = "$" .. base .. n .. "$"
  end
  return tag
end

local function literal(s)
  return "'" .. tostring(s):gsub("'", "''") .. "'"
end

-- The DO block applying migration m and recording it (one Data API call).
function migrate.block(m)
  local parts = { "DO " }
  local all = m.text
  local outer = tag_for(all, "alex_migration")
  parts[#parts + 1] = outer .. "\nDECLARE started timestamptz := clock_timestamp();\nBEGIN\n"
  for i, st in ipairs(m.statements) do
    local tag = tag_for(all, "s" .. i)
    parts[#parts + 1] = ("  BEGIN\n    EXECUTE %s%s%s;\n  EXCEPTION WHEN OTHERS THEN\n" ..
      "    RAISE EXCEPTION '%%', %s || SQLERRM USING ERRCODE = SQLSTATE;\n  END;\n"):format(
      tag, st.sql, tag,
      literal(("%s, statement %d (line %d): "):format(m.name, i, st.line)))
  end
  parts[#parts + 1] = ("  INSERT INTO %s (version, name, checksum, duration_ms) VALUES (%s, %s, %s,\n" ..
    "    (extract(epoch FROM clock_timestamp() - started) * 1000)::int);\n"):format(
    migrate.TABLE, literal(m.version), literal(m.name), literal(m.checksum))
  parts[#parts + 1] = "END\n" .. outer
  return table.concat(parts)
end

-- The statement that serialises runners and makes sure the record table
-- exists (inside a transaction: the lock lasts until it ends).
function migrate.lock_sql()
  local tag = tag_for(CREATE_TABLE, "alex_lock")
  return ("DO %s BEGIN PERFORM pg_advisory_xact_lock(%d); EXECUTE %s; END %s"):format(
    tag, migrate.LOCK_KEY, literal(CREATE_TABLE), tag)
end

local function applied_map(conn)
  local rows = conn:query(("SELECT version, name, checksum, applied_at, duration_ms FROM %s ORDER BY version")
    :format(migrate.TABLE))
  local map = {}
  for _, r in ipairs(rows) do map[r.version] = r end
  return map, rows
end

-- status(conn, list) -> array of { version, name, state = "applied"|"pending"|"changed"|"missing", applied_at,
-- migration }.  "missing": recorded in the database but no file has it any
-- more; migration: the entry of list (none for a missing one).
function migrate.status(conn, list)
  local exists = conn:query_one("SELECT to_regclass(:t) IS NOT NULL AS present", { t = migrate.TABLE })
  local map = {}
  local rows = {}
  if exists.present then map, rows = applied_map(conn) end
  local out, known = {}, {}
  for _, m in ipairs(list) do
    known[m.version] = true
    local a = map[m.version]
    local state = "pending"
    if a then state = (a.checksum == m.checksum) and "applied" or "changed" end
    out[#out + 1] = { version = m.version, name = m.name, state = state, applied_at = a and a.applied_at,
                      duration_ms = a and a.duration_ms, migration = m }
  end
  for _, r in ipairs(rows) do
    if not known[r.version] then
      out[#out + 1] = { version = r.version, name = r.name, state = "missing", applied_at = r.applied_at }
    end
  end
  return out
end

local function changed_error(m)
  return require("alex.errors").new { name = "MigrationChanged", message = ("migration %s was changed after it" ..
    " was applied (checksum differs): restore the file, or add a new migration for the change"):format(
    m.path or m.name) }
end

-- pending(conn, list) -> the migrations of list not applied yet, in order.
-- Raises MigrationChanged when an applied one was edited since.
function migrate.pending(conn, list)
  local out = {}
  for _, st in ipairs(migrate.status(conn, list)) do
    if st.state == "changed" then error(changed_error(st.migration), 0) end
    if st.state == "pending" then out[#out + 1] = st.migration end
  end
  return out
end

-- run(conn, list, opts) -> array of the migrations applied now.  Raises on
-- failure (an alex.errors value: the database's, or MigrationChanged when an
-- applied file was edited); every migration applied before the failing one
-- stays applied, the failing one leaves nothing.  opts.log(line) reports progress.
function migrate.run(conn, list, opts)
  opts = opts or {}
  local log = opts.log or function() end
  local applied_now = {}
  for _, m in ipairs(list) do
    local did = conn:transaction(function(tx)
      tx:execute(migrate.lock_sql())
      local map = applied_map(tx)
      -- every earlier file must be unchanged before anything newer is applied
      for _, other in ipairs(list) do
        local a = map[other.version]
        if a and a.checksum ~= other.checksum then error(changed_error(other), 0) end
      end
      if map[m.version] then return false end
      log(("applying %s (%d statements)"):format(m.name, #m.statements))
      tx:execute(migrate.block(m))
      return true
    end, { retries = opts.retries or 2 }) -- safe: a re-run checks under the lock what is applied
    if did then applied_now[#applied_now + 1] = m end
  end
  return applied_now
end

return migrate
