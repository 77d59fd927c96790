-- A reader for the AWS shared config and credentials files (~/.aws/config,
-- ~/.aws/credentials).  Debian's lua-inifile does not fit them: it knows no `#`
-- comments, no indented sub-sections (`s3 =` followed by `  key = value`), turns
-- values such as "true" or "1234" into other types and raises on a missing file.
--
-- Format, as the AWS SDKs read it:
--   [section name]            a trailing `# ...` / `; ...` comment is allowed
--   key = value               key lower-cased; `key: value` also accepted (Python's
--                             configparser, which the CLI uses, takes both)
--   # comment / ; comment     whole-line comments
--   key = value  # note       a `#`/`;` preceded by white space starts a comment
--                             (the Java, Go and Rust SDKs; values AWS writes never
--                             contain " #" or " ;")
--   key =                     an empty value followed by indented `sub = value`
--     sub = value             lines is a sub-section: value becomes a table
--   key = value               an indented line after a non-empty value continues it
--     more                    (joined with "\n", as configparser does)
-- A section or key given twice merges, the later value winning.
local ini = {}

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function strip_comment(s)
  local cut = s:find("%s[#;]")
  if cut then s = s:sub(1, cut) end
  return trim(s)
end

-- Splits "key = value" (or "key: value") at the first delimiter.
local function split_property(line)
  local pos = line:find("[=:]")
  if not pos then return nil end
  local key = trim(line:sub(1, pos - 1)):lower()
  if key == "" then return nil end
  return key, strip_comment(line:sub(pos + 1))
end

-- Returns { [section name] = { [key] = string | { [subkey] = string } } },
-- or nil and "<name>:<line>: <what is wrong>".
function ini.parse(text, name)
  name = name or "(string)"
  local sections = {}
  local section, key -- current section table and last key in it
  local lineno = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    line = line:gsub("\r$", "")
    if lineno == 1 then line = line:gsub("^\239\187\191", "") end -- UTF-8 BOM
    local stripped = trim(line)
    local indented = line:find("^%s") ~= nil
    if stripped == "" or stripped:find("^[#;]") then
      goto continue -- blank line or comment
    end
    if stripped:sub(1, 1) == "[" then
      local header, rest = stripped:match("^%[([^%]]*)%](.*)$")
      if not header or not (rest:match("^%s*$") or rest:match("^%s*[#;]")) then
        return nil, ("%s:%d: malformed section header (expected [name])"):format(name, lineno)
      end
      header = trim(header):gsub("%s+", " ")
      if header == "" then
        return nil, ("%s:%d: empty section name"):format(name, lineno)
      end
      sections[header] = sections[header] or {}
      section, key = sections[header], nil
    elseif indented and section and key then
      local current = section[key]
      if current == "" or type(current) == "table" then
        local sub, value = split_property(stripped)
        if not sub then
          return nil, ("%s:%d: expected `name = value` in the sub-section %q"):format(name, lineno, key)
        end
        if type(current) ~= "table" then
          current = {}
          section[key] = current
        end
        current[sub] = value
      else
        section[key] = current .. "\n" .. strip_comment(stripped)
      end
    else
      if not section then
        return nil, ("%s:%d: a setting before the first [section] header"):format(name, lineno)
      end
      local k, value = split_property(stripped)
      if not k then
        return nil, ("%s:%d: expected `name = value`"):format(name, lineno)
      end
      section[k] = value
      key = k
    end
    ::continue::
  end
  return sections
end

-- Reads and parses a file.  Returns the sections, or nil, message, kind where
-- kind is "missing" (no such file: not an error for AWS files) or "error".
function ini.read(path)
  local mode = require("lfs").attributes(path, "mode")
  if mode == nil then
    local f, err, code = io.open(path, "rb")
    if f then f:close() elseif code == 2 then return nil, path .. ": no such file", "missing" end
    if not f then return nil, "cannot read " .. tostring(err), "error" end
  end
  -- the one reader of input files: a FIFO or /dev/zero named by AWS_CONFIG_FILE
  -- must not block or fill memory; a settings file over 1 MiB is the wrong file
  local text, rerr = require("alex.files").read(path, { binary = true, max_bytes = 1024 * 1024 })
  if not text then return nil, "cannot read " .. rerr, "error" end
  local sections, perr = ini.parse(text, path)
  if not sections then return nil, perr, "error" end
  return sections
