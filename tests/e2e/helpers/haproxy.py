"""A real HAProxy (Debian's, installed by scripts/test.sh) in front of rangecache nodes, run from
the shipped deploy/haproxy/haproxy.cfg with only its listener and server lines replaced."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

from . import procs
from .proxy import REPO, RangeCache

SHIPPED = REPO / "deploy" / "haproxy" / "haproxy.cfg"

# HAProxy's source address towards the nodes: the one address the nodes trust for PROXY protocol
# headers (`proxy.trusted_proxies`), distinct from 127.0.0.1 so that tests can still talk to a
# node directly.
SOURCE = "127.0.0.10"

# The `[proxy]` section every node behind the shipped configuration needs (it sends send-proxy-v2).
NODE_PROXY = {"enabled": True, "protocol": "v2", "trusted_proxies": [f"{SOURCE}/32"]}


def binary() -> str:
    exe = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if exe is None:
        raise RuntimeError("haproxy not found: scripts/test.sh installs it (apt-get install haproxy)")
    return exe


def config_for(nodes: list[RangeCache], port: int, balance_factor: int | None = None) -> str:
    """The shipped file, listening on 127.0.0.1:`port`, with one `server rcN` line per node (its
    data address, `port` = its admin port for the /readyz check), and `hash-balance-factor`
    replaced when `balance_factor` is given (0 = bounded load off). Everything else is verbatim."""
    text = SHIPPED.read_text()
    if balance_factor is not None:
        text, n = re.subn(r"(?m)^    hash-balance-factor \d+$", f"    hash-balance-factor {balance_factor}", text)
        assert n == 1, f"expected one hash-balance-factor line in {SHIPPED}"
        if balance_factor == 0:
            text = text.replace("    hash-balance-factor 0\n", "")
    binds = re.findall(r"(?m)^    bind .*$", text)
    assert len(binds) == 1, f"expected one bind line in {SHIPPED}: {binds}"
    text = text.replace(binds[0], f"    bind {procs.LOOPBACK}:{port}")
    lines = [ln for ln in text.splitlines() if not ln.startswith("    server ")]
    for i, node in enumerate(nodes):
        admin_port = int(node.admin.rsplit(":", 1)[1])
        lines.append(f"    server rc{i + 1} {node.listen} port {admin_port} source {SOURCE}")
    return "\n".join(lines) + "\n"


class HAProxy:
    """One HAProxy process in the foreground (`-db`), stopped by PID."""

    def __init__(self, workdir: Path, nodes: list[RangeCache], balance_factor: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = procs.free_port()
        self.config_path = self.workdir / "haproxy.cfg"
        self.config_path.write_text(config_for(nodes, self.port, balance_factor))
        self.log_path = self.workdir / "haproxy.log"
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{procs.LOOPBACK}:{self.port}"

    @property
    def hostport(self) -> str:
        return f"{procs.LOOPBACK}:{self.port}"

    def start(self, timeout: float = 20.0) -> "HAProxy":
        exe = binary()
        check = subprocess.run([exe, "-c", "-f", str(self.config_path)], capture_output=True, text=True)
        assert check.returncode == 0, f"haproxy -c rejected the configuration:\n{check.stdout}{check.stderr}"
        log = open(self.log_path, "wb")
        self.proc = procs.track(subprocess.Popen([exe, "-f", str(self.config_path), "-db"], stdout=log,
                                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                 cwd=self.workdir))
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}:\n{self.logs()}")
            if procs.port_open(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"haproxy not listening after {timeout}s:\n{self.logs()}")

    def stop(self) -> int:
        if self.proc is None:
            return 0
        return procs.stop_process(self.proc, timeout=10)

    def logs(self, lines: int = 40) -> str:
        return f"--- haproxy ({self.log_path}) ---\n{procs.tail(self.log_path, lines)}"
