#!/usr/bin/env bash
# The access log's cost on the hit path: two rangecache processes, identical but for
# log.access ("off" and a file), in front of the loadtest origin simulator; one object warmed
# into both caches; then wrk (random 64 KiB ranges, all cached) against each in turn,
# interleaved A B A B ..., and the ratio of the medians.
#
#   scripts/bench-access-log.sh [ROUNDS] [SECONDS] [CONNECTIONS]     (default 5 5 16)
#
# Needs wrk (apt-get install wrk). Loopback only; the load generator shares the cores with the
# servers (say so when quoting the figures).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SECS=${2:-5}
CONNS=${3:-16}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p rangecache -p rangecache-loadtest
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

ORIGIN=$(free_port)
target/release/rangecache-loadtest origin --listen "127.0.0.1:$ORIGIN" --ttfb 20ms >"$TMP/origin.log" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN"

start_proxy() { # name access
  local port admin
  port=$(free_port)
  admin=$(free_port)
  cat >"$TMP/$1.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:$admin"
workers = 1
pin_cores = false
[origin]
endpoint = "http://127.0.0.1:$ORIGIN"
access_key_id = "test"
secret_access_key = "test"
[auth]
mode = "none"
[log]
access = "$2"
TOML
  RANGECACHE_LOG=warn target/release/rangecache --config "$TMP/$1.toml" >"$TMP/$1.out" 2>"$TMP/$1.err" &
  PIDS+=($!)
  wait_port "$port"
  echo "$port"
}
OFF=$(start_proxy off off)
ON=$(start_proxy on "$TMP/access.log")
KEY="bench/hit-000001-size-64MiB"
for port in "$OFF" "$ON"; do
  for b in $(seq 0 63); do
    curl -sf -o /dev/null -H "Range: bytes=$((b * 1048576))-$((b * 1048576 + 1048575))" \
      "http://127.0.0.1:$port/bucket/$KEY"
  done
done

run() { # port
  wrk -t1 -c"$CONNS" -d"${SECS}s" -s scripts/wrk-range.lua "http://127.0.0.1:$1/bucket/$KEY" |
    grep '^RESULT' | sed 's/^RESULT //'
}
echo "round target rps p50_us p99_us errors non2xx"
for r in $(seq "$ROUNDS"); do
  echo "$r off $(run "$OFF")"
  echo "$r on  $(run "$ON")"
done | tee "$TMP/results"
python3 - "$TMP/results" "$TMP/access.log" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    parts = line.split()
    kv = dict(p.split("=") for p in parts[2:])
    rows.setdefault(parts[1], []).append({k: float(v) for k, v in kv.items()})
med = {t: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for t, rs in rows.items()}
for t in ("off", "on"):
    m = med[t]
    print(f"median {t:3}: {m['rps']:.0f} req/s, p50 {m['p50_us']:.0f} us, p99 {m['p99_us']:.0f} us,"
          f" errors {sum(r['errors'] + r['non2xx'] for r in rows[t]):.0f}")
print(f"ratio on/off: throughput {med['on']['rps'] / med['off']['rps']:.3f},"
      f" p50 {med['on']['p50_us'] / med['off']['p50_us']:.3f}, p99 {med['on']['p99_us'] / med['off']['p99_us']:.3f}")
lines = sum(1 for _ in open(sys.argv[2]))
print(f"access-log lines written: {lines}")
PY
echo "dropped lines (rangecache_access_log_dropped_total):"
ADMIN_ON=$(sed -n 's/^admin_listen = "\(.*\)"/\1/p' "$TMP/on.toml")
curl -s "http://$ADMIN_ON/metrics" | grep '^rangecache_access_log_dropped_total' || true
