#!/usr/bin/env bash
# Run rangecache locally in front of a throw-away SeaweedFS origin (loopback only).
#
#   scripts/run-local.sh              # proxy on 127.0.0.1:8080, admin on 127.0.0.1:9090
#   RUN_LISTEN=127.0.0.1:18080 RUN_ADMIN=127.0.0.1:19090 scripts/run-local.sh
#   RUN_IO_DRIVER=epoll scripts/run-local.sh
#   NO_BUILD=1 scripts/run-local.sh  # use target/release/rangecache as it is
#
# Ctrl-C (or SIGTERM) stops both processes and removes the origin's temporary data.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
LISTEN=${RUN_LISTEN:-127.0.0.1:8080}
ADMIN=${RUN_ADMIN:-127.0.0.1:9090}
DRIVER=${RUN_IO_DRIVER:-auto}
BUCKET=${RUN_BUCKET:-demo}
VENV="$ROOT/.venv"

# -- python venv with SeaweedFS and the clients ---------------------------------------------------
if [ ! -x "$VENV/bin/weed" ] || [ ! -x "$VENV/bin/aws" ]; then
  echo "== installing the python venv (.venv) from tests/requirements.txt"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r tests/requirements.txt
fi

# -- build ----------------------------------------------------------------------------------------
if [ "${NO_BUILD:-0}" != 1 ]; then
  echo "== cargo build --release -p rangecache"
  cargo build --release -p rangecache
fi
BIN="$ROOT/target/release/rangecache"
[ -x "$BIN" ] || { echo "$BIN not found" >&2; exit 1; }

WORK=$(mktemp -d -t rangecache-local.XXXXXX)
WEED_PID=""
RC_PID=""

stop_pid() { # pid name timeout
  local pid=$1 name=$2 t=$3
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  echo "== stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((t * 10))); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "   $name did not stop within ${t}s, killing"
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  trap - INT TERM EXIT
  stop_pid "$RC_PID" rangecache 30
  stop_pid "$WEED_PID" seaweedfs 30
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# -- SeaweedFS on free loopback ports -------------------------------------------------------------
read -r S3 S3G M MG V VG F FG A AG < <("$VENV/bin/python" - <<'EOF'
import socket
socks = []
for _ in range(10):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)
mkdir -p "$WORK/data"
cat >"$WORK/identities.json" <<'EOF'
{"identities": [
  {"name": "test", "credentials": [{"accessKey": "test", "secretKey": "test"}],
   "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
  {"name": "anonymous", "actions": ["Read", "List"]}
]}
EOF
echo "== starting SeaweedFS (S3 on 127.0.0.1:$S3, data in $WORK)"
"$VENV/bin/weed" mini -dir="$WORK/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
  -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
  -s3.port="$S3" -s3.port.grpc="$S3G" -s3.config="$WORK/identities.json" \
  -s3.localSocket="$WORK/s3.sock" -filer.localSocket="$WORK/filer.sock" \
  -master.port="$M" -master.port.grpc="$MG" -volume.port="$V" -volume.port.grpc="$VG" \
  -filer.port="$F" -filer.port.grpc="$FG" -admin.port="$A" -admin.port.grpc="$AG" \
  >"$WORK/weed.log" 2>&1 </dev/null &
WEED_PID=$!

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
for i in $(seq 1 300); do
  if "$VENV/bin/aws" --endpoint-url "http://127.0.0.1:$S3" s3 ls >/dev/null 2>&1; then break; fi
  kill -0 "$WEED_PID" 2>/dev/null || { echo "SeaweedFS exited:" >&2; tail -20 "$WORK/weed.log" >&2; exit 1; }
  [ "$i" -lt 300 ] || { echo "SeaweedFS not ready after 60 s" >&2; tail -20 "$WORK/weed.log" >&2; exit 1; }
  sleep 0.2
done
"$VENV/bin/aws" --endpoint-url "http://127.0.0.1:$S3" s3 mb "s3://$BUCKET" >/dev/null
echo "hello from rangecache" | "$VENV/bin/aws" --endpoint-url "http://127.0.0.1:$S3" s3 cp - "s3://$BUCKET/hello.txt" >/dev/null

# -- rangecache -----------------------------------------------------------------------------------
cat >"$WORK/rangecache.toml" <<EOF
[server]
listen = "$LISTEN"
admin_listen = "$ADMIN"
workers = 2
io_driver = "$DRIVER"
domain = ""

[origin]
endpoint = "http://127.0.0.1:$S3"
region = "us-east-1"
access_key_id = "test"
secret_access_key = "test"

# Clients sign with their own keys; rangecache verifies them itself.
[[auth.keys]]
access_key_id = "test"
secret_access_key = "test"
grants = [{ bucket = "*", access = "all" }]

[[auth.keys]]
access_key_id = "reader"
secret_access_key = "reader-secret"
grants = [{ bucket = "$BUCKET", access = ["read", "list"] }]
EOF
echo "== starting rangecache ($BIN --config $WORK/rangecache.toml)"
"$BIN" --config "$WORK/rangecache.toml" </dev/null &
RC_PID=$!
for i in $(seq 1 300); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADMIN/readyz" || true)" = 200 ]; then break; fi
  kill -0 "$RC_PID" 2>/dev/null || { echo "rangecache exited" >&2; RC_PID=""; exit 1; }
  [ "$i" -lt 300 ] || { echo "rangecache not ready after 30 s" >&2; exit 1; }
  sleep 0.1
done

cat <<EOF

rangecache is listening on http://$LISTEN (admin http://$ADMIN), origin SeaweedFS http://127.0.0.1:$S3
bucket "$BUCKET" holds hello.txt. Client keys (verified by rangecache): test / test (everything),
reader / reader-secret (read and list $BUCKET only). Region us-east-1, path-style.

  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  $VENV/bin/aws --endpoint-url http://$LISTEN s3 ls s3://$BUCKET/
  $VENV/bin/aws --endpoint-url http://$LISTEN s3 cp s3://$BUCKET/hello.txt -
  $VENV/bin/python -c "import boto3; s3 = boto3.client('s3', endpoint_url='http://$LISTEN', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1'); print(s3.get_object(Bucket='$BUCKET', Key='hello.txt', Range='bytes=0-4')['Body'].read())"
  curl -s http://$ADMIN/metrics | head

Ctrl-C stops both.
EOF

# Wait for either process to end (or for Ctrl-C); cleanup stops the other.
while kill -0 "$RC_PID" 2>/dev/null && kill -0 "$WEED_PID" 2>/dev/null; do
  sleep 1
done
if ! kill -0 "$RC_PID" 2>/dev/null; then
  wait "$RC_PID" && code=0 || code=$?
  RC_PID=""
  echo "rangecache exited with $code"
  exit "$code"
fi
echo "SeaweedFS exited; log:" >&2
tail -20 "$WORK/weed.log" >&2
exit 1
