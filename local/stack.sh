#!/bin/sh
# The local stack: a private PostgreSQL 15 cluster and the alex-dataapi service
# in front of it, both on 127.0.0.1, all state in one folder.
#
#   stack.sh up       initialise (first time), start both, write local.env
#   stack.sh down     stop both
#   stack.sh reset    down, then delete what the stack made in its folder
#   stack.sh status   what runs (exit 0 when both are up, 3 otherwise)
#   stack.sh env      the path of local.env (use: set -a; . "$(stack.sh env)"; set +a)
#   stack.sh psql ... psql on the private database as the application role
#
# Environment: ALEX_STATE_DIR (default ./.alex), ALEX_PG_PORT and
# ALEX_DATAAPI_PORT (default: free ports chosen at the first up and kept in
# ports.env of the state folder), ALEX_DATAAPI_BIN (the service binary),
# ALEX_STACK_TIMEOUT (seconds to wait for the service, 30), ALEX_STACK_NO_SYNC=1
# (a throwaway stack, as the specs make: initdb skips its fsyncs).  Other
# ALEX_DATAAPI_<NAME> variables (ALEX_DATAAPI_FAULT_*, ALEX_DATAAPI_TX_IDLE_TIMEOUT,
# ...) reach the service as its own settings; those the stack sets are dropped.
#
# The state folder is the stack's alone: up refuses a non-empty folder that
# has no .alex-stack marker, reset deletes only the files and folders the stack
# makes (and the folder itself when nothing else is left), and nothing outside
# the folder is changed.  up, down and reset take a lock (flock on .lock in the
# folder), so concurrent callers wait for each other.
#
# Secrets (database password, access keys, the admin token) are generated once,
# kept in mode-600 files in the state folder, and never printed.
set -eu

say() { printf 'stack: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
STATE=${ALEX_STATE_DIR:-$PWD/.alex}
case $STATE in /*) ;; *) STATE=$PWD/$STATE ;; esac
STATE=${STATE%/}
[ -n "$STATE" ] || die "ALEX_STATE_DIR must not be /"
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
ADMINHDR=$STATE/admin.header
PORTS=$STATE/ports.env
PGMODE=$STATE/pg-mode
PIDFILE=$STATE/dataapi.pid
APILOG=$STATE/dataapi.log
CLUSTERSTATE=$STATE/cluster.env
MARKER=$STATE/.alex-stack
LOCK=$STATE/.lock
# Everything the stack makes in its folder (journal/ is alexlua's journal of
# open transactions); reset deletes these and nothing else.
OWNED_DIRS="pg run journal"
OWNED_FILES="local.env dataapi.env secrets.env pgpass admin.header ports.env pg-mode dataapi.pid dataapi.log
dataapi.log.out pg.log initdb.log cluster.env"

case $TIMEOUT in ''|*[!0-9]*) die "ALEX_STACK_TIMEOUT must be a whole number of seconds" ;; esac
LOCK_WAIT=$((TIMEOUT + 120))
for v in ALEX_PG_PORT ALEX_DATAAPI_PORT; do
  eval "p=\${$v:-}"
  [ -n "$p" ] || continue
  case $p in *[!0-9]*) die "ports must be numbers ($v=$p)" ;; esac
  if [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then die "port $p ($v) is out of range"; fi
done
if [ -n "${ALEX_PG_PORT:-}" ] && [ "${ALEX_PG_PORT:-}" = "${ALEX_DATAAPI_PORT:-}" ]; then
  die "ALEX_PG_PORT and ALEX_DATAAPI_PORT must differ"
fi

if [ "$(id -u)" = 0 ]; then ROOT=1; else ROOT=0; fi

# ---- the state folder and its lock ----

# Makes the folder ours, or refuses it.  The listing is read before the marker
# is looked for: a concurrent up writes the marker before anything else, so a
# listing without a marker is never a race with another up.  alexlua may have
# made its journal/ before the first up; nothing else may be there.
has_other_entries() {
  for e in "$STATE"/* "$STATE"/.[!.]* "$STATE"/..?*; do
    if [ -e "$e" ] || [ -L "$e" ]; then [ "${e##*/}" = journal ] || return 0; fi
  done
  return 1
}

