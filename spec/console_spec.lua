-- The console (scripts/console.lua), its table printer (alex.tabular) and
-- line editing (alex.lineedit, also under `alexlua -i`): rows as psql shows
-- them, --sandbox rolled back at exit, one-line errors, and in a real
-- terminal (tmux) line editing, history and Ctrl-C.
local tabular = require "alex.tabular"
local json = require "alex.json"
local servers = require "servers"
local ops = require "dbops"

local q = servers.q

describe("alex.tabular", function()
  local rows = { columns = { "id", "symbol", "price", "note" },
    { id = 1, symbol = "SPY", price = "601.1500", note = json.null },
    { id = 22, symbol = "QQQ", price = "9.5", note = "two\nlines" } }

  it("aligns columns as psql does: header centred, numbers right, NULL shown, a row count", function()
    assert.equal(table.concat({
      " id | symbol |  price   |    note",
      "----+--------+----------+------------",
      "  1 | SPY    | 601.1500 | NULL",
      " 22 | QQQ    |      9.5 | two\\nlines",
      "(2 rows)", "" }, "\n"), tabular.format(rows, { expanded = false }))
  end)

  it("cuts wide values with an ellipsis", function()
    local out = tabular.format({ columns = { "v" }, { v = ("x"):rep(30) } }, { expanded = false, max_value = 10 })
    assert.matches("\n xxxxxxxxx\u{2026}\n", out, 1, true)
  end)

  it("shows one column per line in expanded display, and chooses it when rows are too wide", function()
    local out = tabular.format(rows, { expanded = true, width = 40 })
    assert.equal(table.concat({
      "-[ RECORD 1 ]+--------------------", "id     | 1", "symbol | SPY", "price  | 601.1500", "note   | NULL",
      "-[ RECORD 2 ]+--------------------", "id     | 22", "symbol | QQQ", "price  | 9.5", "note   | two\\nlines",
      "" }, "\n"), out)
    assert.equal(out, tabular.format(rows, { expanded = "auto", width = 30 }))
    assert.matches("^ id | symbol", tabular.format(rows, { expanded = "auto", width = 80 }))
  end)

  it("says (0 rows) for an empty result, and (1 row) for one", function()
    assert.matches("\n%(0 rows%)\n$", tabular.format({ columns = { "a" } }))
    assert.matches("\n%(1 row%)\n$", tabular.format({ columns = { "a" }, { a = true } }))
  end)
end)

