"""Uploads in S3's aws-chunked content coding (awscli v2 and recent SDKs), sent on raw sockets
so the exact wire format is under test: the proxy must decode the payload, forward it with its
decoded length, and leave no trace of the coding on the stored object."""

from __future__ import annotations

import base64
import os
import socket
import zlib
from urllib.parse import urlparse

import pytest


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def signed_streaming_body(data: bytes, size: int) -> bytes:
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD framing (the signatures are not checked yet)."""
    sig = "0" * 64
    out = bytearray()
    for c in _chunks(data, size):
        if c:
            out += f"{len(c):x};chunk-signature={sig}\r\n".encode() + c + b"\r\n"
    out += f"0;chunk-signature={sig}\r\n\r\n".encode()
    return bytes(out)


def unsigned_trailer_body(data: bytes, size: int) -> bytes:
    """STREAMING-UNSIGNED-PAYLOAD-TRAILER framing with a CRC32 trailer, as awscli v2 sends."""
    out = bytearray()
    for c in _chunks(data, size):
        if c:
            out += f"{len(c):x}\r\n".encode() + c + b"\r\n"
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    out += f"0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    return bytes(out)


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


CASES = {
    "signed-streaming": ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", signed_streaming_body, {}),
    "unsigned-trailer": (
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        unsigned_trailer_body,
        {"x-amz-trailer": "x-amz-checksum-crc32"},
    ),
}


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_aws_chunked_upload_is_decoded(proxy, direct_s3, new_bucket, case, transfer):
    sha, encode, extra = CASES[case]
    bucket = new_bucket("awsc")
    data = os.urandom(200_000 + 123)
    encoded = encode(data, 64 * 1024)
    headers = {
        "x-amz-content-sha256": sha,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "content-type": "application/octet-stream",
        **extra,
    }
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
    headers = {
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "5",
        "content-length": str(len(body)),
    }
    status, resp = put_raw(proxy.endpoint, f"/{bucket}/bad", headers, body)
    assert status == 400, resp.decode(errors="replace")
    assert b"<Code>" in resp and b"x-amz-request-id" in resp.lower()
    try:
        got = direct_s3.get_object(Bucket=bucket, Key="bad")
        raise AssertionError(f"stored: {got['ContentLength']} bytes {got['Body'].read()[:50]!r}")
    except direct_s3.exceptions.NoSuchKey:
        pass
