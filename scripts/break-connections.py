#!/usr/bin/env python3
"""Try to break the connection limit: start rangecache under a low file-descriptor limit, hold
more connections than it allows, and report what a new client gets, how many descriptors the
process holds, the refusal and accept-error counters and the number of "accept failed" log
lines. Runs twice: `server.max_connections = 0` (derived from the limit) and a limit far above
the descriptor limit (the EMFILE path). Loopback only; needs target/release/rangecache.

    scripts/break-connections.py [NOFILE] [CONNECTIONS] [HOLD_SECONDS]    (default 1500 3300 3)
"""

import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(__file__).resolve().parents[1] / "target" / "release" / "rangecache"
NOFILE = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
CONNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3300
HOLD = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def run(max_connections: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="rc-break-"))
    port, admin = free_port(), free_port()
    (work / "rc.toml").write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\nadmin_listen = "127.0.0.1:{admin}"\nworkers = 2\n'
        f'max_connections = {max_connections}\n[origin]\nendpoint = "http://127.0.0.1:1"\n'
        '[auth]\nmode = "none"\n')
    with open(work / "stderr.log", "wb") as err:
        proc = subprocess.Popen([str(BIN), "--config", str(work / "rc.toml")], stderr=err,
                                stdout=subprocess.DEVNULL,
                                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE)))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        start = time.monotonic()
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(CONNS)]
        time.sleep(HOLD)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /b/k HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(5)
            try:
                got = s.recv(200).split(b"\r\n")[0].decode() or "closed"
            except socket.timeout:
                got = "no answer in 5 s"
        fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
        took = time.monotonic() - start
        for h in held:
            h.close()
        time.sleep(2)
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as r:
            text = r.read().decode()
        log = (work / "stderr.log").read_text()
        limit = re.search(r"connection limit: \d+", log)
        print(f"max_connections = {max_connections} ({limit.group(0) if limit else '?'}), ulimit -n {NOFILE}: "
              f"{CONNS} connections held {took:.1f} s; process fds {fds}; a new client got: {got}; "
              f"refused {metric(text, 'rangecache_connections_refused_total'):.0f}, "
              f"accept errors {metric(text, 'rangecache_accept_errors_total'):.0f}, "
              f"'accept failed' log lines {log.count('accept failed')}")
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    for limit in (0, 100000):
        run(limit)