claim_state() {
  if [ -d "$STATE" ]; then
    if has_other_entries && [ ! -f "$MARKER" ]; then
      die "$STATE is not empty and is not a stack state folder (no .alex-stack): set ALEX_STATE_DIR to a new or empty folder"
    fi
  else
    # missing parents get the user's usual mode; the state folder is private
    if ! mkdir -p "$(dirname "$STATE")" || ! (umask 077 && mkdir -p "$STATE"); then die "cannot create $STATE"; fi
  fi
  [ -f "$MARKER" ] || echo "alexlua local stack state (local/stack.sh); reset deletes what the stack made here" \
    >"$MARKER" || die "cannot write $MARKER"
}

# Takes the folder's lock on fd 9 (children get it closed: a postmaster that
# inherited it would hold the lock for its whole life).
lock_state() {
  command -v flock >/dev/null || die "flock is missing (util-linux)"
  while :; do
    claim_state
    exec 9>>"$LOCK"
    flock -w "$LOCK_WAIT" 9 || die "another stack.sh has held $LOCK for ${LOCK_WAIT}s; try again when it is done"
    # a reset may have deleted the file we waited on: then start over on a new one
    if [ "$(stat -L -c %d:%i /dev/fd/9)" = "$(stat -c %d:%i "$LOCK" 2>/dev/null || true)" ]; then return 0; fi
    exec 9>&-
  done
}

# ---- ports ----

# Hex ports of every TCP socket (any state), or those listening (state 0A).
tcp_ports() {
  awk -v listen_only="${1:-}" 'FNR > 1 { n = split($2, a, ":"); if (listen_only == "" || $4 == "0A") print a[n] }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null || true
}

port_listening() {
  tcp_ports listen | grep -qx "$(printf '%04X' "$1")"
}

# A port nothing uses now, outside the kernel's ephemeral range (so outgoing
# connections do not take it later), other than $1.
pick_port() {
  range=$(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768 60999)
  # shellcheck disable=SC2086
  set -- "${1:-0}" $range
  if [ "$2" -gt 16024 ]; then lo=15000; hi=$(($2 - 1))
  elif [ "$3" -lt 64511 ]; then lo=$(($3 + 1)); hi=65535
  else die "no ports outside the ephemeral range ($2-$3): set ALEX_PG_PORT and ALEX_DATAAPI_PORT"
  fi
  used=$(tcp_ports)
  i=0
  while [ "$i" -lt 200 ]; do
    r=$(od -An -N2 -tu2 /dev/urandom | tr -dc 0-9)
    p=$((lo + r % (hi - lo + 1)))
    if [ "$p" != "$1" ] && ! printf '%s\n' "$used" | grep -qx "$(printf '%04X' "$p")"; then
      printf '%s\n' "$p"
      return 0
    fi
    i=$((i + 1))
  done
  die "found no free port in $lo-$hi"
}

# Sets PG_PORT and API_PORT: the environment's, else those kept in ports.env,
# chosen (free) when the folder has none yet.
choose_ports() {
  kept_pg=$(sed -n 's/^PG_PORT=\([0-9][0-9]*\)$/\1/p' "$PORTS" 2>/dev/null || true)
  kept_api=$(sed -n 's/^API_PORT=\([0-9][0-9]*\)$/\1/p' "$PORTS" 2>/dev/null || true)
  if [ -z "$kept_pg" ] || [ -z "$kept_api" ]; then
    kept_pg=$(pick_port "${ALEX_DATAAPI_PORT:-0}")
    kept_api=$(pick_port "$kept_pg")
    [ "$kept_api" != "${ALEX_PG_PORT:-0}" ] || kept_api=$(pick_port "$kept_pg")
    printf 'PG_PORT=%s\nAPI_PORT=%s\n' "$kept_pg" "$kept_api" | write_private "$PORTS"
  fi
  PG_PORT=${ALEX_PG_PORT:-$kept_pg}
  API_PORT=${ALEX_DATAAPI_PORT:-$kept_api}
  [ "$PG_PORT" != "$API_PORT" ] || die "the PostgreSQL and Data API ports must differ (both $PG_PORT)"
}

