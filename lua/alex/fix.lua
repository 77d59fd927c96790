-- Data fixes done safely: a fix script declares what it changes, and this
-- module gives it a dry run with a diff of every row changed, a confirmed
-- --apply recorded in the database, refusal to apply twice, and for fixes
-- over many rows, batches each committed with its checkpoint so that an
-- interrupted run resumes where it stopped, every row processed once.
--
--   local fix = require "alex.fix"
--   fix.run {
--     description = "Set an instrument's current price.",
--     arguments = function(parser) parser:argument("symbol") parser:argument("price") end,
--     change = function(tx, args) ... end,          -- one transaction
--     check_arguments = function(args) return true end, -- optional: or nil, why (exit 2)
--   }
--   fix.run {
--     description = "...",
--     collection = { sql = "SELECT id FROM price_history WHERE symbol = :symbol", key = "id",
--                    params = function(args) return { symbol = args.symbol } end },
--     batch_size = 500,
--     each_batch = function(tx, rows, args) ... end, -- one transaction per batch
--   }
--
-- The diff comes from triggers (schema/003_data_fixes.sql) that record every
-- row change made in a transaction naming its run in alex.fix_run, so SQL
-- written by hand is in it as much as changes made through the models.  A
-- dry run records into a run row that its rollback takes away again.
local cli = require "alex.cli"
local json = require "alex.json"
local errors = require "alex.errors"
local sigv4 = require "alex.sigv4"
local journal = require "alex.journal"
local host = require "alex.host"
local clock = require "alex.clock"
local files = require "alex.files"

local fix = {}

fix.SCREEN_LINES = 60       -- diff lines shown on screen before it is cut
fix.DEFAULT_BATCH_SIZE = 500
fix.PROGRESS_SECONDS = 5    -- a progress line this often when not on a terminal

local ROLLBACK = setmetatable({}, { __name = "alex.fix.rollback" })
local CANCELLED = setmetatable({}, { __name = "alex.fix.cancelled" })

-- ---------------------------------------------------------------- who and what

local function whoami()
  local user = os.getenv("USER") or os.getenv("LOGNAME")
  if not user or user == "" then
    local p = io.popen("id -un 2>/dev/null")
    user = p and p:read("l")
    if p then p:close() end
  end
  return user or "unknown"
end

-- Who runs this fix, in the words of a run row; the process is the journal's
-- (the same pid, start time, boot id and host), read once.
local who
local function identity()
  if not who then
    local m = journal.me()
    who = { run_by = whoami(), host = m.host, pid = m.pid, process_start = m.start, boot_id = m.boot }
  end
  return who
end

-- Whether the process that a run row names still runs.
local function run_owner_alive(run)
  return journal.owner_alive { host = run.host, boot = run.boot_id, pid = run.pid, start = run.process_start }
end

-- The arguments a fix was given, without the options every fix has: the
-- same text for the same arguments, whatever their order.
local OWN_OPTIONS = { apply = true, yes = true, resume = true, again = true, batch_size = true, pause = true,
                      json = true, verbose = true, help = true }

-- json.encode sorts object keys: the same value gives the same text.
local function canonical(v) return assert(json.encode(v)) end
fix.canonical = canonical

local function fix_arguments(args)
  local out = setmetatable({}, json.object_mt)
  for k, v in pairs(args) do
    if type(k) == "string" and not OWN_OPTIONS[k] and v ~= false then out[k] = v end
  end
  return out
end

