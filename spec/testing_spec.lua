-- alex.testing: fresh databases cloned from a template on the local stack,
-- isolated from the main database and from each other, dropped when the
-- process ends (or by the next caller after a kill -9), and sandboxes that
-- always roll back.
local testing = require "alex.testing"
local servers = require "servers"
local ops = require "dbops"

describe("alex.testing", function()
  local s
  ops.seeded_stack(function(started) s = started end)

  local function databases()
    return assert(s:psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database" ..
      " WHERE datname LIKE 'alex_test_%'"))
  end

  -- A child alexlua running `body` with `db` a test database on the stack.
  local function child(body, extra_env)
    local dir = ops.tmpdir()
    local script = dir .. "/child.lua"
    ops.write(script, ([[
      local host = require "alex.host"
      local f = assert(io.open(%q, "rb"))
      local settings = assert(host.dotenv(f:read("a")))
      f:close()
      local db = require("alex.testing").database { settings = settings }
      io.stdout:write(db.database_name, "\n") io.stdout:flush()
      %s
    ]]):format(s.dir .. "/local.env", body))
    local r = ops.run(s, script, {}, extra_env)
    ops.rmdir(dir)
    return r.code == 0, r.all
  end

  it("gives each caller a migrated, seeded database of its own, apart from the main one", function()
    local before = ops.fingerprint(s)
    local a = testing.database { settings = s.env }
    local b = testing.database { settings = s.env }
    finally(function() testing.drop(a) testing.drop(b) end)
    assert.are_not.equal(a.database_name, b.database_name)
    assert.equal(22, #a:query("SELECT symbol FROM instruments"))
    assert.equal("test_user_001", a:query_one("SELECT clerk_user_id FROM users").clerk_user_id)
    assert.equal(3, a:query_one("SELECT count(*) AS n FROM schema_migrations").n)
    a:execute("DELETE FROM positions")
    assert.equal(0, a:query_one("SELECT count(*) AS n FROM positions").n)
    assert.equal(5, b:query_one("SELECT count(*) AS n FROM positions").n)
    assert.equal(before, ops.fingerprint(s)) -- the main database is untouched
  end)

  it("sandbox rolls back what its block did, whether the block succeeds or fails", function()
    local db = testing.database { settings = s.env }
    finally(function() testing.drop(db) end)
    local n = testing.sandbox(db, function(tx)
      tx:execute("DELETE FROM positions")
      return tx:query_one("SELECT count(*) AS n FROM positions").n
    end)
    assert.equal(0, n)
    assert.equal(5, db:query_one("SELECT count(*) AS n FROM positions").n)
    assert.has_error(function()
      testing.sandbox(db, function(tx)
        tx:execute("DELETE FROM accounts")
        error("the block fails", 0)
      end)
    end, "the block fails")
    assert.equal(3, db:query_one("SELECT count(*) AS n FROM accounts").n)
  end)

  it("drops the database when the process ends, and one left by a kill -9 at the next call", function()
    local ok, out = child("")
    assert.is_true(ok, out)
    local name = out:match("(alex_test_[%d_]+)")
    assert.truthy(name, out)
    assert.is_nil(databases():find(name, 1, true))
    -- killed: its exit status is the shell's, its output what it printed first
    local suicide = "io.stdout:flush() os.execute('kill -9 ' .. require('alex.journal').process_stat('self').pid)"
    out = select(2, child(suicide))
    name = out:match("(alex_test_[%d_]+)")
    assert.truthy(name, out)
    assert.truthy(databases():find(name, 1, true), "the killed process's database is gone already")
    local db = testing.database { settings = s.env }
    finally(function() testing.drop(db) end)
    assert.is_nil(databases():find(name, 1, true))
  end)

  it("builds a new template when a migration or seed file changes", function()
    local function templates()
      return assert(s:psql("SELECT coalesce(string_agg(datname, ','), '') FROM pg_database" ..
        " WHERE datname LIKE 'alex_template_%'"))
    end
    local db = testing.database { settings = s.env }
    testing.drop(db)
    local first = templates()
    assert.matches("^alex_template_%x+$", first)
    local project = ops.tmpdir()
    finally(function() ops.rmdir(project) end)
    assert(os.execute(("cp -r schema seed %s/"):format(servers.q(project))))
    ops.write(project .. "/schema/004_note.sql", "CREATE TABLE spec_note (id int);\n")
    local ok, out = child("print(db:query_one(\"SELECT to_regclass('spec_note') IS NOT NULL AS t\").t)",
      { ALEX_PROJECT_DIR = project })
    assert.is_true(ok, out)
    assert.matches("\ntrue\n", out)
    local second = templates()
    assert.matches("^alex_template_%x+$", second)
    assert.are_not.equal(first, second) -- and the old one is gone
  end)
end)
