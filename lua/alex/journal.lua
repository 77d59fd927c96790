-- The journal of open transactions: one small file per transaction this
-- process has begun and not yet ended, in a folder of the user's state.
--
-- A transaction left open by a process that died (kill -9, a power cut, an
-- OOM kill) keeps its locks until the Data API expires it, 3 minutes after its
-- last call; a reset's DROP locks every table, so every next run would wait
-- that long.  Before a connection does any work, alexlua reads the journal
-- and rolls back the transactions whose process is gone.
--
-- A crash between BeginTransaction's answer and the journal write leaves a
-- transaction unrecorded, but such a transaction has run no statement and so
-- holds no lock.  A crash after its end and before the file is removed leaves
-- an entry whose rollback answers "not found": that is settled too.
--
-- Entries are keyed by (pid, process start time, boot id), so a pid reused by
-- another process, or a reboot, is recognised as a dead owner.
local json = require "alex.json"

local journal = {}

local files = require "alex.files"

local function read_file(path)
  return (files.read(path, { binary = true, max_bytes = 1024 * 1024 }))
end

local function trim(s) return s and (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- The boot id changes at every boot: an entry from an earlier boot is dead.
local function boot_id()
  return trim(read_file("/proc/sys/kernel/random/boot_id")) or "unknown"
end

local function hostname()
  return trim(read_file("/proc/sys/kernel/hostname")) or "unknown"
end

-- pid, start time (clock ticks since boot) and state of a process, from
-- /proc/<pid>/stat; nil when there is no such process.  The command name (field
-- 2) may hold spaces and parentheses, so the fields are read after the last ')'.
local function process_stat(pid)
  local text = read_file("/proc/" .. pid .. "/stat")
  if not text then return nil end
  local own_pid, rest = text:match("^(%d+) %(.*%) (.*)$")
  if not own_pid then return nil end
  local fields = {}
  for f in rest:gmatch("%S+") do fields[#fields + 1] = f end
  -- rest starts at field 3 (state); field 22 (starttime) is rest's 20th
  return { pid = tonumber(own_pid), state = fields[1], start = fields[20] }
end
journal.process_stat = process_stat

-- This process: { pid, start, boot, host }, read once.
local self_stat
local function me()
  if not self_stat then
    local st = process_stat("self")
    self_stat = { pid = st and st.pid or 0, start = st and st.start or "0", boot = boot_id(), host = hostname() }
  end
  return self_stat
end
journal.me = me

-- Whether process pid, started at start (clock ticks since boot), still runs
-- on this machine (a zombie does not).
function journal.process_alive(pid, start)
  local st = process_stat(tostring(math.tointeger(tonumber(pid)) or 0))
  return st ~= nil and st.start == tostring(start) and st.state ~= "Z"
end

-- Whether the process that wrote entry e still runs.
local function owner_alive(e)
  if e.host ~= me().host then return true end -- another machine's: not ours to judge
  if e.boot ~= me().boot then return false end
  return journal.process_alive(e.pid, e.start)
end
journal.owner_alive = owner_alive

-- The folder the journal lives in: ALEX_JOURNAL_DIR, else `journal` in the
-- local stack's state folder when the target is the local stack, else
-- $XDG_STATE_HOME/alexlua/journal (~/.local/state/alexlua/journal).
function journal.default_dir(getenv, local_state_dir)
  getenv = getenv or os.getenv
  local dir = getenv("ALEX_JOURNAL_DIR")
  if dir and dir ~= "" then return dir end
  if local_state_dir then return local_state_dir .. "/journal" end
  local base = require("alex.env").state_home(getenv)
  return base and base .. "/alexlua/journal"
end

local function mkdir_p(path)
  local lfs = require "lfs"
  local sofar = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    sofar = sofar .. "/" .. part
    if not lfs.attributes(sofar, "mode") then
      local ok, err = lfs.mkdir(sofar)
      if not ok and not lfs.attributes(sofar, "mode") then return nil, err end
    end
  end
  if lfs.attributes(path, "mode") ~= "directory" then return nil, path .. " is not a folder" end
  return true
end

local Journal = {}
Journal.__index = Journal

-- open(dir, target) -> journal.  target: { cluster_arn, endpoint } names the
-- database the transactions belong to; only entries of the same target are
-- ever rolled back through this journal.  opts.warn(message) reports a journal
-- that cannot be written (once): work goes on, unprotected.
function journal.open(dir, target, opts)
  opts = opts or {}
  return setmetatable({
    dir = dir, target = target, seq = 0, warned = false,
    warn = opts.warn or function(msg) io.stderr:write("alexlua: warning: ", msg, "\n") end,
  }, Journal)
end

function Journal:_warn_once(msg)
  if self.warned then return end
  self.warned = true
  self.warn(msg)
end

-- record(transaction_id, database) -> the entry's path, or nil when it could
-- not be written (warned once).
function Journal:record(id, database)
  if not self.dir then return nil end
  local ok, err = mkdir_p(self.dir)
  if not ok then
    self:_warn_once(("cannot keep the transaction journal in %s (%s): a crash now would leave its" ..
      " transaction open, with its locks, until it expires"):format(self.dir, tostring(err)))
    return nil
  end
  local m = me()
  self.seq = self.seq + 1
  local name = ("%s/%d-%s-%d.json"):format(self.dir, m.pid, m.start, self.seq)
  local text = json.encode {
    id = id, pid = m.pid, start = m.start, boot = m.boot, host = m.host,
    cluster_arn = self.target.cluster_arn, endpoint = self.target.endpoint, database = database,
    time = os.date("!%Y-%m-%dT%H:%M:%SZ"),
  }
  -- written whole then renamed, so a reader never sees half an entry
  local tmp = name .. ".tmp"
  local f, ferr = io.open(tmp, "wb")
  local written = f and f:write(text)
  local closed = f and f:close()
  if not (written and closed and os.rename(tmp, name)) then
    os.remove(tmp)
    self:_warn_once(("cannot write the transaction journal in %s (%s): a crash now would leave its" ..
      " transaction open, with its locks, until it expires"):format(self.dir, tostring(ferr or "write failed")))
    return nil
  end
  return name
end

function Journal.forget(_, path)
  if path then os.remove(path) end
end

-- entries() -> the entries in the folder, each { path, id, pid, ... }; files
-- that are not entries (or half-written ones) are skipped.
function Journal:entries()
  local lfs = require "lfs"
  local list = {}
  if not (self.dir and lfs.attributes(self.dir, "mode") == "directory") then return list end
  for name in lfs.dir(self.dir) do
    if name:match("^%d+%-%d+%-%d+%.json$") then
      local path = self.dir .. "/" .. name
      local e = json.decode(read_file(path) or "")
      if type(e) == "table" and type(e.id) == "string" then
        e.path = path
        list[#list + 1] = e
      end
    end
  end
  table.sort(list, function(a, b) return a.path < b.path end)
  return list
end

-- stale() -> entries of this journal's target whose process is gone.
function Journal:stale()
  local out = {}
  for _, e in ipairs(self:entries()) do
    if e.cluster_arn == self.target.cluster_arn and e.endpoint == self.target.endpoint
       and not owner_alive(e) then
      out[#out + 1] = e
    end
  end
  return out
end

-- recover(rollback) -> number of transactions settled, list of failures.
-- rollback(entry) -> true when the transaction is rolled back or already
-- gone, or nil and an error; a settled entry is removed, a failed one kept
-- for the next run.
function Journal:recover(rollback)
  local settled, failed = 0, {}
  for _, e in ipairs(self:stale()) do
    local ok, err = rollback(e)
    if ok then
      os.remove(e.path)
      settled = settled + 1
    else
      failed[#failed + 1] = { entry = e, err = err }
    end
  end
  return settled, failed
end

return journal
