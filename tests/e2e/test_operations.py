"""Running rangecache in production (issue 14): the JSON access log and its reopening on SIGHUP,
latency and size histograms, server.max_connections, running out of file descriptors, the
restart hand-over (deploy/rangecache-handover) under client load, and the Grafana dashboard
against /metrics. Each test runs on both io drivers."""

from __future__ import annotations

import http.client
import json
import os
import re
import resource
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from helpers import procs, rawhttp
from helpers.clients import s3_client
from helpers.proxy import FULL_KEY, REPO, binary, parse_metrics
from helpers.seaweed import ACCESS_KEY

pytestmark = pytest.mark.needs_binary

MIB = 1 << 20
DASHBOARD = REPO / "deploy" / "grafana" / "rangecache.json"
HANDOVER = REPO / "deploy" / "rangecache-handover"


def read_log(path: Path, at_least: int, timeout: float = 10.0) -> list[dict]:
    """The access log's lines as JSON once it has `at_least` of them (workers hand lines over
    every 200 ms)."""
    lines: list[str] = []

    def enough():
        nonlocal lines
        lines = path.read_text().splitlines() if path.exists() else []
        return len(lines) >= at_least

    procs.wait_until(enough, timeout, what=f"{at_least} access-log lines in {path}")
    return [json.loads(line) for line in lines]


def hist(p, name: str, **labels) -> float:
    return p.metric_sum(name, **labels)


# ------------------------------------------------------------------------------------------
# Access log and histograms
# ------------------------------------------------------------------------------------------
def test_access_log_lines_histograms_and_reopen(driver, seaweed, direct_s3, module_bucket, proxy_factory, tmp_path):
    bucket = module_bucket
    body = os.urandom(3 * MIB + 5)
    direct_s3.put_object(Bucket=bucket, Key="dir/obj.bin", Body=body)
    log = tmp_path / "access.log"
    p = proxy_factory.start(seaweed.endpoint, log={"access": str(log)})
    c = s3_client(p.endpoint)

    ids = []

    def get(rng):
        r = c.get_object(Bucket=bucket, Key="dir/obj.bin", Range=rng)
        ids.append(r["ResponseMetadata"]["RequestId"])
        return r["Body"].read()

    assert get("bytes=0-99") == body[:100]  # cold: the first fetch fills block 0
    procs.wait_until(lambda: p.metric_sum("rangecache_cache_inflight_fills") == 0, 10, what="block 0 stored")
    assert get("bytes=0-99") == body[:100]  # held
    assert get(f"bytes={MIB - 50}-{MIB + 49}") == body[MIB - 50:MIB + 50]  # block 0 held, 1 filled
    r = c.head_object(Bucket=bucket, Key="dir/obj.bin")
    ids.append(r["ResponseMetadata"]["RequestId"])
    with pytest.raises(c.exceptions.ClientError):
        c.get_object(Bucket=bucket, Key="missing")
    c.put_object(Bucket=bucket, Key="new.txt", Body=b"hello")

    recs = read_log(log, 6)
    assert len(recs) == 6, recs
    for rec in recs:
        assert set(rec) == {"time", "request_id", "client", "access_key", "op", "bucket", "key", "range",
                            "status", "bytes_sent", "cache", "duration_ms", "origin_first_byte_ms"}, rec
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["time"]), rec
        assert rec["client"].startswith("127.0.0.1:"), rec
        assert rec["access_key"] == ACCESS_KEY, rec
        assert rec["bucket"] == bucket, rec
        assert rec["duration_ms"] > 0, rec
    cold, warm, part, head, missing, put = recs
    assert [r["request_id"] for r in recs[:4]] == ids
    assert [r["op"] for r in recs] == ["GetObject"] * 3 + ["HeadObject", "GetObject", "PutObject"]
    assert [r["status"] for r in recs] == [206, 206, 206, 200, 404, 200]
    assert [r["cache"] for r in recs] == ["miss", "hit", "partial", "hit", "pass", "pass"]
    assert cold["key"] == "dir/obj.bin" and cold["range"] == "bytes=0-99"
    assert 100 < cold["bytes_sent"] < 100 + 2048 and cold["bytes_sent"] == warm["bytes_sent"]
    assert cold["origin_first_byte_ms"] is not None and cold["origin_first_byte_ms"] <= cold["duration_ms"]
    assert warm["origin_first_byte_ms"] is None and head["origin_first_byte_ms"] is None
    assert part["origin_first_byte_ms"] is None  # its first block was held; block 1 came later
    assert missing["origin_first_byte_ms"] is not None and put["origin_first_byte_ms"] is not None

    # The same requests in the histograms (merged over workers, one series per op and result).
    d = "rangecache_request_duration_seconds_count"
    assert hist(p, d, op="GetObject", cache="miss") == 1
    assert hist(p, d, op="GetObject", cache="hit") == 1
    assert hist(p, d, op="GetObject", cache="partial") == 1
    assert hist(p, d, op="GetObject", cache="pass") == 1
    assert hist(p, d, op="HeadObject", cache="hit") == 1
    assert hist(p, "rangecache_request_size_bytes_count", op="GetObject") == 4
    inf = hist(p, "rangecache_request_duration_seconds_bucket", op="GetObject", cache="hit", le="+Inf")
    assert inf == 1
    assert hist(p, "rangecache_origin_first_byte_seconds_count") >= 3  # the first fetch, a fill, 404, PUT
    assert hist(p, "rangecache_fill_duration_seconds_count") >= 1
    assert hist(p, "rangecache_access_log_dropped_total") == 0

    # logrotate: move the file away, SIGHUP, and the next line lands in a new file.
    rotated = tmp_path / "access.log.1"
    log.rename(rotated)
    p.reload()
    assert get("bytes=0-99") == body[:100]
    again = read_log(log, 1)
    assert again[0]["request_id"] == ids[-1] and again[0]["cache"] == "hit"
    assert len(rotated.read_text().splitlines()) == 6


