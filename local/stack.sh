#!/bin/sh
# The local stack: a private PostgreSQL 15 cluster and the alex-dataapi service
# in front of it, both on 127.0.0.1, all state in one folder.
#
#   stack.sh up       initialise (first time), start both, write local.env
#   stack.sh down     stop both
#   stack.sh reset    down, then wipe the state folder
#   stack.sh status   what runs (exit 0 when both are up, 3 otherwise)
#   stack.sh env      the path of local.env (use: set -a; . "$(stack.sh env)"; set +a)
#   stack.sh psql ... psql on the private database as the application role
#
# Environment: ALEX_STATE_DIR (default ./.alex), ALEX_PG_PORT (54329),
# ALEX_DATAAPI_PORT (8089), ALEX_DATAAPI_BIN (the service binary),
# ALEX_STACK_TIMEOUT (seconds to wait for the service, 30).  Other
# ALEX_DATAAPI_<NAME> variables (ALEX_DATAAPI_FAULT_*, ALEX_DATAAPI_TX_IDLE_TIMEOUT,
# ...) reach the service as its own settings; those the stack sets are dropped.
#
# Secrets (database password, access keys) are generated once, kept in
# mode-600 files in the state folder, and never printed.
set -eu

say() { printf 'stack: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
STATE=${ALEX_STATE_DIR:-$PWD/.alex}
case $STATE in /*) ;; *) STATE=$PWD/$STATE ;; esac
STATE=${STATE%/}
[ -n "$STATE" ] || die "ALEX_STATE_DIR must not be /"
PG_PORT=${ALEX_PG_PORT:-54329}
API_PORT=${ALEX_DATAAPI_PORT:-8089}
PGBIN=/usr/lib/postgresql/15/bin
TIMEOUT=${ALEX_STACK_TIMEOUT:-30}
DB=alex
ROLE=alex_app
REGION=us-east-1
ACCOUNT=000000000000

PGDATA=$STATE/pg
SOCKDIR=$STATE/run
PGLOG=$STATE/pg.log
SECRETS=$STATE/secrets.env
APIENV=$STATE/dataapi.env
LOCALENV=$STATE/local.env
PGPASS=$STATE/pgpass
PIDFILE=$STATE/dataapi.pid
APILOG=$STATE/dataapi.log
MARKER=$STATE/.alex-stack

for p in "$PG_PORT" "$API_PORT"; do
  case $p in ''|*[!0-9]*) die "ports must be numbers (ALEX_PG_PORT=$PG_PORT, ALEX_DATAAPI_PORT=$API_PORT)" ;; esac
  if [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then die "port $p is out of range"; fi
done
[ "$PG_PORT" != "$API_PORT" ] || die "ALEX_PG_PORT and ALEX_DATAAPI_PORT must differ"
case $TIMEOUT in ''|*[!0-9]*) die "ALEX_STACK_TIMEOUT must be a whole number of seconds" ;; esac

if [ "$(id -u)" = 0 ]; then ROOT=1; else ROOT=0; fi

# Runs a PostgreSQL program as the cluster's owner: `postgres` when we are root
# (initdb and postgres refuse root), else ourselves.  From / so that a folder
# postgres cannot read is never its working directory.
as_pg() {
  if [ "$ROOT" = 1 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_running() {
  [ -f "$PGDATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1
}

# The port the running cluster listens on (line 4 of postmaster.pid).
pg_port_running() {
  sed -n 4p "$PGDATA/postmaster.pid" 2>/dev/null
}

# Superuser session over the private socket; SQL on stdin.
admin_psql() {
  as_pg "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$(pg_port_running)" -d postgres
}

# The service's pid when the pidfile names a live alex-dataapi of this state folder.
service_pid() {
  [ -f "$PIDFILE" ] || return 1
  pid=$(tr -dc 0-9 <"$PIDFILE" 2>/dev/null || true)
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -F -q -- "$APIENV" || return 1
  printf '%s\n' "$pid"
}

# 0 when something answers HTTP on the port, whatever it is.
port_answers() {
  rc=0
  curl -s -o /dev/null -m 2 "http://127.0.0.1:$1/" || rc=$?
  [ "$rc" != 7 ] && [ "$rc" != 28 ]
}

healthy() {
  curl -fsS -o /dev/null -m 2 "http://127.0.0.1:$1/_alex/health" 2>/dev/null
}

api_port_running() {
  sed -n 's|^AWS_ENDPOINT_URL_RDS_DATA=http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$LOCALENV" 2>/dev/null
}

find_bin() {
  if [ -n "${ALEX_DATAAPI_BIN:-}" ]; then
    printf '%s\n' "$ALEX_DATAAPI_BIN"
  elif [ -x "$here/../build/alex-dataapi" ]; then
    printf '%s\n' "$(cd "$here/../build" && pwd)/alex-dataapi"
  elif [ -x "$here/alex-dataapi" ]; then
    printf '%s\n' "$here/alex-dataapi"
  else
    command -v alex-dataapi || return 1
  fi
}

# Writes stdin to $1 with mode 600, atomically.
write_private() {
  (umask 077 && cat >"$1.tmp") && chmod 600 "$1.tmp" && mv -f "$1.tmp" "$1"
}

prepare_state() {
  if [ ! -d "$STATE" ]; then
    (umask 077 && mkdir -p "$STATE") || die "cannot create $STATE"
  fi
  : >"$MARKER"
  if [ "$ROOT" = 1 ]; then
    getent passwd postgres >/dev/null || die "no 'postgres' user (install postgresql-15: sh tools/deps.sh)"
    # postgres only traverses the state folder (no listing), and every folder above it.
    chmod 711 "$STATE"
    d=$STATE
    while [ "$d" != / ] && [ -n "$d" ]; do
      if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
        say "letting postgres traverse $d (chmod o+x)"
        chmod o+x "$d"
      fi
      d=$(dirname "$d")
    done
  else
    chmod 700 "$STATE"
  fi
}

init_pg() {
  [ -f "$PGDATA/PG_VERSION" ] && return 0
  [ -x "$PGBIN/initdb" ] || die "PostgreSQL 15 is not installed ($PGBIN/initdb missing; run: sh tools/deps.sh)"
  say "initialising a PostgreSQL 15 cluster in $PGDATA"
  rm -rf "$PGDATA"
  mkdir -p "$PGDATA" "$SOCKDIR"
  chmod 700 "$PGDATA" "$SOCKDIR"
  if [ "$ROOT" = 1 ]; then chown postgres:postgres "$PGDATA" "$SOCKDIR"; fi
  if ! as_pg "$PGBIN/initdb" -D "$PGDATA" -E UTF8 --locale=C.UTF-8 --auth-local=peer \
       --auth-host=scram-sha-256 >"$STATE/initdb.log" 2>&1; then
    rm -rf "$PGDATA"
    die "initdb failed; see $STATE/initdb.log"
  fi
  cat >>"$PGDATA/postgresql.conf" <<EOF

# ---- alexlua local stack ----
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCKDIR'
# A development database: a crash may lose the last commits, never consistency.
synchronous_commit = off
EOF
}

start_pg() {
  if pg_running; then return 0; fi
  mkdir -p "$SOCKDIR"
  touch "$PGLOG"
  chmod 600 "$PGLOG"
  if [ "$ROOT" = 1 ]; then chown postgres:postgres "$PGLOG" "$SOCKDIR"; fi
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT (log: $PGLOG)"
  if ! as_pg "$PGBIN/pg_ctl" start -w -t 60 -D "$PGDATA" -l "$PGLOG" -o "-p $PG_PORT" >/dev/null 2>&1; then
    why=$(grep -E 'FATAL|could not' "$PGLOG" 2>/dev/null | tail -n 1 || true)
    die "PostgreSQL did not start${why:+: $why}; see $PGLOG"
  fi
}

stop_pg() {
  if pg_running; then
    say "stopping PostgreSQL"
    as_pg "$PGBIN/pg_ctl" stop -D "$PGDATA" -m fast -w -t 60 >/dev/null 2>&1 || die "pg_ctl stop failed; see $PGLOG"
  fi
}

gen_secrets() {
  command -v openssl >/dev/null || die "openssl is missing (sh tools/deps.sh)"
  # AKIA + 16 base32 characters, as AWS access key ids look; a 40-character secret.
  ak="AKIA$(openssl rand 10 | base32)"
  sk=$(openssl rand -base64 30)
  pw=$(openssl rand -hex 24)
  sfx=$(openssl rand -hex 3)
  write_private "$SECRETS" <<EOF
PG_PASSWORD='$pw'
ACCESS_KEY_ID='$ak'
SECRET_ACCESS_KEY='$sk'
SECRET_SUFFIX='$sfx'
EOF
}

load_secrets() {
  NEW_SECRETS=0
  if [ ! -f "$SECRETS" ]; then
    say "generating credentials (kept in $SECRETS)"
    gen_secrets
    NEW_SECRETS=1
  fi
  PG_PASSWORD=''; ACCESS_KEY_ID=''; SECRET_ACCESS_KEY=''; SECRET_SUFFIX=''
  # shellcheck disable=SC1090
  . "$SECRETS"
  if [ -z "$PG_PASSWORD" ] || [ -z "$ACCESS_KEY_ID" ] || [ -z "$SECRET_ACCESS_KEY" ] || [ -z "$SECRET_SUFFIX" ]; then
    die "$SECRETS is incomplete; remove it (or run reset) to generate new credentials"
  fi
}

ensure_db() {
  has_role=$(echo "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'" | admin_psql)
  if [ -z "$has_role" ]; then
    say "creating role $ROLE and database $DB"
    # The password goes on stdin, never on a command line.
    printf "CREATE ROLE %s LOGIN PASSWORD '%s';\n" "$ROLE" "$PG_PASSWORD" | admin_psql >/dev/null
  elif [ "$NEW_SECRETS" = 1 ]; then
    say "setting a new password for role $ROLE"
    printf "ALTER ROLE %s PASSWORD '%s';\n" "$ROLE" "$PG_PASSWORD" | admin_psql >/dev/null
  fi
  has_db=$(echo "SELECT 1 FROM pg_database WHERE datname = '$DB'" | admin_psql)
  if [ -z "$has_db" ]; then
    echo "CREATE DATABASE $DB OWNER $ROLE;" | admin_psql >/dev/null
  fi
}

# The service's settings, from the secrets and the ports in use.
write_configs() {
  pgp=$(pg_port_running)
  cluster="arn:aws:rds:$REGION:$ACCOUNT:cluster:alex-local"
  secret="arn:aws:secretsmanager:$REGION:$ACCOUNT:secret:alex-local-$SECRET_SUFFIX"
  write_private "$APIENV" <<EOF
# alex-dataapi settings, written by local/stack.sh (secrets: keep this file private)
listen=127.0.0.1:$API_PORT
pg_host=127.0.0.1
pg_port=$pgp
pg_user=$ROLE
pg_password=$PG_PASSWORD
default_database=$DB
cluster_arn=$cluster
secret_arn=$secret
region=$REGION
access_key=$ACCESS_KEY_ID
secret_key=$SECRET_ACCESS_KEY
pidfile=$PIDFILE
log_file=$APILOG
EOF
  write_private "$LOCALENV" <<EOF
AWS_ENDPOINT_URL_RDS_DATA=http://127.0.0.1:$API_PORT
AURORA_CLUSTER_ARN=$cluster
AURORA_SECRET_ARN=$secret
AURORA_DATABASE=$DB
AWS_REGION=$REGION
AWS_ACCESS_KEY_ID=$ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$SECRET_ACCESS_KEY
EOF
  printf '127.0.0.1:%s:*:%s:%s\n' "$pgp" "$ROLE" "$PG_PASSWORD" | write_private "$PGPASS"
}

start_service() {
  rm -f "$PIDFILE"
  extra=$(env | sed -n 's/^ALEX_DATAAPI_\(FAULT_[A-Za-z0-9_]*\|TX_IDLE_TIMEOUT\)=.*/\1/p' | tr '\n' ' ')
  say "starting alex-dataapi on 127.0.0.1:$API_PORT ${extra:+with $extra}(log: $APILOG)"
  (
    # Settings the stack owns come from the config file only; our own knobs are not the service's.
    for v in $(env | sed -n 's/^\(ALEX_DATAAPI_[A-Za-z0-9_]*\)=.*/\1/p'); do
      case $v in
        ALEX_DATAAPI_LISTEN|ALEX_DATAAPI_PG_*|ALEX_DATAAPI_DEFAULT_DATABASE|ALEX_DATAAPI_*_ARN|\
        ALEX_DATAAPI_REGION|ALEX_DATAAPI_ACCESS_KEY|ALEX_DATAAPI_SECRET_KEY|ALEX_DATAAPI_SESSION_TOKEN|\
        ALEX_DATAAPI_PIDFILE|ALEX_DATAAPI_LOG_FILE|ALEX_DATAAPI_CONFIG|ALEX_DATAAPI_BIN|ALEX_DATAAPI_PORT)
          unset "$v" ;;
      esac
    done
    exec setsid "$bin" --config "$APIENV" </dev/null >>"$APILOG.out" 2>&1
  ) &
  child=$!
  i=0
  limit=$((TIMEOUT * 10))
  while :; do
    if ! kill -0 "$child" 2>/dev/null; then
      why=$(tail -n 1 "$APILOG.out" 2>/dev/null || true)
      die "alex-dataapi exited while starting${why:+: $why}; see $APILOG.out"
    fi
    if healthy "$API_PORT"; then break; fi
    i=$((i + 1))
    if [ "$i" -ge "$limit" ]; then
      kill -TERM "$child" 2>/dev/null || true
      die "alex-dataapi did not answer /_alex/health within ${TIMEOUT}s; see $APILOG"
    fi
    sleep 0.1
  done
  # The service writes its pidfile; if it has not (yet), the pid we started is it.
  if ! service_pid >/dev/null; then printf '%s\n' "$child" >"$PIDFILE"; fi
}

