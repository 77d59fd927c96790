-- What the scripts in scripts/ share: argument parsing with --help and
-- --verbose, colour only on a terminal (NO_COLOR respected), connecting with a
-- clear message, and exits with a code.
local host = require "alex.host"

local cli = {}

local COLOURS = { red = "31", green = "32", yellow = "33", blue = "34", bold = "1", dim = "2" }

function cli.use_colour(fd)
  local no = os.getenv("NO_COLOR")
  if no and no ~= "" then return false end
  if os.getenv("TERM") == "dumb" then return false end
  return host.isatty(fd or 1)
end

-- paint(colour, text): ANSI colour when stdout is a terminal, plain otherwise.
function cli.painter(fd)
  local on = cli.use_colour(fd)
  return function(colour, text)
    if not on then return text end
    return "\27[" .. COLOURS[colour] .. "m" .. text .. "\27[0m"
  end
end

-- The folder of the running script, and paths relative to the project beside it
-- (scripts/../schema, scripts/../seed).
function cli.script_dir()
  local script = arg and arg[0] or "."
  return script:match("^(.*)/[^/]*$") or "."
end

function cli.project_path(rel)
  local dir = cli.script_dir()
  if dir:match("/examples$") then dir = dir:gsub("/examples$", "") end
  return dir .. "/../" .. rel
end

function cli.die(msg, code)
  io.stderr:write(cli.painter(2)("red", "error: "), tostring(msg), "\n")
  os.exit(code or 1)
end

-- parser(name, description) -> an argparse parser with --verbose already there.
function cli.parser(name, description, epilog)
  local argparse = require "argparse"
  local p = argparse(name, description, epilog)
  p:flag("-v --verbose", "Log every Data API call (operation, SQL first line, parameter names, timing).")
  return p
end

-- parse(parser) -> args; --verbose turns on the client's debug log.
function cli.parse(parser)
  local args = parser:parse(arg)
  if args.verbose then cli.verbose = true end
  return args
end

-- connect() -> a connection, or exits 2 with what to set.
function cli.connect(opts)
  opts = opts or {}
  if cli.verbose then
    local base = opts.env or os.getenv
    opts.env = function(k)
      if k == "ALEX_DEBUG" then return "1" end
      return base(k)
    end
  end
  local conn, err = require("alex.db").connect(opts)
  if not conn then cli.die(tostring(err), 2) end
  return conn
end

-- Reads and decodes a JSON file, or returns nil, err naming it.
function cli.read_json(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  local decoded, derr = require("cjson.safe").decode(text)
  if decoded == nil then return nil, path .. ": not valid JSON: " .. tostring(derr) end
  return decoded
end

return cli