# A kept port taken by another program is reported rather than replaced: the
# ports are the stack's address (local.env, tools configured by hand), and a
# client with the old address would otherwise send its credentials to
# whatever listens there now.
port_taken() {
  eval "explicit=\${$2:-}"
  if [ -n "$explicit" ]; then die "port $1 is already in use (set $2 to another port)"; fi
  die "port $1 is already in use by another program; stop it, set $2, or delete $PORTS to choose new ports"
}

# ---- PostgreSQL ----

# How PostgreSQL's programs run, decided when the cluster is created and kept
# in pg-mode, so it is always restarted the same way:
#   self     not root: as ourselves.
#   userns   root: in a user namespace that maps the postgres user onto root.
#            The files belong to root, postgres does not see itself as root
#            (initdb and postgres refuse root), and no folder above the state
#            folder has to be opened to anyone.
#   runuser  root where user namespaces are not permitted: as postgres, only
#            when postgres can already reach the state folder.
decide_mode() {
  MODE=
  if [ "$ROOT" = 1 ]; then
    if ! PGUID=$(id -u postgres 2>/dev/null) || ! PGGID=$(id -g postgres 2>/dev/null); then
      die "no 'postgres' user (install postgresql-15: sh tools/deps.sh)"
    fi
  fi
  if [ -f "$PGMODE" ]; then
    MODE=$(cat "$PGMODE")
  elif [ -f "$PGDATA/PG_VERSION" ]; then
    # a cluster made before pg-mode was kept: its owner tells
    owner=$(stat -c %u "$PGDATA")
    if [ "$ROOT" = 1 ] && [ "$owner" = "$PGUID" ]; then MODE=runuser
    elif [ "$owner" = 0 ]; then MODE=userns
    else MODE=self
    fi
    echo "$MODE" >"$PGMODE"
  fi
  case $MODE in
    '') ;;
    self)
      [ "$ROOT" = 0 ] || die "the cluster in $PGDATA belongs to $(stat -c %U "$PGDATA"); run stack.sh as that user"
      return 0 ;;
    userns|runuser)
      [ "$ROOT" = 1 ] || die "the cluster in $PGDATA was created by root; run stack.sh as root"
      if [ "$MODE" = userns ] && ! userns_works; then
        die "the cluster in $PGDATA runs in a user namespace, which unshare cannot create here; run where it can, or reset the stack"
      fi
      return 0 ;;
    *) die "$PGMODE holds '$MODE', not self, userns or runuser; fix it or reset the stack" ;;
  esac
  if [ "$ROOT" = 0 ]; then MODE=self
  elif userns_works; then MODE=userns
  elif (cd / && runuser -u postgres -- test -x "$(dirname "$STATE")") 2>/dev/null; then MODE=runuser
  else
    die "as root, PostgreSQL runs in a user namespace (unshare failed here) or as postgres, who cannot reach $(dirname "$STATE"): set ALEX_STATE_DIR under a folder postgres can reach, or run as a non-root user"
  fi
}

userns_works() {
  # shellcheck disable=SC2016
  (cd / && unshare --user --map-user="$PGUID" --map-group="$PGGID" -- \
     sh -c 'test -w "$1" && test -x "$1"' sh "$STATE") >/dev/null 2>&1
}

# Runs a PostgreSQL program the way the cluster's mode says, from / so that a
# folder the program cannot read is never its working directory.
as_pg() {
  case $MODE in
    self) "$@" 9>&- ;;
    userns) (cd / && exec unshare --user --map-user="$PGUID" --map-group="$PGGID" -- "$@") 9>&- ;;
    runuser) (cd / && exec runuser -u postgres -- "$@") 9>&- ;;
  esac
}

real_pgdata() { readlink -f "$PGDATA"; }

