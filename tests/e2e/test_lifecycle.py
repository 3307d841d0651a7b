"""Process lifecycle: startup errors name their phase, SIGTERM drains in-flight transfers and
exits 0, the io driver can be forced from the environment, the admin endpoints answer."""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import socket
import time
import urllib.request

import pytest

from helpers import procs
from helpers.proxy import base_config, to_toml
from helpers.rawhttp import Conn, request_bytes

pytestmark = pytest.mark.needs_binary

PHASE_LINE = re.compile(r"^rangecache: \[(\w+)\]", re.M)
MiB = 1 << 20


def failed_start(proxy_factory, config_text: str, env=None, timeout: float = 20):
    p = proxy_factory.create(config_text=config_text, env=env)
    p.spawn()
    try:
        code = p.wait(timeout)
    except Exception:  # noqa: BLE001
        p.kill()
        pytest.fail(f"rangecache kept running with a bad configuration\n{p.logs()}")
    err = p.stderr_path.read_text(errors="replace")
    return code, err


# ------------------------------------------------------------------------------------------ startup errors
def test_unknown_config_key(proxy_factory, seaweed):
    cfg = base_config(seaweed.endpoint)
    cfg["server"]["no_such_key"] = 42
    code, err = failed_start(proxy_factory, to_toml(cfg))
    assert code != 0
    phases = PHASE_LINE.findall(err)
    assert phases and phases[0] in ("parse_config", "validate_config"), f"stderr: {err[-2000:]}"
    assert "no_such_key" in err, f"the error should name the bad key: {err[-2000:]}"


@pytest.mark.parametrize("mutate", [
    lambda c: c["server"].update(io_driver="kqueue"),
    lambda c: c["server"].update(listen="not-an-address"),
    lambda c: c["server"].update(workers=100_000),
    lambda c: c["origin"].update(endpoint="ftp://127.0.0.1:1"),
], ids=["bad-io-driver", "bad-listen", "too-many-workers", "bad-origin-scheme"])
def test_invalid_config_values(proxy_factory, seaweed, mutate):
    cfg = base_config(seaweed.endpoint)
    mutate(cfg)
    code, err = failed_start(proxy_factory, to_toml(cfg))
    assert code != 0
    phases = PHASE_LINE.findall(err)
    assert phases and phases[0] in ("parse_config", "validate_config"), f"stderr: {err[-2000:]}"


def test_toml_syntax_error(proxy_factory):
    code, err = failed_start(proxy_factory, "[server\nlisten = \n")
    assert code != 0
    assert PHASE_LINE.search(err), f"stderr: {err[-2000:]}"


def test_missing_config_file(proxy_factory, tmp_path):
    p = proxy_factory.create(config_text="")
    p.config_path.unlink()
    p.spawn()
    code = p.wait(20)
    err = p.stderr_path.read_text(errors="replace")
    assert code != 0
    assert PHASE_LINE.search(err), f"stderr: {err[-2000:]}"


@pytest.mark.parametrize("which", ["listen", "admin_listen"])
def test_address_in_use(proxy_factory, seaweed, which):
    cfg = base_config(seaweed.endpoint)
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        cfg["server"][which] = f"127.0.0.1:{holder.getsockname()[1]}"
        code, err = failed_start(proxy_factory, to_toml(cfg))
    finally:
        holder.close()
    assert code != 0
    phases = PHASE_LINE.findall(err)
    assert phases, f"stderr: {err[-2000:]}"
    if which == "listen":
        assert phases[0] == "bind_listener", f"stderr: {err[-2000:]}"


# ------------------------------------------------------------------------------------------ io driver selection
@pytest.mark.parametrize("env", [{"RANGECACHE_SERVER__IO_DRIVER": "epoll"}, {"MONOIO_FORCE_LEGACY_DRIVER": "1"}],
                         ids=["RANGECACHE_SERVER__IO_DRIVER", "MONOIO_FORCE_LEGACY_DRIVER"])
