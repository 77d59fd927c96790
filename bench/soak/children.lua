-- The scripts under test run as child processes with the stack's settings:
-- several at once, optionally stopped by a signal; each result says how the
-- child ended (reason), what its debug log counted (retries, re-runs, resume
-- waits) and whether its commit's outcome is unknown.
local servers = require "servers"
local tally = require "soak.tally"

local shell_quote, read_file, write_file = servers.q, servers.read_file, servers.write_file

local children = {}

-- The environment of every child: the stack's settings (its journal folder
-- included), fast retries, stats and the debug log (parsed for retries);
-- nothing from the caller's AWS setup.
local function child_env(ctx, extra)
  local base = { PATH = os.getenv("PATH") or "/usr/bin:/bin", HOME = os.getenv("HOME") or "/tmp",
                 TMPDIR = os.getenv("TMPDIR") or "/tmp", NO_COLOR = "1", ALEX_STATS = "1", ALEX_DEBUG = "1",
                 ALEX_RETRY_BASE = "0.02", ALEX_RESUME_BASE = "0.02", ALEX_RESUME_TIMEOUT = "1",
                 AWS_MAX_ATTEMPTS = "3" } -- the journal: the stack's folder, as local.env says
  return servers.assignments(servers.with(servers.with(base, ctx.stack.env), extra))
end

-- Why a child ended as it did, in a few words.
local REASONS = {
  { "deadlock", { "40P01", "deadlock detected" } },
  { "refused by the data", { "holds only", "has no account", "no instrument", "not found", "does not exist",
    "ValidationError" } },
  { "fault: throttled", { "Throttling" } },
  { "fault: resuming", { "DatabaseResumingException" } },
  { "fault: 5xx", { "InternalServerErrorException", "ServiceUnavailableError", "HTTP 500", "HTTP 503" } },
  { "fault: connection lost", { "TransportError", "connection lost", "Empty reply" } },
  { "transaction expired", { "TransactionNotFoundException" } },
}

local function failure_reason(r)
  if r.rc == 0 then return "ok" end
  if r.signalled then return r.rc == 137 and "kill -9" or "SIGTERM" end
  if r.killed then return "killed" end
  if r.commit_unknown then return "commit unknown" end
  if r.out:find('"ok":false', 1, true) then return "checks failed" end
  -- a script's own message, or the uncaught error before a traceback
  local traceback = r.err:find("stack traceback:", 1, true) ~= nil
  local line = r.error_line or (traceback and r.err:match("\n?(alexlua: [^\n]*)\nstack traceback:")) or ""
  for _, entry in ipairs(REASONS) do
    for _, needle in ipairs(entry[2]) do
      if line:find(needle, 1, true) then return entry[1] end
    end
  end
  return traceback and "crash" or "other"
end

-- The shell lines that start one job in the background.
local function job_lines(ctx, job, base)
  local cfg = ctx.cfg
  local args = {}
  for _, a in ipairs(job.args or {}) do args[#args + 1] = shell_quote(a) end
  if job.kill then
    -- env execs alexlua, so $! is alexlua's pid
    local pid = shell_quote(base .. ".pid")
    return {
      ("( env -i %s %s --no-env-file %s %s >%s 2>%s & echo $! >%s; wait $!; echo $? >%s ) &")
        :format(child_env(ctx, job.env), shell_quote(cfg.alexlua), shell_quote(cfg.root .. "/" .. job.script),
          table.concat(args, " "), shell_quote(base .. ".out"), shell_quote(base .. ".err"), pid,
          shell_quote(base .. ".rc")),
      ("( sleep %.3f; while [ ! -s %s ]; do sleep 0.01; done; kill -%s $(cat %s) ) &"):format(
        job.kill.delay, pid, job.kill.signal, pid),
    }
  end
  return {
    ("( env -i %s timeout -k 5 %d %s --no-env-file %s %s >%s 2>%s; echo $? >%s ) &"):format(
      child_env(ctx, job.env), cfg.child_timeout, shell_quote(cfg.alexlua), shell_quote(cfg.root .. "/" .. job.script),
      table.concat(args, " "), shell_quote(base .. ".out"), shell_quote(base .. ".err"), shell_quote(base .. ".rc")),
  }
end

-- Reads a finished child's files into its result.
local function read_result(r)
  r.rc = tonumber((read_file(r.base .. ".rc") or ""):match("%d+")) or -1
  r.out = read_file(r.base .. ".out") or ""
  r.err = read_file(r.base .. ".err") or ""
  r.log = r.base .. ".err"
  local calls, retries = r.err:match("stats: (%d+) calls .-, (%d+) retries")
  r.calls, r.retries = tonumber(calls) or 0, tonumber(retries) or 0
  r.has_stats = calls ~= nil
  local _, n = r.err:gsub("retrying the whole transaction", "")
  r.tx_retries = n
  _, n = r.err:gsub("resuming from auto%-pause", "")
  r.resume_waits = n
  -- the final error line of a script (cli.die or reset's message), without the debug log
  local last
  for line in r.err:gmatch("[^\n]+") do
    if line:find("^reset ") or line:find("^error: ") or line:find("^migration failed") then last = line end
  end
  r.error_line = last
  -- a commit sent without an answer: the transaction may have committed
  r.commit_unknown = last ~= nil and last:find("CommitTransaction", 1, true) ~= nil
                     and (last:find("not retried", 1, true) ~= nil or last:find("outcome unknown", 1, true) ~= nil
                          or last:find("HTTP 500", 1, true) ~= nil)
  r.killed = not r.job.kill and (r.rc == 124 or r.rc == 137 or r.rc == -1)
  r.signalled = r.job.kill ~= nil and (r.rc == 137 or r.rc == 143)
  r.reason = failure_reason(r)
end

-- run(ctx, jobs) runs the jobs ({ script, args = {...}, env = {...}, kill = { delay, signal } })
-- at once; returns their results: rc, out, err, reason, commit_unknown, retries,
-- tx_retries, resume_waits, log (stderr path).
function children.run(ctx, jobs)
  local lines = {}
  local results = {}
  for i, job in ipairs(jobs) do
    ctx.child_seq = ctx.child_seq + 1
    local base = ("%s/%04d-%s-%s"):format(ctx.logdir, ctx.child_seq, ctx.current.name,
      job.script:match("([%w_]+)%.lua$"))
    for _, line in ipairs(job_lines(ctx, job, base)) do lines[#lines + 1] = line end
    results[i] = { base = base, job = job }
  end
  lines[#lines + 1] = "wait"
  local script = ctx.logdir .. "/run.sh"
  write_file(script, table.concat(lines, "\n") .. "\n")
  os.execute("sh " .. shell_quote(script))
  for _, r in ipairs(results) do
    read_result(r)
    tally.count_child(ctx, r)
    if r.reason == "other" or r.reason == "crash" then
      ctx:note(("%s (%s) exit %d: %s [%s]"):format(r.job.script, r.reason, r.rc,
        (r.error_line or r.err:match("[^\n]*$") or ""):sub(1, 160), r.log))
      ctx:keep(r)
    end
    if r.killed then
      ctx:violation("%s was killed after %d s (hung?): %s", r.job.script, ctx.cfg.child_timeout, r.log)
    end
    if not r.has_stats and not r.killed then
      ctx:note(("%s: no stats line in %s"):format(r.job.script, r.log))
    end
  end
  return results
end

function children.run_one(ctx, job) return children.run(ctx, { job })[1] end

return children
