#!/bin/sh
# Installs the Debian packages a make target needs, only those missing: an
# up-to-date machine pays one dpkg-query and nothing else.
#
#   sh tools/deps.sh [GROUP...]        install what GROUP needs (default: build)
#   sh tools/deps.sh --print GROUP...  print GROUP's packages, one a line
#
# Groups:
#   build  compile and run alexlua and the local stack (make, make run, make install)
#   test   run the specs and lint (make test, make lint)
#   bench  run the benchmarks and draw the report (make bench, make soak)
#   fuzz   build and run the libFuzzer targets (make fuzz)
# Each group installs only its own packages; the Makefile asks for build
# together with the others.
set -eu

group_packages() {
  case $1 in
    build) echo "build-essential pkg-config lua5.4 liblua5.4-dev lua-cjson lua-argparse lua-filesystem
      lua-expat libedit2 libcurl4-openssl-dev libssl-dev openssl ca-certificates libmicrohttpd-dev libjansson-dev
      libpq-dev postgresql-15 postgresql-client-15 curl procps util-linux" ;;
    test) echo "lua-busted lua-check cppcheck python3 awscli python3-botocore python3-boto3 valgrind nodejs tmux" ;;
    bench) echo "hyperfine gnuplot-nox python3 python3-botocore python3-boto3" ;;
    fuzz) echo "clang libclang-rt-14-dev" ;;
    *) echo "deps: unknown group '$1' (groups: build test bench fuzz)" >&2; return 2 ;;
  esac
}

print=0
if [ "${1:-}" = "--print" ]; then print=1; shift; fi
[ $# -gt 0 ] || set -- build

pkgs=""
needs_npm=0
for g in "$@"; do
  list=$(group_packages "$g") || exit 2
  pkgs="$pkgs $list"
  # npm: the test group runs the HCL checks through it (see tools/hcl)
  [ "$g" = test ] && needs_npm=1
done

if [ "$print" = 1 ]; then
  for p in $pkgs; do echo "$p"; done
  [ "$needs_npm" = 0 ] || echo npm
  exit 0
fi

missing=""
for p in $pkgs; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  case "$status" in ii*) ;; *) case " $missing " in *" $p "*) ;; *) missing="$missing $p" ;; esac ;; esac
done
# npm: Debian's package, unless a nodejs from elsewhere (NodeSource) already brings it
if [ "$needs_npm" = 1 ] && ! command -v npm >/dev/null 2>&1; then missing="$missing npm"; fi
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
