-- luacheck: std +busted
-- alex.sql: the statement splitter, first_line and checksum; the schema files
-- split and run statement by statement on a throwaway PostgreSQL 15.
local sql = require "alex.sql"
local servers = require "servers"

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local root = here .. "/.."

local function read(path) return assert(require("servers").read_file(path)) end

-- Just the statements' text.
local function texts(list)
  local out = {}
  for i, st in ipairs(list) do out[i] = st.sql end
  return out
end
local function lines(list)
  local out = {}
  for i, st in ipairs(list) do out[i] = st.line end
  return out
end
local function split_ok(text)
  local list, err = sql.split(text)
  assert(list, err)
  return list
end

describe("sql.split", function()
  it("cuts at semicolons, trims, drops the ';' and empty chunks", function()
    local list = split_ok("  select 1 ;\n\n select 2;;  ;\nselect 3")
    assert.same({ "select 1", "select 2", "select 3" }, texts(list))
    assert.same({ 1, 3, 4 }, lines(list))
    assert.same({}, split_ok(""))
    assert.same({}, split_ok("  \n\t ;; \n"))
  end)

  it("drops comment-only chunks and comments around a statement, keeps inner ones", function()
    local list = split_ok("-- header\n/* block */\n;\n-- about users\nSELECT a, -- inner\n b FROM t -- after\n;\n"
      .. "-- tail\n")
    assert.same({ "SELECT a, -- inner\n b FROM t" }, texts(list))
    assert.same({ 5 }, lines(list))
  end)

  -- Each case: what it shows, then pairs of a text and the statements it
  -- splits into.
  for _, c in ipairs {
    { "keeps semicolons inside single-quoted strings with '' escapes",
      { "insert into t values ('a;b', 'it''s; fine', '');select ';'",
        { "insert into t values ('a;b', 'it''s; fine', '')", "select ';'" } } },
    { "treats backslashes as escapes only in E'' strings",
      { [[select E'it\'s; \\'; select 'C:\'; select e'\';x'; select 1]],
        { [[select E'it\'s; \\']], [[select 'C:\']], [[select e'\';x']], "select 1" } },
      -- an identifier ending in e is not an E prefix
      { [[select name'x\'; select 2]], { [[select name'x\']], "select 2" } } },
    { "keeps semicolons inside double-quoted identifiers with \"\" escapes",
      { 'select "a;b", "say ""hi"";" from "t;"; select 2', { 'select "a;b", "say ""hi"";" from "t;"', "select 2" } } },
    { "ignores quotes and semicolons inside -- comments",
      { "select 1 -- it's; \"odd $$\nfrom t; select 2", { "select 1 -- it's; \"odd $$\nfrom t", "select 2" } },
      { "select 3 - 1", { "select 3 - 1" } } },
    { "handles nested /* /* */ */ comments",
      { "select /* a /* b; */ c; ' */ 1; /* x */ select 2 / 1 * 3",
        { "select /* a /* b; */ c; ' */ 1", "select 2 / 1 * 3" } } },
    { "handles dollar quotes with and without tags",
      { "select $$a;b$$; select $fn$ $$; $ $fn$; select $_x1$;$_x1$; select $a$ $b$; $b$ $a$",
        { "select $$a;b$$", "select $fn$ $$; $ $fn$", "select $_x1$;$_x1$", "select $a$ $b$; $b$ $a$" } } },
    { "does not take $1 parameters or $ inside identifiers for dollar quotes",
      { "prepare p(int, int) as select $1 + $2; select a$b$c, x$$ from t; select $1$",
        { "prepare p(int, int) as select $1 + $2", "select a$b$c, x$$ from t", "select $1$" } } },
  } do
    it(c[1], function()
      for i = 2, #c do assert.same(c[i][2], texts(split_ok(c[i][1]))) end
    end)
  end

  it("keeps a plpgsql body in one statement", function()
    local text = [[
CREATE FUNCTION f() RETURNS trigger AS $body$
BEGIN
  NEW.x := 'a;b'; -- ;
  RETURN NEW;
END;
$body$ LANGUAGE plpgsql;
SELECT 1;]]
    local list = split_ok(text)
    assert.equal(2, #list)
    assert.matches("^CREATE FUNCTION f%(%).*LANGUAGE plpgsql$", list[1].sql)
    assert.same({ 1, 7 }, lines(list))
  end)

  it("keeps semicolons inside parentheses and BEGIN ATOMIC bodies, as psql does", function()
    local list = split_ok([[
CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));
CREATE OR REPLACE FUNCTION g(x int) RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;
  SELECT x;
END;
CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;
SELECT 'begin'; BEGIN; SELECT 1; END;]])
    assert.same({ 1, 2, 7, 8, 8, 8, 8 }, lines(list))
    assert.matches("^CREATE RULE.*%(2%)%)$", list[1].sql)
    assert.matches("^CREATE OR REPLACE FUNCTION g.*SELECT x;\nEND$", list[2].sql)
    assert.equal("CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END", list[3].sql)
    assert.same({ "SELECT 'begin'", "BEGIN", "SELECT 1", "END" },
      { list[4].sql, list[5].sql, list[6].sql, list[7].sql })
  end)

  it("counts lines across every construct and CRLF line ends", function()
    local text = "select 'a\nb';\r\n/* x\n y */ select $$\n$$;\n\"c\nd\";\n-- z\nselect 4"
    assert.same({ 1, 4, 6, 9 }, lines(split_ok(text)))
  end)

  it("reports unterminated constructs with the line where they open", function()
    local cases = {
      { "select 1;\n\nselect 'abc\n;", "line 3: unterminated quoted string" },
      { "select E'abc\\';", "line 1: unterminated E'...' string" },
      { "select 1;\nselect \"abc;", "line 2: unterminated quoted identifier" },
      { "select 1;\n/* a /* b */\n", "line 2: unterminated /* comment" },
      { "\n\n\nselect $fn$ body $$;", "line 4: unterminated dollar-quoted string $fn$" },
      { "select $$;", "line 1: unterminated dollar-quoted string $$" },
    }
    for _, c in ipairs(cases) do
      local list, err = sql.split(c[1])
      assert.is_nil(list)
      assert.equal(c[2], err)
    end
  end)

  it("raises on a non-string argument (a programming error)", function()
    assert.has_error(function() sql.split(nil) end, "sql.split: text must be a string")
    assert.has_error(function() sql.first_line(42) end, "sql.first_line: text must be a string")
  end)

  it("splits the schema files into their statements", function()
    local s1 = split_ok(read(root .. "/schema/001_schema.sql"))
    -- 5 tables, 5 indexes, 1 function, 5 triggers
    assert.equal(16, #s1)
    assert.matches("^CREATE TABLE users %(", s1[1].sql)
    assert.matches("^CREATE FUNCTION update_updated_at_column%(%).*LANGUAGE plpgsql$", s1[11].sql)
    for i = 12, 16 do assert.matches("^CREATE TRIGGER update_%w+_updated_at BEFORE UPDATE", s1[i].sql) end
    for _, st in ipairs(s1) do
      assert.is_nil(st.sql:find(";%s*$"))
      assert.matches("^CREATE", st.sql)
    end
    local s2 = split_ok(read(root .. "/schema/002_history_and_logs.sql"))
    assert.equal(5, #s2) -- 2 tables, 3 indexes
    assert.matches("^CREATE TABLE price_history", s2[1].sql)
    assert.matches("^CREATE TABLE agent_logs", s2[3].sql)
  end)

  it("runs in linear time", function()
    local function cost(n)
      local unit = "INSERT INTO t VALUES ('a;b', E'c\\'d', $$e;f$$, \"g\") /* c */ ; -- x\n"
      local text = unit:rep(n)
      local t0 = os.clock()
      local list = split_ok(text)
      local t = os.clock() - t0
      assert.equal(n, #list)
      assert.equal(n, list[n].line)
      return t
    end
    cost(2000) -- warm up
    local small, big = cost(20000), cost(80000)
    -- 4x the input: allow up to 10x the time (quadratic would be 16x)
    assert.is_true(big < small * 10 + 0.05, ("20k: %.3fs, 80k: %.3fs"):format(small, big))
    -- one long line of statements and one huge string: no quadratic corner
    local t0 = os.clock()
    assert.equal(100000, #split_ok(("select 1;"):rep(100000)))
    assert.equal(1, #split_ok("select '" .. ("x"):rep(4000000) .. "'"))
    assert.is_true(os.clock() - t0 < 2)
  end)
end)

describe("sql.first_line", function()
  it("gives the first line with code, trimmed, marked when more follows", function()
    assert.equal("CREATE TABLE users ( ...", sql.first_line("-- c\n\n   CREATE TABLE users (\n  id int)"))
    assert.equal("SELECT 1", sql.first_line("  SELECT 1  \n  \n"))
    assert.equal("", sql.first_line("-- only\n"))
  end)
  it("cuts long lines without splitting a UTF-8 character", function()
    assert.equal(("a"):rep(10) .. " ...", sql.first_line(("a"):rep(50), 10))
    local s = sql.first_line(("é"):rep(50), 11) -- 2 bytes each: 5 fit
    assert.equal(("é"):rep(5) .. " ...", s)
  end)
end)

describe("sql.checksum", function()
  it("is the sha256 hex of the text", function()
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", sql.checksum(""))
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", sql.checksum("abc"))
  end)
  it("matches sha256sum on the schema files", function()
    for _, name in ipairs { "001_schema.sql", "002_history_and_logs.sql" } do
      local path = root .. "/schema/" .. name
      local ok, out = servers.run("sha256sum " .. servers.q(path))
      assert.is_true(ok, out)
      assert.equal(out:match("^(%x+)"), sql.checksum(read(path)))
    end
  end)
end)

-- A throwaway PostgreSQL 15 cluster on a Unix socket in a temp folder (no TCP).
local PG_BIN = "/usr/lib/postgresql/15/bin"
local function have_pg()
  local f = io.open(PG_BIN .. "/initdb", "rb")
  if not f then return false end
  f:close()
  return os.execute("command -v psql >/dev/null 2>&1") == true
end

describe("schema files on PostgreSQL 15 #pg", function()
  local pg -- { dir, port, as }

  local function psql(db, args)
    return servers.run(("psql -X -q -v ON_ERROR_STOP=1 -h %s -p %d -U postgres -d %s %s"):format(
      servers.q(pg.dir), pg.port, db, args))
  end
  local function query(db, text)
    local ok, out = psql(db, "-At -c " .. servers.q(text))
    assert(ok, out)
    return (out:gsub("\n$", ""))
  end
  -- Each statement alone in its own psql -c (one simple-query message).
  local function run_each(db, list)
    for _, st in ipairs(list) do
      local ok, out = psql(db, "-c " .. servers.q(st.sql))
      assert(ok, ("statement at line %d failed: %s"):format(st.line, out))
    end
  end

  lazy_setup(function()
    assert(have_pg(), "PostgreSQL 15 is not installed (tools/deps.sh installs postgresql-15)")
    local dir = servers.tmpdir()
    local as = ""
    if servers.run("test \"$(id -u)\" = 0") then
      assert(servers.run("chown postgres " .. servers.q(dir)))
      as = "runuser -u postgres -- "
    end
    pg = { dir = dir, port = servers.free_port(), as = as }
    local ok, out = servers.run(("%s%s/initdb -D %s/data -A trust -U postgres --no-sync"):format(
      as, PG_BIN, servers.q(dir)))
    assert(ok, out)
    local opts = ("-k %s -c listen_addresses='' -p %d -c fsync=off"):format(dir, pg.port)
    ok, out = servers.run(("%s%s/pg_ctl -D %s/data -l %s/log -w -o %s start"):format(as, PG_BIN,
      servers.q(dir), servers.q(dir), servers.q(opts)))
    assert(ok, out)
    for _, db in ipairs { "viasplit", "viafile", "tricky" } do query("postgres", "CREATE DATABASE " .. db) end
  end)

  lazy_teardown(function()
    if not pg then return end
    servers.run(("%s%s/pg_ctl -D %s/data -m immediate -w stop"):format(pg.as, PG_BIN, servers.q(pg.dir)))
    servers.rmtree(pg.dir)
  end)

  it("each split statement of every migration runs alone, giving what psql -f gives", function()
    for _, name in ipairs { "001_schema.sql", "002_history_and_logs.sql", "003_data_fixes.sql" } do
      local path = root .. "/schema/" .. name
      run_each("viasplit", split_ok(read(path)))
      local ok, out = psql("viafile", "-f " .. servers.q(path))
      assert.is_true(ok, out)
      assert.equal("", out) -- no notice, no warning
    end
    local function dump(db)
      local ok, out = servers.run(("pg_dump -s -h %s -p %d -U postgres %s"):format(servers.q(pg.dir), pg.port, db))
      assert(ok, out)
      -- pg_dump's \restrict key is random per run
      return (out:gsub("\n\\u?n?restrict [^\n]*", ""))
    end
    assert.equal(dump("viafile"), dump("viasplit"))
  end)

  -- (on the database the test above built)
  it("creates the tables, keys, defaults, indexes and triggers", function()
    assert.equal("accounts,agent_logs,data_fix_changes,data_fix_runs,instruments,jobs,positions,price_history,users",
      query("viasplit",
      "SELECT string_agg(tablename, ',' ORDER BY tablename COLLATE \"C\") FROM pg_tables WHERE schemaname = 'public'"))
    assert.equal("13", query("viasplit", "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"))
    assert.equal("idx_accounts_user,idx_agent_logs_created,idx_agent_logs_job,idx_data_fix_changes_run,"
      .. "idx_data_fix_runs_name,idx_jobs_status,idx_jobs_user,"
      .. "idx_positions_account,idx_positions_symbol,idx_price_history_date", query("viasplit",
      "SELECT string_agg(indexname, ',' ORDER BY indexname COLLATE \"C\") FROM pg_indexes"
      .. " WHERE indexname LIKE 'idx_%'"))
    -- column types shared with the Python agents
    assert.equal("jsonb|numeric(12,2)|numeric(20,8)|numeric(5,4)|uuid", query("viasplit", [[
      SELECT string_agg(t, '|' ORDER BY t COLLATE "C") FROM (
        SELECT format_type(a.atttypid, a.atttypmod) AS t FROM pg_attribute a
        WHERE (a.attrelid, a.attname) IN (('users'::regclass, 'target_retirement_income'),
          ('users'::regclass, 'asset_class_targets'), ('positions'::regclass, 'quantity'),
          ('accounts'::regclass, 'cash_interest'), ('accounts'::regclass, 'id'))) s]]))
    query("viasplit", [[INSERT INTO users (clerk_user_id) VALUES ('u1');
      INSERT INTO instruments (symbol, name) VALUES ('SPY', 'S&P');
      INSERT INTO accounts (clerk_user_id, account_name) VALUES ('u1', 'a');
      INSERT INTO positions (account_id, symbol, quantity) SELECT id, 'SPY', 1.5 FROM accounts;
      INSERT INTO jobs (clerk_user_id, job_type) VALUES ('u1', 'portfolio_analysis')]])
    assert.equal('{"equity": 70, "fixed_income": 30}|{"international": 50, "north_america": 50}',
      query("viasplit", "SELECT asset_class_targets::text || '|' || region_targets::text FROM users"))
    assert.equal("{}|{}|{}", query("viasplit",
      "SELECT concat_ws('|', allocation_regions, allocation_sectors, allocation_asset_class) FROM instruments"))
    assert.equal("pending|0.00|0.0000|true", query("viasplit", [[SELECT j.status || '|' || a.cash_balance || '|' ||
      a.cash_interest || '|' || (p.as_of_date = CURRENT_DATE) FROM jobs j, accounts a, positions p]]))
    -- the trigger moves updated_at forward on UPDATE
    assert.equal("true", query("viasplit", [[UPDATE users SET created_at = created_at - interval '1 day',
      updated_at = updated_at - interval '1 day';
      SELECT (updated_at > created_at + interval '23 hours')::text FROM users]]))
    -- cascades: deleting the user removes accounts, positions and jobs
    query("viasplit", [[INSERT INTO agent_logs (job_id, agent_name, message) SELECT id, 'planner', 'hi' FROM jobs;
      INSERT INTO price_history (symbol, price_date, close_price) VALUES ('SPY', '2024-01-02', 470.1)]])
    assert.equal("0|0|0|0|1", query("viasplit", [[DELETE FROM users;
      SELECT concat_ws('|', (SELECT count(*) FROM accounts), (SELECT count(*) FROM positions),
        (SELECT count(*) FROM jobs), (SELECT count(*) FROM agent_logs), (SELECT count(*) FROM price_history))]]))
    -- UNIQUE (symbol, price_date)
    local ok, out = psql("viasplit", "-c " .. servers.q(
      "INSERT INTO price_history (symbol, price_date, close_price) VALUES ('SPY', '2024-01-02', 1)"))
    assert.is_false(ok)
    assert.matches("duplicate key", out)
  end)

  it("splits a tricky script into statements PostgreSQL runs one by one", function()
    local script = [[
-- every quoting form, with semicolons inside
CREATE TABLE "odd;name" ("a""b;" text, n int);
INSERT INTO "odd;name" VALUES ('it''s; ok', 1), (E'back\\slash\'s;', 2), ($$dollar; 'q'$$, 3),
  ($fn$ $$ ; $fn$, 4) /* nested /* ; */ comment */; -- trailing ; comment
CREATE FUNCTION add1(x int) RETURNS int LANGUAGE plpgsql AS $body$
BEGIN
  RETURN x + 1; -- ;
END;
$body$;
CREATE FUNCTION twice(x int) RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN x IS NULL THEN 0 ELSE x * 2 END;
END;
CREATE TABLE log (v text);
CREATE RULE r AS ON INSERT TO "odd;name" DO ALSO (INSERT INTO log VALUES ('a;'); INSERT INTO log VALUES ('b'));
INSERT INTO "odd;name" VALUES ('ruled', add1(twice(2)))
]]
    local list = split_ok(script)
    assert.equal(7, #list)
    assert.same({ 2, 3, 5, 10, 14, 15, 16 }, lines(list))
    run_each("tricky", list)
    assert.equal([[it's; ok|1/back\slash's;|2/dollar; 'q'|3/ $$ ; |4/ruled|5]], query("tricky",
      [[SELECT string_agg("a""b;" || '|' || n, '/' ORDER BY n) FROM "odd;name"]]))
    assert.equal("a;,b", query("tricky", "SELECT string_agg(v, ',' ORDER BY v) FROM log"))
  end)
end)
