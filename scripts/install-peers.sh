#!/usr/bin/env bash
# Installs the peers the load-test harness measures rangecache against (Debian packages):
# nginx (its slice module is the standard range cache) and wrk. Only `rangecache-loadtest full`
# and the nginx targets need them; the tests and the default run do not.
#
#   scripts/install-peers.sh
set -euo pipefail
missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if ((${#missing[@]} == 0)); then
  echo "peers present: $(command -v nginx) $(command -v wrk)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "need root to apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian's nginx starts a system service on install; the harness runs its own instances.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
nginx -V 2>&1 | grep -q -- '--with-http_slice_module' || { echo "this nginx lacks the slice module" >&2; exit 1; }
echo "installed: ${missing[*]}"