def test_access_log_to_stdout(driver, seaweed, direct_s3, module_bucket, proxy_factory):
    bucket = module_bucket
    direct_s3.put_object(Bucket=bucket, Key="stdout-k", Body=b"x" * 1000)
    p = proxy_factory.start(seaweed.endpoint, log={"access": "stdout"})
    s3_client(p.endpoint).get_object(Bucket=bucket, Key="stdout-k")["Body"].read()
    recs = read_log(p.stdout_path, 1)
    assert recs[0]["op"] == "GetObject" and recs[0]["status"] == 200 and recs[0]["key"] == "stdout-k"


# ------------------------------------------------------------------------------------------
# Connection limit and file descriptors
# ------------------------------------------------------------------------------------------
def open_idle(hostport: str, n: int) -> list[socket.socket]:
    host, port = hostport.rsplit(":", 1)
    return [socket.create_connection((host, int(port)), timeout=10) for _ in range(n)]


def close_all(socks):
    for s in socks:
        s.close()


def test_max_connections_refuses_with_slowdown_and_recovers(driver, seaweed, direct_s3, module_bucket, proxy_factory):
    bucket = module_bucket
    direct_s3.put_object(Bucket=bucket, Key="k", Body=b"abc")
    p = proxy_factory.start(seaweed.endpoint, server={"workers": 1, "max_connections": 2})
    idle = open_idle(p.hostport, 2)
    try:
        procs.wait_until(lambda: p.metric_sum("rangecache_connections_open") == 2, 10, what="2 open")
        # A third connection that sends its request at once is answered 503 SlowDown.
        req = rawhttp.request_bytes("GET", f"/{bucket}/k", p.hostport)
        resp = rawhttp.exchange(p.hostport, req)
        assert resp is not None and resp.status == 503, resp
        assert b"<Code>SlowDown</Code>" in resp.body and resp.header("x-amz-request-id")
        assert resp.header("connection") == "close"
        # One that sends nothing is closed unanswered.
        (quiet,) = open_idle(p.hostport, 1)
        quiet.settimeout(10)
        assert quiet.recv(100) == b""
        quiet.close()
        assert p.metric_sum("rangecache_connections_refused_total") == 2
    finally:
        close_all(idle)
    procs.wait_until(lambda: p.metric_sum("rangecache_connections_open") == 0, 10, what="0 open")
    assert s3_client(p.endpoint).get_object(Bucket=bucket, Key="k")["Body"].read() == b"abc"
    assert "connection limit: 2 (split across 1 workers)" in p.stderr_path.read_text()


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.parametrize("configured", [0, 100000], ids=["derived-limit", "limit-above-ulimit"])
def test_low_ulimit(driver, seaweed, direct_s3, module_bucket, proxy_factory, configured):
    """`ulimit -n 256`, 600 connections held. With the limit derived from the descriptor limit,
    rangecache refuses past it and never runs out of descriptors; with a limit above it, accept
    fails with EMFILE, which is counted, backed off and logged at most once a second per
    worker. Either way it serves again once the connections go."""
    bucket = module_bucket
    direct_s3.put_object(Bucket=bucket, Key="k", Body=b"abc")
    cfg = proxy_factory.config(seaweed.endpoint, server={"max_connections": configured})
    p = proxy_factory.create(cfg)
    # As `ulimit -n 256` in the shell that starts it: soft and hard limit 256.
    p.preexec_fn = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    p.spawn()
    procs.wait_until(lambda: p.readyz() == 200, 30, what="ready")
    err = p.stderr_path.read_text()
    assert "open file limit: soft 256 -> 256 (hard 256)" in err, err
    held = []
    start = time.monotonic()
    try:
        for _ in range(600):
            held += open_idle(p.hostport, 1)
        time.sleep(3)
        assert p.alive()
        assert fd_count(p.pid) <= 256
    finally:
        close_all(held)
    took = time.monotonic() - start
    procs.wait_until(lambda: p.metric_sum("rangecache_connections_open") == 0, 20, what="0 open")
    assert s3_client(p.endpoint).get_object(Bucket=bucket, Key="k")["Body"].read() == b"abc"
    errors = p.metric_sum("rangecache_accept_errors_total")
    refused = p.metric_sum("rangecache_connections_refused_total")
    logged = p.stderr_path.read_text().count("accept failed")
    if configured == 0:
        assert errors == 0 and logged == 0, p.logs()
        assert refused > 0
    else:
        assert errors > logged > 0, (errors, logged)
        workers = cfg["server"]["workers"]
        assert logged <= workers * (int(took) + 2), (logged, took)