# The postmaster's pid when one runs for this cluster: postmaster.pid names a
# live process whose working folder is the data folder.  pg_ctl status is not
# enough: a killed postmaster nobody reaps stays a zombie, which kill -0 finds.
pg_pid() {
  _pp=$(sed -n 1p "$PGDATA/postmaster.pid" 2>/dev/null | tr -dc 0-9)
  [ -n "$_pp" ] || return 1
  _st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$_pp/status" 2>/dev/null || true)
  case $_st in ''|Z|X) return 1 ;; esac
  [ "$(readlink "/proc/$_pp/cwd" 2>/dev/null)" = "$(real_pgdata)" ] || return 1
  printf '%s\n' "$_pp"
}

# The port the running cluster listens on (line 4 of postmaster.pid).
pg_port_running() {
  sed -n 4p "$PGDATA/postmaster.pid" 2>/dev/null
}

# Processes of this cluster (their working folder is the data folder).
pg_processes() {
  real=$(real_pgdata)
  for d in /proc/[0-9]*; do
    if [ "$(readlink "$d/cwd" 2>/dev/null)" = "$real" ]; then printf '%s ' "${d#/proc/}"; fi
  done
}

# After a postmaster died: ends the processes it left and removes its lock
# files, which would otherwise make the next postmaster refuse to start.
clean_dead_pg() {
  [ -f "$PGDATA/postmaster.pid" ] || return 0
  say "PostgreSQL (pid $(sed -n 1p "$PGDATA/postmaster.pid" | tr -dc 0-9)) is not running any more; clearing what it left"
  left=$(pg_processes)
  if [ -n "$left" ]; then
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    i=0
    while [ -n "$(pg_processes)" ] && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  fi
  rm -f "$PGDATA/postmaster.pid" "$SOCKDIR"/.s.PGSQL.*
}

# Superuser session over the private socket (peer authentication); SQL on stdin.
admin_psql() {
  as_pg "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$(pg_port_running)" -d postgres
}

prepare_state() {
  if [ "$MODE" = runuser ]; then
    # postgres only traverses the state folder (no listing)
    chmod 711 "$STATE"
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
  if [ "$MODE" = runuser ]; then chown postgres:postgres "$PGDATA" "$SOCKDIR"; fi
  # a throwaway stack skips the fsyncs, most of initdb's time on a busy disk
  nosync=
  if [ "${ALEX_STACK_NO_SYNC:-0}" = 1 ]; then nosync=--no-sync; fi
  if ! as_pg "$PGBIN/initdb" -D "$PGDATA" -E UTF8 --locale=C.UTF-8 --auth-local=peer \
       --auth-host=scram-sha-256 $nosync >"$STATE/initdb.log" 2>&1; then
    rm -rf "$PGDATA"
    die "initdb failed; see $STATE/initdb.log"
  fi
  echo "$MODE" >"$PGMODE"
  cat >>"$PGDATA/postgresql.conf" <<EOF

# ---- alexlua local stack ----
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCKDIR'
# A development database: a crash may lose the last commits, never consistency.
synchronous_commit = off
EOF
}

start_pg() {
  if pg_pid >/dev/null; then return 0; fi
  clean_dead_pg
  if port_listening "$PG_PORT"; then port_taken "$PG_PORT" ALEX_PG_PORT; fi
  mkdir -p "$SOCKDIR"
  touch "$PGLOG"
  chmod 600 "$PGLOG"
  if [ "$MODE" = runuser ]; then chown postgres:postgres "$PGLOG" "$SOCKDIR"; fi
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT (log: $PGLOG)"
  if ! as_pg "$PGBIN/pg_ctl" start -w -t 60 -D "$PGDATA" -l "$PGLOG" -o "-p $PG_PORT" >/dev/null 2>&1; then
    why=$(grep -E 'FATAL|could not' "$PGLOG" 2>/dev/null | tail -n 1 || true)
    die "PostgreSQL did not start${why:+: $why}; see $PGLOG"
  fi
}

stop_pg() {
  [ -f "$PGDATA/postmaster.pid" ] || return 0
  if pg_pid >/dev/null; then
    say "stopping PostgreSQL"
    decide_mode
    as_pg "$PGBIN/pg_ctl" stop -D "$PGDATA" -m fast -w -t 60 >/dev/null 2>&1 || die "pg_ctl stop failed; see $PGLOG"
  else
    clean_dead_pg
  fi
}

