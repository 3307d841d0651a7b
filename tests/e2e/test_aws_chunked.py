"""Uploads in S3's aws-chunked content coding (awscli v2 and recent SDKs), sent on raw sockets
so the exact wire format is under test: the proxy must decode the payload, forward it with its
decoded length, and leave no trace of the coding on the stored object."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

from helpers import sigv4


def signed_streaming(host: str, path: str, data: bytes, size: int) -> tuple[dict[str, str], bytes]:
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD: seed signature in the header, one per chunk."""
    seed = sigv4.sign("PUT", path, host, sigv4.chunked_upload_headers(sigv4.STREAMING_SIGNED, len(data), False),
                      sigv4.STREAMING_SIGNED)
    return dict(seed.headers), sigv4.signed_chunked_body(data, size, seed)


def unsigned_trailer(host: str, path: str, data: bytes, size: int) -> tuple[dict[str, str], bytes]:
    """STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer, as awscli v2 sends."""
    seed = sigv4.sign("PUT", path, host,
                      sigv4.chunked_upload_headers(sigv4.STREAMING_UNSIGNED_TRAILER, len(data), True),
                      sigv4.STREAMING_UNSIGNED_TRAILER)
    return dict(seed.headers), sigv4.unsigned_trailer_body(data, size)


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def transfer_chunked(body: bytes, size: int) -> bytes:
    out = bytearray()
    for c in _chunks(body, size):
        if c:
            out += f"{len(c):x}\r\n".encode() + c + b"\r\n"
    return bytes(out + b"0\r\n\r\n")


def put_raw(endpoint: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    u = urlparse(endpoint)
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        head = f"PUT {path} HTTP/1.1\r\nHost: {u.netloc}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode() + body)
        resp = b""
        while b"\r\n\r\n" not in resp:
            got = s.recv(65536)
            if not got:
                break
            resp += got
        status = int(resp.split(b" ", 2)[1])
        return status, resp


CASES = {"signed-streaming": signed_streaming, "unsigned-trailer": unsigned_trailer}


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_aws_chunked_upload_is_decoded(proxy, direct_s3, new_bucket, case, transfer):
    bucket = new_bucket("awsc")
    data = os.urandom(200_000 + 123)
    headers, encoded = CASES[case](proxy.hostport, f"/{bucket}/obj", data, 64 * 1024)
    headers["content-type"] = "application/octet-stream"  # unsigned: may be added after signing
    if transfer == "chunked":
        headers["transfer-encoding"] = "chunked"
        body = transfer_chunked(encoded, 10_000)
    else:
        headers["content-length"] = str(len(encoded))
        body = encoded
    status, resp = put_raw(proxy.endpoint, f"/{bucket}/obj", headers, body)
    assert status == 200, resp.decode(errors="replace")
    got = direct_s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == data
    assert got.get("ContentEncoding") in (None, ""), "aws-chunked must not be stored as the object's encoding"


def test_aws_chunked_with_bad_framing_is_rejected(proxy, direct_s3, new_bucket):
    bucket = new_bucket("awsbad")
    body = b"zz;chunk-signature=00\r\nhello\r\n0\r\n\r\n"
    seed = sigv4.sign("PUT", f"/{bucket}/bad", proxy.hostport,
                      sigv4.chunked_upload_headers(sigv4.STREAMING_SIGNED, 5, False), sigv4.STREAMING_SIGNED)
    headers = {**dict(seed.headers), "content-length": str(len(body))}
    status, resp = put_raw(proxy.endpoint, f"/{bucket}/bad", headers, body)
    assert status == 400, resp.decode(errors="replace")
    assert b"<Code>" in resp and b"x-amz-request-id" in resp.lower()
    try:
        got = direct_s3.get_object(Bucket=bucket, Key="bad")
        raise AssertionError(f"stored: {got['ContentLength']} bytes {got['Body'].read()[:50]!r}")
    except direct_s3.exceptions.NoSuchKey:
        pass