# ------------------------------------------------------------------------------------------
# Restart hand-over under load
# ------------------------------------------------------------------------------------------
MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")


@pytest.fixture
def migrate_req():
    """net.ipv4.tcp_migrate_req = 1 for the test (what deploy/rangecache-handover asks of the
    host), restored afterwards."""
    if not MIGRATE_REQ.exists():
        pytest.skip("no net.ipv4.tcp_migrate_req (Linux before 5.14): queued connections cannot move")
    old = MIGRATE_REQ.read_text().strip()
    try:
        MIGRATE_REQ.write_text("1")
    except OSError as e:
        pytest.skip(f"cannot set net.ipv4.tcp_migrate_req ({e}); the hand-over needs it")
    yield
    MIGRATE_REQ.write_text(old)


class Load:
    """Clients reading one object in a loop until stopped, each response checked byte for byte.

    Keep-alive clients retry a request once, on a new connection, only when a reused connection
    was closed before any byte of the response arrived: what every HTTP client does for an
    idempotent request (RFC 9112, section 9.3.1). Fresh-connection clients never retry. Anything
    else (refused or reset connection, wrong status or bytes) is a failure."""

    def __init__(self, hostport: str, path: str, body: bytes, keepalive: int, fresh: int):
        self.hostport, self.path, self.body = hostport, path, body
        self.ok = 0
        self.stale_retries = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(True,), daemon=True) for _ in range(keepalive)]
        self.threads += [threading.Thread(target=self._run, args=(False,), daemon=True) for _ in range(fresh)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def _conn(self):
        host, port = self.hostport.rsplit(":", 1)
        return http.client.HTTPConnection(host, int(port), timeout=20)

    def _once(self, conn) -> None:
        conn.request("GET", self.path, headers={"Range": "bytes=100-65635"})
        r = conn.getresponse()
        data = r.read()
        if r.status != 206 or data != self.body[100:65636]:
            raise AssertionError(f"status {r.status}, {len(data)} bytes")
        if r.getheader("connection", "").lower() == "close":
            conn.close()

    def _run(self, keepalive: bool) -> None:
        conn = self._conn()
        used = False
        while not self.stop.is_set():
            try:
                try:
                    self._once(conn)
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if not (keepalive and used):
                        raise
                    with self.lock:
                        self.stale_retries += 1
                    conn.close()
                    conn = self._conn()
                    self._once(conn)
                with self.lock:
                    self.ok += 1
                used = True
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                with self.lock:
                    self.failures.append(f"{type(e).__name__}: {e}")
                conn.close()
                conn = self._conn()
                used = False
            if not keepalive:
                conn.close()
                conn = self._conn()
                used = False
        conn.close()


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_restart_handover_fails_no_request(driver, seaweed, direct_s3, module_bucket, proxy_factory, tmp_path,
                                           migrate_req):
    bucket = module_bucket
    body = os.urandom(256 * 1024)
    direct_s3.put_object(Bucket=bucket, Key="obj", Body=body)
    auth = {"mode": "sigv4", "keys": [dict(FULL_KEY)],
            "anonymous": [{"bucket": bucket, "access": ["read"]}]}
    old = proxy_factory.start(seaweed.endpoint, auth=auth)
    new_pid = None
    try:
        with Load(old.hostport, f"/{bucket}/obj", body, keepalive=3, fresh=2) as load:
            procs.wait_until(lambda: load.ok >= 50, 20, what="load running on the old process")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("RANGECACHE_", "MONOIO_"))}
            env.update(HANDOVER_PID_FILE=str(tmp_path / "new.pid"), HANDOVER_LOG=str(tmp_path / "new.log"))
            done = subprocess.run([str(HANDOVER), str(old.pid), "--", str(binary()), "--config",
                                   str(old.config_path)], env=env, capture_output=True, text=True,
                                  timeout=120, cwd=old.workdir)
            assert done.returncode == 0, done.stderr
            new_pid = int(done.stdout.strip().splitlines()[-1])
            assert old.wait(timeout=60) == 0, old.logs()
            before = load.ok
            procs.wait_until(lambda: load.ok >= before + 100, 30, what="load served by the new process")
        assert _pid_alive(new_pid)
        assert load.failures == [], (load.failures[:10], load.ok)
        served_by_new = sum(v for n, lb, v in parse_metrics(_metrics(old.admin))
                            if n == "rangecache_requests_total")
        assert served_by_new >= 100
        assert "draining in-flight requests" in old.stderr_path.read_text()
        print(f"handover: {load.ok} requests, 0 failed, {load.stale_retries} keep-alive retries")
    finally:
        if new_pid is not None and _pid_alive(new_pid):
            os.kill(new_pid, signal.SIGTERM)
            procs.wait_until(lambda: not _pid_alive(new_pid), 60, what="new process exit")