def test_driver_forced_from_env(proxy_factory, seaweed, env):
    p = proxy_factory.start(seaweed.endpoint, env=env)
    assert p.drivers() == {"epoll"}
    assert len([1 for n, lb, v in p.metrics() if n == "rangecache_worker_info"]) == 2


def test_auto_driver_prefers_io_uring(proxy_factory, seaweed):
    ok, why = procs.io_uring_available()
    if not ok:
        pytest.skip(f"io_uring unavailable: {why}")
    p = proxy_factory.start(seaweed.endpoint)  # io_driver = "auto", no override in the environment
    assert p.drivers() == {"io_uring"}


# ------------------------------------------------------------------------------------------ admin and metrics
def test_admin_endpoints_and_counters(proxy, proxy_s3, module_bucket):
    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(proxy.admin + path, timeout=5) as r:
            assert r.status == 200
    with urllib.request.urlopen(proxy.admin + "/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
    before_req = proxy.metric_sum("rangecache_requests_total", status="2xx")
    before_origin = proxy.metric_sum("rangecache_origin_requests_total")
    proxy_s3.put_object(Bucket=module_bucket, Key="metrics/k", Body=b"x" * 100)
    for _ in range(3):
        proxy_s3.get_object(Bucket=module_bucket, Key="metrics/k")["Body"].read()
    after_req = proxy.metric_sum("rangecache_requests_total", status="2xx")
    after_origin = proxy.metric_sum("rangecache_origin_requests_total")
    assert after_req - before_req >= 4, (before_req, after_req)
    assert after_origin - before_origin >= 1, (before_origin, after_origin)
    workers = {lb.get("worker") for n, lb, v in proxy.metrics() if n == "rangecache_worker_info"}
    assert len(workers) == 2, workers


# ------------------------------------------------------------------------------------------ SIGTERM drain
def test_sigterm_drains_inflight_get(driver, proxy_factory, seaweed, direct_s3):
    bucket = f"drain-{driver.replace('_', '')}"
    direct_s3.create_bucket(Bucket=bucket)
    size = 96 * MiB + 11
    data = random.Random(3).randbytes(size)
    direct_s3.put_object(Bucket=bucket, Key="big.bin", Body=data)
    p = proxy_factory.start(seaweed.endpoint)

    got = hashlib.sha256()
    received = 0
    with Conn(p.hostport, timeout=60) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        c.send(request_bytes("GET", f"/{bucket}/big.bin", p.hostport))
        r = c.read_head()
        assert r.status == 200, r.status
        length = int(r.header("content-length"))
        assert length == size
        # read a little, then ask the proxy to stop while most of the body is still to come
        first = c._read_exact(256 * 1024)
        got.update(first)
        received += len(first)
        os.kill(p.pid, signal.SIGTERM)
        time.sleep(0.5)
        assert p.alive(), f"proxy exited with {p.proc.returncode} while a GET was in flight\n{p.logs()}"
        # a slow reader: 1 MiB every 10 ms
        while received < length:
            chunk = c._read_exact(min(MiB, length - received))
            got.update(chunk)
            received += len(chunk)
            time.sleep(0.01)
    assert received == size
    assert got.hexdigest() == hashlib.sha256(data).hexdigest(), "drained body differs from the object"
    code = p.wait(30)
    assert code == 0, f"exit code {code} after SIGTERM\n{p.logs()}"
    direct_s3.delete_object(Bucket=bucket, Key="big.bin")


def test_sigterm_idle_exits_quickly(driver, proxy_factory, seaweed):
    p = proxy_factory.start(seaweed.endpoint)
    idle = Conn(p.hostport)  # an idle keep-alive connection must not hold the drain forever
    try:
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGTERM)
        code = p.wait(30)
        assert code == 0, f"exit code {code}\n{p.logs()}"
        assert time.monotonic() - t0 < 30
    finally:
        idle.close()
    # (io_uring may release a listener a moment after the process is gone)
    procs.wait_until(lambda: not procs.port_open(p.port), timeout=5, what="the listener to close after exit")
