-- Test databases for specs: a fresh database on the local stack, migrated and
-- seeded, for each caller, and sandboxes that are always rolled back.
--
--   local testing = require "alex.testing"
--   local db = testing.database()          -- a connection, like alex.db's
--   testing.sandbox(db, function(tx) ... end)   -- rolled back, whatever happens
--
-- A database is cloned from a template (CREATE DATABASE ... TEMPLATE), which
-- takes a fraction of a second; the template is built once, with alex.reset
-- and the test data, and rebuilt when the migrations or the seed files change
-- (its name carries their hash).  Each database is dropped when the process
-- ends (or by testing.drop); one left behind by a process that was killed is
-- dropped by the next testing.database().  Only the local stack is used,
-- whatever AURORA_CLUSTER_ARN says: tests never touch Aurora.
local db = require "alex.db"
local reset = require "alex.reset"
local journal = require "alex.journal"
local local_stack = require "alex.local_stack"
local sigv4 = require "alex.sigv4"
local json = require "alex.json"
local clock = require "alex.clock"

local testing = {}

local PREFIX = "alex_test_"
local TEMPLATE_PREFIX = "alex_template_"

local function project_root()
  local root = os.getenv("ALEX_PROJECT_DIR")
  if root and root ~= "" then return root end
  return local_stack.checkout_root() or "."
end

-- The local stack's settings (those of `settings`, a local.env as a table,
-- when given), and nothing of the caller's AWS or Aurora setup: a test
-- database is never anywhere else.
local function local_env(database, settings)
  local env, err = settings, nil
  if not env then env, err = local_stack.ensure { quiet = true } end
  if not env then error("alex.testing: " .. tostring(err), 0) end
  return function(k)
    if k == "AURORA_DATABASE" and database then return database end
    if env[k] ~= nil then return env[k] end
    if k:find("^AWS_") or k:find("^AURORA_") then return nil end
    return os.getenv(k)
  end
end

local function connect(database, settings)
  local conn, err = db.connect { env = local_env(database, settings), quiet = true }
  if not conn then error("alex.testing: " .. tostring(err), 0) end
  return conn
end

local function quote_ident(name)
  assert(name:find("^[%w_]+$"), "database names are made here from [a-z0-9_]")
  return '"' .. name .. '"'
end