-- def.arguments (the fix's own) and def.arguments_key, their text, which
-- names "this fix with these arguments" in the run record.
local function set_arguments(def, args)
  def.arguments = fix_arguments(args)
  def.arguments_key = canonical(def.arguments)
end

-- The command line that runs the fix again with these arguments (for the
-- "resume with" hint): the script as it was started and its own arguments.
local function command_line(extra)
  local parts = { "alexlua", arg and arg[0] or "fix.lua" }
  for i = 1, #(arg or {}) do
    local a = arg[i]
    if not (a == "--apply" or a == "--yes" or a == "--resume" or a == "--again") then
      parts[#parts + 1] = a:find("^[%w%-%._/=:]+$") and a or cli.shell_quote(a)
    end
  end
  for _, e in ipairs(extra or {}) do parts[#parts + 1] = e end
  return table.concat(parts, " ")
end

-- ---------------------------------------------------------------- the diff

-- Primary-key columns of the tables named, from the catalogue.
local function primary_keys(conn, names)
  if #names == 0 then return {} end
  local rows = conn:query([[SELECT c.relname AS name, a.attname AS col, array_position(i.indkey, a.attnum) AS pos
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
    WHERE i.indisprimary AND n.nspname = 'public' AND c.relname = ANY(string_to_array(:names, ','))
    ORDER BY 1, 3]], { names = table.concat(names, ",") })
  local keys = {}
  for _, r in ipairs(rows) do
    keys[r.name] = keys[r.name] or {}
    table.insert(keys[r.name], r.col)
  end
  return keys
end

local function sorted_keys(t)
  local list = {}
  for k in pairs(t or {}) do list[#list + 1] = k end
  table.sort(list)
  return list
end

local function same(a, b)
  if type(a) == "table" and type(b) == "table" then return canonical(a) == canonical(b) end
  return a == b
end

-- changes(conn, run_id) -> the run's row changes as diff entries: { table,
-- operation = "insert" | "update" | "delete", key = { col = v }, before,
-- after, columns = { changed column names } }, in the order made.
function fix.changes(conn, run_id)
  local list, tables, seen = {}, {}, {}
  for row in conn:each([[SELECT id, table_name, operation, old_row, new_row FROM data_fix_changes
                         WHERE run_id = :run]], { run = run_id }, { key = "id" }) do
    list[#list + 1] = row
    if not seen[row.table_name] then
      seen[row.table_name] = true
      tables[#tables + 1] = row.table_name
    end
  end
  local pks = primary_keys(conn, tables)
  local OPS = { I = "insert", U = "update", D = "delete" }
  local out = {}
  for _, r in ipairs(list) do
    local before = r.old_row ~= json.null and r.old_row or nil
    local after = r.new_row ~= json.null and r.new_row or nil
    local key = setmetatable({}, json.object_mt)
    for _, col in ipairs(pks[r.table_name] or {}) do key[col] = (after or before)[col] end
    local entry = { table = r.table_name, operation = OPS[r.operation], key = key, before = before, after = after }
    if before and after then
      entry.columns = {}
      for _, col in ipairs(sorted_keys(after)) do
        if not same(before[col], after[col]) then entry.columns[#entry.columns + 1] = col end
      end
    end
    out[#out + 1] = entry
  end
  return out
end

local function value_text(v)
  if v == nil or v == json.null then return "NULL" end
  if type(v) == "table" then return canonical(v) end
  if type(v) == "string" then return cli.one_line(v) end
  return tostring(v)
end

local function key_text(key)
  local parts = {}
  for _, k in ipairs(sorted_keys(key)) do parts[#parts + 1] = k .. "=" .. value_text(key[k]) end
  return table.concat(parts, " ")
end

-- The diff as lines of text: per change, the table and key, then each changed
-- column before -> after; inserted and deleted rows whole.
function fix.diff_lines(changes)
  local lines = {}
  local mark = { insert = "+", update = "~", delete = "-" }
  for _, c in ipairs(changes) do
    lines[#lines + 1] = ("%s %s %s"):format(mark[c.operation], c.table, key_text(c.key))
    if c.operation == "update" then
      local width = 0
      for _, col in ipairs(c.columns) do width = math.max(width, #col) end
      for _, col in ipairs(c.columns) do
        lines[#lines + 1] = ("    %-" .. width .. "s  %s \u{2192} %s"):format(col, value_text(c.before[col]),
          value_text(c.after[col]))
      end
    else
      local row = c.after or c.before
      local width = 0
      for _, col in ipairs(sorted_keys(row)) do width = math.max(width, #col) end
      for _, col in ipairs(sorted_keys(row)) do
        lines[#lines + 1] = ("    %-" .. width .. "s  %s"):format(col, value_text(row[col]))
      end
    end
  end
  return lines
end

-- "1 row in instruments, 3 in positions"
local function summary(changes)
  local per, order = {}, {}
  for _, c in ipairs(changes) do
    if not per[c.table] then
      per[c.table] = 0
      order[#order + 1] = c.table
    end
    per[c.table] = per[c.table] + 1
  end
  if #order == 0 then return "no row" end
  local parts = {}
  for i, t in ipairs(order) do
    parts[i] = ("%d row%s in %s"):format(per[t], per[t] == 1 and "" or "s", t)
  end
  return table.concat(parts, ", ")
end

local function print_diff(changes, out)
  out = out or io.stdout
  local lines = fix.diff_lines(changes)
  local limit = fix.SCREEN_LINES
  for i = 1, math.min(#lines, limit) do out:write(lines[i], "\n") end
  if #lines > limit then
    out:write(("\u{2026} %d more lines not shown (--json prints every change)\n"):format(#lines - limit))
  end
end

-- ---------------------------------------------------------------- the run record

local RUN_COLUMNS = [[id, name, checksum, arguments, arguments_key, status, run_by, host, pid, process_start, boot_id,
  batch_size, rows_total, rows_done, rows_changed, checkpoint, error_message, started_at, finished_at]]

local function insert_run(tx, def, status)
  local me = identity()
  return tx:query_one(([[INSERT INTO data_fix_runs (name, checksum, arguments, arguments_key, status, run_by,
      host, pid, process_start, boot_id, batch_size, rows_total)
    VALUES (:name, :checksum, CAST(:arguments AS jsonb), :key, :status, :run_by, :host, :pid, :start, :boot,
      :batch_size, :rows_total)
    RETURNING %s]]):format(RUN_COLUMNS), {
      name = def.name, checksum = def.checksum, arguments = def.arguments_key, key = def.arguments_key,
      status = status, run_by = me.run_by, host = me.host, pid = me.pid, start = me.process_start,
      boot = me.boot_id, batch_size = def.batch_size or require("alex.db").null,
      rows_total = def.rows_total or require("alex.db").null,
    })
end

-- A run row whose changes the capture triggers record for the rest of tx.
local function begin_run(tx, def)
  local run = insert_run(tx, def, "running")
  tx:query("SELECT set_config('alex.fix_run', :id, true) AS run", { id = tostring(run.id) })
  return run
end

-- The applied run of this fix with these arguments, if any.
local function applied_before(conn, def)
  return conn:query_one(([[SELECT %s FROM data_fix_runs WHERE name = :name AND arguments_key = :key
    AND status = 'applied' ORDER BY id DESC LIMIT 1]]):format(RUN_COLUMNS),
    { name = def.name, key = def.arguments_key })
end

local function unfinished(conn, def)
  return conn:query_one(([[SELECT %s FROM data_fix_runs WHERE name = :name AND arguments_key = :key
    AND status IN ('running', 'interrupted') ORDER BY id DESC LIMIT 1]]):format(RUN_COLUMNS),
    { name = def.name, key = def.arguments_key })
end

local function describe_run(run)
  return ("run %d (%s by %s on %s)"):format(run.id, run.status, run.run_by, tostring(run.started_at):sub(1, 19))
end

local function refuse_if_applied(conn, def)
  local earlier = applied_before(conn, def)
  if earlier then
    cli.refuse(("%s was already applied with these arguments: %s; --again applies it once more")
      :format(def.name, describe_run(earlier)))
  end
end

-- Serialises runs of one fix with one set of arguments, so that two --apply
-- at once cannot both pass the "applied before?" check.
local function lock_fix(tx, def)
  tx:query("SELECT pg_advisory_xact_lock(hashtext(:k)) AS locked",
    { k = "alex.fix:" .. def.name .. ":" .. def.arguments_key })
end

local function mark(conn, run_id, status, message)
  conn:execute([[UPDATE data_fix_runs SET status = :status, error_message = :message,
      finished_at = CASE WHEN :status = 'running' THEN NULL ELSE clock_timestamp() END,
      rows_changed = (SELECT count(*) FROM data_fix_changes WHERE run_id = :id)
    WHERE id = :id]], { id = run_id, status = status, message = message or require("alex.db").null })
end

-- ---------------------------------------------------------------- output

local function out_json(v)
  io.stdout:write(json.encode(v), "\n")
end

local function changes_json(changes)
  local list = setmetatable({}, json.array_mt)
  for i, c in ipairs(changes) do
    list[i] = { table = c.table, operation = c.operation, key = c.key, before = c.before or json.null,
                after = c.after or json.null,
                columns = c.columns and setmetatable(c.columns, json.array_mt) or json.null }
  end
  return list
end

local function confirm(question)
  io.stderr:write(question, " [y/N] ")
  io.stderr:flush()
  local answer = io.stdin:read("l")
  return answer ~= nil and answer:lower():match("^%s*y") ~= nil
end

-- ---------------------------------------------------------------- single-transaction fixes

local function run_change(conn, def, args, opts)
  if opts.resume then cli.refuse("--resume is for fixes over a collection of rows; this one is one transaction") end
  local changes, run
  local ok, err = pcall(conn.transaction, conn, function(tx)
    lock_fix(tx, def)
    if opts.apply and not opts.again then
      refuse_if_applied(tx, def)
    end
    run = begin_run(tx, def)
    def.change(tx, args)
    changes = fix.changes(tx, run.id)
    if not opts.apply then error(ROLLBACK, 0) end
    if opts.interactive and not opts.yes then
      io.stdout:write(("%s would change %s:\n"):format(def.name, summary(changes)))
      print_diff(changes)
      if not confirm(("Apply %s?"):format(def.name)) then error(CANCELLED, 0) end
    end
    mark(tx, run.id, "applied")
  end)
  if not ok and err ~= ROLLBACK then
    if err == CANCELLED then
      io.stderr:write("not applied: nothing was changed\n")
      return
    end
    -- nothing was written, the run's record included: bad input writes nothing
    error(err, 0)
  end
  if opts.json then
    out_json { name = def.name, dry_run = not opts.apply, run = opts.apply and run.id or json.null,
               arguments = def.arguments, rows_changed = #changes, changes = changes_json(changes) }
    return
  end
  if not opts.apply then
    io.stdout:write(("Dry run of %s: would change %s; nothing was written.\n"):format(def.name, summary(changes)))
    print_diff(changes)
    io.stdout:write(("To make this change: %s --apply\n"):format(command_line()))
  else
    io.stdout:write(("Applied %s as run %d: changed %s.\n"):format(def.name, run.id, summary(changes)))
    if not (opts.interactive and not opts.yes) then print_diff(changes) end
  end
end

-- ---------------------------------------------------------------- collection fixes

local NAME = "^[%a_][%w_]*$"

-- The collection's SQL (without a closing ';') and a fresh table of its parameters.
local function collection_query(def, args)
  local c = def.collection
  local params = {}
  for k, v in pairs(c.params and c.params(args) or {}) do params[k] = v end
  return (c.sql:gsub("%s*;%s*$", "")), params
end

-- The next batch after `after` (nil: from the start), keyset-paged on key.
local function fetch_batch(tx, def, args, after, size)
  local c = def.collection
  local inner, params = collection_query(def, args)
  params.alex_limit = size
  local sql
  if after == nil then
    sql = ("SELECT * FROM (%s) AS alex_batch ORDER BY alex_batch.%s LIMIT :alex_limit"):format(inner, c.key)
  else
    params.alex_after = after
    sql = ("SELECT * FROM (%s) AS alex_batch WHERE alex_batch.%s > (CAST(:alex_after AS jsonb) #>> '{}')::%s" ..
      " ORDER BY alex_batch.%s LIMIT :alex_limit"):format(inner, c.key, def.key_type, c.key)
  end
  return tx:query(sql, params)
end

-- The SQL type of the collection's key, so a checkpoint (kept as JSON) is
-- compared as the key's own type (text when the name is not a plain type
-- name), and the number of rows.
local function key_type(conn, def, args)
  local inner, params = collection_query(def, args)
  local row = conn:query_one(("SELECT pg_typeof(alex_batch.%s)::text AS t, count(*) OVER () AS n FROM (%s) AS" ..
    " alex_batch LIMIT 1"):format(def.collection.key, inner), params)
  if not row then return "text", 0 end
  return row.t:find("^[%w_ ]+$") and row.t or "text", row.n
end

-- Every batch of the collection inside tx, one after another; returns the
-- number of rows processed.
local function all_batches(tx, def, args, size)
  local after, processed = nil, 0
  while true do
    local rows = fetch_batch(tx, def, args, after, size)
    if #rows == 0 then return processed end
    def.each_batch(tx, rows, args)
    processed = processed + #rows
    after = json.encode(rows[#rows][def.collection.key])
  end
end

local Progress = {}
Progress.__index = Progress

local function progress(total, done)
  return setmetatable({ total = total, done = done, start_done = done, started = clock.monotonic(),
                        last = 0, tty = host.isatty(2) }, Progress)
end

function Progress:update(done, final)
  self.done = done
  local now = clock.monotonic()
  if not final and not self.tty and now - self.last < fix.PROGRESS_SECONDS then return end
  if not final and self.tty and now - self.last < 0.1 then return end
  self.last = now
  local elapsed = math.max(now - self.started, 1e-6)
  local rate = (done - self.start_done) / elapsed
  local total = math.max(self.total or 0, done)
  local frac = total > 0 and done / total or 1
  local eta = rate > 0 and (total - done) / rate or 0
  local text = ("%d/%d rows %3d%%  %.0f rows/s  ETA %d:%02d"):format(done, total, math.floor(frac * 100), rate,
    math.floor(eta / 60), math.floor(eta % 60))
  if self.tty then
    local width = 30
    local filled = math.floor(frac * width + 0.5)
    io.stderr:write("\r[", ("#"):rep(filled), ("."):rep(width - filled), "] ", text, "\027[K")
    if final then io.stderr:write("\n") end
  else
    io.stderr:write("progress: ", text, "\n")
  end
  io.stderr:flush()
end

-- One batch in its own transaction: the checkpoint read under the run row's
-- lock, the batch, the checkpoint moved on; commits together.  Returns the
-- number of rows processed (0: the collection is done).
local function apply_batch(conn, def, args, run_id, size)
  return conn:transaction(function(tx)
    local run = tx:query_one([[SELECT checkpoint, rows_done, status, pid, process_start,
        set_config('alex.fix_run', CAST(:id AS text), true) AS capture
      FROM data_fix_runs WHERE id = :id FOR UPDATE]], { id = run_id })
    local me = identity()
    if run.status ~= "running" or run.pid ~= me.pid or run.process_start ~= me.process_start then
      cli.refuse(("run %d was taken over by another process (pid %s)"):format(run_id, tostring(run.pid)))
    end
    local after = run.checkpoint ~= nil and run.checkpoint ~= json.null and json.encode(run.checkpoint) or nil
    local rows = fetch_batch(tx, def, args, after, size)
    if #rows == 0 then return 0 end
    def.each_batch(tx, rows, args)
    tx:execute([[UPDATE data_fix_runs SET checkpoint = CAST(:ck AS jsonb), rows_done = rows_done + :n
      WHERE id = :id]], { ck = json.encode(rows[#rows][def.collection.key]), n = #rows, id = run_id })
    return #rows
  end, { retries = 3 })
end

local function claim(conn, def, opts)
  local me = identity()
  if opts.resume then
    local run = unfinished(conn, def)
    if not run then
      cli.refuse(("%s has no interrupted run with these arguments to resume"):format(def.name))
    end
    if run.status == "running" and run_owner_alive(run) then
      cli.refuse(("%s is still running as %s (pid %d on %s)"):format(def.name, describe_run(run), run.pid, run.host))
    end
    -- compare-and-set: of two processes resuming at once, one wins
    local n = conn:execute([[UPDATE data_fix_runs SET status = 'running', pid = :pid, process_start = :start,
        host = :host, boot_id = :boot, run_by = :run_by, error_message = NULL
      WHERE id = :id AND status = :status AND pid IS NOT DISTINCT FROM :old_pid]], {
        id = run.id, status = run.status, old_pid = run.pid, pid = me.pid, start = me.process_start,
        host = me.host, boot = me.boot_id, run_by = me.run_by })
    if n ~= 1 then cli.refuse(("run %d was resumed by another process meanwhile"):format(run.id)) end
    return run, true
  end
  local run
  conn:transaction(function(tx)
    lock_fix(tx, def)
    local open = unfinished(tx, def)
    if open and not (open.status == "running" and run_owner_alive(open)) and not opts.again then
      cli.refuse(("%s has an interrupted %s at %d of %s rows: continue it with --resume --apply" ..
        " (or --again to start over)"):format(def.name, describe_run(open), open.rows_done, tostring(open.rows_total)))
    end
    if open and open.status == "running" and run_owner_alive(open) then
      cli.refuse(("%s is running as %s (pid %d)"):format(def.name, describe_run(open), open.pid))
    end
    if not opts.again then
      refuse_if_applied(tx, def)
    end
    run = insert_run(tx, def, "running")
  end)
  return run, false
end

local function run_collection(conn, def, args, opts)
  local c = def.collection
  if type(c.sql) ~= "string" or type(c.key) ~= "string" or not c.key:find(NAME) then
    error("fix.run: collection needs sql and key (a column name)", 0)
  end
  local size = opts.batch_size or def.batch_size or fix.DEFAULT_BATCH_SIZE
  def.batch_size = size
  def.key_type, def.rows_total = key_type(conn, def, args)

  if not opts.apply then
    -- a dry run: every batch in one transaction, rolled back
    local changes, processed
    local ok, err = pcall(conn.transaction, conn, function(tx)
      local run = begin_run(tx, def)
      processed = all_batches(tx, def, args, size)
      changes = fix.changes(tx, run.id)
      error(ROLLBACK, 0)
    end)
    if not ok and err ~= ROLLBACK then error(err, 0) end
    if opts.json then
      out_json { name = def.name, dry_run = true, run = json.null, arguments = def.arguments, rows = processed,
                 rows_changed = #changes, changes = changes_json(changes) }
      return
    end
    io.stdout:write(("Dry run of %s over %d rows: would change %s; nothing was written.\n"):format(def.name,
      processed, summary(changes)))
    print_diff(changes)
    io.stdout:write(("To make this change: %s --apply\n"):format(command_line()))
    return
  end

  if opts.interactive and not opts.yes and not opts.resume then
    if not confirm(("Apply %s to %d rows in batches of %d?"):format(def.name, def.rows_total, size)) then
      io.stderr:write("not applied: nothing was changed\n")
      return
    end
  end
  local run, resumed = claim(conn, def, opts)
  local done = run.rows_done or 0
  if resumed then
    io.stderr:write(("resuming %s at row %d of %s\n"):format(describe_run(run), done, tostring(run.rows_total)))
  end
  local bar = progress(def.rows_total, done)
  local pause = (opts.pause or 0) / 1000
  -- everything between claiming the run and marking it applied: a stop or a
  -- failure anywhere in it (a batch rolls back by itself) marks the run
  local ok, err = pcall(function()
    while true do
      local batch_ok, n = pcall(apply_batch, conn, def, args, run.id, size)
      if not batch_ok then
        -- a commit whose answer was lost: the next batch reads the checkpoint the database holds
        if cli.stop_signal(n) or not (errors.is_error(n) and n.commit_unknown) then error(n, 0) end
        n = -1
      end
      if n == 0 then break end
      if n > 0 then done = done + n
      else done = conn:query_one("SELECT rows_done FROM data_fix_runs WHERE id = :id", { id = run.id }).rows_done end
      bar:update(done)
      if pause > 0 then clock.sleep(pause) end
    end
  end)
  if not ok then
    bar:update(done, true)
    local sig = cli.stop_signal(err)
    pcall(mark, conn, run.id, sig and "interrupted" or "failed", not sig and cli.message(err) or nil)
    if sig then
      io.stderr:write(("%s: run %d interrupted after %d rows; the batch in hand was rolled back." ..
        " Resume it with:\n  %s\n"):format(def.name, run.id, done, command_line { "--resume", "--apply" }))
    end
    error(err, 0)
  end
  mark(conn, run.id, "applied")
  bar:update(done, true)
  local final = conn:query_one("SELECT rows_changed FROM data_fix_runs WHERE id = :id", { id = run.id })
  if opts.json then
    out_json { name = def.name, dry_run = false, run = run.id, arguments = def.arguments, rows = done,
               rows_changed = final.rows_changed }
    return
  end
  io.stdout:write(("Applied %s as run %d: %d rows processed, %d row changes recorded (fixes.lua show %d).\n")
    :format(def.name, run.id, done, final.rows_changed, run.id))
end

-- ---------------------------------------------------------------- run

local function script_path()
  return arg and arg[0] or nil
end

-- Set while fix.load runs a script: fix.run then hands the definition back
-- instead of running it.
local loading = nil

-- run(def): the whole command line of a fix script.  Exits through cli.run.
function fix.run(def)
  if type(def) ~= "table" then error("fix.run needs a table", 2) end
  local collection = def.collection ~= nil
  if collection and type(def.each_batch) ~= "function" then error("fix.run: a collection needs each_batch", 2) end
  if not collection and type(def.change) ~= "function" then error("fix.run: change or collection is needed", 2) end
  local path = loading or script_path()
  def.name = def.name or (path and path:match("([^/]+)%.lua$")) or "fix"
  if loading then
    loading = def
    return def
  end
  local parser = cli.parser(def.name .. ".lua", def.description or "A data fix.",
    "Without --apply this is a dry run: the change is made in a transaction, its diff printed, and rolled back." ..
    " An applied run is recorded in data_fix_runs (see: alexlua scripts/fixes.lua list).")
  if def.arguments then def.arguments(parser) end
  parser:flag("--apply", "Commit the change (on a terminal, after confirming; see --yes).")
  parser:flag("--yes", "Do not ask for confirmation.")
  parser:flag("--again", "Apply even though this fix was applied with these arguments before.")
  parser:flag("--json", "Print the result (and every change) as JSON.")
  if collection then
    parser:flag("--resume", "Continue the last interrupted run of this fix with these arguments.")
    parser:option("--batch-size", "Rows per batch (one transaction each).", tostring(def.batch_size or
      fix.DEFAULT_BATCH_SIZE)):convert(cli.whole(1, 100000))
    parser:option("--pause", "Milliseconds to wait between batches.", "0"):convert(function(v)
      local n = tonumber(v)
      if not n or n < 0 or n > 600000 then return nil, "must be milliseconds from 0 to 600000" end
      return n
    end)
  end
  local args = cli.parse(parser)
  if def.check_arguments then
    -- arguments that cannot be right whatever the database holds: before connecting
    local ok, why = def.check_arguments(args)
    if not ok then cli.fail(why, cli.EXIT.UNAVAILABLE) end
  end
  local source = path and files.read(path)
  def.checksum = sigv4.sha256_hex(source or def.name)
  set_arguments(def, args)
  local opts = { apply = args.apply, yes = args.yes, again = args.again, json = args.json, resume = args.resume,
                 batch_size = args.batch_size, pause = args.pause,
                 interactive = host.isatty(0) and host.isatty(2) }
  cli.run(function()
    if opts.resume and not opts.apply then cli.refuse("--resume continues a run: give --apply with it") end
    local conn = cli.connect()
    if collection then run_collection(conn, def, args, opts) else run_change(conn, def, args, opts) end
  end)
end

-- ---------------------------------------------------------------- testing fixes

-- load(path) -> the definition of the fix script at path, without running it
-- (for specs: see fix.try and alex.testing).
function fix.load(path)
  local chunk, err = loadfile(path)
  if not chunk then error(err, 2) end
  loading = path
  local ok, lerr = pcall(chunk)
  local def = loading
  loading = nil
  if not ok then error(lerr, 0) end
  if type(def) ~= "table" then error(path .. " does not call fix.run", 2) end
  return def
end

-- try(tx, def, args) -> the changes the fix makes (as fix.changes gives
-- them), made inside the caller's transaction tx and recorded there like a
-- dry run's: inside testing.sandbox nothing of it stays.  args: the fix's own
-- arguments, as its parser would give them.
function fix.try(tx, def, args)
  args = args or {}
  def.checksum = def.checksum or ("0"):rep(64)
  set_arguments(def, args)
  if def.check_arguments then
    local ok, why = def.check_arguments(args)
    if not ok then error(cli.problem(why, "refused"), 0) end
  end
  local run = begin_run(tx, def)
  if def.collection then
    def.key_type = key_type(tx, def, args)
    all_batches(tx, def, args, def.batch_size or fix.DEFAULT_BATCH_SIZE)
  else
    def.change(tx, args)
  end
  return fix.changes(tx, run.id)
end

-- ---------------------------------------------------------------- reading runs

-- runs(conn [, limit]) -> the most recent runs, newest first.
function fix.runs(conn, limit)
  return conn:query(([[SELECT id, name, status, arguments, rows_changed, rows_done, rows_total, run_by,
      started_at, finished_at FROM data_fix_runs ORDER BY id DESC LIMIT :n]]), { n = limit or 50 })
end

function fix.run_record(conn, id)
  return conn:query_one(("SELECT %s FROM data_fix_runs WHERE id = :id"):format(RUN_COLUMNS), { id = id })
end

fix.print_diff = print_diff
fix.summary = summary
fix.changes_json = changes_json

return fix
