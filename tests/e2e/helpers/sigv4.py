"""AWS Signature Version 4 for S3, written out by hand so a test controls every signed byte: the
date (clock-skew tests), which headers are signed (then changed), the payload hash, and the chunk
and trailer signatures of `aws-chunked` uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]).

The signer is checked against SeaweedFS, which enforces SigV4 (tests/e2e/test_auth.py), so a
refusal by rangecache of a request signed here is rangecache's, not this file's, doing.

Plus the few checks every auth test makes on a refused request (`assert_refused`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import zlib
from dataclasses import dataclass, field
from urllib.parse import quote

from .rawhttp import Response, exchange, request_bytes
from .seaweed import ACCESS_KEY, REGION, SECRET_KEY

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


@dataclass(frozen=True)
class Creds:
    access_key: str
    secret_key: str
    session_token: str | None = None


FULL = Creds(ACCESS_KEY, SECRET_KEY)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def amz_date(when: dt.datetime | None = None) -> str:
    when = when or dt.datetime.now(dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def uri_encode(s: str) -> str:
    """SigV4's UriEncode for query names and values: all but A-Z a-z 0-9 - _ . ~ percent-encoded."""
    return quote(s, safe="-_.~")


def object_path(bucket: str, key: str = "") -> str:
    """The path as S3 clients send (and sign) it: each byte of the key encoded once, '/' kept."""
    path = "/" + bucket
    if key:
        path += "/" + quote(key, safe="-_.~/")
    return path


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date8: str, region: str = REGION, service: str = "s3") -> bytes:
    k = _hmac(("AWS4" + secret).encode(), date8)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


@dataclass
class Signed:
    """A signed request head: what to send, and what chunk signatures chain from."""

    method: str
    path: str
    query: str  # encoded, as sent ("" if none)
    headers: list[tuple[str, str]]  # includes Authorization, x-amz-date, x-amz-content-sha256
    signature: str
    date: str  # x-amz-date
    scope: str  # date8/region/s3/aws4_request
    key: bytes = field(repr=False)  # the signing key
    canonical_request: str = ""

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def with_header(self, name: str, value: str) -> list[tuple[str, str]]:
        """The headers with `name` replaced by `value` (after signing: a tampered request)."""
        return [(k, value if k.lower() == name.lower() else v) for k, v in self.headers]


def encode_query(params: list[tuple[str, str]]) -> str:
    return "&".join(f"{uri_encode(k)}={uri_encode(v)}" for k, v in params)


def canonical_query(params: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted((uri_encode(k), uri_encode(v)) for k, v in params))


def sign(method: str, path: str, host: str, headers: list[tuple[str, str]] | dict | None = None,
         payload_hash: str = EMPTY_SHA256, creds: Creds = FULL, query: list[tuple[str, str]] | None = None,
         when: dt.datetime | None = None, region: str = REGION, signature_override: str | None = None) -> Signed:
    """Sign a request in the Authorization header. Every header given is signed, plus host,
    x-amz-date, x-amz-content-sha256 (= payload_hash) and x-amz-security-token (if a session)."""
    headers = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    date = amz_date(when)
    date8 = date[:8]
    headers += [("x-amz-date", date), ("x-amz-content-sha256", payload_hash)]
    if creds.session_token:
        headers.append(("x-amz-security-token", creds.session_token))
    params = list(query or [])
    to_sign = {"host": host}
    for k, v in headers:
        lk = k.lower()
        to_sign[lk] = (to_sign[lk] + "," + v.strip()) if lk in to_sign and lk != "host" else " ".join(v.split())
    names = sorted(to_sign)
    canonical = "\n".join([
        method,
        path,
        canonical_query(params),
        "".join(f"{n}:{to_sign[n]}\n" for n in names),
        ";".join(names),
        payload_hash,
    ])
    scope = f"{date8}/{region}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", date, scope, sha256_hex(canonical.encode())])
    key = signing_key(creds.secret_key, date8, region)
    signature = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    auth = (f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, SignedHeaders={';'.join(names)}, "
            f"Signature={signature_override or signature}")
    return Signed(method, path, encode_query(params), headers + [("Authorization", auth)], signature, date, scope,
                  key, canonical)