# ---- secrets and settings ----

# Writes stdin to $1 with mode 600, atomically.
write_private() {
  (umask 077 && cat >"$1.tmp") && chmod 600 "$1.tmp" && mv -f "$1.tmp" "$1"
}

write_secrets() {
  write_private "$SECRETS" <<EOF
PG_PASSWORD='$PG_PASSWORD'
ACCESS_KEY_ID='$ACCESS_KEY_ID'
SECRET_ACCESS_KEY='$SECRET_ACCESS_KEY'
SECRET_SUFFIX='$SECRET_SUFFIX'
ADMIN_TOKEN='$ADMIN_TOKEN'
EOF
}

load_secrets() {
  command -v openssl >/dev/null || die "openssl is missing (sh tools/deps.sh)"
  NEW_SECRETS=0
  PG_PASSWORD=''; ACCESS_KEY_ID=''; SECRET_ACCESS_KEY=''; SECRET_SUFFIX=''; ADMIN_TOKEN=''
  if [ -f "$SECRETS" ]; then
    # shellcheck disable=SC1090
    . "$SECRETS"
    if [ -z "$ADMIN_TOKEN" ] && [ -n "$PG_PASSWORD" ]; then
      # a folder from before the admin API needed a token
      ADMIN_TOKEN=$(openssl rand -hex 32)
      write_secrets
    fi
  else
    say "generating credentials (kept in $SECRETS)"
    # AKIA + 16 base32 characters, as AWS access key ids look; a 40-character secret.
    ACCESS_KEY_ID="AKIA$(openssl rand 10 | base32)"
    SECRET_ACCESS_KEY=$(openssl rand -base64 30)
    PG_PASSWORD=$(openssl rand -hex 24)
    SECRET_SUFFIX=$(openssl rand -hex 3)
    ADMIN_TOKEN=$(openssl rand -hex 32)
    write_secrets
    NEW_SECRETS=1
  fi
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
  # CREATEDB: alex.testing clones throwaway test databases from a template
  # (a development stack only; Aurora's application role never has it)
  echo "ALTER ROLE $ROLE CREATEDB;" | admin_psql >/dev/null
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
admin_token=$ADMIN_TOKEN
pidfile=$PIDFILE
log_file=$APILOG
cluster_state_file=$CLUSTERSTATE
EOF
  # AWS_DEFAULT_REGION too: the AWS CLI v1 and older botocore read only that one.
  # AWS_ENDPOINT_URL_RDS: the same service answers the RDS control plane's
  # calls about the local cluster (aurora.lua, aws rds describe-db-clusters).
  # ALEX_JOURNAL_DIR: alexlua's journal of open transactions stays with the
  # stack whoever reads this file (a client with these settings is not a
  # "local target" and would otherwise keep it in the XDG state folder).
  write_private "$LOCALENV" <<EOF
AWS_ENDPOINT_URL_RDS_DATA=http://127.0.0.1:$API_PORT
AWS_ENDPOINT_URL_RDS=http://127.0.0.1:$API_PORT
AURORA_CLUSTER_ARN=$cluster
AURORA_SECRET_ARN=$secret
AURORA_DATABASE=$DB
AWS_REGION=$REGION
AWS_DEFAULT_REGION=$REGION
AWS_ACCESS_KEY_ID=$ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$SECRET_ACCESS_KEY
ALEX_JOURNAL_DIR=$STATE/journal
EOF
  printf '127.0.0.1:%s:*:%s:%s\n' "$pgp" "$ROLE" "$PG_PASSWORD" | write_private "$PGPASS"
  # for curl -H @admin.header: the token never goes on a command line
  printf 'X-Alex-Admin-Token: %s\n' "$ADMIN_TOKEN" | write_private "$ADMINHDR"
}

# ---- the service ----

