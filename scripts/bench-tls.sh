#!/usr/bin/env bash
# Measure TLS on rangecache's client listener (loopback only): cached 64 KiB and 1 MiB range
# GETs over TLS vs plain HTTP in one run (interleaved rounds), and TLS handshakes per second
# per core.
#
#   scripts/bench-tls.sh                     # 3 rounds of 5 s per target and range size
#   ROUNDS=5 SECONDS_EACH=10 CONNS=32 scripts/bench-tls.sh
#   NO_BUILD=1 scripts/bench-tls.sh          # use the release binaries as they are
#
# Starts the loadtest origin simulator (no first-byte delay: every measured read is a cache
# hit anyway) and two rangecache processes with ONE worker each, pinned, identical but for
# [server.tls]: so "per second" is per server core. The client (tls-bench, one thread) and
# both servers share this machine's cores. Every process started here is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-5}
CONNS=${CONNS:-16}

if [ "${NO_BUILD:-0}" != 1 ]; then
  cargo build --release -p rangecache -p rangecache-loadtest
fi
RC="$ROOT/target/release/rangecache"
LT="$ROOT/target/release/rangecache-loadtest"
TB="$ROOT/target/release/tls-bench"

WORK=$(mktemp -d -t rangecache-bench-tls.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # port
  for _ in $(seq 1 100); do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 did not open" >&2
  return 1
}

# -- a throwaway CA and an ECDSA P-256 server certificate for 127.0.0.1 ---------------------------
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 1 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out leaf.csr \
  -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >ext.cnf
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf \
  -out leaf.pem 2>/dev/null
cat leaf.pem ca.pem >chain.pem
cd "$ROOT"

# -- origin simulator and the two proxies ---------------------------------------------------------
ORIGIN=$(free_port)
"$LT" origin --listen "127.0.0.1:$ORIGIN" --ttfb 0ms --ttfb-jitter 0ms --stream-bandwidth unlimited \
  >"$WORK/origin.log" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN"

start_rc() { # name listen admin cpu tls(0|1)
  local cfg="$WORK/$1.toml"
  cat >"$cfg" <<EOF
[server]
listen = "127.0.0.1:$2"
admin_listen = "127.0.0.1:$3"
workers = 1
pin_cores = false
[origin]
endpoint = "http://127.0.0.1:$ORIGIN"
access_key_id = "test"
secret_access_key = "test"
[cache]
memory = "512MiB"
[[auth.anonymous]]
bucket = "bench"
access = ["read"]
EOF
  if [ "$5" = 1 ]; then
    printf '[server.tls]\ncert_file = "%s"\nkey_file = "%s"\n' "$WORK/chain.pem" "$WORK/key.pem" >>"$cfg"
  fi
  RUST_LOG=warn taskset -c "$4" "$RC" --config "$cfg" >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  eval "${1^^}_PID=$!"
  wait_port "$2"
}
PLAIN=$(free_port); PLAIN_ADMIN=$(free_port); TLS=$(free_port); TLS_ADMIN=$(free_port)
# Each server on its own core when there are two; the client floats.
CPUS=$(nproc)
start_rc plain "$PLAIN" "$PLAIN_ADMIN" 0 0
start_rc tls "$TLS" "$TLS_ADMIN" $((CPUS > 1 ? 1 : 0)) 1

echo "== $(date -u +%FT%TZ) $(nproc) cores; rangecache $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
for range in 64KiB 1MiB; do
  "$TB" hit-path --plain "127.0.0.1:$PLAIN" --tls "127.0.0.1:$TLS" --ca "$WORK/ca.pem" \
    --bucket bench --key hot-size-64MiB --range "$range" --conns "$CONNS" --seconds "$SECONDS_EACH" \
    --rounds "$ROUNDS" --plain-pid "$PLAIN_PID" --tls-pid "$TLS_PID"
done
"$TB" handshakes --tls "127.0.0.1:$TLS" --ca "$WORK/ca.pem" --conns 8 --seconds "$SECONDS_EACH" \
  --tls-pid "$TLS_PID"
echo "server side: $(curl -s "http://127.0.0.1:$TLS_ADMIN/metrics" | grep -E '^rangecache_tls_handshake' | tr '\n' ' ')"
