-- alex.migrate and scripts/migrate.lua against a private local stack: status,
-- checksums, a failing migration rolled back whole, concurrent runners,
-- --dry-run and --status.
local migrate = require "alex.migrate"
local ops = require "dbops"

local MIGRATE = "scripts/migrate.lua"

-- A third migration whose third statement fails (on line 7).
local BAD = [[
-- 009: fails on purpose
CREATE TABLE t_one (id int PRIMARY KEY);
CREATE TABLE t_two (id int PRIMARY KEY,
                    note text);

-- the table does not exist
INSERT INTO no_such_table
  VALUES (1);
CREATE TABLE t_three (id int);
]]

local EXTRA = [[
-- 009: one more table, so a run has four migrations to share out
CREATE TABLE extra_notes (id serial PRIMARY KEY, body text NOT NULL);
CREATE INDEX idx_extra_notes_body ON extra_notes(body);
]]

describe("migrations", function()
  local s, conn, dirs

  local function dir_with(files)
    local dir = ops.schema_copy()
    dirs[#dirs + 1] = dir
    for name, text in pairs(files or {}) do
      if text == false then os.remove(dir .. "/" .. name) else ops.write(dir .. "/" .. name, text) end
    end
    return dir
  end

  local function states(dir)
    local out = {}
    for _, st in ipairs(migrate.status(conn, assert(migrate.load(dir)))) do out[st.name] = st.state end
    return out
  end

  local function recorded()
    return assert(s:psql("SELECT coalesce(string_agg(version, ',' ORDER BY version), '') FROM schema_migrations"))
  end

  ops.connected_stack({ tx_idle_timeout = 5 }, function(...) s, conn, dirs = ... end)

  before_each(function()
    s:clear_faults()
    ops.wipe(s)
  end)

  it("loads the numbered files in order, with the SHA-256 of each as its checksum", function()
    local list = assert(migrate.load("schema"))
    assert.equal(3, #list)
    assert.same({ "001", "002", "003" }, { list[1].version, list[2].version, list[3].version })
    local p = io.popen("sha256sum schema/001_schema.sql")
    local sum = p:read("a"):match("^(%x+)")
    p:close()
    assert.equal(sum, list[1].checksum)
    assert.equal(16, #list[1].statements)
    local dir = dir_with { ["002_history_and_logs.sql"] = false, ["002_again.sql"] = "SELECT 1;",
                           ["002_twice.sql"] = "SELECT 2;" }
    local none, err = migrate.load(dir)
    assert.is_nil(none)
    assert.matches("two migrations share version 002", err)
  end)

  it("reports applied, pending, changed and missing migrations", function()
    -- only 001 applied
    local first = dir_with { ["002_history_and_logs.sql"] = false, ["003_data_fixes.sql"] = false }
    assert.equal(1, #migrate.run(conn, assert(migrate.load(first))))
    assert.same({ ["001_schema.sql"] = "applied", ["002_history_and_logs.sql"] = "pending",
                  ["003_data_fixes.sql"] = "pending" }, states("schema"))
    -- 001 edited after it was applied
    local edited = dir_with { ["001_schema.sql"] = ops.read("schema/001_schema.sql") .. "\n-- a late comment\n" }
    assert.same({ ["001_schema.sql"] = "changed", ["002_history_and_logs.sql"] = "pending",
                  ["003_data_fixes.sql"] = "pending" }, states(edited))
    -- both applied, then a folder without 002
    migrate.run(conn, assert(migrate.load("schema")))
    assert.same({ ["001_schema.sql"] = "applied", ["002_history_and_logs.sql"] = "applied",
                  ["003_data_fixes.sql"] = "applied" }, states("schema"))
    assert.same({ ["001_schema.sql"] = "applied", ["002_history_and_logs.sql"] = "missing",
                  ["003_data_fixes.sql"] = "missing" }, states(first))
    local list = migrate.status(conn, assert(migrate.load("schema")))
    assert.truthy(list[1].applied_at:find("^%d%d%d%d%-%d%d%-%d%d "))
  end)

  it("--status prints each state and exits 1 only for changed or missing migrations", function()
    local r = ops.run(s, MIGRATE, { "--status" })
    assert.equal(0, r.code, r.all)
    assert.matches("pending%s+001_schema.sql", r.out)
    assert.matches("pending%s+002_history_and_logs.sql", r.out)

    r = ops.run(s, MIGRATE, {})
    assert.equal(0, r.code, r.all)
    r = ops.run(s, MIGRATE, { "--status" })
    assert.equal(0, r.code, r.all)
    assert.matches("applied%s+001_schema.sql%s+applied %d%d%d%d%-", r.out)
    assert.matches("applied%s+002_history_and_logs.sql", r.out)

    local edited = dir_with { ["001_schema.sql"] = ops.read("schema/001_schema.sql") .. "\n-- edited\n" }
    r = ops.run(s, MIGRATE, { "--status", "--dir", edited })
    assert.equal(1, r.code, r.all)
    assert.matches("changed%s+001_schema.sql", r.out)

    local without = dir_with { ["002_history_and_logs.sql"] = false, ["003_data_fixes.sql"] = false }
    r = ops.run(s, MIGRATE, { "--status", "--dir", without })
    assert.equal(1, r.code, r.all)
    assert.matches("missing%s+002_history_and_logs.sql", r.out)
  end)

  it("refuses to run when an applied file changed, naming the file, and applies nothing", function()
    migrate.run(conn, assert(migrate.load("schema")))
    local edited = dir_with { ["001_schema.sql"] = ops.read("schema/001_schema.sql"):gsub("INTEGER", "BIGINT", 1),
                              ["009_extra.sql"] = EXTRA }
    local before = ops.fingerprint(s)
    local r = ops.run(s, MIGRATE, { "--dir", edited })
    assert.equal(1, r.code, r.all)
    assert.matches(edited .. "/001_schema.sql", r.err, 1, true)
    assert.matches("was changed after it was applied", r.err)
    assert.equal(before, ops.fingerprint(s)) -- 009 was not applied either
    assert.equal("001,002,003", recorded())
    -- the library raises the same error
    local ok, err = pcall(migrate.run, conn, assert(migrate.load(edited)))
    assert.is_false(ok)
    assert.matches("001_schema.sql was changed", tostring(err))
    -- --dry-run refuses too
    r = ops.run(s, MIGRATE, { "--dry-run", "--dir", edited })
    assert.equal(1, r.code, r.all)
    assert.matches("001_schema.sql was changed", r.err)
    assert.equal(before, ops.fingerprint(s))
  end)

  it("rolls a failing migration back completely and names file, statement and line", function()
    local dir = dir_with { ["009_bad.sql"] = BAD }
    local r = ops.run(s, MIGRATE, { "--dir", dir })
    assert.equal(1, r.code, r.all)
    assert.matches("009_bad.sql, statement 3 (line 7): relation \"no_such_table\" does not exist", r.err, 1, true)
    assert.matches("SQLState: 42P01", r.err, 1, true)
    -- 001 to 003 ran before it and stay; nothing of 009 remains
    assert.equal("001,002,003", recorded())
    assert.equal("accounts,agent_logs,data_fix_changes,data_fix_runs,instruments,jobs,positions,price_history," ..
      "schema_migrations,users",
      ops.tables(s))
    assert.equal("f|f|f", (s:psql("SELECT to_regclass('t_one') IS NOT NULL, to_regclass('t_two') IS NOT NULL, " ..
      "to_regclass('t_three') IS NOT NULL"):gsub("\n", "|")))
    -- through the library: the error keeps PostgreSQL's SQLSTATE
    local before = ops.fingerprint(s)
    local ok, err = pcall(migrate.run, conn, assert(migrate.load(dir)))
    assert.is_false(ok)
    assert.equal("42P01", err.sqlstate)
    assert.equal("DatabaseErrorException", err.name)
    assert.matches("009_bad.sql, statement 3 (line 7)", err.message, 1, true)
    assert.equal(before, ops.fingerprint(s))
    assert.equal(0, s:stats().open_transactions)
  end)

  it("two runners at once apply each migration exactly once", function()
    local dir = dir_with { ["009_extra.sql"] = EXTRA }
    -- 25 ms per call: a run takes a few hundred ms, so the two overlap
    assert(s:set_faults { latency_ms = 25 })
    s:reset_stats()
    local results = ops.run_parallel(s, { { MIGRATE, { "--dir", dir } }, { MIGRATE, { "--dir", dir } } })
    s:clear_faults()
    local a, b = results[1], results[2]
    assert.equal(0, a.code, a.all)
    assert.equal(0, b.code, b.all)
    assert.is_true(a.started < b.ended and b.started < a.ended, "the two runs did not overlap")
    local function applied(r)
      return tonumber(r.out:match("applied (%d+) migration")) or (r.out:find("nothing to apply") and 0)
    end
    assert.equal(4, applied(a) + applied(b), a.out .. b.out)
    assert.equal("001,002,003,009", recorded())
    assert.equal("1", s:psql("SELECT max(n) FROM (SELECT count(*) AS n FROM schema_migrations GROUP BY version) c"))
    assert.equal("0", s:psql("SELECT count(*) FROM extra_notes"))
    assert.equal(8, s:stats().operations.BeginTransaction) -- four per runner
    -- again: both find nothing to do
    results = ops.run_parallel(s, { { MIGRATE, { "--dir", dir } }, { MIGRATE, { "--dir", dir } } })
    for _, r in ipairs(results) do
      assert.equal(0, r.code, r.all)
      assert.matches("nothing to apply", r.out)
    end
  end)

  it("--dry-run prints the pending statements and changes nothing", function()
    local before = ops.fingerprint(s)
    assert.equal("(empty)", before)
    local r = ops.run(s, MIGRATE, { "--dry-run" })
    assert.equal(0, r.code, r.all)
    assert.matches("%-%- 001_schema.sql %(16 statements%)", r.out)
    assert.matches("%-%- 002_history_and_logs.sql %(5 statements%)", r.out)
    assert.matches("CREATE TABLE users", r.out, 1, true)
    assert.equal(before, ops.fingerprint(s))
    -- with 001 applied only 002 is pending
    local only_001 = dir_with { ["002_history_and_logs.sql"] = false, ["003_data_fixes.sql"] = false }
    migrate.run(conn, assert(migrate.load(only_001)))
    before = ops.fingerprint(s)
    r = ops.run(s, MIGRATE, { "--dry-run" })
    assert.equal(0, r.code, r.all)
    assert.is_nil(r.out:find("001_schema.sql", 1, true))
    assert.matches("CREATE TABLE price_history", r.out, 1, true)
    assert.equal(before, ops.fingerprint(s))
    migrate.run(conn, assert(migrate.load("schema")))
    r = ops.run(s, MIGRATE, { "--dry-run" })
    assert.equal(0, r.code, r.all)
    assert.matches("nothing pending", r.out)
  end)

  it("a migrations folder argument is a path, never SQL", function()
    for _, bad in ipairs(ops.INJECTIONS) do
      local r = ops.run(s, MIGRATE, { "--dir", bad })
      assert.equal(2, r.code, r.all)
      assert.equal("error: migrations folder " .. bad .. ": cannot read: No such file or directory\n", r.err)
    end
    assert.equal("(empty)", ops.fingerprint(s))
  end)

  describe("a migrations folder that cannot be used is an error naming it, and nothing changes", function()
    local function refused(dir, code, pattern, kind)
      local list, err, got_kind = migrate.load(dir)
      assert.is_nil(list)
      assert.matches(pattern, err)
      assert.equal(kind, got_kind)
      for _, args in ipairs { { "--dir", dir }, { "--status", "--dir", dir }, { "--dry-run", "--dir", dir } } do
        s:reset_stats()
        local r = ops.run(s, MIGRATE, args)
        assert.equal(code, r.code, r.all)
        assert.matches("^error: ", r.err)
        assert.matches(pattern, r.err)
        assert.is_nil(r.err:find("traceback", 1, true), r.err)
        assert.equal(0, ops.calls(s), table.concat(args, " "))
      end
      assert.equal("(empty)", ops.fingerprint(s))
    end

    it("missing, not a folder, empty, or holding only other files", function()
      local dir = dir_with {}
      refused(dir .. "/nope", 2, "migrations folder .*/nope: cannot read: No such file or directory", "unavailable")
      refused(dir .. "/001_schema.sql", 2, "migrations folder .*/001_schema.sql: is not a folder", "unavailable")
      local empty = ops.tmpdir()
      dirs[#dirs + 1] = empty
      refused(empty, 2, "migrations folder " .. empty:gsub("%p", "%%%0") .. ": holds no migrations", "unavailable")
      ops.write(empty .. "/README.md", "# notes\n")
      ops.write(empty .. "/001_schema.sql~", "CREATE TABLE backup (id int);\n")
      ops.write(empty .. "/.001_hidden.swp", "x")
      assert(os.execute("mkdir " .. ops.q(empty .. "/old")))
      refused(empty, 2, "holds no migrations", "unavailable")
    end)

    it("a .sql file not named as a migration, or two files of one version", function()
      local dir = dir_with { ["009-extra.sql"] = EXTRA, ["010_more.SQL"] = EXTRA }
      refused(dir, 1, "009%-extra%.sql: not a migration name %(expected NNN_name%.sql", "refused")
      local _, err = migrate.load(dir)
      assert.matches("010_more%.SQL: not a migration name", err) -- both named at once
      refused(dir_with { ["2_again.sql"] = EXTRA }, 1, "two migrations share version 2: 002_history_and_logs.sql"
        .. " and 2_again.sql", "refused")
      refused(dir_with { ["009_empty.sql"] = "-- nothing here\n" }, 1, "009_empty.sql: no SQL statements", "refused")
    end)

    it("a migration that is not a regular file, not UTF-8, or too large", function()
      local dir = dir_with {}
      assert(os.execute("mkdir " .. ops.q(dir .. "/009_folder.sql")))
      refused(dir, 2, "009_folder%.sql: is a directory, not a regular file", "unavailable")
      os.remove(dir .. "/009_folder.sql")
      assert(os.execute("mkfifo " .. ops.q(dir .. "/009_fifo.sql"))) -- opening it would wait for ever
      refused(dir, 2, "009_fifo%.sql: is a FIFO %(named pipe%), not a regular file", "unavailable")
      os.remove(dir .. "/009_fifo.sql")
      ops.write(dir .. "/009_latin1.sql", "-- caf\233\nSELECT 1;\n")
      refused(dir, 2, "009_latin1%.sql:1:7: not valid UTF%-8", "unavailable")
      os.remove(dir .. "/009_latin1.sql")
      assert(os.execute("truncate -s 17M " .. ops.q(dir .. "/009_huge.sql")))
      refused(dir, 2, "009_huge%.sql: is 17%.0 MiB, over the 16%.0 MiB limit", "unavailable")
    end)
  end)

  it("orders versions as numbers and ignores files that are not migrations", function()
    local dir = dir_with { ["9_nine.sql"] = "CREATE TABLE t_nine (id int);",
                           ["10_ten.sql"] = "CREATE TABLE t_ten (id int);",
                           ["README.md"] = "not SQL", ["009_old.sql.bak"] = "not SQL either" }
    local list = assert(migrate.load(dir))
    local names = {}
    for i, m in ipairs(list) do names[i] = m.name end
    assert.same({ "001_schema.sql", "002_history_and_logs.sql", "003_data_fixes.sql", "9_nine.sql", "10_ten.sql" },
      names)
  end)
end)
