-- An interactive console on the Alex database: Lua with `db` connected and
-- the models at hand, line editing and history, rows shown as psql shows
-- them.  With --sandbox the whole session is one transaction, rolled back
-- when it ends: look around and try a fix without changing anything.
--
--   alexlua scripts/console.lua [--sandbox] [-c COMMAND]
local cli = require "alex.cli"
local models = require "alex.models"
local tabular = require "alex.tabular"
local lineedit = require "alex.lineedit"
local host = require "alex.host"
local json = require "alex.json"

local parser = cli.parser("console.lua",
  "An interactive console: Lua with db, the models (users, instruments, accounts, positions, jobs) and" ..
  " query(sql, params) at hand; an expression that yields rows is shown as a table.",
  "Type \\? for the console's commands. A line that is not Lua but starts like SQL (SELECT, WITH, INSERT," ..
  " UPDATE, DELETE, ...) runs as SQL, up to a closing ';'. With --sandbox the session is one transaction," ..
  " rolled back at exit (the Data API ends a transaction after 3 minutes without a call: the console then" ..
  " says so and begins a new one).")
parser:flag("--sandbox", "Run the whole session in one transaction, rolled back at exit.")
parser:option("-c --command", "Run one command (Lua, SQL or a \\ command), print its result and exit.")
parser:option("--expanded", "Display mode: on, off or auto (the default: expanded when rows are too wide).", "auto")
  :choices { "on", "off", "auto" }
local args = cli.parse(parser)

local SQL_START = { select = true, with = true, insert = true, update = true, delete = true, explain = true,
                    show = true, values = true, table = true, create = true, alter = true, drop = true,
                    truncate = true }

local state = { expanded = args.expanded, sandbox = args.sandbox, statements = 0 }

local function screen_width()
  local cols = tonumber(os.getenv("COLUMNS") or "")
  if cols then return cols end
  if host.isatty(1) then
    local p = io.popen("stty size 2>/dev/null </dev/tty")
    local out = p and p:read("a") or ""
    if p then p:close() end
    cols = tonumber(out:match("%d+%s+(%d+)"))
  end
  return cols or 100
end

local function expanded_setting()
  if state.expanded == "on" then return true elseif state.expanded == "off" then return false end
  return "auto"
end

-- One value as the console shows it.
local function show(v)
  if tabular.is_rows(v) then
    io.stdout:write(tabular.format(v, { width = screen_width(), expanded = expanded_setting() }))
  elseif type(v) == "table" and getmetatable(v) == nil and next(v) ~= nil and #v == 0 then
    -- one record: a table of one row
    local row = setmetatable({ v }, nil)
    io.stdout:write(tabular.format(row, { width = screen_width(), expanded = expanded_setting() }))
  elseif type(v) == "table" and getmetatable(v) == nil then
    local ok, text = pcall(json.encode, v)
    io.stdout:write(ok and text or tostring(v), "\n")
  else
    io.stdout:write(tostring(v), "\n")
  end
end

-- An error as one line: the console goes on.
local function report(err)
  local text = cli.one_line(type(err) == "string" and err or tostring(err))
  io.stderr:write(cli.painter(2)("red", "error: "), text, "\n")
end

-- The names a chunk sees: db and the models first, then the globals.
local function environment(conn)
  local bound = models.bind(conn)
  local env = setmetatable({
    db = conn, models = bound,
    query = function(sql, params) return conn:query(sql, params) end,
  }, { __index = _G })
  for name, model in pairs(bound) do env[name] = model end
  return env
end

