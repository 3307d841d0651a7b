"""Fixtures for the end-to-end suite: a real SeaweedFS origin, rangecache in front of it (once per
io driver), clients pointed at both, and extra proxy instances for failure tests.

Environment switches:
  RANGECACHE_E2E_PROXY_ENDPOINT  "direct" or a URL: do not start rangecache; send "proxy" traffic
                                 there instead (debugs the comparisons; tests that need the
                                 binary itself are skipped).
  RANGECACHE_E2E_DRIVERS         comma list, default "io_uring,epoll".
  RANGECACHE_SKIP_BIG=1          skip the 1 GiB memory test.
  RANGECACHE_BIN                 binary to test (default target/release/rangecache).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import procs  # noqa: E402
from helpers.clients import s3_client  # noqa: E402
from helpers.compare import Pair  # noqa: E402
from helpers.proxy import REPO, ExternalEndpoint, RangeCache, base_config  # noqa: E402
from helpers.seaweed import SeaweedFS  # noqa: E402

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_k, None)
os.environ["NO_PROXY"] = "*"

OVERRIDE = os.environ.get("RANGECACHE_E2E_PROXY_ENDPOINT", "").strip()
DRIVERS = [d.strip() for d in os.environ.get("RANGECACHE_E2E_DRIVERS", "io_uring,epoll").split(",") if d.strip()]
FIGURES_PATH = REPO / "target" / "e2e-figures.json"


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_binary: starts rangecache processes itself (skipped with RANGECACHE_E2E_PROXY_ENDPOINT)")
    config.addinivalue_line("markers", "big: moves gigabytes (skipped with RANGECACHE_SKIP_BIG=1)")


def pytest_collection_modifyitems(config, items):
    skip_bin = pytest.mark.skip(reason="RANGECACHE_E2E_PROXY_ENDPOINT is set: not starting rangecache")
    skip_big = pytest.mark.skip(reason="RANGECACHE_SKIP_BIG=1")
    for item in items:
        if OVERRIDE and "needs_binary" in item.keywords:
            item.add_marker(skip_bin)
        if os.environ.get("RANGECACHE_SKIP_BIG") == "1" and "big" in item.keywords:
            item.add_marker(skip_big)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        seen = set()
        for name in ("proxy", "proxy_factory"):
            obj = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            for p in getattr(obj, "instances", [obj]):
                if p is not None and hasattr(p, "logs") and id(p) not in seen:
                    seen.add(id(p))
                    rep.sections.append((f"rangecache logs ({name})", p.logs(60)))


# --------------------------------------------------------------------------------------------
# Origin
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    sw = SeaweedFS(tmp_path_factory.mktemp("seaweed")).start()
    yield sw
    sw.stop()
    shutil.rmtree(sw.workdir / "data", ignore_errors=True)  # GiBs after the memory test; logs stay


@pytest.fixture(scope="session")
def direct_s3(seaweed):
    return s3_client(seaweed.endpoint)


# --------------------------------------------------------------------------------------------
# Proxy, once per io driver
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session", params=DRIVERS)
def driver(request):
    d = request.param
    if d == "io_uring" and not OVERRIDE:
        ok, why = procs.io_uring_available()
        if not ok:
            pytest.skip(f"io_uring unavailable on this machine ({why}); the epoll run covers the proxy")
    return d


def short(driver: str) -> str:
    return {"io_uring": "uring", "epoll": "epoll"}.get(driver, driver.replace("_", ""))


def check_driver(p: RangeCache, driver: str) -> None:
    got = p.drivers()
    assert got, f"/metrics has no rangecache_worker_info sample:\n{p.metrics_text()[:2000]}"
    assert got == {driver}, f"asked for io_driver={driver!r}, workers report {sorted(got)}"


@pytest.fixture(scope="session")
def proxy(driver, seaweed, tmp_path_factory):
    if OVERRIDE:
        yield ExternalEndpoint(seaweed.endpoint if OVERRIDE == "direct" else OVERRIDE)
        return
    p = RangeCache(tmp_path_factory.mktemp(f"proxy-{short(driver)}"), base_config(seaweed.endpoint, driver))
    p.start()
    try:
        check_driver(p, driver)
    except BaseException:
        p.terminate()
        raise
    yield p
    code = p.terminate(timeout=30)
    assert code == 0, f"rangecache ({driver}) exited with {code} after SIGTERM\n{p.logs()}"


@pytest.fixture(autouse=True)
def _proxy_survives(request):
    """A test that crashed the shared proxy fails itself, not the tests after it."""
    yield
    if "proxy" in request.fixturenames:
        p = request.getfixturevalue("proxy")
        if not p.alive():
            pytest.fail(f"rangecache died during this test (exit {p.proc.returncode})\n{p.logs()}")


class ProxyFactory:
    """Extra rangecache instances for one test, all stopped (SIGTERM, by PID) at teardown."""

    def __init__(self, tmp: Path, driver: str):
        self.tmp = tmp
        self.driver = driver
        self.instances: list[RangeCache] = []
        self._n = itertools.count()

    def config(self, origin_endpoint: str, **sections) -> dict:
        """base_config with each given section's keys overriding the base's; `auth=` replaces the
        whole [auth] section (a test that configures auth starts from nothing granted)."""
        cfg = base_config(origin_endpoint, self.driver)
        for section, table in sections.items():
            if section == "auth":
                cfg["auth"] = dict(table)
                continue
            cfg.setdefault(section, {}).update(table)
        return cfg

    def create(self, config: dict | None = None, config_text: str | None = None, env=None) -> RangeCache:
        p = RangeCache(self.tmp / f"rc{next(self._n)}", config=config, config_text=config_text, env=env)
        self.instances.append(p)
        return p

    def start(self, origin_endpoint: str, require_ready: bool = True, env=None, **sections) -> RangeCache:
        p = self.create(self.config(origin_endpoint, **sections), env=env)
        p.start(require_ready=require_ready)
        return p

    def close(self) -> list[str]:
        problems = []
        for p in self.instances:
            if p.proc is None:
                continue
            if p.proc.poll() is not None:
                continue  # the test ended it itself and checked the exit code
            code = p.terminate(timeout=30)
            if code != 0:
                problems.append(f"instance {p.workdir.name} exited {code} after SIGTERM\n{p.logs()}")
        return problems


@pytest.fixture
def proxy_factory(tmp_path, request):
    drv = request.getfixturevalue("driver") if "driver" in request.fixturenames else "auto"
    f = ProxyFactory(tmp_path, drv)
    yield f
    problems = f.close()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def module_proxy_factory(tmp_path_factory, request):
    """ProxyFactory for proxies shared by one module's tests (io driver "auto")."""
    f = ProxyFactory(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]), "auto")
    yield f
    problems = f.close()
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------
# Clients and buckets
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def proxy_s3(proxy):
    return s3_client(proxy.endpoint)


