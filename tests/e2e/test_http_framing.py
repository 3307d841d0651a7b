"""HTTP/1.1 framing at the proxy's front door, on raw sockets: bad input is refused with the right
4xx (or a closed connection) and never hurts the next client; keep-alive, pipelining,
100-continue, chunked bodies and clients that vanish mid-upload behave.

Well-formed requests are signed (request_bytes signs by default; the shared proxy refuses anonymous
requests). Malformed heads are sent unsigned on purpose: the HTTP parser refuses them before
authentication, so each must still get its 4xx, not a 403."""

from __future__ import annotations

import random
import time

import pytest

from helpers.proxy import FULL_KEY
from helpers.rawhttp import Closed, Conn, exchange, request_bytes

pytestmark = pytest.mark.needs_binary

BODY = random.Random(5).randbytes(4096)
KEY = "framing/object.bin"


@pytest.fixture(scope="module")
def obj(proxy_s3, module_bucket):
    proxy_s3.put_object(Bucket=module_bucket, Key=KEY, Body=BODY)
    return f"/{module_bucket}/{KEY}"


def assert_serves(proxy, path: str) -> None:
    """A normal GET on a new connection still works."""
    r = exchange(proxy.hostport, request_bytes("GET", path, proxy.hostport))
    assert r is not None, "proxy closed a fresh connection after the bad request"
    assert r.status == 200 and r.body == BODY, (r.status, r.body[:300])
    assert proxy.alive()


def assert_s3_error(r, statuses) -> None:
    if r is None:
        return  # closing the connection is an acceptable answer to garbage
    assert r.status in statuses, f"status {r.status} {r.reason}, want one of {statuses}; body {r.body[:120]!r}"
    assert r.header("x-amz-request-id"), f"no x-amz-request-id on the {r.status} response: {r.headers}"
    if r.body or r.header("content-length") not in (None, "0"):
        assert b"<Code>" in r.body, f"error body is not S3 XML: {r.body[:300]!r}"


def h(proxy) -> str:
    return proxy.hostport


