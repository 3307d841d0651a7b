"""Process and port helpers: free loopback ports, readiness polling, stopping by PID."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"

# Every process the suite starts, so that an interrupted run still stops them (by PID).
STARTED: list[subprocess.Popen] = []


def track(proc: subprocess.Popen) -> subprocess.Popen:
    STARTED.append(proc)
    return proc


@atexit.register
def _stop_leftovers() -> None:
    for proc in STARTED:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass


def free_ports(n: int) -> list[int]:
    """Return n distinct free TCP ports on 127.0.0.1 (all held open until all are chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(pred, timeout: float, interval: float = 0.1, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception as e:  # noqa: BLE001 - polling: keep the last error for the message
            last_exc = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc!r})" if last_exc else ""))


def stop_process(proc: subprocess.Popen, timeout: float = 30.0, sig: int = signal.SIGTERM) -> int:
    """Send `sig` to proc (by PID), wait up to `timeout`, then SIGKILL. Returns the exit code."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            return proc.wait(timeout=10)
    return proc.returncode


def tail(path: Path, lines: int = 60) -> str:
    try:
        data = Path(path).read_text(errors="replace").splitlines()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(data[-lines:])


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0])
    return out


def io_uring_available() -> tuple[bool, str]:
    """Probe whether this kernel lets us create an io_uring (io_uring_setup syscall 425 on x86_64/arm64)."""
    try:
        disabled = Path("/proc/sys/kernel/io_uring_disabled").read_text().strip()
        if disabled == "2":
            return False, "kernel.io_uring_disabled=2"
    except OSError:
        pass
    import ctypes
    import platform

    if platform.machine() not in ("x86_64", "aarch64"):
        return True, "unknown arch, assuming available"
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed
    fd = libc.syscall(425, 4, params)
    if fd < 0:
        err = ctypes.get_errno()
        return False, f"io_uring_setup failed: {os.strerror(err)} (errno {err})"
    os.close(fd)
    return True, "io_uring_setup ok"
