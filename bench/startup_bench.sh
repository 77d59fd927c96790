#!/bin/sh
# Startup cost: `alexlua -e ''` against plain `lua5.4 -e ''` (target: at most
# 2x), with Debian's python3 importing boto3 as a third reference line.
#
# Usage: bench/startup_bench.sh [path/to/alexlua]
#   (default: $ALEXLUA, else build/alexlua, built with `make` when missing)
# Environment: RUNS (default 300, at least 200), PY_RUNS (default 30: the
# python3 line is slow and only a reference), OUT (default bench/out).
# Writes $OUT/startup.json and $OUT/startup_python.json (hyperfine's JSON).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ALEXLUA=${1:-${ALEXLUA:-build/alexlua}}
RUNS=${RUNS:-300}
PY_RUNS=${PY_RUNS:-30}
OUT=${OUT:-bench/out}
PYTHON=/usr/bin/python3 # Debian's, which has boto3 (not a pyenv python3 on PATH)

if [ "$RUNS" -lt 200 ]; then
  echo "startup_bench: RUNS must be at least 200" >&2
  exit 2
fi
sh tools/deps.sh build bench
if [ ! -x "$ALEXLUA" ]; then
  [ "$ALEXLUA" = build/alexlua ] || { echo "startup_bench: no executable $ALEXLUA" >&2; exit 2; }
  make -s build/alexlua
fi
case "$ALEXLUA" in /*) ;; *) ALEXLUA="$ROOT/$ALEXLUA" ;; esac
case "$OUT" in /*) ;; *) OUT="$ROOT/$OUT" ;; esac
mkdir -p "$OUT"

# Run from an empty folder: no ./.env to read, nothing in the way.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/alexlua-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
cd "$WORK"

# -N: no intermediate shell, so the figures are the programs' own.
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$OUT/startup.json" \
  -n alexlua "$ALEXLUA -e ''" \
  -n lua5.4 "lua5.4 -e ''"
hyperfine -N --warmup 3 --runs "$PY_RUNS" --export-json "$OUT/startup_python.json" \
  -n "python3 import boto3" "$PYTHON -c 'import boto3'"

lua5.4 - "$OUT/startup.json" "$OUT/startup_python.json" <<'EOF'
local cjson = require "cjson"
local means = {}
for i = 1, #arg do
  local f = assert(io.open(arg[i], "rb"))
  local doc = cjson.decode(f:read("a"))
  f:close()
  for _, r in ipairs(doc.results) do
    means[#means + 1] = r.command
    means[r.command] = r
  end
end
print()
for _, name in ipairs(means) do
  local r = means[name]
  print(("%-22s mean %8.2f ms  (sd %.2f ms, min %.2f ms, %d runs)"):format(
    name, r.mean * 1e3, r.stddev * 1e3, r.min * 1e3, #r.times))
end
local ratio = means.alexlua.mean / means["lua5.4"].mean
print(("alexlua / lua5.4 = %.2fx (target <= 2x): %s"):format(ratio, ratio <= 2 and "ok" or "OVER TARGET"))
local py = means["python3 import boto3"]
print(("python3 import boto3 / alexlua = %.1fx"):format(py.mean / means.alexlua.mean))
EOF
