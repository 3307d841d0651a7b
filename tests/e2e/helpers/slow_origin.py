"""A small S3-like origin on 127.0.0.1 serving synthetic, deterministic objects: HEAD and GET (with
single ranges, If-Match / If-None-Match), any bucket, any signature. It can model S3's speed (a
first-byte latency with jitter and a per-connection bandwidth cap) and fail on purpose (cut a GET
after N body bytes with a TCP reset, a set number of times).

Content: byte `i` of object `key` at version `v` is `BASE[(seed(key, v) + i) % P]`, where BASE is
P = 1,048,573 fixed pseudo-random bytes (P is prime, so a block that lands at the wrong offset or
comes from another object or version does not match). `content(key, start, n)` computes any slice;
the ETag changes with the version.

In-process: `with SlowOrigin(latency=0.02, bandwidth=80e6) as o: ...`.
As a process (for load tests, so that it does not share the client's GIL):
  python slow_origin.py --port 0 --latency 0.02 --jitter 0.005 --bandwidth 80e6
prints `listening 127.0.0.1:PORT` on stdout; `GET /__origin/stats` returns its counters as JSON and
`GET /__origin/requests?key=K` the [method, range] of every request it got for key K.
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import json
import random
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

try:
    from .tcp_server import LoopbackServer, read_head, skip_body
except ImportError:  # run as a script: the helpers folder is on sys.path
    from tcp_server import LoopbackServer, read_head, skip_body

MiB = 1 << 20
P = 1_048_573
_BASE = random.Random(20240601).randbytes(P)
_BASE2 = _BASE + _BASE
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"


def seed(key: str, version: int = 0) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}\0{version}".encode(), digest_size=8).digest(), "little") % P


def content(key: str, start: int, n: int, version: int = 0) -> bytes:
    """Bytes [start, start+n) of object `key` at `version`."""
    s = seed(key, version)
    out = bytearray()
    pos = start
    while n > 0:
        off = (s + pos) % P
        take = min(n, P)
        out += _BASE2[off: off + take]
        pos += take
        n -= take
    return bytes(out)


def etag(key: str, version: int = 0) -> str:
    return '"' + hashlib.md5(f"{key}\0{version}".encode()).hexdigest() + '"'


@dataclass
class Seen:
    method: str
    key: str
    range: str | None
    headers: dict[str, str]
    t: float = field(default_factory=time.monotonic)


@dataclass
class Fault:
    cut_after: int  # body bytes sent before the reset
    times: int  # how many GETs fail this way


def parse_range(value: str | None, size: int) -> tuple[int, int] | str | None:
    """(first, last) for a satisfiable single range, "416" for an unsatisfiable one, None to ignore."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    a, sep, b = value[6:].strip().partition("-")
    if not sep:
        return None
    try:
        if a == "":
            n = int(b)
            if n == 0 or size == 0:
                return "416"
            return max(0, size - n), size - 1
        first = int(a)
        last = int(b) if b else size - 1
    except ValueError:
        return None
    if b and last < first:
        return None  # syntactically invalid: ignored, like S3
    if first >= size:
        return "416"
    return first, min(last, size - 1)


