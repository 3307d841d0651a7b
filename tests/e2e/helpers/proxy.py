"""Start, observe and stop the rangecache binary."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import tomli_w

from . import procs
from .seaweed import ACCESS_KEY, REGION, SECRET_KEY

REPO = Path(__file__).resolve().parents[3]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def binary() -> Path:
    return Path(os.environ.get("RANGECACHE_BIN", REPO / "target" / "release" / "rangecache"))


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(3) or ""))
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out.append((m.group(1), labels, value))
    return out


def to_toml(cfg: dict[str, dict]) -> str:
    """The configuration as TOML: tables, arrays of tables (`[[auth.keys]]`), nested lists."""
    return tomli_w.dumps(cfg)


# The key every client of the suite signs with (`test`/`test`, as at the origin): all access.
FULL_KEY = {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY,
            "grants": [{"bucket": "*", "access": "all"}]}


def base_auth() -> dict:
    """The suite's [auth]: the full key and no anonymous grant (default-deny, as deployed). Raw
    requests are signed with that key (helpers/rawhttp.request_bytes); a test that needs anonymous
    access configures `auth` itself (tests/e2e/test_auth.py)."""
    return {"mode": "sigv4", "keys": [dict(FULL_KEY)]}


def base_config(origin_endpoint: str, driver: str = "auto", workers: int = 2) -> dict[str, dict]:
    listen, admin = procs.free_ports(2)
    return {
        "server": {
            "listen": f"{procs.LOOPBACK}:{listen}",
            "admin_listen": f"{procs.LOOPBACK}:{admin}",
            "workers": workers,
            "io_driver": driver,
            "domain": "",
        },
        "origin": {
            "endpoint": origin_endpoint,
            "region": REGION,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
        },
        "auth": base_auth(),
    }


class RangeCache:
    """One rangecache process. `endpoint` is the S3 data address, `admin` the admin address.

    It runs with `workdir` (a fresh temporary directory) as its working directory, so the default
    config directory (`./config`) is absent: a developer's `config/local.toml` in the repository
    never leaks into a test. `args` are extra flags (`--profile`, `--config-dir`, ...)."""

    def __init__(self, workdir: Path, config: dict[str, dict] | None = None, config_text: str | None = None,
                 env: dict[str, str] | None = None, args: list[str] | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.config_path = self.workdir / "rangecache.toml"
        self.config_path.write_text(config_text if config_text is not None else to_toml(config))
        self.stdout_path = self.workdir / "stdout.log"
        self.stderr_path = self.workdir / "stderr.log"
        self.extra_env = env or {}
        self.extra_args = list(args or [])
        self.proc: subprocess.Popen | None = None
        self.exit_code: int | None = None
        # Runs in the child before exec (e.g. to set resource limits, as `ulimit` would).
        self.preexec_fn = None

    # -- addresses ---------------------------------------------------------------------------
    @property
    def listen(self) -> str:
        return self.config["server"]["listen"]

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def endpoint(self) -> str:
        return f"http://{self.listen}"

    @property
    def hostport(self) -> str:
        return self.listen

    @property
    def admin(self) -> str:
        return f"http://{self.config['server']['admin_listen']}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    # -- lifecycle ---------------------------------------------------------------------------
    def spawn(self) -> "RangeCache":
        exe = binary()
        if not exe.exists():
            raise RuntimeError(f"{exe} not found: run `cargo build --release -p rangecache` first")
        # The test decides the configuration: nothing from the caller's RANGECACHE_*/MONOIO_* leaks in.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RANGECACHE_", "MONOIO_")) or k == "RANGECACHE_LOG"}
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("RUST_LOG", "info")
        for k, v in self.extra_env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        self.proc = procs.track(subprocess.Popen([str(exe), "--config", str(self.config_path), *self.extra_args], stdout=out,
                                                 stderr=err, stdin=subprocess.DEVNULL, cwd=self.workdir, env=env,
                                                 preexec_fn=self.preexec_fn))
        out.close()
        err.close()
        return self

    def start(self, timeout: float = 30.0, require_ready: bool = True) -> "RangeCache":
        """Spawn and wait for /readyz = 200 (or, if not require_ready, for /readyz to answer at all
        and the data port to accept)."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.exit_code = self.proc.returncode
                raise RuntimeError(f"rangecache exited with {self.exit_code} during startup:\n{self.logs()}")
            status = self.readyz()
            if status == 200 or (not require_ready and status is not None and procs.port_open(self.port)):
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"rangecache not ready after {timeout}s:\n{self.logs()}")

    def readyz(self) -> int | None:
        try:
            with urllib.request.urlopen(self.admin + "/readyz", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for exit; returns the exit code (SIGKILL after timeout -> -9)."""
        if self.proc is None:
            return 0
        self.exit_code = procs.stop_process(self.proc, timeout=timeout, sig=signal.SIGTERM)
        return self.exit_code

    def reload(self, config: dict | None = None, timeout: float = 20.0) -> None:
        """Rewrite the config file (if `config` is given), send SIGHUP and wait until the reload is
        counted; raises if it failed (rangecache keeps the old generation then)."""
        if config is not None:
            assert config["server"] == self.config["server"], "a reload cannot move the listeners"
            self.config = config
            self.config_path.write_text(to_toml(config))
        before_ok = self.metric_sum("rangecache_config_reloads_total", result="success")
        before_bad = self.metric_sum("rangecache_config_reloads_total", result="failure")
        os.kill(self.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.metric_sum("rangecache_config_reloads_total", result="success") > before_ok:
                return
            if self.metric_sum("rangecache_config_reloads_total", result="failure") > before_bad:
                raise AssertionError(f"configuration reload failed:\n{self.logs()}")
            time.sleep(0.05)
        raise AssertionError(f"reload not counted after {timeout}s:\n{self.logs()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def wait(self, timeout: float) -> int:
        self.exit_code = self.proc.wait(timeout=timeout)
        return self.exit_code

    # -- observation -------------------------------------------------------------------------
    def logs(self, lines: int = 80) -> str:
        return (f"--- rangecache stderr ({self.stderr_path}) ---\n{procs.tail(self.stderr_path, lines)}\n"
                f"--- rangecache stdout ---\n{procs.tail(self.stdout_path, lines)}")

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.admin + "/metrics", timeout=5) as r:
            return r.read().decode()

    def metrics(self) -> list[tuple[str, dict[str, str], float]]:
        return parse_metrics(self.metrics_text())

    def metric_sum(self, name: str, **labels) -> float:
        return sum(v for n, lb, v in self.metrics() if n == name and all(lb.get(k) == w for k, w in labels.items()))

    def drivers(self) -> set[str]:
        return {lb.get("driver", "?") for n, lb, v in self.metrics() if n == "rangecache_worker_info" and v == 1}

    def rss(self) -> dict[str, int]:
        return procs.rss_kib(self.pid)


class ExternalEndpoint:
    """Stand-in for the proxy when RANGECACHE_E2E_PROXY_ENDPOINT is set (harness debugging):
    requests go to that URL; nothing is started, observed or stopped."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.proc = None

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def hostport(self) -> str:
        return self.url.split("://", 1)[1]

    @property
    def port(self) -> int:
        return int(self.hostport.rsplit(":", 1)[1])

    admin = None
    pid = None

    def metrics(self):
        return []

    def metric_sum(self, name: str, **labels) -> float:
        return 0.0

    def logs(self, lines: int = 80) -> str:
        return "<external endpoint: no logs>"

    def alive(self) -> bool:
        return True
