-- What the scripts in scripts/ share: argument parsing with --help and
-- --verbose, colour only on a terminal (NO_COLOR respected), connecting with a
-- clear message, reading input files, and how they end.
--
-- Every script runs its body through cli.run, so that what goes wrong is
-- reported the same way everywhere: a problem of the user's or of the
-- environment is one line on stderr ("error: ...") and a documented exit code;
-- a Lua traceback (exit 1, from alexlua) means a bug in the script or the
-- library.  The codes (cli.EXIT, printed by every --help):
--
--   0  done (verify.lua: every check passed)
--   1  refused: the input or the data breaks a rule, or the database refused
--      the change (nothing was written); verify.lua: a check failed;
--      migrate.lua --status: a migration was changed or is missing
--   2  could not run: bad arguments, an input file or folder that cannot be
--      used, missing settings, the database or the Data API unreachable or
--      failing (verify.lua: it could not check)
--   3  outcome unknown: a commit was sent and its answer lost (run verify.lua)
--
-- A script stopped by Ctrl-C, SIGTERM or SIGHUP rolls back what it had open
-- and exits 128 + the signal (130, 143, 129), as any alexlua program does.
local host = require "alex.host"
local errors = require "alex.errors"
local files = require "alex.files"

local cli = {}

cli.EXIT = { OK = 0, REFUSED = 1, UNAVAILABLE = 2, UNKNOWN = 3 }

cli.EXIT_HELP = "Exit codes: 0 done; 1 refused (the input or the data breaks a rule, or the database refused"
  .. " the change; nothing was written); 2 could not run (bad arguments, an unusable input file, missing"
  .. " settings, database or Data API unreachable); 3 outcome unknown (a commit's answer was lost);"
  .. " 130, 143, 129 stopped by Ctrl-C, SIGTERM, SIGHUP (after rolling back)."

