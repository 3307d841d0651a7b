"""A misbehaving S3 origin on 127.0.0.1, for failure tests.

Paths (any bucket):
  .../reset*  HEAD answers Content-Length: SIZE; GET answers the full length in its headers
              (200, or 206 for a Range), sends 1000 bytes, then resets the connection (RST).
  .../ok*     a small, well-formed object (HEAD, GET, Range).
  anything else: 404 NoSuchKey (S3 XML).
"""

from __future__ import annotations

import email.utils
import socket
import struct
import time

from .tcp_server import LoopbackServer, read_head, skip_body

SIZE = 1_000_000
SENT_BEFORE_RESET = 1000
OK_BODY = b"fake origin ok body\n" * 50
ETAG = '"0123456789abcdef0123456789abcdef"'


def _pattern(n: int, offset: int = 0) -> bytes:
    return bytes((offset + i) % 251 for i in range(n))


class FakeOrigin(LoopbackServer):
    name = "fake-origin"

    def __init__(self):
        super().__init__(backlog=64)
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def on_accept(self, conn: socket.socket) -> None:
        self.track(conn)
        self.spawn(self._serve, conn)

    def _serve(self, conn: socket.socket):
        conn.settimeout(30)
        buf = b""
        try:
            while not self._stop.is_set():
                got = read_head(conn, buf)
                if got is None:
                    return
                method, target, headers, buf = got
                self.requests.append((method, target, headers))
                # swallow a fixed-length body
                buf = skip_body(conn, buf, int(headers.get("content-length", "0") or 0))
                if buf is None:
                    return
                path = target.split("?", 1)[0]
                if not self._answer(conn, method, path, headers):
                    return
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    @staticmethod
    def _range(headers: dict[str, str], size: int) -> tuple[int, int] | None:
        r = headers.get("range")
        if not r or not r.startswith("bytes="):
            return None
        a, _, b = r[6:].split(",")[0].partition("-")
        if a == "":
            n = int(b)
            return max(0, size - n), size - 1
        start = int(a)
        end = min(int(b), size - 1) if b else size - 1
        return start, end

    def _answer(self, conn: socket.socket, method: str, path: str, headers: dict[str, str]) -> bool:
        """Write one response; False when the connection must end."""
        date = email.utils.formatdate(usegmt=True)
        common = (f"Date: {date}\r\nx-amz-request-id: FAKE{int(time.time() * 1000)}\r\nETag: {ETAG}\r\n"
                  f"Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nAccept-Ranges: bytes\r\n")
        if "/reset" in path or "/ok" in path:
            size = SIZE if "/reset" in path else len(OK_BODY)
            rng = self._range(headers, size)
            if rng:
                start, end = rng
                status = "206 Partial Content"
                extra = f"Content-Range: bytes {start}-{end}/{size}\r\n"
            else:
                start, end = 0, size - 1
                status, extra = "200 OK", ""
            length = end - start + 1
            conn.sendall(f"HTTP/1.1 {status}\r\n{common}{extra}Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n".encode())
            if method == "HEAD":
                return True
            if "/ok" in path:
                conn.sendall(OK_BODY[start: end + 1])
                return True
            conn.sendall(_pattern(min(SENT_BEFORE_RESET, length), start))
            time.sleep(0.05)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # RST
            return False
        body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
                b"<Message>The specified key does not exist.</Message></Error>")
        conn.sendall(f"HTTP/1.1 404 Not Found\r\n{common}Content-Type: application/xml\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                     + (b"" if method == "HEAD" else body))
        return True