BAD_REQUESTS = {
    "malformed-request-line": lambda p, path: b"THIS IS NOT HTTP\r\n\r\n",
    "request-line-missing-version": lambda p, path: f"GET {path}\r\nHost: {h(p)}\r\n\r\n".encode(),
    "bare-lf": lambda p, path: f"GET {path} HTTP/1.1\nHost: {h(p)}\n\n".encode(),
    "bare-lf-in-one-header": lambda p, path: f"GET {path} HTTP/1.1\r\nHost: {h(p)}\nX-A: b\r\n\r\n".encode(),
    "obs-fold": lambda p, path: f"GET {path} HTTP/1.1\r\nHost: {h(p)}\r\nX-Folded: a\r\n  continued\r\n\r\n".encode(),
    "space-before-colon": lambda p, path: f"GET {path} HTTP/1.1\r\nHost: {h(p)}\r\nX-Bad : a\r\n\r\n".encode(),
    "two-content-lengths": lambda p, path: (f"PUT {path}.cl2 HTTP/1.1\r\nHost: {h(p)}\r\nContent-Length: 5\r\n"
                                            f"Content-Length: 6\r\n\r\nhello!").encode(),
    "two-equal-content-lengths": lambda p, path: (f"PUT {path}.cl2 HTTP/1.1\r\nHost: {h(p)}\r\nContent-Length: 5\r\n"
                                                  f"Content-Length: 5\r\n\r\nhello").encode(),
    "content-length-list": lambda p, path: (f"PUT {path}.cl2 HTTP/1.1\r\nHost: {h(p)}\r\nContent-Length: 5, 5\r\n"
                                            f"\r\nhello").encode(),
    "negative-content-length": lambda p, path: f"PUT {path}.cl2 HTTP/1.1\r\nHost: {h(p)}\r\nContent-Length: -1\r\n\r\n".encode(),
    "cl-and-te": lambda p, path: (f"PUT {path}.clte HTTP/1.1\r\nHost: {h(p)}\r\nContent-Length: 5\r\n"
                                  f"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode(),
    "te-gzip-chunked": lambda p, path: (f"PUT {path}.te HTTP/1.1\r\nHost: {h(p)}\r\n"
                                        f"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode(),
    "te-chunked-not-last": lambda p, path: (f"PUT {path}.te HTTP/1.1\r\nHost: {h(p)}\r\n"
                                            f"Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode(),
    # a good head (signed: the body is read only after authentication), then a bad chunk size
    "invalid-chunk-size": lambda p, path: (request_bytes("PUT", f"{path}.chunk", h(p),
                                                         [("Transfer-Encoding", "chunked")], content_length=False)
                                           + b"zz\r\nhello\r\n0\r\n\r\n"),
    "missing-host": lambda p, path: f"GET {path} HTTP/1.1\r\nUser-Agent: t\r\n\r\n".encode(),
    "two-hosts": lambda p, path: f"GET {path} HTTP/1.1\r\nHost: {h(p)}\r\nHost: other.example\r\n\r\n".encode(),
    "nul-in-header": lambda p, path: f"GET {path} HTTP/1.1\r\nHost: {h(p)}\r\nX-A: a\x00b\r\n\r\n".encode(),
}

# what each may answer (None = a closed connection, always acceptable for these)
EXPECTED = {name: (400,) for name in BAD_REQUESTS}
EXPECTED["request-line-missing-version"] = (400, 505)
EXPECTED["te-gzip-chunked"] = (400, 501)
EXPECTED["te-chunked-not-last"] = (400, 501)


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_request(proxy, obj, name):
    r = exchange(proxy.hostport, BAD_REQUESTS[name](proxy, obj))
    assert_s3_error(r, EXPECTED[name])
    assert_serves(proxy, obj)


def test_oversized_head(proxy, obj):
    headers = [(f"X-Pad-{i}", "p" * 1000) for i in range(70)]  # ~70 KiB in 70 headers
    r = exchange(proxy.hostport, request_bytes("GET", obj, proxy.hostport, headers, sign=False))
    assert_s3_error(r, (431, 400))
    assert_serves(proxy, obj)


def test_uri_too_long(proxy, obj):
    r = exchange(proxy.hostport, request_bytes("GET", obj + "?x=" + "a" * (17 * 1024), proxy.hostport, sign=False))
    assert_s3_error(r, (414,))
    if r is None:
        pytest.fail("a > 16 KiB request target must be answered 414, the connection was closed instead")
    assert_serves(proxy, obj)


def test_too_many_headers(proxy, obj):
    headers = [(f"X-H{i}", "v") for i in range(140)]
    r = exchange(proxy.hostport, request_bytes("GET", obj, proxy.hostport, headers, sign=False))
    assert_s3_error(r, (431, 400))
    assert_serves(proxy, obj)


def test_unknown_method(proxy, obj):
    r = exchange(proxy.hostport, request_bytes("BREW", obj, proxy.hostport))
    assert_s3_error(r, (400, 405, 501))
    assert_serves(proxy, obj)


def test_half_a_head_then_close(proxy, obj):
    with Conn(proxy.hostport) as c:
        c.send(f"GET {obj} HTTP/1.1\r\nHost: {proxy.hostport}\r\nX-Partial: ".encode())
    assert_serves(proxy, obj)


# ------------------------------------------------------------------------------------------ good framing
def test_every_response_has_request_id(proxy, obj):
    for method in ("GET", "HEAD"):
        r = exchange(proxy.hostport, request_bytes(method, obj, proxy.hostport), method=method)
        assert r.status == 200
        assert r.header("x-amz-request-id")
        if method == "HEAD":
            assert r.header("content-length") == str(len(BODY))
    r = exchange(proxy.hostport, request_bytes("GET", obj + ".missing", proxy.hostport))
    assert r.status == 404 and r.header("x-amz-request-id") and b"<Code>NoSuchKey</Code>" in r.body


def test_http10_without_host(driver, proxy, proxy_factory, seaweed, obj, module_bucket):
    """HTTP/1.0 needs no Host. SigV4 signs Host, so such a request can only be anonymous: the
    shared proxy (default-deny) parses it and refuses it with an S3 403; a proxy granting anonymous
    reads of the bucket serves it."""
    raw = f"GET {obj} HTTP/1.0\r\n\r\n".encode()
    r = exchange(proxy.hostport, raw)
    assert r is not None and r.status == 403, (r and r.status, r and r.body[:300])
    assert r.header("x-amz-request-id") and b"<Code>AccessDenied</Code>" in r.body, r.body[:300]
    p = proxy_factory.start(seaweed.endpoint, auth={"mode": "sigv4", "keys": [dict(FULL_KEY)],
                                                    "anonymous": [{"bucket": module_bucket, "access": ["read"]}]})
    r = exchange(p.hostport, raw)
    assert r is not None and r.status == 200 and r.body == BODY


def test_keep_alive_reuse(proxy, obj):
    with Conn(proxy.hostport) as c:
        for i in range(5):
            c.send(request_bytes("GET", obj, proxy.hostport, [("Range", f"bytes={i * 100}-{i * 100 + 99}")]))
            r = c.read_response()
            assert r.status == 206 and r.body == BODY[i * 100: i * 100 + 100]
        c.send(request_bytes("HEAD", obj, proxy.hostport))
        r = c.read_response(method="HEAD")
        assert r.status == 200 and r.body == b""
        c.send(request_bytes("GET", obj + ".nope", proxy.hostport))
        r = c.read_response()
        assert r.status == 404
        if (r.header("connection") or "").lower() != "close":
            c.send(request_bytes("GET", obj, proxy.hostport))
            r = c.read_response()
            assert r.status == 200 and r.body == BODY


def test_pipelining(proxy, obj):
    reqs = b"".join(request_bytes("GET", obj, proxy.hostport, [("Range", f"bytes={a}-{a + 9}")]) for a in (0, 10, 20))
    reqs += request_bytes("HEAD", obj, proxy.hostport)
    reqs += request_bytes("GET", obj, proxy.hostport)
    with Conn(proxy.hostport) as c:
        c.send(reqs)
        for a in (0, 10, 20):
            r = c.read_response()
            assert r.status == 206 and r.body == BODY[a: a + 10], (a, r.status, r.body[:50])
        r = c.read_response(method="HEAD")
        assert r.status == 200
        r = c.read_response()
        assert r.status == 200 and r.body == BODY


def test_expect_100_continue(proxy, seaweed, obj, direct_s3, module_bucket):
    body = random.Random(6).randbytes(300_000)
    path = f"/{module_bucket}/framing/expect.bin"
    with Conn(proxy.hostport) as c:
        c.send(request_bytes("PUT", path, proxy.hostport, [("Expect", "100-continue"), ("Content-Length", str(len(body)))],
                             content_length=False))
        first = c.read_head()
        assert first.status == 100, f"expected '100 Continue' before the body, got {first.status} {first.reason}"
        c.send(body)
        r = c.read_response(method="PUT")
        assert r.status == 200, (r.status, r.body[:300])
        assert r.header("etag")
    assert direct_s3.get_object(Bucket=module_bucket, Key="framing/expect.bin")["Body"].read() == body


def test_expect_100_continue_refused_without_body(proxy, obj, module_bucket):
    """A PUT the origin refuses (invalid bucket name) may be refused before the body is sent:
    then no 100, a final 4xx; or 100, the body, then the 4xx."""
    with Conn(proxy.hostport) as c:
        c.send(request_bytes("PUT", "/ab/k", proxy.hostport,
                             [("Expect", "100-continue"), ("Content-Length", "1000")], content_length=False))
        first = c.read_head()
        if first.status == 100:
            c.send(b"x" * 1000)
            first = c.read_response(method="PUT")
        else:
            c.buf = first.raw_head + c.buf
            first = c.read_response(method="PUT")
        assert 400 <= first.status < 500, first.status
    assert_serves(proxy, obj)


def chunked(body: bytes, sizes=(1, 7, 4096, 65536, 100_000)) -> bytes:
    out, i, n = bytearray(), 0, 0
    while i < len(body):
        s = sizes[n % len(sizes)]
        piece = body[i: i + s]
        out += f"{len(piece):x}".encode() + (b";ext=1" if n == 1 else b"") + b"\r\n" + piece + b"\r\n"
        i += s
        n += 1
    return bytes(out) + b"0\r\n\r\n"


def test_chunked_put(proxy, seaweed, obj, direct_s3, module_bucket):
    body = random.Random(7).randbytes(1_000_003)
    results = {}
    for name, hp in (("proxy", proxy.hostport), ("direct", seaweed.hostport)):
        path = f"/{module_bucket}/framing/chunked-{name}.bin"
        raw = request_bytes("PUT", path, hp, [("Transfer-Encoding", "chunked")], content_length=False) + chunked(body)
        r = exchange(hp, raw, method="PUT")
        assert r is not None, f"{name} closed the connection on a chunked PUT"
        results[name] = r.status
    assert results["proxy"] == results["direct"], results
    if results["direct"] == 200:
        assert direct_s3.get_object(Bucket=module_bucket, Key="framing/chunked-proxy.bin")["Body"].read() == body


def test_chunked_put_keepalive_then_get(proxy, obj, module_bucket):
    body = b"chunk-then-get " * 1000
    path = f"/{module_bucket}/framing/chunked-ka.bin"
    with Conn(proxy.hostport) as c:
        c.send(request_bytes("PUT", path, proxy.hostport, [("Transfer-Encoding", "chunked")], content_length=False)
               + chunked(body, sizes=(333,)))
        r = c.read_response(method="PUT")
        assert r.status == 200
        c.send(request_bytes("GET", path, proxy.hostport))
        r = c.read_response()
        assert r.status == 200 and r.body == body


def test_client_disconnects_mid_upload(proxy, obj, direct_s3, module_bucket):
    key = "framing/abandoned.bin"
    old = b"the old content"
    direct_s3.put_object(Bucket=module_bucket, Key=key, Body=old)
    with Conn(proxy.hostport) as c:
        c.send(request_bytes("PUT", f"/{module_bucket}/{key}", proxy.hostport,
                             [("Content-Length", str(10 << 20))], content_length=False))
        c.send(random.Random(8).randbytes(1 << 20))
        time.sleep(0.2)
    # the proxy keeps serving at once
    assert_serves(proxy, obj)
    # and the object is untouched: never a truncated upload
    time.sleep(1.0)
    got = direct_s3.get_object(Bucket=module_bucket, Key=key)["Body"].read()
    assert got == old, f"object changed after an abandoned upload: {len(got)} bytes"
    # a fresh key abandoned the same way does not appear
    key2 = "framing/abandoned-new.bin"
    with Conn(proxy.hostport) as c:
        c.send(request_bytes("PUT", f"/{module_bucket}/{key2}", proxy.hostport,
                             [("Content-Length", str(10 << 20))], content_length=False) + b"x" * (1 << 20))
    time.sleep(1.0)
    from botocore.exceptions import ClientError

    try:
        head = direct_s3.head_object(Bucket=module_bucket, Key=key2)
        pytest.fail(f"abandoned upload created an object of {head['ContentLength']} bytes")
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert_serves(proxy, obj)


def test_slow_client_trickle(proxy, obj):
    """A request head sent a few bytes at a time is still one request."""
    raw = request_bytes("GET", obj, proxy.hostport, [("Range", "bytes=0-15")])
    with Conn(proxy.hostport) as c:
        for i in range(0, len(raw), 7):
            c.send(raw[i: i + 7])
            time.sleep(0.005)
        r = c.read_response()
        assert r.status == 206 and r.body == BODY[:16]


def test_client_half_close_ends_connection(proxy, obj):
    """A client that half-closes without a request gets the connection closed (not a hang)."""
    with Conn(proxy.hostport) as c:
        c.sock.shutdown(1)
        with pytest.raises(Closed):
            c.read_response()


def test_big_get_slow_reader(proxy, direct_s3, module_bucket):
    """A reader slower than the proxy: the proxy's socket writes are partial; every byte must
    still arrive once, in order."""
    import hashlib
    import socket as _socket

    size = 24 * (1 << 20) + 5
    data = random.Random(9).randbytes(size)
    direct_s3.put_object(Bucket=module_bucket, Key="framing/slow.bin", Body=data)
    with Conn(proxy.hostport, timeout=60) as c:
        c.sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, 32 * 1024)
        c.send(request_bytes("GET", f"/{module_bucket}/framing/slow.bin", proxy.hostport))
        r = c.read_head()
        assert r.status == 200 and int(r.header("content-length")) == size
        got = bytearray()
        while len(got) < size:
            got += c._read_exact(min(256 * 1024, size - len(got)))
            time.sleep(0.002)
    if bytes(got) != data:
        i = next(i for i in range(size) if got[i] != data[i])
        src = data.find(bytes(got[i:i + 64]))
        pytest.fail(f"body differs from byte {i} on (sha {hashlib.sha256(got).hexdigest()[:12]}); the bytes "
                    f"received there are the object's bytes at offset {src}")