-- The inputs of the template and their hash: a change to any migration or
-- seed file makes another template.
local function template_inputs()
  local paths = reset.default_paths(project_root())
  paths.with_test_data = true
  local inputs, problems = reset.load(paths)
  if not inputs then error("alex.testing: the schema or seed files have problems:\n" ..
    table.concat(problems, "\n"), 0) end
  local parts = {}
  for _, m in ipairs(inputs.migrations) do parts[#parts + 1] = m.name .. ":" .. m.checksum end
  -- what reset.load read of the seed files (json.encode sorts keys: same data, same text)
  parts[#parts + 1] = sigv4.sha256_hex(assert(json.encode(inputs.instruments)))
  parts[#parts + 1] = sigv4.sha256_hex(assert(json.encode(inputs.test_data)))
  return inputs, sigv4.sha256_hex(table.concat(parts, "\n")):sub(1, 16)
end

local function terminate_sessions(admin, name)
  admin:query([[SELECT pg_terminate_backend(pid, 5000) AS done FROM pg_stat_activity
    WHERE datname = :d AND pid <> pg_backend_pid()]], { d = name })
end

local function exists(admin, name)
  return admin:query_one("SELECT 1 AS x FROM pg_database WHERE datname = :d", { d = name }) ~= nil
end

-- Builds the template under a name of this process's, then renames it: of
-- two processes building at once, one rename wins and the other's copy goes.
local function build_template(admin, name, inputs, settings)
  local me = journal.me()
  local building = ("%sb%d"):format(name, me.pid)
  admin:execute("DROP DATABASE IF EXISTS " .. quote_ident(building) .. " WITH (FORCE)")
  admin:execute("CREATE DATABASE " .. quote_ident(building))
  local conn = connect(building, settings)
  conn:transaction(function(tx) reset.run(tx, inputs) end, { retries = 2 })
  conn:close()
  -- the Data API service keeps pooled sessions on it: a template must have none
  terminate_sessions(admin, building)
  local ok, err = pcall(admin.execute, admin, ("ALTER DATABASE %s RENAME TO %s"):format(quote_ident(building),
    quote_ident(name)))
  if not ok then
    admin:execute("DROP DATABASE IF EXISTS " .. quote_ident(building) .. " WITH (FORCE)")
    if not exists(admin, name) then error(err, 0) end
  end
  -- templates of older schemas or seeds
  for _, r in ipairs(admin:query("SELECT datname FROM pg_database WHERE datname LIKE :p AND datname <> :keep",
    { p = TEMPLATE_PREFIX .. "%", keep = name })) do
    pcall(admin.execute, admin, "DROP DATABASE IF EXISTS " .. quote_ident(r.datname) .. " WITH (FORCE)")
  end
end

-- Databases of processes that are gone (killed before they could drop theirs).
local function drop_orphans(admin)
  for _, r in ipairs(admin:query("SELECT datname FROM pg_database WHERE datname LIKE :p", { p = PREFIX .. "%" })) do
    local pid, start = r.datname:match("^" .. PREFIX .. "(%d+)_(%d+)_%d+$")
    if pid and not journal.process_alive(pid, start) then
      pcall(admin.execute, admin, "DROP DATABASE IF EXISTS " .. quote_ident(r.datname) .. " WITH (FORCE)")
    end
  end
end

local created = setmetatable({}, { __mode = "k" })
local counter = 0

-- drop(conn): drops the test database behind conn now (it is dropped at exit
-- anyway).
function testing.drop(conn)
  local info = created[conn]
  if not info or info.dropped then return end
  info.dropped = true
  pcall(conn.close, conn)
  pcall(info.admin.execute, info.admin, "DROP DATABASE IF EXISTS " .. quote_ident(info.name) .. " WITH (FORCE)")
end

-- database([opts]) -> a connection to a new database on the local stack,
-- migrated, seeded and holding the test user; conn.database_name says which.
-- opts.settings: the settings of another local stack (its local.env as a
-- table), e.g. a private one a spec started.
function testing.database(opts)
  local settings = opts and opts.settings
  local admin = connect(nil, settings)
  local inputs, hash = template_inputs()
  local template = TEMPLATE_PREFIX .. hash
  drop_orphans(admin)
  if not exists(admin, template) then build_template(admin, template, inputs, settings) end
  local me = journal.me()
  counter = counter + 1
  local name = ("%s%d_%s_%d"):format(PREFIX, me.pid, me.start, counter)
  local deadline = clock.monotonic() + 10
  while true do
    local ok, err = pcall(admin.execute, admin, ("CREATE DATABASE %s TEMPLATE %s"):format(quote_ident(name),
      quote_ident(template)))
    if ok then break end
    -- a session still on the template (just built, or opened by hand) blocks the copy
    if not tostring(err):find("being accessed by other users", 1, true) or clock.monotonic() > deadline then
      if tostring(err):find("permission denied to create database", 1, true) then
        error("alex.testing: the local stack's role cannot create databases: restart the stack" ..
          " (sh local/stack.sh down; sh local/stack.sh up) so that it gets CREATEDB", 0)
      end
      error(err, 0)
    end
    terminate_sessions(admin, template)
    clock.sleep(0.05)
  end
  local conn = connect(name, settings)
  conn.database_name = name
  local info = { name = name, admin = admin }
  -- dropped when the process ends: the finalizer runs when the Lua state
  -- closes (alexlua closes it at exit and in os.exit); it holds what it
  -- needs, not the connection, so that an unused connection can go first
  info.guard = setmetatable({}, { __gc = function()
    if info.dropped then return end
    info.dropped = true
    pcall(admin.execute, admin, "DROP DATABASE IF EXISTS " .. quote_ident(name) .. " WITH (FORCE)")
  end })
  created[conn] = info
  return conn
end

local ROLLBACK = setmetatable({}, { __name = "alex.testing.rollback" })

-- sandbox(conn, fn) -> what fn returned: fn(tx) runs in a transaction that is
-- rolled back whatever happens; an error fn raises is raised again.
function testing.sandbox(conn, fn)
  local result
  local ok, err = pcall(conn.transaction, conn, function(tx)
    result = table.pack(fn(tx))
    error(ROLLBACK, 0)
  end)
  if not ok and err ~= ROLLBACK then error(err, 0) end
  return table.unpack(result, 1, result.n)
end

return testing
