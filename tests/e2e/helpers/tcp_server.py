"""What the test's own TCP servers share: a loopback listener with one thread per accepted
connection, a close() that stops everything it started, and the HTTP/1.1 head and body reading
of the scripted origins.

Also imported when slow_origin.py runs as a script, so it depends on the standard library only.
"""

from __future__ import annotations

import socket
import threading

LOOPBACK = "127.0.0.1"


class LoopbackServer:
    """Listens on LOOPBACK:`port` (0 = a free one) once started. Subclasses implement
    `on_accept(conn)`; `spawn` and `track` put threads and sockets under `close()`."""

    name = "server"

    def __init__(self, port: int = 0, backlog: int = 64):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, port))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True, name=f"{self.name}-accept")

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def hostport(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self):
        self._accept.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def on_accept(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def track(self, *socks: socket.socket) -> None:
        """Shut these down on close()."""
        with self._lock:
            self._conns.extend(socks)

    def forget(self, conn: socket.socket) -> None:
        """A connection that ended by itself: close() need not shut it."""
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)

    def spawn(self, target, *args) -> None:
        """Run `target(*args)` on a daemon thread that close() joins."""
        t = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def close(self) -> None:
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass
        if self._accept.is_alive():
            self._accept.join(timeout=5)
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(timeout=5)

    def _accept_loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.on_accept(conn)


def read_head(conn: socket.socket, buf: bytes) -> tuple[str, str, dict[str, str], bytes] | None:
    """The next request head on `conn` after what `buf` already holds: (method, target, headers
    with lower-case names, what follows the head). None when the peer closes first."""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return method, target, headers, buf


def skip_body(conn: socket.socket, buf: bytes, n: int) -> bytes | None:
    """Consume an `n`-byte body of which `buf` holds the start; returns what follows it, None when
    the peer closes first."""
    while len(buf) < n:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
    return buf[n:]
