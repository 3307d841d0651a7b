"""Reverse-proxy trust (issue 16): a real HAProxy (Debian's) in front of rangecache, in TCP mode
with `send-proxy-v2` and in HTTP mode with `X-Forwarded-For`, and clients on distinct loopback
addresses (127.0.0.2, 127.0.0.4) so that the real client differs from the balancer's address.

- the access log shows the real client address, not HAProxy's;
- the same PROXY header or X-Forwarded-For sent straight from an address outside
  `proxy.trusted_proxies` is refused (connection closed) or ignored, and counted in
  `rangecache_proxy_untrusted_total{kind}`;
- an `[[auth.anonymous]]` grant with `source = "127.0.0.2/32"` admits and refuses by the real
  address, including a client that forges X-Forwarded-For through the balancer.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from helpers import procs, rawhttp
from helpers.haproxy import binary as haproxy_binary
from helpers.proxy import FULL_KEY

pytestmark = pytest.mark.needs_binary

CLIENT = "127.0.0.2"  # the client the anonymous grant admits
OTHER = "127.0.0.4"  # a client it refuses
STRANGER = "127.0.0.3"  # connects straight to rangecache, not trusted
TCP_LB = "127.0.0.11"  # HAProxy's source address towards the PROXY-protocol node
HTTP_LB = "127.0.0.12"  # HAProxy's source address towards the X-Forwarded-For node
BODY = b"proxied bytes " * 100


def http_get(hostport: str, path: str, source: str, headers: list[tuple[str, str]] | None = None,
             preface: bytes = b"") -> rawhttp.Response:
    """One unsigned GET from `source` (a loopback address), after `preface` bytes."""
    host, port = hostport.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10, source_address=(source, 0))
    conn = rawhttp.Conn.__new__(rawhttp.Conn)
    conn.sock, conn.buf, conn.eof = sock, b"", False
    try:
        lines = [f"GET {path} HTTP/1.1", f"Host: {hostport}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers or []]
        conn.send(preface + ("\r\n".join(lines) + "\r\n\r\n").encode())
        return conn.read_response("GET")
    finally:
        sock.close()


def proxy_v2(src: str, sport: int, dst: str, dport: int) -> bytes:
    """A PROXY protocol v2 header (PROXY command, TCP over IPv4)."""
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def access_log(path: Path, want, timeout: float = 10.0) -> list[dict]:
    """The access log's records once `want(records)` holds (lines are handed over every 200 ms)."""
    records: list[dict] = []

    def ready():
        nonlocal records
        text = path.read_text() if path.exists() else ""
        records = [json.loads(line) for line in text.splitlines()]
        return want(records)

    procs.wait_until(ready, timeout, what=f"access-log records in {path}")
    return records