-- For the epilog of scripts that read input files.
cli.INPUT_HELP = ("Input files must be regular files of at most %d MiB, UTF-8; every problem of every input is"
  .. " listed before anything is written."):format(files.MAX_BYTES // (1024 * 1024))

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
  return cli.script_dir() .. "/../" .. rel
end

-- whole(min [, max [, message]]) -> an argparse converter to a whole number
-- from min to max; message (formatted with the value) replaces the default.
function cli.whole(min, max, message)
  return function(v)
    local n = math.tointeger(tonumber(v))
    if not n or n < min or (max and n > max) then
      return nil, message and message:format(v) or ("must be a whole number from %d to %d"):format(min, max)
    end
    return n
  end
end

-- s as one word for sh: in single quotes, each ' written as '\''.
function cli.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

---------------------------------------------------------------------------
-- problems and exit codes

-- A problem a script reports to the user: an alex.errors value with a code.
-- kind: "refused" (exit 1) or "unavailable" (exit 2).
local KIND_CODE = { refused = cli.EXIT.REFUSED, unavailable = cli.EXIT.UNAVAILABLE, unknown = cli.EXIT.UNKNOWN }

function cli.problem(message, kind)
  local code = KIND_CODE[kind or "refused"]
  if not code then error("cli.problem: unknown kind " .. tostring(kind), 2) end
  return errors.new { name = kind == "unavailable" and "Unavailable" or "Refused", message = message,
                      exit_code = code }
end

-- refuse(message) / unavailable(message): raise such a problem.
function cli.refuse(message) error(cli.problem(message, "refused"), 0) end
function cli.unavailable(message) error(cli.problem(message, "unavailable"), 0) end

-- Errors the model raises about the data it was given, and the database's
-- own refusals: the data is wrong, not the environment.
local REFUSED_NAMES = { ValidationError = true, NotFound = true, Refused = true, MigrationChanged = true }
-- SQLSTATE classes that say the database could not do the work, whatever the
-- data: connection (08), authorization (28), no such database (3D), resources
-- (53), operator intervention (57: shutdown, cannot connect now), system (58),
-- transaction rollback (40: serialization, deadlock; worth a retry), internal (XX).
local UNAVAILABLE_SQLSTATE = { ["08"] = true, ["28"] = true, ["3D"] = true, ["53"] = true, ["57"] = true,
                               ["58"] = true, ["40"] = true, XX = true }
-- Errors that only a wrong call in the code can cause: these are bugs.
local BUG_NAMES = { ParameterError = true, TransactionFinished = true }

-- exit_code(err) -> the documented code for an error value, or nil when the
-- error is a bug (a string from error(), a ParameterError, ...).
-- stop_signal(err) -> the number of the signal (Ctrl-C, SIGTERM, SIGHUP) that
-- err is the Lua error of, or nil: a stop is neither a problem nor a bug, and
-- a script stopped by signal n exits 128 + n, as a shell reports it.
local STOP_MESSAGES = { interrupted = true, terminated = true, hangup = true }
function cli.stop_signal(err)
  local _, number = host.interrupted()
  if not number then return nil end
  if (type(err) == "string" and STOP_MESSAGES[err]) or (errors.is_error(err) and err.name == "Interrupted") then
    return number
  end
  return nil
end

function cli.exit_code(err)
  local sig = cli.stop_signal(err)
  if sig then return 128 + sig end
  if not errors.is_error(err) then return nil end
  if err.exit_code then return err.exit_code end
  if BUG_NAMES[err.name] then return nil end
  if err.commit_unknown then return cli.EXIT.UNKNOWN end
  if REFUSED_NAMES[err.name] then return cli.EXIT.REFUSED end
  if type(err.sqlstate) == "string" and not UNAVAILABLE_SQLSTATE[err.sqlstate:sub(1, 2):upper()] then
    return cli.EXIT.REFUSED
  end
  return cli.EXIT.UNAVAILABLE
end

-- One line: the database's messages may hold newlines ("...\n\tIs the server running...").
function cli.one_line(text)
  return (tostring(text):gsub("%s*[\r\n]%s*", " "):gsub("[%c\127]", " "))
end

-- message(err) -> one line: a script's own problem as its message, any other
-- error as tostring gives it (name, message, operation).
function cli.message(err)
  if errors.is_error(err) and err.exit_code then return cli.one_line(err.message) end
  local text = cli.one_line(tostring(err))
  if errors.is_error(err) and err.commit_unknown then
    text = text .. " (outcome unknown: the commit was sent and its answer lost, so the change may or may not"
      .. " have been made; look before running it again)"
  end
  return text
end

-- fail(err_or_message [, code]): prints "error: <one line>" and exits with
-- code, or the error's own code (2 when it has none).
function cli.fail(err, code)
  code = code or cli.exit_code(err) or cli.EXIT.UNAVAILABLE
  io.stderr:write(cli.painter(2)("red", "error: "), cli.message(err), "\n")
  os.exit(code)
end

-- die(message [, code]): the same, code 1 unless given.
function cli.die(msg, code)
  cli.fail(msg, code or cli.EXIT.REFUSED)
end

-- fail_all(problems, code [, note]): every problem on its own line, so a file
-- with many mistakes is fixed in one go; note ("nothing was written") ends the
-- single line, or heads the list.
function cli.fail_all(problems, code, note)
  local paint = cli.painter(2)
  if #problems == 1 then
    io.stderr:write(paint("red", "error: "), cli.one_line(problems[1]), note and ("; " .. note) or "", "\n")
  else
    io.stderr:write(paint("red", "error: "), ("%d problems"):format(#problems), note and (", " .. note) or "",
      ":\n")
    for _, p in ipairs(problems) do io.stderr:write("  ", cli.one_line(p), "\n") end
  end
  os.exit(code)
end

-- problem_lines(file, errors) -> "file: path: message" for each error of
-- alex.records (or models.check_*).
function cli.problem_lines(file, errs)
  local lines = {}
  for i, e in ipairs(errs) do
    lines[i] = (e.field and e.field ~= "") and ("%s: %s: %s"):format(file, e.field, e.message)
               or ("%s: %s"):format(file, e.message)
  end
  return lines
end

local BUG = setmetatable({}, { __name = "alex.cli.bug" })


-- run(fn [, opts]) -> what fn returns.  Any error fn raises ends the script:
-- a problem (an alex.errors value with a code) as one line and its code;
-- Ctrl-C as alexlua ends any program; anything else, a bug, with its
-- traceback.  opts.code: the exit code of every problem (verify.lua: 2, it
-- could not check); opts.prefix: text before the problem's line.
function cli.run(fn, opts)
  opts = opts or {}
  local ok, err = xpcall(fn, function(e)
    if cli.stop_signal(e) or cli.exit_code(e) then return e end
    return setmetatable({ trace = debug.traceback(tostring(e), 2) }, BUG)
  end)
  if ok then return err end
  if cli.stop_signal(err) and type(err) == "string" then error(err, 0) end -- alexlua ends a stopped program
  if getmetatable(err) == BUG then
    io.stderr:write("alexlua: ", err.trace, "\n")
    os.exit(1)
  end
  cli.fail((opts.prefix or "") .. cli.message(err), opts.code or cli.exit_code(err))
end

---------------------------------------------------------------------------
-- arguments

-- parser(name, description [, epilog [, exit_help]]) -> an argparse parser
-- with --verbose already there; the epilog ends with the exit codes
-- (cli.EXIT_HELP unless the script has its own).
function cli.parser(name, description, epilog, exit_help)
  local argparse = require "argparse"
  local p = argparse(name, description, (epilog and (epilog .. "\n\n") or "") .. (exit_help or cli.EXIT_HELP))
  p:flag("-v --verbose", "Log every Data API call (operation, SQL first line, parameter names, timing).")
  return p
end

-- parse(parser) -> args; --verbose turns on the client's debug log.  A usage
-- error is one line and exit 2.
function cli.parse(parser)
  local ok, args = parser:pparse(arg)
  if not ok then
    cli.fail(("%s (see %s --help)"):format(tostring(args), parser._name or "the script"), cli.EXIT.UNAVAILABLE)
  end
  if args.verbose then cli.verbose = true end
  return args
end

---------------------------------------------------------------------------
-- database and files

-- connect() -> a connection, or exits 2 with what to set.
function cli.connect(opts)
  opts = opts or {}
  if cli.verbose then opts.debug = true end
  local conn, err = require("alex.db").connect(opts)
  if not conn then cli.fail(err, cli.EXIT.UNAVAILABLE) end
  return conn
end

-- read_json(path) -> contents, or nil and one line naming the file
-- (alex.files: regular files only, at most files.MAX_BYTES, UTF-8).
cli.read_json = files.read_json

return cli