@pytest.fixture(scope="session")
def s3(proxy_s3, direct_s3):
    """boto3 through the proxy and direct, with .both(fn) to compare."""
    return Pair(proxy_s3, direct_s3)


_bucket_counter = itertools.count()


@pytest.fixture
def new_bucket(driver, direct_s3):
    """Factory: a fresh bucket (created directly at the origin) named after the driver."""

    def make(prefix: str = "b") -> str:
        name = f"{prefix}-{short(driver)}-{next(_bucket_counter)}-{os.getpid() % 10000}".lower()
        direct_s3.create_bucket(Bucket=name)
        return name

    return make


@pytest.fixture(scope="module")
def module_bucket(request, driver, seaweed):
    name = f"{request.module.__name__.split('_', 1)[-1].replace('_', '-')}-{short(driver)}-{os.getpid() % 10000}".lower()
    s3_client(seaweed.endpoint).create_bucket(Bucket=name)
    return name


# --------------------------------------------------------------------------------------------
# Figures for the lead (memory, ...), merged into target/e2e-figures.json
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def figures():
    data: dict = {}
    yield data
    if data:
        FIGURES_PATH.parent.mkdir(parents=True, exist_ok=True)
        old = {}
        if FIGURES_PATH.exists():
            try:
                old = json.loads(FIGURES_PATH.read_text())
            except ValueError:
                old = {}
        old.update(data)
        FIGURES_PATH.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")

