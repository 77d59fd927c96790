-- The one reader of input files (seed data, test data, migrations, anything a
-- script reads): regular files only, at most files.MAX_BYTES, valid UTF-8,
-- and every problem as one line naming the file.
--
--   local files = require "alex.files"
--   local text, err = files.read("seed/instruments.json")   -- nil, "path: problem"
--   local value, err = files.read_json("seed/test_user.json")
--   local mode = files.kind(path)                            -- "file", "directory", ... or nil, err
--
-- Why 16 MiB: everything read ends up in Data API requests of at most 4 MiB
-- each (a migration travels as one statement, a seed as one batch), and the
-- largest input the project ships is 8 KiB; a file over four full requests is
-- a mistake (the wrong path, a log, a dump), not data.  Decoded JSON takes
-- several times its text in Lua tables: the cap bounds a script's memory too.
--
-- Only regular files (or links to them) are opened: a directory gives a
-- confusing read error, a FIFO or a terminal can block for ever, and
-- /dev/zero or /dev/urandom never end.  The check comes before the open, and
-- the read is bounded anyway, so a file swapped meanwhile cannot take more
-- than the cap.
local lfs = require "lfs"

local files = {}

files.MAX_BYTES = 16 * 1024 * 1024

local KINDS = { directory = "a directory", ["named pipe"] = "a FIFO (named pipe)", socket = "a socket",
                ["char device"] = "a character device", ["block device"] = "a block device" }

local function mib(n)
  return ("%.1f MiB"):format(n / (1024 * 1024))
end

-- The system's reason from an io/lfs message ("path: No such file ..." -> "No such file ...").
local function reason(msg)
  msg = tostring(msg or "unknown error")
  return msg:match(": ([^:]+)$") or msg
end

-- A path as shown in messages: control characters escaped, long ones cut.
function files.show(path)
  local s = tostring(path):gsub("[%c\127]", function(c) return ("\\x%02x"):format(c:byte()) end)
  if #s > 200 then s = s:sub(1, 200) .. "..." end
  return s
end
local show = files.show

-- kind(path) -> "file" | "directory" | "named pipe" | ... , or nil and "path: problem".
function files.kind(path)
  if type(path) ~= "string" or path == "" then return nil, "(no path): a file name is needed" end
  local mode, err = lfs.attributes(path, "mode")
  if not mode then return nil, ("%s: cannot read: %s"):format(show(path), reason(err)) end
  return mode
end

-- Line and column of byte offset `at` (1-based) in text.
local function position(text, at)
  local line, start = 1, 1
  for nl in text:sub(1, at - 1):gmatch("()\n") do
    line = line + 1
    start = nl + 1
  end
  return line, at - start + 1
end
files.position = position

-- read(path [, opts]) -> text, or nil and one line "path: problem".
-- opts.max_bytes overrides the cap; opts.binary = true skips the UTF-8 check.
function files.read(path, opts)
  opts = opts or {}
  local max = opts.max_bytes or files.MAX_BYTES
  local mode, kerr = files.kind(path)
  if not mode then return nil, kerr end
  if mode ~= "file" then
    return nil, ("%s: is %s, not a regular file"):format(show(path), KINDS[mode] or mode)
  end
  local size = lfs.attributes(path, "size") or 0
  if size > max then
    return nil, ("%s: is %s, over the %s limit for input files"):format(show(path), mib(size), mib(max))
  end
  local f, oerr = io.open(path, "rb")
  if not f then return nil, ("%s: cannot read: %s"):format(show(path), reason(oerr)) end
  local text, rerr = f:read(max + 1)
  f:close()
  if text == nil and rerr then return nil, ("%s: cannot read: %s"):format(show(path), reason(rerr)) end
  text = text or ""
  if #text > max then
    return nil, ("%s: is over the %s limit for input files"):format(show(path), mib(max))
  end
  if not opts.binary then
    local ok, bad = utf8.len(text)
    if not ok then
      local line, col = position(text, bad)
      return nil, ("%s:%d:%d: not valid UTF-8 (byte 0x%02x)"):format(show(path), line, col, text:byte(bad))
    end
  end
  return text
end

-- read_json(path) -> decoded value, or nil and one line "path[:line:col]: problem".
-- JSON null stays cjson's null (alex.records treats it as absent).
function files.read_json(path)
  local text, err = files.read(path)
  if not text then return nil, err end
  if text:find("^\239\187\191") then text = text:sub(4) end -- a UTF-8 byte order mark is not JSON
  if text:find("^%s*$") then return nil, ("%s: is empty, expected JSON"):format(show(path)) end
  local value, derr = require("cjson.safe").decode(text)
  if value == nil then
    derr = tostring(derr)
    local at = tonumber(derr:match("at character (%d+)"))
    local where = ""
    if at then
      local line, col = position(text, math.min(at, #text + 1))
      where = (":%d:%d"):format(line, col)
      derr = derr:gsub(" at character %d+", "")
    end
    return nil, ("%s%s: not valid JSON: %s"):format(show(path), where, derr)
  end
  return value
end

return files