def _metrics(admin: str) -> str:
    import urllib.request

    with urllib.request.urlopen(admin + "/metrics", timeout=5) as r:
        return r.read().decode()


# ------------------------------------------------------------------------------------------
# Grafana dashboard against /metrics
# ------------------------------------------------------------------------------------------
def dashboard_queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dash["panels"] for t in panel.get("targets", [])]
    for var in dash["templating"]["list"]:
        q = var.get("query")
        if isinstance(q, dict):
            exprs.append(q["query"])
    return exprs


def test_grafana_dashboard_queries_only_exported_metrics(proxy, proxy_s3, direct_s3, module_bucket):
    bucket = module_bucket
    body = os.urandom(2 * MIB)
    direct_s3.put_object(Bucket=bucket, Key="o", Body=body)
    for rng in ("bytes=0-9", "bytes=0-9", f"bytes={MIB - 5}-{MIB + 5}"):  # miss, hit, partial
        proxy_s3.get_object(Bucket=bucket, Key="o", Range=rng)["Body"].read()
    exported = {name for name, _, _ in parse_metrics(proxy.metrics_text())}
    exprs = dashboard_queries()
    assert len(exprs) >= 20
    used = set(re.findall(r"\brangecache_[a-z0-9_]+", " ".join(exprs)))
    missing = sorted(used - exported)
    assert not missing, f"the dashboard queries metrics /metrics does not export: {missing}"
    # Label values the dashboard filters on are ones rangecache writes.
    caches = set(re.findall(r'cache=~?"([^"]+)"', " ".join(exprs)))
    assert {v for c in caches for v in c.split("|")} <= {"hit", "miss", "partial", "pass"}
    panels = json.loads(DASHBOARD.read_text())["panels"]
    titles = " ".join(p["title"].lower() for p in panels)
    for want in ("request rate", "errors", "latency by cache result", "hit ratio (requests)",
                 "hit ratio (bytes)", "origin requests", "origin bytes", "origin first byte",
                 "fills in flight", "cache memory", "connections", "per-worker"):
        assert want in titles, f"no panel for {want!r}"