stop_service() {
  if pid=$(service_pid); then
    say "stopping alex-dataapi (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null; do
      i=$((i + 1))
      if [ "$i" -ge 100 ]; then
        say "alex-dataapi did not stop within 10s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
  fi
  rm -f "$PIDFILE"
}

cmd_up() {
  if pg_running && pid=$(service_pid) && healthy "$(api_port_running)" && [ -f "$LOCALENV" ]; then
    say "already up: Data API on 127.0.0.1:$(api_port_running) (pid $pid), PostgreSQL on 127.0.0.1:$(pg_port_running); settings in $LOCALENV"
    return 0
  fi
  command -v curl >/dev/null || die "curl is missing (sh tools/deps.sh)"
  bin=$(find_bin) || die "alex-dataapi not found: build it (make) or set ALEX_DATAAPI_BIN"
  [ -x "$bin" ] || die "alex-dataapi at $bin is not executable: build it (make) or set ALEX_DATAAPI_BIN"
  if pid=$(service_pid); then
    # A service of this state folder runs but does not answer: restart it.
    stop_service
  fi
  if port_answers "$API_PORT"; then die "port $API_PORT is already in use (set ALEX_DATAAPI_PORT)"; fi
  prepare_state
  init_pg
  start_pg
  load_secrets
  ensure_db
  write_configs
  start_service
  say "up: Data API on 127.0.0.1:$API_PORT, PostgreSQL on 127.0.0.1:$(pg_port_running) (database $DB); settings in $LOCALENV"
}

