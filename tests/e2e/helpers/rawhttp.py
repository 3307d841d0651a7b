"""A tiny HTTP/1.1 client on raw sockets, to send exactly the bytes a test wants and read back
exactly what the server answered (several responses on one connection, 1xx, truncation)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field


class Closed(Exception):
    """The peer closed (or reset) the connection before a complete response."""

    def __init__(self, msg: str, partial: "Response | None" = None):
        super().__init__(msg)
        self.partial = partial


@dataclass
class Response:
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    complete: bool = True
    raw_head: bytes = b""
    extra: dict = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Conn:
    def __init__(self, hostport: str, timeout: float = 15.0):
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(1 << 16)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _read_until(self, sep: bytes, limit: int = 1 << 20) -> bytes:
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[: i + len(sep)], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise ValueError("line too long")
            if not self._fill():
                raise Closed(f"connection closed while waiting for {sep!r} (have {self.buf[:200]!r})")

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                out, self.buf = self.buf, b""
                raise Closed(f"connection closed after {len(out)} of {n} body bytes", partial=None) from None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self) -> Response:
        head = self._read_until(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ValueError(f"bad status line {lines[0]!r}")
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.decode("latin-1").partition(":")
            headers.append((k.strip(), v.strip()))
        return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", parts[0], headers, raw_head=head)

    def read_response(self, method: str = "GET", skip_1xx: bool = True, body_sink=None) -> Response:
        """Read one response. Raises Closed if the connection ends before the head; a response whose
        body was cut short comes back with complete=False. With body_sink, the body is streamed to it
        (a callable taking bytes) instead of being kept."""
        while True:
            r = self.read_head()
            if skip_1xx and 100 <= r.status < 200 and r.status != 101:
                continue
            break
        if method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200:
            return r
        te = (r.header("transfer-encoding") or "").lower()
        cl = r.header("content-length")
        body = bytearray()

        def emit(b: bytes):
            if body_sink is not None:
                body_sink(b)
                r.extra["len"] = r.extra.get("len", 0) + len(b)
            else:
                body.extend(b)

        try:
            if "chunked" in te:
                while True:
                    size_line = self._read_until(b"\r\n")
                    size = int(size_line.split(b";")[0].strip(), 16)
                    if size == 0:
                        while self._read_until(b"\r\n") != b"\r\n":
                            pass
                        break
                    emit(self._read_exact(size))
                    self._read_exact(2)
            elif cl is not None:
                remaining = int(cl)
                while remaining > 0:
                    if not self.buf and not self._fill():
                        raise Closed(f"closed with {remaining} of {cl} body bytes missing")
                    take = self.buf[:remaining]
                    self.buf = self.buf[len(take):]
                    remaining -= len(take)
                    emit(take)
            else:
                while self._fill():
                    emit(self.buf)
                    self.buf = b""
        except Closed:
            r.complete = False
        except socket.timeout:
            r.complete = False
            r.extra["timeout"] = True
        r.body = bytes(body)
        return r


def _already_signed(path: str, headers: list[tuple[str, str]]) -> bool:
    query = path.partition("?")[2].lower()
    return (any(k.lower() == "authorization" for k, _ in headers)
            or "x-amz-signature=" in query or "x-amz-credential=" in query)


def signed_headers(method: str, path: str, host: str, headers: list[tuple[str, str]] | None = None,
                   creds=None) -> list[tuple[str, str]]:
    """`headers` plus a SigV4 Authorization (helpers/sigv4.py, the suite's full key by default)
    over the request as sent: `host`, the path and query exactly as in the request line, and every
    x-amz-* header given (other headers are sent unsigned). The payload is UNSIGNED-PAYLOAD unless
    the caller gives its own x-amz-content-sha256."""
    from urllib.parse import unquote

    from . import sigv4  # sigv4 imports this module

    headers = list(headers or [])
    raw_path, _, raw_query = path.partition("?")
    params = []
    for part in raw_query.split("&") if raw_query else []:
        k, _, v = part.partition("=")
        params.append((unquote(k), unquote(v)))
    payload_hash = sigv4.UNSIGNED
    amz, other = [], []
    for k, v in headers:
        lk = k.lower()
        if lk == "x-amz-content-sha256":
            payload_hash = v
        elif lk.startswith("x-amz-"):
            amz.append((k, v))
        else:
            other.append((k, v))
    s = sigv4.sign(method, raw_path, host, amz, payload_hash, creds or sigv4.FULL, query=params)
    return other + s.headers


def request_bytes(method: str, path: str, host: str, headers: list[tuple[str, str]] | None = None,
                  body: bytes = b"", content_length: bool | None = None, version: str = "HTTP/1.1",
                  sign: bool = True) -> bytes:
    """One request's bytes. Signed (see `signed_headers`) unless `sign=False` or it already carries
    a signature (an Authorization header or a presigned query): the suite's proxies refuse
    anonymous requests. Send a head changed after this call unsigned, or sign the final head."""
    headers = list(headers or [])
    if sign and not _already_signed(path, headers):
        headers = signed_headers(method, path, host, headers)
    lines = [f"{method} {path} {version}", f"Host: {host}"]
    for k, v in headers or []:
        lines.append(f"{k}: {v}")
    if content_length or (content_length is None and body):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def exchange(hostport: str, data: bytes, method: str = "GET", timeout: float = 15.0) -> Response | None:
    """Send raw bytes on a fresh connection and read one response; None if the server just closed."""
    with Conn(hostport, timeout=timeout) as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            return c.read_response(method=method)
        except Closed:
            return None