# ------------------------------------------------------------------------------------------
# systemd readiness protocol
# ------------------------------------------------------------------------------------------
def test_sd_notify_ready_reloading_stopping(seaweed, proxy_factory, tmp_path):
    """With NOTIFY_SOCKET set (as systemd does for Type=notify), rangecache sends READY=1 once it
    serves, RELOADING=1 then READY=1 around a SIGHUP reload, and STOPPING=1 when it drains."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    try:
        p = proxy_factory.create(proxy_factory.config(seaweed.endpoint), env={"NOTIFY_SOCKET": path})
        p.spawn()

        def expect(word: str) -> str:
            while True:
                msg = sock.recv(4096).decode()
                if word in msg.splitlines():
                    return msg

        ready = expect("READY=1")
        assert p.readyz() == 200  # READY=1 is sent only once /readyz says ready
        assert "STATUS=serving on 127.0.0.1:" in ready
        p.reload()
        expect("RELOADING=1")
        assert "configuration generation 2" in expect("READY=1")
        os.kill(p.pid, signal.SIGTERM)
        expect("STOPPING=1")
        assert p.wait(timeout=30) == 0
    finally:
        sock.close()


def test_access_log_startup_errors_name_their_phase(tmp_path):
    cases = [
        ('[log]\naccess = ""\n', '[validate_config] log.access: expected "off", "stdout" or a file path'),
        (f'[log]\naccess = "{tmp_path}/missing/dir/access.log"\n', "[open_access_log] log.access "),
    ]
    for text, want in cases:
        cfg = tmp_path / "rc.toml"
        cfg.write_text(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RANGECACHE_", "MONOIO_"))}
        done = subprocess.run([str(binary()), "--config", str(cfg)], capture_output=True, text=True,
                              timeout=30, env=env, cwd=tmp_path)
        assert done.returncode == 1 and want in done.stderr, done.stderr
