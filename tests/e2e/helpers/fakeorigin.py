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
import threading
import time

SIZE = 1_000_000
SENT_BEFORE_RESET = 1000
OK_BODY = b"fake origin ok body\n" * 50
ETAG = '"0123456789abcdef0123456789abcdef"'


def _pattern(n: int, offset: int = 0) -> bytes:
    return bytes((offset + i) % 251 for i in range(n))


class FakeOrigin:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self._accept.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        for c in list(self._conns):
            try:
                c.close()
            except OSError:
                pass
        self._accept.join(timeout=5)
        for t in self._threads:
            t.join(timeout=5)

    def _accept_loop(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket):
        conn.settimeout(30)
        buf = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    headers[k.strip().lower()] = v.strip()
                self.requests.append((method, target, headers))
                # swallow a fixed-length body
                n = int(headers.get("content-length", "0") or 0)
                while len(buf) < n:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                buf = buf[n:]
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
