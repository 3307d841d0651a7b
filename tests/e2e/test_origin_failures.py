"""Origins that fail: one that resets the connection mid-body, one that is down. The proxy must
never present a cut body as complete, must answer S3 errors it makes itself as S3 XML, and must
keep serving."""

from __future__ import annotations

import pytest

from helpers import procs
from helpers.fakeorigin import OK_BODY, SENT_BEFORE_RESET, SIZE, FakeOrigin
from helpers.rawhttp import exchange, request_bytes

pytestmark = pytest.mark.needs_binary


@pytest.fixture
def fake_origin():
    with FakeOrigin() as fo:
        yield fo


def get(p, path: str, headers=None, method: str = "GET"):
    return exchange(p.hostport, request_bytes(method, path, p.hostport, headers or []), method=method, timeout=30)


def assert_not_presented_complete(r, what: str) -> None:
    if r is None:
        return  # closed before a head: fine
    if r.status >= 500:
        assert r.header("x-amz-request-id"), f"{what}: {r.status} without x-amz-request-id"
        return
    assert r.status in (200, 206), f"{what}: unexpected status {r.status} {r.body[:200]!r}"
    declared = r.header("content-length")
    assert not r.complete, (
        f"{what}: the origin sent {SENT_BEFORE_RESET} bytes then reset, but the client got a complete "
        f"{r.status} response (declared length {declared}, {len(r.body)} body bytes, "
        f"transfer-encoding {r.header('transfer-encoding')})")
    assert len(r.body) < SIZE


def test_origin_reset_mid_body(driver, proxy_factory, fake_origin):
    p = proxy_factory.start(fake_origin.endpoint)
    for headers in ([], [("Range", "bytes=0-999999")], [("Range", "bytes=500000-")], [("Range", "bytes=-600000")]):
        r = get(p, "/bkt/reset.bin", headers)
        assert_not_presented_complete(r, f"GET reset.bin {headers}")
        # the proxy keeps serving: a good object, on a new connection
        ok = get(p, "/bkt/ok.bin")
        assert ok is not None and ok.status == 200 and ok.body == OK_BODY, (ok and ok.status, ok and ok.body[:200])
        assert p.alive()
    # and a range of the good object
    ok = get(p, "/bkt/ok.bin", [("Range", "bytes=10-19")])
    assert ok.status == 206 and ok.body == OK_BODY[10:20]
    assert p.readyz() == 200


def test_origin_reset_seen_by_boto3(driver, proxy_factory, fake_origin):
    from helpers.clients import s3_client

    p = proxy_factory.start(fake_origin.endpoint)
    s3 = s3_client(p.endpoint)
    try:
        body = s3.get_object(Bucket="bkt", Key="reset.bin")["Body"].read()
    except Exception as e:  # noqa: BLE001 - any error is the right outcome
        assert p.alive(), f"proxy died: {e!r}"
    else:
        pytest.fail(f"boto3 read {len(body)} bytes of a body the origin cut at {SENT_BEFORE_RESET} without an error")
    assert s3.get_object(Bucket="bkt", Key="ok.bin")["Body"].read() == OK_BODY


def test_origin_down(driver, proxy_factory):
    dead = procs.free_port()  # nothing listens there
    p = proxy_factory.start(f"http://127.0.0.1:{dead}", require_ready=False)
    for method, path in (("GET", "/bkt/key.bin"), ("HEAD", "/bkt/key.bin"), ("GET", "/bkt?list-type=2"),
                         ("PUT", "/bkt/new.bin"), ("GET", "/")):
        r = exchange(p.hostport, request_bytes(method, path, p.hostport, [], body=b"abc" if method == "PUT" else b""),
                     method=method, timeout=60)
        assert r is not None, f"{method} {path}: connection closed without a response"
        assert 500 <= r.status < 600, f"{method} {path}: {r.status} {r.body[:200]!r}"
        assert r.header("x-amz-request-id"), f"{method} {path}: no x-amz-request-id"
        if method != "HEAD":
            assert b"<Error>" in r.body and b"<Code>" in r.body, f"{method} {path}: body not S3 XML: {r.body[:300]!r}"
        assert p.alive()