end

-- The profile `name` of a parsed *config* file: `[profile name]`, or for
-- "default" also `[default]` (`[profile default]` wins where both set a key).
-- Returns nil when the file has no such profile.
function ini.config_profile(sections, name)
  if not sections then return nil end
  local plain = name == "default" and sections.default or nil
  local prefixed = sections["profile " .. name]
  if plain and prefixed then
    local merged = {}
    for k, v in pairs(plain) do merged[k] = v end
    for k, v in pairs(prefixed) do merged[k] = v end
    return merged
  end
  return prefixed or plain
end

-- The profile `name` of a parsed *credentials* file: section names are profile
-- names as they are, `[name]`.
function ini.credentials_profile(sections, name)
  return sections and sections[name] or nil
end

-- `[services name]` of a parsed config file.
function ini.services(sections, name)
  return sections and sections["services " .. name] or nil
end

-- "~/x" -> home .. "/x", as the SDKs expand AWS_CONFIG_FILE and friends.
function ini.expand_home(path, home)
  if home and (path == "~" or path:sub(1, 2) == "~/") then
    return home .. path:sub(2)
  end
  return path
end

-- Where the two AWS files are.  getenv returns nil for unset variables;
-- home may be nil (then only explicit AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE work).
function ini.aws_paths(getenv, home)
  local function var(n)
    local v = getenv(n)
    if v == "" then return nil end
    return v
  end
  local config = var("AWS_CONFIG_FILE") or (home and "~/.aws/config")
  local creds = var("AWS_SHARED_CREDENTIALS_FILE") or (home and "~/.aws/credentials")
  return config and ini.expand_home(config, home), creds and ini.expand_home(creds, home)
end

-- The shared files of one profile, each read at most once, when first asked
-- for: alex.aws resolves a service's settings from the config file and the
-- credentials chain reads keys from both, so one connection parses
-- ~/.aws/config once, and ~/.aws/credentials only when the chain gets there.
--
--   local files = ini.files { getenv = fn, home = dir, profile = name }
--   files.profile       the profile: option, AWS_PROFILE, AWS_DEFAULT_PROFILE, "default"
--   files.profile_from  "option profile" | "AWS_PROFILE" | "AWS_DEFAULT_PROFILE" | nil (the default)
--   files.config_path, files.creds_path   nil when HOME is unset and no variable names the file
--   files:config()      -> sections, or nil, why, kind ("missing": why is "not found" or
--                          "not found (HOME is not set)"; "error": why names file and line)
--   files:credentials() -> the same for the credentials file
-- getenv must read unset and empty variables as nil (alex.env.wrap).
local Files = {}
Files.__index = Files

function ini.files(opts)
  local getenv = opts.getenv
  local name, from
  if type(opts.profile) == "string" and opts.profile ~= "" then
    name, from = opts.profile, "option profile"
  elseif getenv("AWS_PROFILE") then
    name, from = getenv("AWS_PROFILE"), "AWS_PROFILE"
  elseif getenv("AWS_DEFAULT_PROFILE") then
    name, from = getenv("AWS_DEFAULT_PROFILE"), "AWS_DEFAULT_PROFILE"
  else
    name = "default"
  end
  local home = opts.home or getenv("HOME")
  local config_path, creds_path = ini.aws_paths(getenv, home)
  return setmetatable({ profile = name, profile_from = from, config_path = config_path, creds_path = creds_path,
                        _read = {} }, Files)
end

local function read_once(self, path)
  local r = self._read[path or false]
  if not r then
    if not path then
      r = { nil, "not found (HOME is not set)", "missing" }
    else
      r = table.pack(ini.read(path))
      if r[3] == "missing" then r[2] = "not found" end
    end
    self._read[path or false] = r
  end
  return r[1], r[2], r[3]
end

function Files:config() return read_once(self, self.config_path) end
function Files:credentials() return read_once(self, self.creds_path) end

return ini