class Balancer:
    """HAProxy with two frontends: TCP mode + send-proxy-v2 to `tcp_node`, HTTP mode +
    `option forwardfor` (X-Forwarded-For) to `http_node`, each from its own source address."""

    def __init__(self, workdir: Path, tcp_node, http_node):
        self.tcp_port, self.http_port = procs.free_ports(2)
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(f"""
global
    maxconn 200
defaults
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend tcp_in
    mode tcp
    bind {procs.LOOPBACK}:{self.tcp_port}
    default_backend tcp_nodes
backend tcp_nodes
    mode tcp
    server rc {tcp_node.listen} send-proxy-v2 source {TCP_LB}
frontend http_in
    mode http
    option forwardfor
    bind {procs.LOOPBACK}:{self.http_port}
    default_backend http_nodes
backend http_nodes
    mode http
    server rc {http_node.listen} source {HTTP_LB}
""")
        self.log = workdir / "haproxy.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Balancer":
        exe = haproxy_binary()
        check = subprocess.run([exe, "-c", "-f", str(self.config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        with open(self.log, "wb") as log:
            self.proc = procs.track(subprocess.Popen([exe, "-f", str(self.config), "-db"], stdout=log,
                                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        procs.wait_until(lambda: procs.port_open(self.tcp_port) and procs.port_open(self.http_port), 20,
                         what="haproxy listening")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop_process(self.proc, timeout=10)

    @property
    def tcp(self) -> str:
        return f"{procs.LOOPBACK}:{self.tcp_port}"

    @property
    def http(self) -> str:
        return f"{procs.LOOPBACK}:{self.http_port}"


@pytest.fixture
def edge(driver, seaweed, direct_s3, proxy_factory, tmp_path):
    bucket = f"trust-{int(time.time() * 1000) % 10**8}"
    direct_s3.create_bucket(Bucket=bucket)
    direct_s3.put_object(Bucket=bucket, Key="obj", Body=BODY)
    auth = {"mode": "sigv4", "keys": [dict(FULL_KEY)],
            "anonymous": [{"bucket": bucket, "access": "read", "source": f"{CLIENT}/32"}]}
    logs = {name: tmp_path / f"{name}-access.log" for name in ("tcp", "http")}
    tcp_node = proxy_factory.start(
        seaweed.endpoint, auth=auth, log={"access": str(logs["tcp"])},
        proxy={"enabled": True, "protocol": "v2", "trusted_proxies": [f"{TCP_LB}/32"]})
    http_node = proxy_factory.start(
        seaweed.endpoint, auth=auth, log={"access": str(logs["http"])},
        proxy={"enabled": True, "forwarded_headers": "x-forwarded", "trusted_proxies": [f"{HTTP_LB}/32"]})
    lb = Balancer(tmp_path, tcp_node, http_node).start()
    yield bucket, tcp_node, http_node, lb, logs
    lb.stop()


def client_of(path: Path, r: rawhttp.Response) -> str:
    """The access log's `client` for the request answered by `r` (matched by request id: workers
    hand their lines over independently, so the log's order is not the requests' order)."""
    rid = r.header("x-amz-request-id")
    assert rid, r.headers
    records = access_log(path, lambda rs: any(x["request_id"] == rid for x in rs))
    return next(x["client"] for x in records if x["request_id"] == rid)


def test_proxy_protocol_v2_through_haproxy_tcp_mode(edge):
    bucket, node, _, lb, logs = edge
    path = f"/{bucket}/obj"
    # Through HAProxy: the grant limited to 127.0.0.2 admits that client and refuses another.
    admitted = http_get(lb.tcp, path, CLIENT)
    assert admitted.status == 200 and admitted.body == BODY, (admitted.status, admitted.body[:200])
    refused = http_get(lb.tcp, path, OTHER)
    assert refused.status == 403 and b"AccessDenied" in refused.body, (refused.status, refused.body[:300])
    # The PROXY header's source address and port, not HAProxy's 127.0.0.11.
    assert client_of(logs["tcp"], admitted).startswith(CLIENT + ":")
    assert client_of(logs["tcp"], refused).startswith(OTHER + ":")

    # Straight from an untrusted address: a PROXY header claiming 127.0.0.2 closes the
    # connection (no answer at all) and is counted; without one the stranger is served as itself.
    before = node.metric_sum("rangecache_proxy_untrusted_total", kind="proxy_protocol")
    with pytest.raises((rawhttp.Closed, ConnectionError)):
        http_get(node.hostport, path, STRANGER, preface=proxy_v2(CLIENT, 5555, "127.0.0.1", node.port))
    assert node.metric_sum("rangecache_proxy_untrusted_total", kind="proxy_protocol") == before + 1
    r = http_get(node.hostport, path, STRANGER)
    assert r.status == 403, r.status
    assert client_of(logs["tcp"], r).startswith(STRANGER + ":")


def test_x_forwarded_for_through_haproxy_http_mode(edge):
    bucket, _, node, lb, logs = edge
    path = f"/{bucket}/obj"
    admitted = http_get(lb.http, path, CLIENT)
    assert admitted.status == 200 and admitted.body == BODY, (admitted.status, admitted.body[:200])
    refused = http_get(lb.http, path, OTHER)
    assert refused.status == 403, refused.status
    # A client forging X-Forwarded-For through the balancer: HAProxy appends the real address,
    # and the trust walk stops there (right-most untrusted hop).
    forged = http_get(lb.http, path, OTHER, headers=[("X-Forwarded-For", CLIENT)])
    assert forged.status == 403, forged.status
    # X-Forwarded-For carries no port: the log has the bare address.
    assert [client_of(logs["http"], r) for r in (admitted, refused, forged)] == [CLIENT, OTHER, OTHER]

    # The same header straight from an untrusted address is ignored and counted.
    before = node.metric_sum("rangecache_proxy_untrusted_total", kind="x_forwarded")
    r = http_get(node.hostport, path, STRANGER, headers=[("X-Forwarded-For", CLIENT)])
    assert r.status == 403, r.status
    assert node.metric_sum("rangecache_proxy_untrusted_total", kind="x_forwarded") == before + 1
    assert client_of(logs["http"], r).startswith(STRANGER + ":")


def test_trusted_peer_without_proxy_header_is_closed(edge):
    """A trusted address must open with the PROXY header: plain HTTP from it is closed unanswered
    and counted as a header error (what a misconfigured balancer would see)."""
    bucket, node, _, _, _ = edge
    before = node.metric_sum("rangecache_proxy_protocol_errors_total")
    with pytest.raises((rawhttp.Closed, ConnectionError)):
        http_get(node.hostport, f"/{bucket}/obj", TCP_LB)
    assert node.metric_sum("rangecache_proxy_protocol_errors_total") == before + 1


V1_LB = "127.0.0.13"  # a trusted peer speaking PROXY protocol v1


def test_proxy_v1_in_pieces_then_tls(driver, seaweed, direct_s3, proxy_factory, tmp_path):
    """PROXY v1 on a TLS listener: the header is read before the handshake even when it arrives
    a few bytes at a time, and never past its end (the ClientHello right behind it is intact)."""
    import ssl

    from helpers.tls_ca import TestCA

    bucket = f"trust-v1-{int(time.time() * 1000) % 10**8}"
    direct_s3.create_bucket(Bucket=bucket)
    direct_s3.put_object(Bucket=bucket, Key="obj", Body=BODY)
    ca = TestCA(tmp_path / "ca")
    cert = ca.issue_server("server", "ec")
    log = tmp_path / "access.log"
    node = proxy_factory.start(
        seaweed.endpoint, log={"access": str(log)},
        server={"tls": {"cert_file": str(cert.cert), "key_file": str(cert.key)}},
        auth={"mode": "sigv4", "keys": [dict(FULL_KEY)],
              "anonymous": [{"bucket": bucket, "access": "read", "source": [f"{CLIENT}/32"]}]},
        proxy={"enabled": True, "protocol": "v1", "trusted_proxies": [f"{V1_LB}/32"]})
    header = f"PROXY TCP4 {CLIENT} 127.0.0.1 40123 {node.port}\r\n".encode()
    raw = socket.create_connection(("127.0.0.1", node.port), timeout=10, source_address=(V1_LB, 0))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(0, len(header), 7):
        raw.sendall(header[i:i + 7])
        time.sleep(0.02)
    ctx = ssl.create_default_context(cafile=str(ca.ca_file))
    conn = rawhttp.Conn.__new__(rawhttp.Conn)
    conn.sock, conn.buf, conn.eof = ctx.wrap_socket(raw, server_hostname="127.0.0.1"), b"", False
    try:
        conn.send(f"GET /{bucket}/obj HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        r = conn.read_response("GET")
    finally:
        conn.close()
    assert r.status == 200 and r.body == BODY, (r.status, r.body[:300])
    assert client_of(log, r) == f"{CLIENT}:40123"