local HELP = [[
Console commands:
  \q                  quit (with --sandbox: everything is rolled back)
  \x [on|off|auto]    expanded display: one column per line (auto: when rows are too wide)
  \d                  the tables
  \d NAME             the columns of table NAME
  \?                  this help
Anything else is Lua (an expression's value is shown; rows as a table), or SQL when it
starts like SQL and is not Lua: it runs up to a closing ';'.
Names at hand: db, query(sql, params), models, users, instruments, accounts, positions, jobs.
]]

local function describe(conn, name)
  if not name then
    return conn:query([[SELECT c.relname AS name, CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view'
      WHEN 'm' THEN 'materialized view' ELSE c.relkind::text END AS type,
      pg_size_pretty(pg_total_relation_size(c.oid)) AS size
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm') ORDER BY 1]])
  end
  local rows = conn:query([[SELECT a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
      CASE WHEN a.attnotnull THEN 'not null' ELSE '' END AS nullable,
      coalesce(pg_get_expr(d.adbin, d.adrelid), '') AS default
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname = 'public' AND c.relname = :name AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum]], { name = name })
  if #rows == 0 then error(("no table %q"):format(name), 0) end
  return rows
end

-- Runs a \ command; returns false for \q.
local function command(conn, line)
  local word, rest = line:match("^\\(%S*)%s*(.-)%s*$")
  if word == "q" then return false end
  if word == "?" then io.stdout:write(HELP) return true end
  if word == "x" then
    if rest == "" then state.expanded = state.expanded == "on" and "off" or "on"
    elseif rest == "on" or rest == "off" or rest == "auto" then state.expanded = rest
    else error("\\x takes on, off or auto", 0) end
    io.stdout:write(("Expanded display is %s.\n"):format(state.expanded))
    return true
  end
  if word == "d" then show(describe(conn, rest ~= "" and rest or nil)) return true end
  error(("unknown command \\%s (\\? lists them)"):format(word), 0)
end

-- Compiles a chunk as an expression (its values shown) or as statements.
local function compile(text, env)
  local fn = load("return " .. text, "=console", "t", env)
  if fn then return fn end
  return load(text, "=console", "t", env)
end

local function is_incomplete(err) return err and err:find("<eof>$") ~= nil end

local function looks_like_sql(text)
  local word = text:match("^%s*(%a+)")
  return word ~= nil and SQL_START[word:lower()] == true
end

-- Evaluates one entry; errors are raised to the caller.
local function evaluate(conn, text)
  if text:find("^%s*\\") then return command(conn, text) end
  -- one environment for the session: a name set in one entry is there in the next
  state.env = state.env or environment(conn)
  local fn, err = compile(text, state.env)
  if not fn then
    if looks_like_sql(text) then
      local changed, rows = conn:execute((text:gsub("%s*;%s*$", "")))
      if rows.columns and #rows.columns > 0 then show(rows)
      else io.stdout:write(("(%d row%s changed)\n"):format(changed, changed == 1 and "" or "s")) end
      return true
    end
    error(err, 0)
  end
  local results = table.pack(fn())
  for i = 1, results.n do show(results[i]) end
  return true
end

-- Reads one entry (more lines while it is unfinished Lua, or SQL without its
-- closing ';'); nil at end of input.
local function read_entry(prompt)
  local line = lineedit.read(prompt)
  if line == nil or line == false then return line end
  local text = line
  while true do
    if text:find("^%s*\\") or text:find("^%s*$") then return text end
    local sql = looks_like_sql(text) and not compile(text, {})
    if sql then
      if text:find(";%s*$") then return text end
    else
      local _, err = compile(text, {})
      if not is_incomplete(err) then return text end
    end
    local more = lineedit.read(("-"):rep(#prompt - 2) .. "> ")
    if more == nil then return text end
    if more == false then return false end
    text = text .. "\n" .. more
  end
end

local history = lineedit.editing() and lineedit.history_path()
if history then lineedit.load(history) end

local STOP = setmetatable({}, { __name = "console.stop" })

-- The loop over entries with conn as db; raises STOP at \q or end of input.
local function loop(conn)
  local prompt = state.sandbox and "alex (sandbox)> " or "alex> "
  while true do
    local ok, entry = pcall(read_entry, prompt)
    if not ok then
      if cli.stop_signal(entry) and entry == "interrupted" then host.rearm_signals() entry = false
      else error(entry, 0) end
    end
    if entry == nil then io.stdout:write("\n") error(STOP, 0) end
    if entry and not entry:find("^%s*$") then
      lineedit.add(entry)
      local done, result = pcall(function()
        if state.sandbox then
          -- each entry in a savepoint: an error undoes only that entry
          return conn:transaction(function(sp) return evaluate(sp, entry) end)
        end
        return evaluate(conn, entry)
      end)
      if not done then
        if cli.stop_signal(result) == 2 then
          host.rearm_signals()
          io.stderr:write("interrupted\n")
        elseif cli.stop_signal(result) then
          error(result, 0) -- SIGTERM, SIGHUP: end the session (the sandbox rolls back)
        elseif type(result) == "table" and result.name == "TransactionNotFoundException" and state.sandbox then
          error(result, 0) -- the sandbox transaction expired: the caller begins another
        else
          report(result)
        end
      elseif result == false then
        error(STOP, 0)
      end
    end
  end
end

local function one_command(conn)
  local ok, err = pcall(evaluate, conn, args.command)
  if not ok then report(err) return false end
  return true
end

cli.run(function()
  local conn = cli.connect()
  local ok_all = true
  if not state.sandbox then
    if args.command then ok_all = one_command(conn)
    else
      local ok, err = pcall(loop, conn)
      if not ok and err ~= STOP then error(err, 0) end
    end
  else
    while true do
      local ok, err = pcall(conn.transaction, conn, function(tx)
        if args.command then
          ok_all = one_command(tx)
          error(STOP, 0)
        end
        io.stderr:write("sandbox: everything in this session is rolled back when it ends\n")
        loop(tx)
      end)
      if ok or err == STOP then break end
      state.env = nil -- bound to the transaction that ended
      if type(err) == "table" and err.name == "TransactionNotFoundException" then
        io.stderr:write("sandbox: the transaction expired (the Data API ends one after 3 minutes without a call);",
          " nothing was committed; a new sandbox transaction begins\n")
      else
        error(err, 0)
      end
    end
    if not args.command then io.stderr:write("sandbox: rolled back\n") end
  end
  if history then lineedit.save(history, 1000) end
  if not ok_all then os.exit(cli.EXIT.REFUSED) end
end)
