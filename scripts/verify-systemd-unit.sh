#!/usr/bin/env bash
# Check deploy/systemd/rangecache.service with `systemd-analyze verify` (Debian's systemd
# package). verify exits 0 on unknown keys and bad values, so any output is a failure too.
# ExecStart is pointed at the built binary (verify wants it to exist).
#
#   scripts/verify-systemd-unit.sh [BINARY]     (default: target/release/rangecache)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/rangecache}")
test -x "$BIN" || { echo "no executable at $BIN" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
sed "s#/usr/local/bin/rangecache#$BIN#" deploy/systemd/rangecache.service >"$TMP/rangecache.service"
if ! out=$(systemd-analyze verify "$TMP/rangecache.service" 2>&1) || [ -n "$out" ]; then
  echo "systemd-analyze verify deploy/systemd/rangecache.service:" >&2
  echo "$out" >&2
  exit 1
fi
echo "deploy/systemd/rangecache.service: systemd-analyze verify clean"