class SlowOrigin(LoopbackServer):
    name = "slow-origin"

    def __init__(self, latency: float = 0.0, jitter: float = 0.0, bandwidth: float | None = None,
                 default_size: int = 8 * MiB, sizes: dict[str, int] | None = None, port: int = 0,
                 chunk: int = 64 * 1024, rng_seed: int = 1):
        super().__init__(port=port, backlog=1024)
        self.latency, self.jitter, self.bandwidth = latency, jitter, bandwidth
        self.default_size = default_size
        self.sizes = dict(sizes or {})
        self.versions: dict[str, int] = {}
        self.faults: dict[str, Fault] = {}
        self.chunk = chunk
        self._rng = random.Random(rng_seed)
        self.seen: list[Seen] = []
        self.bytes_sent = 0
        self.connections = 0

    # -- control ---------------------------------------------------------------------------------
    def size_of(self, key: str) -> int | None:
        if key in self.sizes:
            return self.sizes[key]
        if key.startswith("missing"):
            return None
        return self.default_size

    def version(self, key: str) -> int:
        with self._lock:
            return self.versions.get(key, 0)

    def set_version(self, key: str, version: int) -> None:
        with self._lock:
            self.versions[key] = version

    def expected(self, key: str, start: int = 0, n: int | None = None) -> bytes:
        size = self.size_of(key) or 0
        n = size - start if n is None else n
        return content(key, start, n, self.version(key))

    def fail_gets(self, key: str, cut_after: int, times: int = 1) -> None:
        """The next `times` GETs of `key` send a full head, `cut_after` body bytes, then RST."""
        with self._lock:
            self.faults[key] = Fault(cut_after, times)

    def requests(self, method: str | None = None, key: str | None = None) -> list[Seen]:
        with self._lock:
            out = list(self.seen)
        return [s for s in out if (method is None or s.method == method) and (key is None or s.key == key)]

    def stats(self) -> dict:
        with self._lock:
            seen = list(self.seen)
            by: dict[str, int] = {}
            for s in seen:
                by[s.method] = by.get(s.method, 0) + 1
            return {"requests": len(seen), "by_method": by, "bytes_sent": self.bytes_sent,
                    "connections": self.connections}

    # -- serving ---------------------------------------------------------------------------------
    def on_accept(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self.connections += 1
        self.track(conn)
        self.spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(120)
        buf = b""
        try:
            while not self._stop.is_set():
                got = read_head(conn, buf)
                if got is None:
                    return
                method, target, headers, buf = got
                buf = skip_body(conn, buf, int(headers.get("content-length", "0") or 0))
                if buf is None:
                    return
                if not self._answer(conn, method, target, headers):
                    return
                if headers.get("connection", "").lower() == "close":
                    return
        except OSError:
            return
        finally:
            self.forget(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        with self._lock:
            self.bytes_sent += len(data)

    def _wait_first_byte(self) -> None:
        if self.latency or self.jitter:
            with self._lock:
                d = self.latency + self._rng.uniform(-self.jitter, self.jitter)
            if d > 0:
                time.sleep(d)

    def _answer(self, conn: socket.socket, method: str, target: str, headers: dict[str, str]) -> bool:
        path = target.split("?", 1)[0]
        if path in ("/__origin/stats", "/__origin/requests"):
            if path == "/__origin/stats":
                body = json.dumps(self.stats()).encode()
            else:  # ?key=K: [method, range] of every request for that key
                want = target.partition("?key=")[2]
                body = json.dumps([[r.method, r.range] for r in self.requests(key=want)]).encode()
            self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                       + str(len(body)).encode() + b"\r\n\r\n" + body)
            return True
        parts = path.lstrip("/").split("/", 1)
        key = parts[1] if len(parts) == 2 else ""
        with self._lock:
            self.seen.append(Seen(method, key, headers.get("range"), headers))
            version = self.versions.get(key, 0)
            fault = self.faults.get(key) if method == "GET" else None
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self.faults[key]
        self._wait_first_byte()
        rid = f"SLOW{time.monotonic_ns():x}"
        date = email.utils.formatdate(usegmt=True)
        size = self.size_of(key) if key else None
        if method not in ("GET", "HEAD"):
            return self._error(conn, method, 501, "NotImplemented", "only GET and HEAD", rid, date)
        if size is None:
            return self._error(conn, method, 404, "NoSuchKey", "The specified key does not exist.", rid, date)
        tag = etag(key, version)
        common = (f"Date: {date}\r\nx-amz-request-id: {rid}\r\nETag: {tag}\r\nLast-Modified: {LAST_MODIFIED}\r\n"
                  f"Accept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\n")
        im = headers.get("if-match")
        if im is not None and im.strip() not in ("*", tag):
            return self._error(conn, method, 412, "PreconditionFailed",
                               "At least one of the pre-conditions you specified did not hold", rid, date)
        inm = headers.get("if-none-match")
        if inm is not None and inm.strip() in ("*", tag):
            self._send(conn, f"HTTP/1.1 304 Not Modified\r\n{common}\r\n".encode())
            return True
        rng = parse_range(headers.get("range"), size)
        if rng == "416":
            return self._error(conn, method, 416, "InvalidRange", "The requested range is not satisfiable", rid, date,
                               extra=f"Content-Range: bytes */{size}\r\n")
        if rng is None:
            first, last, status, extra = 0, size - 1, "200 OK", ""
        else:
            first, last = rng
            status, extra = "206 Partial Content", f"Content-Range: bytes {first}-{last}/{size}\r\n"
        length = last - first + 1 if size else 0
        self._send(conn, f"HTTP/1.1 {status}\r\n{common}{extra}Content-Length: {length}\r\n\r\n".encode())
        if method == "HEAD" or length == 0:
            return True
        limit = fault.cut_after if fault is not None else None
        t0 = time.monotonic()
        sent = 0
        pos = first
        end = last + 1
        while pos < end:
            n = min(self.chunk, end - pos)
            if limit is not None:
                n = min(n, limit - sent)
                if n <= 0:
                    break
            self._send(conn, content(key, pos, n, version))
            pos += n
            sent += n
            if self.bandwidth:
                ahead = t0 + sent / self.bandwidth - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        if limit is not None:
            time.sleep(0.05)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # RST
            return False
        return True

    def _error(self, conn, method, status, code, message, rid, date, extra: str = "") -> bool:
        reason = {404: "Not Found", 412: "Precondition Failed", 416: "Requested Range Not Satisfiable",
                  501: "Not Implemented"}.get(status, "Error")
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>{rid}</RequestId></Error>").encode()
        head = (f"HTTP/1.1 {status} {reason}\r\nDate: {date}\r\nx-amz-request-id: {rid}\r\n{extra}"
                f"Content-Type: application/xml\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self._send(conn, head + (b"" if method == "HEAD" else body))
        return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.02, help="first-byte latency, seconds")
    ap.add_argument("--jitter", type=float, default=0.005, help="uniform +/- jitter, seconds")
    ap.add_argument("--bandwidth", type=float, default=80e6, help="bytes/s per connection (0 = unlimited)")
    ap.add_argument("--size", type=int, default=8 * MiB, help="size of every object")
    a = ap.parse_args(argv)
    o = SlowOrigin(latency=a.latency, jitter=a.jitter, bandwidth=a.bandwidth or None, default_size=a.size,
                   port=a.port).start()
    print(f"listening {o.hostport}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        o.close()
    return 0


def _on_sigterm(*_):
    raise KeyboardInterrupt


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.exit(main())