def send(host: str, s: Signed, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
         timeout: float = 60.0) -> Response:
    """Send a signed request (or its `headers` replaced) on a fresh connection; the response."""
    r = exchange(host, request_bytes(s.method, s.target, host, headers if headers is not None else s.headers,
                                     body=body, sign=False), method=s.method, timeout=timeout)
    assert r is not None, f"{s.method} {s.target}: the server closed the connection without answering"
    return r


def request(host: str, method: str, bucket: str, key: str = "", body: bytes = b"", creds: Creds = FULL,
            headers: list[tuple[str, str]] | None = None, query: list[tuple[str, str]] | None = None,
            payload_hash: str | None = None, when: dt.datetime | None = None) -> Response:
    """Sign and send one request; the payload is signed by its SHA-256 unless told otherwise."""
    s = sign(method, object_path(bucket, key), host, headers, sha256_hex(body) if payload_hash is None else payload_hash,
             creds, query=query, when=when)
    return send(host, s, body)


def anonymous(host: str, method: str, bucket: str, key: str = "", body: bytes = b"",
              headers: list[tuple[str, str]] | None = None) -> Response:
    r = exchange(host, request_bytes(method, object_path(bucket, key), host, headers or [], body=body, sign=False),
                 method=method, timeout=60)
    assert r is not None, f"anonymous {method} /{bucket}/{key}: connection closed without an answer"
    return r


# ------------------------------------------------------------------------------------------ aws-chunked
def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i: i + size] for i in range(0, len(data), size)]


TAMPER = ("chunk-sig-first", "chunk-sig-last", "chunk-sig-final", "chunk-body-first", "chunk-body-last",
          "trailer-sig", "trailer-value", "drop-trailer-sig")


def signed_chunked_body(data: bytes, size: int, seed: Signed, trailer: bool = False,
                        tamper: str | None = None, checksum: str | None = None) -> bytes:
    """aws-chunked body with a chunk signature on every chunk, chained from the seed (header)
    signature: STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or ...-PAYLOAD-TRAILER with `trailer` (a signed
    x-amz-checksum-crc32 trailer; `checksum` overrides its value). `tamper` breaks one thing
    *after* signing (see TAMPER)."""
    assert tamper in (None, *TAMPER), tamper
    prev = seed.signature
    out = bytearray()
    chunks = _pieces(data, size) + [b""]
    n_data = len(chunks) - 1
    for i, c in enumerate(chunks):
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", seed.date, seed.scope, prev, EMPTY_SHA256, sha256_hex(c)])
        sig = hmac.new(seed.key, sts.encode(), hashlib.sha256).hexdigest()
        prev = sig
        sent_sig, sent = sig, c
        if (tamper == "chunk-sig-first" and i == 0) or (tamper == "chunk-sig-last" and i == n_data - 1) or (
                tamper == "chunk-sig-final" and i == n_data):
            sent_sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        if (tamper == "chunk-body-first" and i == 0) or (tamper == "chunk-body-last" and i == n_data - 1):
            sent = bytes([c[0] ^ 0x01]) + c[1:]
        out += f"{len(sent):x};chunk-signature={sent_sig}\r\n".encode() + sent + b"\r\n"
    if not trailer:
        # The last chunk's "\r\n" after its (empty) data ends the body.
        return bytes(out)
    out = out[:-2]  # the trailer section follows the zero-size chunk line
    value = checksum or crc32_b64(data)
    if tamper == "trailer-value":
        value = crc32_b64(data + b"x")
    line = f"x-amz-checksum-crc32:{value}\n"  # signed as sent: a wrong value is a BadDigest
    sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", seed.date, seed.scope, prev, sha256_hex(line.encode())])
    tsig = hmac.new(seed.key, sts.encode(), hashlib.sha256).hexdigest()
    if tamper == "trailer-sig":
        tsig = ("0" if tsig[0] != "0" else "1") + tsig[1:]
    out += f"x-amz-checksum-crc32:{value}\r\n".encode()
    if tamper != "drop-trailer-sig":
        out += f"x-amz-trailer-signature:{tsig}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


