-- alex.db against the local stack: a real PostgreSQL behind the local Data API
-- service, reached through the same signing and HTTP code as Aurora.
local servers = require "servers"
local ops = require "dbops"
local db = require "alex.db"
local errors = require "alex.errors"
local ini = require "alex.ini"
local sigv4 = require "alex.sigv4"

local function count_calls(s, op)
  return s:stats().operations[op]
end

describe("alex.db", function()
  local s, conn

  ops.connected_stack({ tx_idle_timeout = 2 }, function(...)
    s, conn = ...
    conn:execute([[CREATE TABLE types_t (
      id serial PRIMARY KEY, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, num numeric(20,6),
      b bool, t text, vc varchar(40), ch char(5), u uuid, d date, tm time, ts timestamp, tstz timestamptz,
      j json, jb jsonb, by bytea, ai int4[], at text[], af float8[], ab bool[])]])
    conn:execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, pad text)")
  end)

  before_each(function()
    conn:execute("TRUNCATE items")
    s:clear_faults()
  end)

  describe("types", function()
    it("round-trips every type through parameters and results", function()
      local big = 9007199254740993 -- 2^53 + 1: lost by any float on the way
      local _, rows = conn:execute([[INSERT INTO types_t
        (i2, i4, i8, f4, f8, num, b, t, vc, ch, u, d, tm, ts, tstz, j, jb, by)
        VALUES (:i2, :i4, :i8, :f4, :f8, :num, :b, :t, :vc, :ch, :u, :d, :tm, :ts, :tstz, :j, :jb, :by)
        RETURNING *]], {
        i2 = -7, i4 = 2147483647, i8 = big, f4 = 0.5, f8 = 0.1, num = db.decimal("12345.678901"), b = true,
        t = "héllo 'quoted' \"x\" \n", vc = "v", ch = "ab", u = db.uuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
        d = db.date("2024-02-29"), tm = db.time("13:45:01.25"), ts = db.timestamp("2024-01-15T12:34:56.789"),
        tstz = db.timestamp("2024-01-15 03:34:56"), j = { a = 1, list = { 1, 2 } }, jb = db.json({}),
        by = db.blob("\0\1\2\255binary"),
      })
      local r = rows[1]
      assert.equal(-7, r.i2)
      assert.equal(2147483647, r.i4)
      assert.equal(big, r.i8)
      assert.equal("integer", math.type(r.i8))
      assert.equal(0.5, r.f4)
      assert.equal(0.1, r.f8)
      assert.equal("12345.678901", r.num)
      assert.is_true(r.b)
      assert.equal("héllo 'quoted' \"x\" \n", r.t)
      assert.equal("ab   ", r.ch)
      assert.equal("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", r.u)
      assert.equal("2024-02-29", r.d)
      assert.equal("13:45:01.25", r.tm)
      assert.equal("2024-01-15 12:34:56.789", r.ts)
      assert.equal("2024-01-15 03:34:56", r.tstz)
      assert.same({ a = 1, list = { 1, 2 } }, r.j)
      assert.same({}, r.jb)
      assert.equal("\0\1\2\255binary", r.by)
      assert.equal("integer", math.type(r.id))
    end)

    it("reads NULL as nil and writes db.null as NULL", function()
      local _, rows = conn:execute("INSERT INTO types_t (t, i8) VALUES (:t, :i8) RETURNING t, i8, u",
        { t = db.null, i8 = db.null })
      assert.is_nil(rows[1].t)
      assert.is_nil(rows[1].i8)
      assert.same({ "t", "i8", "u" }, rows.columns)
    end)

    it("returns negative and extreme 64-bit integers exactly", function()
      local row = conn:query_one("SELECT :a::int8 AS a, :b::int8 AS b, (:b::int8 - 1) AS c",
        { a = math.mininteger, b = math.maxinteger })
      assert.equal(math.mininteger, row.a)
      assert.equal(math.maxinteger, row.b)
      assert.equal(math.maxinteger - 1, row.c)
    end)

    it("reads arrays as Lua arrays", function()
      local row = conn:query_one([[SELECT ARRAY[1,2,NULL]::int4[] AS ai, ARRAY['a','b']::text[] AS at,
        ARRAY[1.5]::float8[] AS af, ARRAY[true,false] AS ab]])
      assert.equal(1, row.ai[1])
      assert.equal(db.null, row.ai[3])
      assert.same({ "a", "b" }, row.at)
      assert.same({ 1.5 }, row.af)
      assert.same({ true, false }, row.ab)
    end)

    it("keeps numeric exact as a string", function()
      local row = conn:query_one("SELECT :p::numeric(12,2) * 3 AS v", { p = db.decimal("450.25") })
      assert.equal("1350.75", row.v)
    end)

    it("refuses a string into a uuid column without the wrapper, as Aurora does", function()
      local ok, err = pcall(conn.execute, conn, "INSERT INTO types_t (u) VALUES (:u)",
        { u = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" })
      assert.is_false(ok)
      assert.equal("DatabaseErrorException", err.name)
      assert.equal("42804", err.sqlstate)
    end)
  end)

  describe("parameter errors", function()
    it("names the parameter and sends nothing", function()
      s:reset_stats()
      for _, case in ipairs {
        { { u = db.uuid("not-a-uuid") }, "parameter 'u'" },
        { { d = db.date("2024/01/01") }, "parameter 'd'" },
        { { n = 0 / 0 }, "parameter 'n'" },
        { { f = print }, "parameter 'f'" },
        { { ["bad-name"] = 1 }, "bad%-name" },
        { { p = db.decimal("12abc") }, "parameter 'p'" },
      } do
        local ok, err = pcall(conn.execute, conn, "SELECT 1", case[1])
        assert.is_false(ok)
        assert.equal("ParameterError", err.name)
        assert.matches(case[2], tostring(err))
      end
      assert.equal(0, count_calls(s, "ExecuteStatement"))
    end)

    it("the safe twin returns nil, err instead of raising", function()
      local rows, err = conn.safe:query("SELECT * FROM no_such_table")
      assert.is_nil(rows)
      assert.equal("42P01", err.sqlstate)
      assert.truthy(errors.is_error(err))
      assert.matches("DatabaseErrorException: ERROR: relation \"no_such_table\" does not exist", tostring(err))
      local ok_rows = conn.safe:query("SELECT 1 AS one")
      assert.equal(1, ok_rows[1].one)
    end)
  end)

  describe("transactions", function()
    -- conn:transaction(block) raises and keeps nothing it wrote; returns the error.
    local function rolled_back(block)
      local ok, err = pcall(conn.transaction, conn, block)
      assert.is_false(ok)
      assert.equal(0, conn:query_one("SELECT count(*) AS n FROM items").n)
      return err
    end

    it("commits on return", function()
      local result = conn:transaction(function(tx)
        tx:execute("INSERT INTO items (id, name) VALUES (1, 'a')")
        tx:execute("INSERT INTO items (id, name) VALUES (2, 'b')")
        return "done"
      end)
      assert.equal("done", result)
      assert.equal(2, conn:query_one("SELECT count(*) AS n FROM items").n)
    end)

    it("rolls back on error and raises it again", function()
      assert.matches("script failed here", rolled_back(function(tx)
        tx:execute("INSERT INTO items (id, name) VALUES (1, 'a')")
        error("script failed here")
      end))
    end)

    it("rolls back when a statement fails", function()
      assert.equal("23505", rolled_back(function(tx)
        tx:execute("INSERT INTO items (id, name) VALUES (1, 'a')")
        tx:execute("INSERT INTO items (id, name) VALUES (1, 'duplicate')")
      end).sqlstate)
    end)

    it("uses savepoints for nested blocks", function()
      conn:transaction(function(tx)
        tx:execute("INSERT INTO items (id, name) VALUES (1, 'kept')")
        local ok = pcall(tx.transaction, tx, function(inner)
          inner:execute("INSERT INTO items (id, name) VALUES (2, 'dropped')")
          error("inner failure")
        end)
        assert.is_false(ok)
      end)
      local rows = conn:query("SELECT id FROM items ORDER BY id")
      assert.equal(1, #rows)
      assert.equal(1, rows[1].id)
    end)

    it("refuses a transaction object used after its block", function()
      local saved
      conn:transaction(function(tx) saved = tx end)
      local ok, err = pcall(saved.execute, saved, "SELECT 1")
      assert.is_false(ok)
      assert.equal("TransactionFinished", err.name)
    end)

    it("says clearly when the transaction expired", function()
      local ok, err = pcall(conn.transaction, conn, function(tx)
        tx:execute("INSERT INTO items (id, name) VALUES (1, 'a')")
        require("alex.clock").sleep(3.5) -- the stack's idle timeout is 2 s
        tx:execute("INSERT INTO items (id, name) VALUES (2, 'b')")
      end)
      assert.is_false(ok)
      assert.equal("TransactionNotFoundException", err.name)
      assert.matches("nothing in it was committed", tostring(err))
      assert.equal(0, conn:query_one("SELECT count(*) AS n FROM items").n)
    end)

    it("rolls back on Ctrl-C", function()
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write([[
        local db = require "alex.db"
        local env = ...
        local conn = assert(db.connect { env = function(k) return os.getenv("T_" .. k) end, quiet = true })
        conn:transaction(function(tx)
          tx:execute("INSERT INTO items (id, name) VALUES (42, 'interrupted')")
          io.stdout:write("inserted\n") io.stdout:flush()
          local give_up = os.time() + 60 -- should the signal go astray, no endless child
          while os.time() < give_up do end
        end)
      ]])
      f:close()
      local vars = {}
      for k, v in pairs(s.env) do vars["T_" .. k] = v end
      local h = servers.spawn(("env %s %s --no-env-file %s"):format(servers.assignments(vars),
        servers.q(os.getenv("ALEXLUA")), servers.q(script)))
      finally(h.cleanup)
      h.wait_for("inserted", 10)
      h.signal("INT")
      h.wait(10)
      local text = h.out() .. h.err()
      os.remove(script)
      assert.matches("interrupted", text)
      assert.equal(0, conn:query_one("SELECT count(*) AS n FROM items WHERE id = 42").n)
      assert.equal(0, s:stats().open_transactions)
    end)
  end)

  describe("batch", function()
    it("inserts many rows in few calls", function()
      local sets = {}
      for i = 1, 1000 do sets[i] = { id = i, name = "item " .. i } end
      s:reset_stats()
      local n, calls = conn:batch("INSERT INTO items (id, name) VALUES (:id, :name)", sets)
      assert.equal(1000, n)
      assert.equal(1, calls)
      assert.equal(1, count_calls(s, "BatchExecuteStatement"))
      assert.equal(1000, conn:query_one("SELECT count(*) AS n FROM items").n)
    end)

    it("splits requests under the 4 MiB limit, all or nothing", function()
      local pad = string.rep("x", 2000)
      local sets = {}
      for i = 1, 3000 do sets[i] = { id = i, name = "n" .. i, pad = pad } end -- about 6.5 MB of sets
      s:reset_stats()
      local n, calls = conn:batch("INSERT INTO items (id, name, pad) VALUES (:id, :name, :pad)", sets)
      assert.equal(3000, n)
      assert.is_true(calls >= 2)
      assert.equal(calls, count_calls(s, "BatchExecuteStatement"))
      assert.equal(3000, conn:query_one("SELECT count(*) AS n FROM items").n)
      -- a failure in the last request leaves nothing from the first ones
      conn:execute("TRUNCATE items")
      sets[3000].id = 1 -- duplicate key, in the last chunk
      local ok, err = pcall(conn.batch, conn, "INSERT INTO items (id, name, pad) VALUES (:id, :name, :pad)", sets)
      assert.is_false(ok)
      assert.equal("23505", err.sqlstate)
      assert.equal(0, conn:query_one("SELECT count(*) AS n FROM items").n)
    end)

    it("checks every set before sending any", function()
      s:reset_stats()
      local ok, err = pcall(conn.batch, conn, "INSERT INTO items (id, name) VALUES (:id, :name)",
        { { id = 1, name = "a" }, { id = 2, name = print } })
      assert.is_false(ok)
      assert.matches("parameter set 2", tostring(err))
      assert.equal(0, count_calls(s, "BatchExecuteStatement"))
    end)
  end)

  describe("each", function()
    lazy_setup(function()
      conn:execute("CREATE TABLE big (id int PRIMARY KEY, body text)")
      conn:execute("INSERT INTO big SELECT g, repeat('y', 500) FROM generate_series(1, 6000) g")
    end)

    it("a plain query over 1 MiB meets the limit", function()
      local ok, err = pcall(conn.query, conn, "SELECT * FROM big")
      assert.is_false(ok)
      assert.equal("UnsupportedResultException", err.name)
    end)

    it("pages with keyset across the 1 MiB boundary", function()
      local n, last = 0, 0
      for row in conn:each("SELECT id, body FROM big", nil, { key = "id", page_size = 5000 }) do
        n = n + 1
        assert.is_true(row.id > last)
        last = row.id
      end
      assert.equal(6000, n)
    end)

    it("gives through its cursor's JSON pages the same values as a query: integers, JSON, decimals, bytes, NULL",
      function()
        local sql = [[SELECT g AS n, (g * 10000000000)::bigint AS big, g::numeric(10,2) / 3 AS d,
          jsonb_build_object('k', g, 'a', jsonb_build_array(1, 2)) AS doc, decode(lpad(to_hex(g), 2, '0'), 'hex') AS b,
          CASE WHEN g % 2 = 0 THEN NULL ELSE 'odd' END AS maybe, g % 3 = 0 AS flag,
          E'\x01"quote\\back\nline\t/é' || g AS tricky
          FROM generate_series(1, 25) g ORDER BY g]]
        local expected = conn:query(sql)
        local got = {}
        for row in conn:each(sql, nil, { page_size = 4 }) do got[#got + 1] = row end -- 7 pages
        assert.equal(25, #got)
        for i = 1, 25 do assert.same(expected[i], got[i]) end
        assert.equal(250000000000, got[25].big)
        assert.is_nil(got[2].maybe)
        assert.equal('\1"quote\\back\nline\t/é25', got[25].tricky) -- escaped twice on the way
      end)

    it("inside a transaction pages through that transaction's own rows, and closes its cursor", function()
      local ok, err = pcall(conn.transaction, conn, function(tx)
        tx:execute("INSERT INTO big SELECT g, 'new' FROM generate_series(6001, 6010) g")
        local n = 0
        for _ in tx:each("SELECT id FROM big WHERE body = 'new'", nil, { page_size = 3 }) do n = n + 1 end
        assert.equal(10, n)
        assert.equal(0, tx:query_one("SELECT count(*) AS n FROM pg_cursors WHERE name LIKE 'alex_each%'").n)
        error("roll back", 0)
      end)
      assert.is_false(ok)
      assert.equal("roll back", err)
    end)

    it("pages through one cursor in one snapshot", function()
      local n, sum = 0, 0
      for row in conn:each("SELECT id, body FROM big ORDER BY id", nil, { page_size = 5000 }) do
        n = n + 1
        sum = sum + row.id
      end
      assert.equal(6000, n)
      assert.equal(6000 * 6001 // 2, sum)
      assert.equal(0, s:stats().open_transactions)
    end)

    it("ends its snapshot when the loop breaks early, on the first page or with the next one on its way", function()
      for _, stop in ipairs { 3, 25 } do
        for row in conn:each("SELECT id FROM big ORDER BY id", nil, { page_size = 10 }) do
          if row.id == stop then break end
        end
        assert.equal(0, s:stats().open_transactions)
      end
    end)

    it("lets the loop use the connection while the next page is on its way", function()
      s:reset_stats()
      local n = 0
      for row in conn:each("SELECT id FROM big ORDER BY id", nil, { page_size = 100 }) do
        n = n + 1
        if row.id % 500 == 0 then
          assert.equal(1, conn:execute("UPDATE big SET body = body WHERE id = :id", { id = row.id }))
        end
      end
      assert.equal(6000, n)
      assert.equal(0, s:stats().open_transactions)
      assert.equal(1, s:stats().operations.RollbackTransaction) -- the snapshot's transaction, read only
    end)

    it("in a caller's transaction asks for one page at a time, so the loop may use that transaction", function()
      local ok, err = pcall(conn.transaction, conn, function(tx)
        local n = 0
        -- each row takes 20 ms to make: a page asked for ahead would still be
        -- running when the loop's own statement comes
        local sql = "SELECT g AS id, repeat('y', 100000) AS body FROM generate_series(1, 30) g," ..
          " LATERAL (SELECT pg_sleep(0.02 + 0 * g)) AS pause" -- pages of 5 rows, 100 ms each
        for row in tx:each(sql, nil, { page_size = 5 }) do
          n = n + 1
          assert.equal(row.id, tx:query_one("SELECT CAST(:id AS int) AS id", { id = row.id }).id)
        end
        assert.equal(30, n)
        error("roll back", 0)
      end)
      assert.same({ false, "roll back" }, { ok, err })
    end)

    it("asks for no page past a short one: 28 rows in pages of 5 take 6 fetches", function()
      s:reset_stats()
      local n = 0
      for _ in conn:each("SELECT g AS id, repeat('y', 100000) AS body FROM generate_series(1, 28) g", nil,
                         { page_size = 5 }) do
        n = n + 1
      end
      assert.equal(28, n)
      local ops_seen = s:stats().operations
      -- the lock timeout, DECLARE, then FETCH: 5, 5, 5, 5, 5, 3 (pages of 100 KiB rows stay at 5)
      assert.equal(2 + 6, ops_seen.ExecuteStatement)
      assert.equal(1, ops_seen.RollbackTransaction)
    end)

    it("fetches a page on its way again, smaller, when it comes back over the limit", function()
      -- 30 short rows, then 30 of 100 KiB: the page asked for ahead of the
      -- short ones' end holds 20 long rows, over 1 MiB
      conn:execute("CREATE TABLE grow (id int PRIMARY KEY, body text)")
      finally(function() conn:execute("DROP TABLE grow") end)
      conn:execute("INSERT INTO grow SELECT g, CASE WHEN g <= 30 THEN 'x' ELSE repeat('z', 102400) END" ..
        " FROM generate_series(1, 60) g")
      s:reset_stats()
      local ids = {}
      for row in conn:each("SELECT id, body FROM grow ORDER BY id", nil, { page_size = 10 }) do
        ids[#ids + 1] = row.id
      end
      assert.equal(60, #ids)
      for i = 1, 60 do assert.equal(i, ids[i]) end
      assert.equal(0, s:stats().open_transactions)
    end)
  end)

  describe("insert", function()
    lazy_setup(function()
      conn:execute([[CREATE TABLE ins (id bigint PRIMARY KEY, name text NOT NULL, price numeric(12,4),
        doc jsonb, day date, flag boolean DEFAULT true, raw bytea)]])
    end)
    before_each(function() conn:execute("DELETE FROM ins") end)

    -- A connection that has read ins's columns (an insert of over 1000 rows
    -- does, rolled back here): its inserts go as typed arrays.  A fresh
    -- connection's inserts of a few rows go as one JSON document.
    local function arrays_ready()
      local c = ops.connect(s)
      local many = {}
      for i = 1, 1001 do many[i] = { id = i, name = "n" .. i } end
      local ok, err = pcall(c.transaction, c, function(tx)
        local n, calls = tx:insert("ins", many)
        assert.same({ 1001, 2 }, { n, calls }) -- the columns, then the rows
        error("undo", 0)
      end)
      assert.same({ false, "undo" }, { ok, err })
      return c
    end
    local PATHS = { { "a JSON document", function() return ops.connect(s) end }, { "typed arrays", arrays_ready } }

    for _, path in ipairs(PATHS) do
      local how, connection = path[1], path[2]
      it("writes rows of every type in one statement, the table's own types doing the casts: " .. how, function()
        local c = connection()
        finally(function() c:close() end)
        s:reset_stats()
        local n, calls = c:insert("ins", {
          { id = 9007199254740993, name = [[big "quoted" \ name]], price = db.decimal("601.1500"),
            doc = { k = { 1, 2 }, s = "x" }, day = db.date("2024-02-29"), raw = db.blob("\0\1\255") },
          { id = 2, name = "two", price = "0.0001", flag = false },
        })
        assert.same({ 2, 1 }, { n, calls })
        assert.equal(1, s:stats().operations.ExecuteStatement)
        local a = conn:query_one("SELECT id, name, price, doc, day, flag, encode(raw, 'hex') AS raw FROM ins" ..
          " WHERE id = 9007199254740993")
        -- flag is NULL, not its default: another row names the column, this one does not
        assert.same({ id = 9007199254740993, name = [[big "quoted" \ name]], price = "601.1500",
          doc = { k = { 1, 2 }, s = "x" }, day = "2024-02-29", raw = "0001ff" }, a)
        assert.equal("9007199254740993", conn:query_one("SELECT id::text AS t FROM ins WHERE name LIKE 'big%'").t)
        local b = conn:query_one("SELECT price, doc, flag FROM ins WHERE id = 2")
        assert.same({ price = "0.0001", flag = false }, b) -- doc NULL: a column the row lacks
      end)

      it("writes every text as it was: array syntax, NULL as a word, escapes, JSON strings: " .. how, function()
        local c = connection()
        finally(function() c:close() end)
        local texts = { "", "NULL", "null", " padded ", "a,b", "{x}", [[quote"back\slash]], "tab\tline\nbreak",
                        "a/b", "\1\31", "é ✓", "()", "1.5e3" }
        local rows = {}
        for i, t in ipairs(texts) do rows[i] = { id = i, name = t, doc = t } end
        rows[#rows + 1] = { id = 100, name = "real null", doc = db.null, price = 1.25 }
        assert.equal(#rows, (c:insert("ins", rows)))
        for i, t in ipairs(texts) do
          local r = conn:query_one("SELECT name, doc, doc IS NULL AS missing FROM ins WHERE id = :id", { id = i })
          assert.same({ name = t, doc = t, missing = false }, r) -- a JSON column gets a JSON string
        end
        assert.same({ missing = true, price = "1.2500" },
          conn:query_one("SELECT doc IS NULL AS missing, price FROM ins WHERE id = 100"))
      end)
    end

    it("a column the table does not have writes nothing; typed arrays name it before sending", function()
      local c = arrays_ready()
      finally(function() c:close() end)
      s:reset_stats()
      local ok, err = pcall(c.insert, c, "ins", { { id = 1, name = "x", nope = 1 } })
      assert.is_false(ok)
      assert.equal("ParameterError", err.name)
      assert.matches('columns: "nope" is not a column of ins', err.message, 1, true)
      assert.equal(0, s:stats().operations.ExecuteStatement)
      ok, err = pcall(conn.insert, ops.connect(s), "ins", { { id = 1, name = "x", nope = 1 } }) -- a document
      assert.is_false(ok)
      assert.matches('column "nope" of relation "ins" does not exist', err.message, 1, true)
      assert.equal(0, conn:query_one("SELECT count(*) AS n FROM ins").n)
    end)

    it("writes tables with array and composite columns through a JSON document", function()
      conn:execute("CREATE TYPE ins_point AS (x int, y int)")
      conn:execute("CREATE TABLE ins_nested (id int PRIMARY KEY, tags text[], at ins_point)")
      finally(function() conn:execute("DROP TABLE ins_nested") conn:execute("DROP TYPE ins_point") end)
      local rows = { { id = 1, tags = { "a", "b,c", "" }, at = { x = 1, y = 2 } } }
      for i = 2, 1002 do rows[i] = { id = i } end -- enough rows to read the columns
      local n, calls = conn:insert("ins_nested", rows)
      assert.same({ 1002, 2 }, { n, calls })
      assert.same({ tags = '{a,"b,c",""}', at = "(1,2)" },
        conn:query_one("SELECT tags::text AS tags, at::text AS at FROM ins_nested WHERE id = 1"))
      assert.same({ missing = true }, conn:query_one("SELECT tags IS NULL AS missing FROM ins_nested WHERE id = 2"))
    end)

    it("reads a table's columns again after a failed insert (the table may have changed)", function()
      conn:execute("CREATE TABLE ins_changing (id int, v int)")
      finally(function() conn:execute("DROP TABLE IF EXISTS ins_changing") end)
      local many = {}
      for i = 1, 1001 do many[i] = { id = i, v = i } end
      assert.same({ 1001, 2 }, { conn:insert("ins_changing", many) })
      conn:execute("DROP TABLE ins_changing")
      conn:execute("CREATE TABLE ins_changing (id int, v jsonb)")
      -- read as an integer column: the database refuses the value, nothing is written
      local ok, err = pcall(conn.insert, conn, "ins_changing", { { id = 2, v = { a = 1 } } })
      assert.is_false(ok)
      assert.equal("DatabaseErrorException", err.name)
      local n, calls = conn:insert("ins_changing", { { id = 2, v = { a = 1 } } }) -- a document again
      assert.same({ 1, 1 }, { n, calls })
      assert.same({ a = 1 }, conn:query_one("SELECT v FROM ins_changing WHERE id = 2").v)
    end)

    it("on_conflict: nothing, or update the columns named", function()
      conn:insert("ins", { { id = 1, name = "one", price = "1" } })
      local n = conn:insert("ins", { { id = 1, name = "uno" }, { id = 3, name = "three" } },
        { on_conflict = "nothing" })
      assert.equal(1, n)
      assert.equal("one", conn:query_one("SELECT name FROM ins WHERE id = 1").name)
      n = conn:insert("ins", { { id = 1, name = "uno", price = "5" } },
        { on_conflict = { columns = { "id" }, update = { "name" } } })
      assert.equal(1, n)
      assert.same({ name = "uno", price = "1.0000" }, conn:query_one("SELECT name, price FROM ins WHERE id = 1"))
    end)

    it("splits under the request cap, in one transaction: a bad row in the last chunk writes nothing", function()
      local rows = {}
      for i = 1, 3000 do rows[i] = { id = i, name = ("n"):rep(40) .. i } end
      s:reset_stats()
      local n, calls = conn:insert("ins", rows, { max_request_bytes = 64 * 1024 })
      assert.equal(3000, n)
      assert.is_true(calls > 1, tostring(calls))
      assert.equal(1, s:stats().operations.CommitTransaction)
      conn:execute("DELETE FROM ins")
      rows[3000].name = db.null -- NOT NULL: the last statement fails
      local ok, err = pcall(conn.insert, conn, "ins", rows, { max_request_bytes = 64 * 1024 })
      assert.is_false(ok)
      assert.equal("23502", err.sqlstate)
      assert.equal(0, conn:query_one("SELECT count(*) AS n FROM ins").n)
    end)

    it("in a transaction it is part of it", function()
      local ok = pcall(conn.transaction, conn, function(tx)
        tx:insert("ins", { { id = 1, name = "one" } })
        assert.equal(1, tx:query_one("SELECT count(*) AS n FROM ins").n)
        error("undo", 0)
      end)
      assert.is_false(ok)
      assert.equal(0, conn:query_one("SELECT count(*) AS n FROM ins").n)
    end)

    it("refuses bad names and values before anything is sent", function()
      s:reset_stats()
      local function refused(pattern, ...)
        local ok, err = pcall(conn.insert, conn, ...)
        assert.is_false(ok)
        assert.equal("ParameterError", err.name)
        assert.matches(pattern, err.message)
      end
      refused('table "ins; drop" is not a table name', "ins; drop", { { id = 1 } })
      refused('columns: "na me" is not a column name', "ins", { { id = 1, ["na me"] = "x" } })
      refused("row 2 is not a table", "ins", { { id = 1 }, 5 })
      refused("parameter 'price': %-?nan is not a finite number", "ins", { { id = 1, name = "x", price = 0 / 0 } })
      refused("on_conflict must be", "ins", { { id = 1 } }, { on_conflict = "ignore" })
      assert.equal(0, s:stats().operations.ExecuteStatement)
      assert.same({ 0, 0 }, { conn:insert("ins", {}) })
    end)
  end)

  describe("retries under fault injection", function()
    it("retries throttling, 5xx and dropped connections without losing or doubling rows", function()
      s:set_faults { seed = 7, throttle_rate = 0.15, ["5xx_rate"] = 0.1, drop_rate = 0.1 }
      local c = ops.connect(s, { max_attempts = 8 })
      for i = 1, 60 do -- an upsert may be repeated safely: say so with idempotent
        c:execute("INSERT INTO items (id, name) VALUES (:id, :name) ON CONFLICT (id) DO NOTHING",
          { id = i, name = "r" .. i }, { idempotent = true })
      end
      s:set_faults { throttle_rate = 0, ["5xx_rate"] = 0, drop_rate = 0 }
      assert.equal(60, conn:query_one("SELECT count(*) AS n FROM items").n)
      assert.equal(60, conn:query_one("SELECT count(DISTINCT id) AS n FROM items").n)
      assert.is_true(c:stats().retries > 0)
      local f = s:stats().faults
      assert.is_true(f.throttle + f["5xx"] + f.drop > 0)
    end)

    it("waits for a resuming cluster", function()
      s:set_faults { seed = 3, resuming_rate = 0.5 }
      local c = ops.connect(s)
      for i = 1, 20 do
        c:execute("INSERT INTO items (id, name) VALUES (:id, 'x')", { id = i })
      end
      s:set_faults { resuming_rate = 0 }
      assert.equal(20, conn:query_one("SELECT count(*) AS n FROM items").n)
      assert.is_true(c:stats().resume_waits > 0)
    end)

    it("retries a plain write only when it cannot have run", function()
      s:set_faults { seed = 11, throttle_rate = 0.3 } -- refused before running: always safe
      local c = ops.connect(s, { max_attempts = 10 })
      for i = 1, 30 do c:execute("INSERT INTO items (id, name) VALUES (:id, 'x')", { id = i }) end
      s:set_faults { throttle_rate = 0 }
      assert.equal(30, conn:query_one("SELECT count(*) AS n FROM items").n)
      assert.is_true(c:stats().retries > 0)
    end)

    it("does not repeat a write whose outcome is unknown", function()
      s:set_faults { seed = 1, drop_after_rate = 1 }
      local c = ops.connect(s, { max_attempts = 5 })
      local ok, err = pcall(c.execute, c, "INSERT INTO items (id, name) VALUES (1, 'once')")
      s:set_faults { drop_after_rate = 0 }
      assert.is_false(ok)
      assert.is_true(err.outcome_unknown)
      assert.matches("not retried", tostring(err))
      assert.equal(1, conn:query_one("SELECT count(*) AS n FROM items").n)
    end)

    it("does not let the HTTP layer resend a write on a reused connection", function()
      local c = ops.connect(s, { max_attempts = 5 })
      c:query("SELECT 1") -- the connection is now kept alive and will be reused
      s:reset_stats()
      s:set_faults { seed = 1, drop_after_rate = 1 }
      local ok, err = pcall(c.execute, c, "INSERT INTO items (id, name) VALUES (7, 'once')")
      s:set_faults { drop_after_rate = 0 }
      assert.is_false(ok)
      assert.is_true(err.outcome_unknown)
      assert.equal(1, count_calls(s, "ExecuteStatement")) -- sent once, not silently again
      assert.equal(1, conn:query_one("SELECT count(*) AS n FROM items").n)
    end)

    it("gives up after AWS_MAX_ATTEMPTS with the last error", function()
      s:set_faults { seed = 2, throttle_rate = 1 }
      local c = ops.connect(s, { max_attempts = 2 })
      s:reset_stats()
      local ok, err = pcall(c.query, c, "SELECT 1")
      s:set_faults { throttle_rate = 0 }
      assert.is_false(ok)
      assert.equal("ThrottlingException", err.name)
      assert.equal(2, err.attempts)
      assert.equal(2, count_calls(s, "ExecuteStatement"))
    end)
  end)

  describe("transport (alex.aws)", function()
    -- The stack's settings with some changed (false: unset), as an env function.
    local function env_with(changes)
      local vars = {}
      for k, v in pairs(s.env) do vars[k] = v end
      for k, v in pairs(changes or {}) do vars[k] = v or nil end
      return function(k) return vars[k] end
    end

    local function recorder()
      local list = {}
      return list, function(x) list[#list + 1] = x end
    end

    it("logs every call with debug = true, without ALEX_DEBUG; debug = false silences ALEX_DEBUG", function()
      local lines, log = recorder()
      local c = ops.connect(s, { debug = true, log = log,
                             env = env_with { ALEX_DEBUG = false, AWS_RETRY_MODE = "legacy" } })
      assert.equal("AWS_RETRY_MODE is legacy: alexlua retries in the standard mode (full-jitter backoff,"
        .. " max_attempts 3)", lines[1])
      c:query("SELECT 1 AS one WHERE 1 = :x", { x = 1 })
      assert.matches('^ExecuteStatement "SELECT 1 AS one WHERE 1 = :x" params=x %-> 200 attempt 1 [%d.]+ ms$',
        lines[#lines])
      local quiet = {}
      c = ops.connect(s, { debug = false, log = function(l) quiet[#quiet + 1] = l end,
                       env = env_with { ALEX_DEBUG = "1" } })
      c:query("SELECT 1")
      assert.same({}, quiet)
      c = ops.connect(s, { log = function(l) quiet[#quiet + 1] = l end, env = env_with { ALEX_DEBUG = "1" } })
      c:query("SELECT 1")
      assert.equal(1, #quiet)
    end)

    it("backs off through the sleep it was given: full jitter, doubling, capped at 20 s", function()
      s:set_faults { seed = 2, throttle_rate = 1 }
      local slept, sleep = recorder()
      local c = ops.connect(s, { max_attempts = 5, retry_base = 6, random = function() return 0.5 end, sleep = sleep })
      local ok, err = pcall(c.query, c, "SELECT 1")
      s:set_faults { throttle_rate = 0 }
      assert.is_false(ok)
      assert.equal("ThrottlingException", err.name)
      assert.same({ 3, 6, 10, 10 }, slept) -- 0.5 * min(20, 6 * 2^(n-1))
    end)

    it("backs off through the same sleep before running a whole transaction again", function()
      local slept, sleep = recorder()
      local c = ops.connect(s, { retry_base = 0.4, random = function() return 0.5 end, sleep = sleep })
      local runs = 0
      c:transaction(function(tx)
        runs = runs + 1
        tx:execute("INSERT INTO items (id, name) VALUES (:id, 'tx')", { id = runs })
        if runs < 3 then
          error(errors.new { name = "ThrottlingException", message = "Rate exceeded", retryable = true }, 0)
        end
      end, { retries = 2 })
      assert.equal(3, runs)
      assert.same({ 0.2, 0.4 }, slept)
      assert.same({ { id = 3 } }, { table.unpack(conn:query("SELECT id FROM items")) })
    end)

    it("signs again at the server's time when the local clock is an hour slow", function()
      local c = ops.connect(s, { now = function() return os.time() - 3600 end })
      assert.equal(1, c:query_one("SELECT 1 AS one").one)
      assert.equal(1, c:stats().retries)
      assert.equal(1, c:query_one("SELECT 1 AS one").one) -- the correction stays
      assert.equal(1, c:stats().retries)
    end)

    it("keeps one signer per credential set, and makes a new one when the keys change", function()
      local made, real = 0, sigv4.signer
      sigv4.signer = function(...) made = made + 1 return real(...) end
      local keys = { access_key = "AKIDOTHERKEY0000", secret_key = "otherSecretKey0000", source = "spec" }
      local ok, err = pcall(function()
        local c = ops.connect(s, { credentials = { get = function() return keys end } })
        local first_ok, first = pcall(c.query, c, "SELECT 1")
        assert.is_false(first_ok)
        assert.equal("UnrecognizedClientException", first.name)
        keys = { access_key = s.env.AWS_ACCESS_KEY_ID, secret_key = s.env.AWS_SECRET_ACCESS_KEY, source = "spec" }
        for _ = 1, 3 do c:query("SELECT 1") end
        -- the same keys in a new table: the same signer
        keys = { access_key = keys.access_key, secret_key = keys.secret_key, source = "spec" }
        c:query("SELECT 1")
      end)
      sigv4.signer = real
      assert(ok, err)
      assert.equal(2, made)
    end)

    it("sends no token once the credentials have none, after ones that had", function()
      local keys = { access_key = s.env.AWS_ACCESS_KEY_ID, secret_key = s.env.AWS_SECRET_ACCESS_KEY,
                     session_token = "a-token-this-stack-does-not-expect", source = "spec" }
      local c = ops.connect(s, { credentials = { get = function() return keys end } })
      local ok, err = pcall(c.query, c, "SELECT 1")
      assert.is_false(ok)
      assert.equal("UnrecognizedClientException", err.name)
      keys = { access_key = keys.access_key, secret_key = keys.secret_key, source = "spec" }
      assert.equal(1, c:query_one("SELECT 1 AS one").one)
    end)

    it("reports keys it cannot sign with as a CredentialsError, without the secret", function()
      local c = ops.connect(s, { credentials = { get = function()
        return { access_key = "AKID WITH BLANKS", secret_key = "neverShownSecret", source = "spec" }
      end } })
      local ok, err = pcall(c.query, c, "SELECT 1")
      assert.is_false(ok)
      assert.equal("CredentialsError", err.name)
      assert.matches("the credentials from spec cannot sign a request: access_key: empty, or has blanks",
        err.message, 1, true)
      assert.is_nil(tostring(err):find("neverShownSecret", 1, true))
    end)

    it("refuses a bad ALEX_RETRY_BASE or ALEX_RESUME_TIMEOUT at connect, as a ConfigError", function()
      for name, value in pairs { ALEX_RETRY_BASE = "-1", ALEX_RESUME_TIMEOUT = "later" } do
        local c, err = db.connect { env = env_with { [name] = value }, quiet = true, journal = false }
        assert.is_nil(c)
        assert.equal("ConfigError", err.name)
        assert.equal(("%s must be a non-negative number of seconds (the default is %d), got %q"):format(name,
          name == "ALEX_RETRY_BASE" and 1 or 120, value), err.message)
      end
    end)

    it("reads ~/.aws/config once for a connection's settings and its credentials", function()
      local home = servers.tmpdir()
      os.execute("mkdir -p " .. servers.q(home .. "/.aws"))
      servers.write_file(home .. "/.aws/config", ("[default]\nregion = %s\naws_access_key_id = %s\n"
        .. "aws_secret_access_key = %s\n"):format(s.env.AWS_REGION, s.env.AWS_ACCESS_KEY_ID,
        s.env.AWS_SECRET_ACCESS_KEY))
      local reads, real = {}, ini.read
      ini.read = function(path)
        reads[path] = (reads[path] or 0) + 1
        return real(path)
      end
      local ok, c = pcall(function()
        local c = assert(db.connect { quiet = true, journal = false, env = env_with { HOME = home,
          AWS_REGION = false, AWS_DEFAULT_REGION = false, AWS_ACCESS_KEY_ID = false, AWS_SECRET_ACCESS_KEY = false,
          AWS_SESSION_TOKEN = false } })
        c:query("SELECT 1")
        return c
      end)
      ini.read = real
      servers.rmtree(home)
      assert(ok, c)
      assert.equal("config-file", c.config.source.region)
      assert.equal(1, reads[home .. "/.aws/config"])
    end)
  end)

  describe("secrets", function()
    it("never prints the secret key, session token or database password with ALEX_DEBUG=1", function()
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write([[
        local db = require "alex.db"
        local conn = assert(db.connect { quiet = true })
        local ok, err = pcall(conn.query, conn, "SELECT * FROM missing_table WHERE x = :x", { x = "v" })
        print(tostring(err))
        conn:query("SELECT 1")
        -- a wrong secret: the signature is refused
        local bad = db.connect { quiet = true, credentials = { get = function()
          return { access_key = os.getenv("AWS_ACCESS_KEY_ID"),
                   secret_key = "WRONG" .. os.getenv("AWS_SECRET_ACCESS_KEY") }
        end } }
        print(pcall(bad.query, bad, "SELECT 1"))
        error(err)
      ]])
      f:close()
      local cmd = ("env ALEX_DEBUG=1 ALEX_STATS=1 %s %s --no-env-file %s 2>&1"):format(servers.assignments(s.env),
        servers.q(os.getenv("ALEXLUA")), servers.q(script))
      local p = io.popen(cmd)
      local text = p:read("a")
      p:close()
      os.remove(script)
      assert.matches("ExecuteStatement", text)      -- the debug log ran
      assert.matches("missing_table", text)
      assert.matches("InvalidSignatureException", text)
      assert.is_nil(text:find(s.env.AWS_SECRET_ACCESS_KEY, 1, true))
      for _, secret in ipairs(s:secrets()) do
        assert.is_nil(text:find(secret, 1, true))
      end
    end)
  end)
end)