# The service's pid when the pidfile names a live alex-dataapi of this state folder.
service_pid() {
  [ -f "$PIDFILE" ] || return 1
  _sp=$({ tr -dc 0-9 <"$PIDFILE"; } 2>/dev/null || true)
  [ -n "$_sp" ] && [ -r "/proc/$_sp/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$_sp/cmdline" 2>/dev/null | grep -F -q -- "$APIENV" || return 1
  printf '%s\n' "$_sp"
}

healthy() {
  [ -n "$1" ] && curl -fsS -o /dev/null -m 2 "http://127.0.0.1:$1/_alex/health" 2>/dev/null
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
        ALEX_DATAAPI_ADMIN_TOKEN|ALEX_DATAAPI_PIDFILE|ALEX_DATAAPI_LOG_FILE|ALEX_DATAAPI_CONFIG|\
        ALEX_DATAAPI_CLUSTER_STATE_FILE|\
        ALEX_DATAAPI_BIN|ALEX_DATAAPI_PORT)
          unset "$v" ;;
      esac
    done
    exec setsid "$bin" --config "$APIENV" </dev/null >>"$APILOG.out" 2>&1 9>&-
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
    while kill -0 "$pid" 2>/dev/null && service_pid >/dev/null; do
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

# ---- commands ----

cmd_up() {
  command -v curl >/dev/null || die "curl is missing (sh tools/deps.sh)"
  bin=$(find_bin) || die "alex-dataapi not found: build it (make) or set ALEX_DATAAPI_BIN"
  [ -x "$bin" ] || die "alex-dataapi at $bin is not executable: build it (make) or set ALEX_DATAAPI_BIN"
  lock_state
  choose_ports
  if pgpid=$(pg_pid) && pid=$(service_pid) && healthy "$(api_port_running)" && [ -f "$LOCALENV" ]; then
    say "already up: Data API on 127.0.0.1:$(api_port_running) (pid $pid), PostgreSQL on 127.0.0.1:$(pg_port_running) (pid $pgpid); settings in $LOCALENV"
    return 0
  fi
  # a taken port is reported before anything is started
  if ! service_pid >/dev/null && port_listening "$API_PORT"; then port_taken "$API_PORT" ALEX_DATAAPI_PORT; fi
  if ! pg_pid >/dev/null && port_listening "$PG_PORT"; then port_taken "$PG_PORT" ALEX_PG_PORT; fi
  decide_mode
  prepare_state
  init_pg
  start_pg
  load_secrets
  ensure_db
  write_configs
  # a service of this folder that runs without everything else being up is restarted
  stop_service
  if port_listening "$API_PORT"; then port_taken "$API_PORT" ALEX_DATAAPI_PORT; fi
  start_service
  say "up: Data API on 127.0.0.1:$API_PORT, PostgreSQL on 127.0.0.1:$(pg_port_running) (database $DB); settings in $LOCALENV"
}

cmd_down() {
  if [ ! -d "$STATE" ]; then say "nothing to stop ($STATE does not exist)"; return 0; fi
  if [ ! -f "$MARKER" ]; then say "nothing to stop ($STATE is not a stack state folder)"; return 0; fi
  lock_state
  stop_service
  stop_pg
  say "down"
}

cmd_reset() {
  if [ ! -d "$STATE" ]; then say "nothing to reset ($STATE does not exist)"; return 0; fi
  if [ ! -f "$MARKER" ]; then
    if has_other_entries; then die "$STATE does not look like a stack state folder (no .alex-stack); not wiping it"; fi
    say "nothing to reset ($STATE is empty)"
    return 0
  fi
  lock_state
  stop_service
  stop_pg
  say "deleting the stack's files in $STATE"
  for f in $OWNED_DIRS $OWNED_FILES; do rm -rf "${STATE:?}/$f" "$STATE/$f.tmp"; done
  rm -f "$MARKER" "$LOCK"
  if ! rmdir "$STATE" 2>/dev/null; then
    say "kept $STATE: it holds files the stack did not make"
  fi
}

cmd_status() {
  rc=0
  if pgpid=$(pg_pid); then
    echo "postgresql: running on 127.0.0.1:$(pg_port_running) (pid $pgpid, data: $PGDATA)"
  elif [ -f "$PGDATA/postmaster.pid" ]; then
    echo "postgresql: not running (its postmaster died; run: stack.sh up)"; rc=3
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
  pg_pid >/dev/null || die "PostgreSQL is not running (run: stack.sh up)"
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
