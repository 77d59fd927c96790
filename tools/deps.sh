#!/bin/sh
# Installs the Debian packages alexlua needs, only those missing: an up-to-date
# machine pays one dpkg-query and nothing else.
set -eu
PKGS="build-essential pkg-config lua5.4 liblua5.4-dev lua-cjson lua-busted lua-check lua-argparse
libcurl4-openssl-dev libssl-dev openssl ca-certificates
libmicrohttpd-dev libjansson-dev libpq-dev postgresql-15 postgresql-client-15
python3 awscli python3-botocore python3-boto3 procps lua-filesystem curl hyperfine
lua-expat nodejs gnuplot-nox clang libclang-rt-14-dev valgrind"
missing=""
for p in $PKGS; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  case "$status" in ii*) ;; *) missing="$missing $p" ;; esac
done
# npm: Debian's package, unless a nodejs from elsewhere (NodeSource) already brings it
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "deps: missing Debian packages:$missing; run as root: apt-get install -y$missing" >&2; exit 1
  fi
else SUDO=""; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
