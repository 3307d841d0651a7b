"""A counting TCP relay on 127.0.0.1: put it between rangecache and its origin to see exactly which
HTTP requests the proxy sent upstream.

Bytes are forwarded unchanged both ways (one thread per direction per connection). In the
client->server direction the relay also parses request heads (and skips Content-Length bodies) and
records method, target and Range; a chunked request body makes it stop parsing that connection
(`opaque_connections` counts those) while still forwarding. Server->client bytes are counted.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from .tcp_server import LoopbackServer


@dataclass
class SeenRequest:
    method: str
    target: str
    headers: dict[str, str]
    conn_id: int
    t: float = field(default_factory=time.monotonic)

    @property
    def range(self) -> str | None:
        return self.headers.get("range")

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class _HeadParser:
    """Incremental request-head parser for one connection's client->server byte stream."""

    def __init__(self, on_request):
        self.buf = b""
        self.skip = 0
        self.opaque = False
        self.on_request = on_request

    def feed(self, data: bytes) -> None:
        if self.opaque:
            return
        self.buf += data
        while True:
            if self.skip:
                n = min(self.skip, len(self.buf))
                self.buf = self.buf[n:]
                self.skip -= n
                if self.skip:
                    return
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                if len(self.buf) > 1 << 20:
                    self.opaque = True
                return
            head, self.buf = self.buf[:i], self.buf[i + 4:]
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            headers: dict[str, str] = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                headers[k.strip().lower()] = v.strip()
            self.on_request(parts[0] if parts else "", parts[1] if len(parts) > 1 else "", headers)
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self.opaque = True
                return
            self.skip = int(headers.get("content-length", "0") or 0)


class CountingRelay(LoopbackServer):
    """`with CountingRelay("127.0.0.1:8333") as r:` then point rangecache at `r.endpoint`."""

    name = "relay"

    def __init__(self, target_hostport: str):
        super().__init__(backlog=512)
        host, port = target_hostport.rsplit(":", 1)
        self.target = (host, int(port))
        self._requests: list[SeenRequest] = []
        self.connections = 0
        self.opaque_connections = 0
        self.bytes_up = 0  # client -> server
        self.bytes_down = 0  # server -> client

    # -- observation -----------------------------------------------------------------------------
    def requests(self, method: str | None = None, path: str | None = None) -> list[SeenRequest]:
        with self._lock:
            out = list(self._requests)
        return [r for r in out if (method is None or r.method == method) and (path is None or r.path == path)]

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()

    def summary(self) -> str:
        return "\n".join(f"  conn {r.conn_id}: {r.method} {r.target} range={r.range!r} if-match={r.headers.get('if-match')!r}"
                         for r in self.requests()) or "  (none)"

    # -- plumbing --------------------------------------------------------------------------------
    def on_accept(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(None)
        with self._lock:
            self.connections += 1
            conn_id = self.connections
        self.track(client, server)
        parser = _HeadParser(lambda m, t, h, cid=conn_id: self._record(m, t, h, cid))
        self.spawn(self._pump, client, server, parser, True)
        self.spawn(self._pump, server, client, None, False)

    def _record(self, method: str, target: str, headers: dict[str, str], conn_id: int) -> None:
        with self._lock:
            self._requests.append(SeenRequest(method, target, headers, conn_id))

    def _pump(self, src: socket.socket, dst: socket.socket, parser: _HeadParser | None, upstream: bool) -> None:
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                if parser is not None:
                    was_opaque = parser.opaque
                    parser.feed(data)
                    if parser.opaque and not was_opaque:
                        with self._lock:
                            self.opaque_connections += 1
                with self._lock:
                    if upstream:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # Pass the end on: a half-close stays a half-close, a reset becomes a close.
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass


def block_span_of(range_header: str | None, size: int, block_size: int) -> tuple[int, int] | None:
    """(first_block, last_block) a `bytes=a-b` / `bytes=a-` / `bytes=-n` header covers; None for no
    range (the whole object, when size > 0)."""
    if not range_header:
        return (0, (size - 1) // block_size) if size else None
    spec = range_header.split("=", 1)[1].split(",")[0].strip()
    a, _, b = spec.partition("-")
    if a == "":
        first, last = max(0, size - int(b)), size - 1
    else:
        first = int(a)
        last = min(int(b), size - 1) if b else size - 1
    return first // block_size, last // block_size