cmd_down() {
  if [ ! -d "$STATE" ]; then say "nothing to stop ($STATE does not exist)"; return 0; fi
  stop_service
  stop_pg
  say "down"
}

cmd_reset() {
  cmd_down
  [ -d "$STATE" ] || return 0
  if [ ! -f "$MARKER" ] && [ -n "$(ls -A "$STATE")" ]; then
    die "$STATE does not look like a stack state folder (no .alex-stack); not wiping it"
  fi
  say "wiping $STATE"
  rm -rf "$STATE"
}

cmd_status() {
  rc=0
  if pg_running; then
    echo "postgresql: running on 127.0.0.1:$(pg_port_running) (data: $PGDATA)"
  else
    echo "postgresql: stopped"; rc=3
  fi
  if pid=$(service_pid); then
    port=$(api_port_running)
    if healthy "$port"; then
      echo "alex-dataapi: running on http://127.0.0.1:$port (pid $pid)"
    else
      echo "alex-dataapi: running (pid $pid) but not healthy on port ${port:-?}"; rc=3
    fi
  else
    echo "alex-dataapi: stopped"; rc=3
  fi
  return $rc
}

cmd_env() {
  [ -f "$LOCALENV" ] || die "$LOCALENV does not exist yet (run: stack.sh up)"
  printf '%s\n' "$LOCALENV"
}

cmd_psql() {
  pg_running || die "PostgreSQL is not running (run: stack.sh up)"
  PGPASSFILE=$PGPASS exec "$PGBIN/psql" -X -h 127.0.0.1 -p "$(pg_port_running)" -U "$ROLE" -d "$DB" "$@"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  reset) cmd_reset ;;
  status) cmd_status ;;
  env) cmd_env ;;
  psql) shift; cmd_psql "$@" ;;
  *) echo "usage: ${0##*/} up|down|reset|status|env|psql [psql args]" >&2; exit 2 ;;
esac
