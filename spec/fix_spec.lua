-- Data fixes (alex.fix, scripts/fixes/*, scripts/fixes.lua) as users run
-- them, child processes against a private local stack: a dry run changes
-- nothing and shows the diff an --apply then makes; a second --apply is
-- refused; a collection fix killed at any point and resumed processes every
-- row exactly once; Ctrl-C and SIGTERM leave a run that --resume finishes.
local stack = require "stack"
local servers = require "servers"
local ops = require "dbops"
local cjson = require "cjson"

local q = servers.q

describe("data fixes", function()
  local s

  local function run(script, args, extra) return ops.run(s, script, args, extra) end
  local function value(sql) return (assert(s:psql(sql))) end

  stack.shared({}, function(started) s = started end)

  before_each(function()
    s:clear_faults()
    ops.seed(s)
  end)

  local function price(symbol)
    return value(("SELECT current_price FROM instruments WHERE symbol = '%s'"):format(symbol))
  end

  describe("a fix in one transaction", function()
    it("dry run by default: nothing written, the diff printed; --apply makes exactly that change", function()
      local before = ops.fingerprint(s)
      local dry = run("scripts/fixes/reprice.lua", { "SPY", "601.15" })
      assert.equal(0, dry.code, dry.all)
      assert.matches("Dry run of reprice: would change 1 row in instruments; nothing was written", dry.out, 1, true)
      assert.matches("~ instruments symbol=SPY\n    current_price  590.25 \u{2192} 601.15", dry.out, 1, true)
      assert.equal(before, ops.fingerprint(s))
      assert.equal("0", value("SELECT count(*) FROM data_fix_runs"))

      local json_dry = run("scripts/fixes/reprice.lua", { "SPY", "601.15", "--json" })
      local d = cjson.decode(json_dry.out)
      assert.is_true(d.dry_run)
      assert.equal(1, #d.changes)
      local applied = run("scripts/fixes/reprice.lua", { "SPY", "601.15", "--apply", "--json" })
      assert.equal(0, applied.code, applied.all)
      local a = cjson.decode(applied.out)
      assert.is_false(a.dry_run)
      -- the diff the dry run showed is the change the apply made (but for when it was made)
      for _, c in ipairs { d.changes[1], a.changes[1] } do c.before.updated_at, c.after.updated_at = nil, nil end
      assert.same(d.changes, a.changes)
      assert.equal("601.1500", price("SPY"))
      assert.equal("reprice|applied|1|{\"price\": \"601.15\", \"symbol\": \"SPY\"}",
        value("SELECT name || '|' || status || '|' || rows_changed || '|' || arguments FROM data_fix_runs"))
    end)

    it("a second --apply with the same arguments is refused, naming the earlier run; --again applies it", function()
      assert.equal(0, run("scripts/fixes/reprice.lua", { "QQQ", "10", "--apply" }).code)
      local id = value("SELECT id FROM data_fix_runs WHERE status = 'applied'")
      local second = run("scripts/fixes/reprice.lua", { "QQQ", "10", "--apply" })
      assert.equal(1, second.code)
      assert.matches("reprice was already applied with these arguments: run " .. id, second.err, 1, true)
      assert.matches("--again", second.err, 1, true)
      -- other arguments are another fix
      assert.equal(0, run("scripts/fixes/reprice.lua", { "QQQ", "11", "--apply" }).code)
      assert.equal(0, run("scripts/fixes/reprice.lua", { "QQQ", "10", "--apply", "--again" }).code)
      assert.equal("3", value("SELECT count(*) FROM data_fix_runs WHERE status = 'applied'"))
    end)

    it("two --apply at once: one applies, the other is refused", function()
      local results = ops.run_parallel(s, {
        { "scripts/fixes/reprice.lua", { "AGG", "99", "--apply" } },
        { "scripts/fixes/reprice.lua", { "AGG", "99", "--apply" } },
      })
      local codes = { results[1].code, results[2].code }
      table.sort(codes)
      assert.same({ 0, 1 }, codes, results[1].all .. results[2].all)
      assert.equal("1", value("SELECT count(*) FROM data_fix_runs WHERE status = 'applied'"))
    end)

    it("bad input writes nothing, not even a run record", function()
      local before = value("SELECT allocation_regions::text FROM instruments WHERE symbol = 'VEA'")
      local r = run("scripts/fixes/retag_allocations.lua", { "VEA", "--regions", "{}", "--apply" })
      assert.equal(1, r.code)
      assert.matches("allocation_regions: must not be empty", r.err, 1, true)
      assert.equal(before, value("SELECT allocation_regions::text FROM instruments WHERE symbol = 'VEA'"))
      assert.equal("0", value("SELECT count(*) FROM data_fix_runs"))
    end)

    it("the diff covers every table the fix touched: a move of a position", function()
      local r = run("scripts/fixes/move_position.lua", { "test_user_001", "SPY", "401(k)", "Roth IRA",
        "--quantity", "10" })
      assert.equal(0, r.code, r.all)
      assert.matches("positions", r.out, 1, true)
      assert.matches("quantity", r.out, 1, true)
    end)

    it("fixes.lua list and show read the record", function()
      assert.equal(0, run("scripts/fixes/reprice.lua", { "SPY", "500", "--apply" }).code)
      local l = run("scripts/fixes.lua", { "list" })
      assert.equal(0, l.code, l.all)
      assert.matches("reprice%s+|%s+applied", l.out)
      local lj = cjson.decode(run("scripts/fixes.lua", { "list", "--json" }).out)
      assert.equal("reprice", lj.runs[1].name)
      local id = lj.runs[1].id
      local sh = run("scripts/fixes.lua", { "show", tostring(id) })
      assert.equal(0, sh.code, sh.all)
      assert.matches(("run %d: reprice"):format(id), sh.out, 1, true)
      assert.matches("current_price  590.25 \u{2192} 500", sh.out, 1, true)
      local missing = run("scripts/fixes.lua", { "show", "999999" })
      assert.equal(1, missing.code)
      assert.matches("no data fix run 999999", missing.err, 1, true)
    end)
  end)

  describe("a fix over a collection (split_adjust over price_history)", function()
    local N = 600

    -- N closes of 400 before 2020 and one after, for SPY.
    local function history()
      assert(s:psql(("INSERT INTO price_history (symbol, price_date, close_price) SELECT 'SPY'," ..
        " DATE '2000-01-01' + g, 400 FROM generate_series(0, %d) g;" ..
        " INSERT INTO price_history (symbol, price_date, close_price) VALUES ('SPY', DATE '2021-01-01', 400);")
        :format(N - 1)))
    end

    local ARGS = { "SPY", "4", "--before", "2020-01-01", "--batch-size", "25" }
    local function args(...)
      local list = {}
      for i, a in ipairs(ARGS) do list[i] = a end
      for _, a in ipairs { ... } do list[#list + 1] = a end
      return list
    end

    -- Every close before the split divided exactly once; the one after untouched.
    local function exactly_once()
      assert.equal(tostring(N + 1) .. "|100.0000|100.0000|400.0000", value([[SELECT count(*) || '|' ||
        min(close_price) FILTER (WHERE price_date < '2020-01-01') || '|' ||
        max(close_price) FILTER (WHERE price_date < '2020-01-01') || '|' ||
        max(close_price) FILTER (WHERE price_date >= '2020-01-01') FROM price_history WHERE symbol = 'SPY']]))
    end

    it("dry run over every row changes nothing; --apply does it in batches, once", function()
      history()
      local before = ops.fingerprint(s)
      local dry = run("scripts/fixes/split_adjust.lua", args())
      assert.equal(0, dry.code, dry.all)
      assert.matches(("Dry run of split_adjust over %d rows: would change %d rows in price_history"):format(N, N),
        dry.out, 1, true)
      assert.matches("more lines not shown", dry.out, 1, true) -- a long diff is cut on screen
      assert.equal(before, ops.fingerprint(s))
      local r = run("scripts/fixes/split_adjust.lua", args("--apply"))
      assert.equal(0, r.code, r.all)
      exactly_once()
      assert.equal(("applied|%d|%d|%d"):format(N, N, N),
        value("SELECT status || '|' || rows_done || '|' || rows_total || '|' || rows_changed FROM data_fix_runs"))
      local again = run("scripts/fixes/split_adjust.lua", args("--apply"))
      assert.equal(1, again.code)
      exactly_once()
    end)

    -- Starts the fix with `argv` (default: --apply) in the background, stops
    -- it with `sig` after `delay` seconds; returns its exit code and stderr.
    local function stopped_run(sig, delay, argv)
      local words = {}
      for i, a in ipairs(argv or args("--apply")) do words[i] = q(a) end
      local h = servers.spawn(("env %s %s --no-env-file scripts/fixes/split_adjust.lua %s"):format(
        servers.assignments(s.env), q(ops.ALEXLUA), table.concat(words, " ")))
      servers.sleep(delay)
      h.signal(sig)
      local rc = h.wait(60)
      local err = h.err()
      h.cleanup()
      return rc, err
    end

    it("killed with -9 at random points and resumed: every row processed exactly once", function()
      history()
      assert(s:set_faults { latency_ms = 15 })
      math.randomseed(os.time())
      local kills = 0
      for _ = 1, 6 do
        local status = value("SELECT coalesce((SELECT status FROM data_fix_runs ORDER BY id DESC LIMIT 1), 'none')")
        if status == "applied" then break end
        local delay = 0.2 + math.random() * 1.5
        local rc
        if status == "none" then rc = stopped_run("KILL", delay)
        else rc = stopped_run("KILL", delay, args("--resume", "--apply")) end -- kill the resumed run too
        if rc == 137 then kills = kills + 1 end
      end
      s:clear_faults()
      assert.is_true(kills >= 1, "no run was killed")
      -- the dead run shows as running with a pid that is gone: --resume takes it over
      local status = value("SELECT status FROM data_fix_runs ORDER BY id DESC LIMIT 1")
      if status ~= "applied" then
        assert.equal("running", status)
        local r = run("scripts/fixes/split_adjust.lua", args("--resume", "--apply"))
        assert.equal(0, r.code, r.all)
        assert.matches("resuming run", r.err, 1, true)
      end
      exactly_once()
      assert.equal("1", value("SELECT count(*) FROM data_fix_runs"))
      assert.equal(tostring(N), value("SELECT rows_done FROM data_fix_runs"))
      assert.equal(tostring(N), value("SELECT rows_changed FROM data_fix_runs"))
    end)

    for _, case in ipairs { { "INT", 130 }, { "TERM", 143 } } do
      it(("SIG%s rolls back the batch in hand, marks the run interrupted and says how to resume"):format(case[1]),
        function()
          history()
          assert(s:set_faults { latency_ms = 15 })
          local rc, err = stopped_run(case[1], 0.8)
          s:clear_faults()
          assert.equal(case[2], rc, err)
          assert.matches("interrupted after %d+ rows; the batch in hand was rolled back", err)
          assert.matches("split_adjust.lua SPY 4 --before 2020-01-01 --batch-size 25 --resume --apply", err, 1, true)
          assert.equal("interrupted", value("SELECT status FROM data_fix_runs"))
          local done = tonumber(value("SELECT rows_done FROM data_fix_runs"))
          assert.is_true(done > 0 and done < N, tostring(done))
          -- exactly the rows done so far were divided
          assert.equal(tostring(done), value("SELECT count(*) FROM price_history WHERE close_price = 100"))
          -- a new --apply would process rows twice: refused
          local fresh = run("scripts/fixes/split_adjust.lua", args("--apply"))
          assert.equal(1, fresh.code)
          assert.matches("continue it with --resume --apply", fresh.err, 1, true)
          local r = run("scripts/fixes/split_adjust.lua", args("--resume", "--apply"))
          assert.equal(0, r.code, r.all)
          exactly_once()
        end)
    end

    it("--resume with nothing to resume, or without --apply, is refused", function()
      local r = run("scripts/fixes/split_adjust.lua", args("--resume", "--apply"))
      assert.equal(1, r.code)
      assert.matches("no interrupted run", r.err, 1, true)
      r = run("scripts/fixes/split_adjust.lua", args("--resume"))
      assert.equal(1, r.code)
      assert.matches("--resume continues a run: give --apply with it", r.err, 1, true)
    end)
  end)
end)