describe("scripts/console.lua", function()
  local s
  ops.seeded_stack(function(started) s = started end)

  local function price(symbol)
    return assert(s:psql(("SELECT current_price FROM instruments WHERE symbol = '%s'"):format(symbol)))
  end

  -- The console with stdin from `input` (no terminal: plain lines).
  local function console(input, args)
    return ops.run(s, "scripts/console.lua", args or {}, nil, input)
  end

  it("-c runs one expression; rows are printed as a table", function()
    local r = ops.run(s, "scripts/console.lua", { "--expanded", "off", "-c",
      "query('SELECT symbol, current_price FROM instruments WHERE symbol IN (:a, :b) ORDER BY 1', " ..
      "{ a = 'QQQ', b = 'SPY' })" })
    assert.equal(0, r.code, r.all)
    assert.equal(" symbol | current_price\n--------+---------------\n QQQ    |      " .. price("QQQ") ..
      "\n SPY    |      " .. price("SPY") .. "\n(2 rows)\n", r.out)
  end)

  it("a failing command prints one line, no traceback, and exits 1", function()
    local r = ops.run(s, "scripts/console.lua", { "-c", "query('SELECT 1/0')" })
    assert.equal(1, r.code)
    assert.matches("error: DatabaseErrorException: ERROR: division by zero", r.err, 1, true)
    assert.not_matches("traceback", r.err)
  end)

  it("--sandbox: changes are seen inside the session and rolled back at its end", function()
    local before = ops.fingerprint(s)
    local spy = price("SPY")
    local r = console(table.concat({
      "UPDATE instruments SET current_price = 1.5",
      "WHERE symbol = 'SPY';",
      "instruments:find('SPY').current_price",
      "query('SELECT 1/0')", -- an error undoes only its own entry
      "n = #instruments:all()",
      "n + 1",
      "instruments:update_price('QQQ', '2.25').current_price",
      "" }, "\n"), { "--sandbox" })
    assert.equal(0, r.code, r.all)
    assert.matches("(1 row changed)", r.out, 1, true)
    assert.matches("1.5000\n", r.out, 1, true)
    assert.matches("\n23\n", r.out:gsub("alex %(sandbox%)> ", "\n"), 1, true) -- 22 instruments + 1
    assert.matches("2.2500", r.out, 1, true)
    assert.matches("division by zero", r.err, 1, true)
    assert.matches("sandbox: rolled back", r.err, 1, true)
    assert.equal(spy, price("SPY"))
    assert.equal(before, ops.fingerprint(s))
    assert.equal(0, s:stats().open_transactions)
  end)

  it("without --sandbox a change is made at once", function()
    local r = console("UPDATE instruments SET current_price = 7 WHERE symbol = 'AGG';\n")
    assert.equal(0, r.code, r.all)
    assert.equal("7.0000", price("AGG"))
  end)

  describe("in a real terminal (tmux)", function()
    local tmux_ok = servers.run("command -v tmux")

    -- A tmux server of the spec's own; returns send(keys...), screen(), shows(text), stop().
    local function terminal(cmd)
      local sock = "alexlua-spec-" .. tostring(os.time()) .. "-" .. math.random(1e6)
      local T = "tmux -L " .. sock
      assert(servers.run(("%s new-session -d -s t -x 120 -y 40 %s"):format(T, q(cmd))))
      local t = {}
      function t.send(...)
        local keys = {}
        for i, k in ipairs { ... } do keys[i] = q(k) end
        assert(servers.run(T .. " send-keys -t t " .. table.concat(keys, " ")))
      end
      function t.screen()
        local _, out = servers.run(T .. " capture-pane -t t -p -S -100")
        return out
      end
      -- asserts that the screen shows `text` within 10 s
      function t.shows(text)
        assert.is_true(servers.wait_until(function() return t.screen():find(text, 1, true) ~= nil end, 10, 0.05),
          t.screen())
      end
      function t.stop() servers.run(T .. " kill-server") end
      return t
    end

    local function console_command(home, args)
      return ("cd %s && %s; echo EXIT=$?; sleep 60"):format(q(os.getenv("PWD") or "."),
        ops.command(s, "scripts/console.lua", args, { HOME = home }))
    end

    it("edits lines, recalls history across sessions, and Ctrl-C stops only the running entry", function()
      if not tmux_ok then pending("tmux is not installed") return end
      local home, t = ops.tmpdir(), nil
      -- busted keeps one finally per test: this one ends whichever terminal is open
      finally(function() if t then t.stop() end ops.rmdir(home) end)
      t = terminal(console_command(home, { "--sandbox" }))
      t.shows("alex (sandbox)>") -- the pane drops trailing spaces
      t.send("answer = 4 + 2", "Left", "Left", "Left", "Left", "0", "Enter") -- edited: 40 + 2
      t.send("answer", "Enter")
      t.shows("\n42\n")
      t.send("while true do end", "Enter")
      servers.sleep(0.5)
      t.send("C-c")
      t.shows("interrupted")
      t.send("Up", "Up", "Enter") -- "answer" again
      t.send("C-d")
      t.shows("EXIT=0")
      local screen = t.screen()
      local _, n = screen:gsub("\n42\n", "")
      assert.equal(2, n, screen)
      assert.matches("sandbox: rolled back", screen, 1, true)
      t.stop()
      local hist = home .. "/.local/state/alexlua/history"
      assert.matches("answer", ops.read(hist) or "")
      local ok, mode = servers.run("stat -c %a " .. q(hist))
      assert.is_true(ok)
      assert.equal("600\n", mode)
      -- a new session recalls the last one's lines
      t = terminal(console_command(home))
      t.shows("alex>")
      t.send("Up", "Enter")
      t.shows("alex> answer\nnil\n") -- recalled; unset in this session
      t.send("C-d")
      t.shows("EXIT=0")
    end)

    it("alexlua -i edits lines and keeps history too", function()
      if not tmux_ok then pending("tmux is not installed") return end
      local home, t = ops.tmpdir(), nil
      finally(function() if t then t.stop() end ops.rmdir(home) end)
      local cmd = ("env HOME=%s %s --no-env-file -i; echo EXIT=$?; sleep 60"):format(q(home), q(ops.ALEXLUA))
      t = terminal(cmd)
      t.shows("\n>")
      t.send("print(6 * 6)", "Enter")
      t.shows("\n36\n")
      t.send("C-d")
      t.shows("EXIT=0")
      t.stop()
      t = terminal(cmd)
      t.shows("\n>")
      t.send("Up", "Enter")
      t.shows("\n36\n")
      t.send("C-d")
      t.shows("EXIT=0")
    end)
  end)
end)