def unsigned_trailer_body(data: bytes, size: int, checksum: str | None = None, tamper: str | None = None) -> bytes:
    """STREAMING-UNSIGNED-PAYLOAD-TRAILER framing with a CRC32 trailer (awscli v2, recent SDKs);
    `checksum` overrides the trailer's value, tamper="chunk-body-first" flips a byte after the
    checksum was computed."""
    out = bytearray()
    crc = checksum or crc32_b64(data)
    for i, c in enumerate(_pieces(data, size)):
        if tamper == "chunk-body-first" and i == 0:
            c = bytes([c[0] ^ 0x01]) + c[1:]
        out += f"{len(c):x}\r\n".encode() + c + b"\r\n"
    out += f"0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    return bytes(out)


def chunked_upload_headers(kind: str, decoded_len: int, trailer: bool) -> list[tuple[str, str]]:
    h = [("content-encoding", "aws-chunked"), ("x-amz-decoded-content-length", str(decoded_len))]
    if trailer:
        h.append(("x-amz-trailer", "x-amz-checksum-crc32"))
    return h


def put_signed_chunked(host: str, bucket: str, key: str, data: bytes, size: int = 64 * 1024,
                       creds: Creds = FULL, trailer: bool = False, tamper: str | None = None) -> Response:
    kind = STREAMING_SIGNED_TRAILER if trailer else STREAMING_SIGNED
    seed = sign("PUT", object_path(bucket, key), host, chunked_upload_headers(kind, len(data), trailer), kind, creds)
    return send(host, seed, signed_chunked_body(data, size, seed, trailer=trailer, tamper=tamper))


def put_unsigned_trailer(host: str, bucket: str, key: str, data: bytes, size: int = 64 * 1024,
                         creds: Creds = FULL, checksum: str | None = None, tamper: str | None = None) -> Response:
    seed = sign("PUT", object_path(bucket, key), host,
                chunked_upload_headers(STREAMING_UNSIGNED_TRAILER, len(data), True), STREAMING_UNSIGNED_TRAILER, creds)
    return send(host, seed, unsigned_trailer_body(data, size, checksum=checksum, tamper=tamper))


# ------------------------------------------------------------------------------------------ checks
_CODE = re.compile(rb"<Code>([^<]*)</Code>")


def error_code(r: Response) -> str | None:
    m = _CODE.search(r.body)
    return m.group(1).decode() if m else None


def describe(r: Response) -> str:
    return f"{r.status} {r.reason} headers={r.headers} body={r.body[:600]!r}"


def assert_refused(r: Response, status: int, code: str | tuple[str, ...], secret: bytes | None = None,
                   method: str = "GET") -> None:
    """An S3 error answer: `status`, `<Code>` one of `code` (no body for HEAD), an
    x-amz-request-id, and none of the bytes of `secret` (the object's content)."""
    codes = (code,) if isinstance(code, str) else code
    assert r.status == status, f"want {status} {codes}, got {describe(r)}"
    assert r.header("x-amz-request-id"), f"no x-amz-request-id: {describe(r)}"
    if method != "HEAD":
        got = error_code(r)
        assert got in codes, f"want <Code> in {codes}, got {got!r}: {describe(r)}"
        assert len(r.body) < 4096, f"error body of {len(r.body)} bytes: {r.body[:200]!r}"
    else:
        assert r.body == b""
    if secret:
        probe = secret[: min(len(secret), 32)]
        assert probe not in r.body, f"object bytes in a refused answer: {describe(r)}"
