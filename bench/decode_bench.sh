#!/bin/sh
# Decoding a 1 MiB Data API result set into rows: alexlua (alex.db) against
# botocore's parser on the same bytes, measured in the same run.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ALEXLUA=${ALEXLUA:-$here/../build/alexlua}
ROUNDS=${ROUNDS:-20}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
a=$("$ALEXLUA" --no-env-file "$here/decode_response.lua" "$tmp/response.json" "$ROUNDS" | awk '{print $2}')
b=$(/usr/bin/python3 "$here/decode_botocore.py" "$tmp/response.json" "$ROUNDS" | awk '{print $2}')
awk -v a="$a" -v b="$b" 'BEGIN {
  printf "decode 1 MiB result: alexlua %.1f ms, botocore %.1f ms, alexlua is %.1fx faster (target >= 3x)\n",
    a * 1000, b * 1000, b / a }'
