"""Observing rangecache's block cache from outside: /cache/stats, /cache/purge and the per-worker
cache counters of /metrics (summed over workers)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from . import procs

MiB = 1 << 20

# Per-worker counters, summed by `counters()`.
COUNTERS = (
    "rangecache_fill_requests_total",
    "rangecache_fill_bytes_total",
    "rangecache_coalesced_waits_total",
    "rangecache_cache_block_hits_total",
    "rangecache_cache_block_misses_total",
    "rangecache_metadata_hits_total",
    "rangecache_metadata_misses_total",
    "rangecache_replans_total",
    "rangecache_origin_requests_total",
)


def short_name(metric: str) -> str:
    return metric.removeprefix("rangecache_").removesuffix("_total")


def counters(p) -> dict[str, float]:
    """The cache counters of one proxy, summed over workers, keyed by short name
    (`fill_requests`, `cache_block_hits`, `origin_requests`, ...)."""
    out = {short_name(n): 0.0 for n in COUNTERS}
    for name, _labels, value in p.metrics():
        if name in COUNTERS:
            out[short_name(name)] += value
    return out


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


def stats(p) -> dict:
    with urllib.request.urlopen(p.admin + "/cache/stats", timeout=5) as r:
        return json.loads(r.read())


def purge(p, bucket: str, key: str | None = None, prefix: str | None = None) -> dict:
    q = {"bucket": bucket}
    if key is not None:
        q["key"] = key
    if prefix is not None:
        q["prefix"] = prefix
    req = urllib.request.Request(p.admin + "/cache/purge?" + urllib.parse.urlencode(q), method="POST", data=b"")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise AssertionError(f"POST /cache/purge?{urllib.parse.urlencode(q)} -> {e.code}: {e.read()[:500]!r}") from e


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every `every` seconds until stopped."""

    def __init__(self, pid: int, every: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.max_rss = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            try:
                self.max_rss = max(self.max_rss, procs.rss_kib(self.pid)["VmRSS"] * 1024)
                self.samples += 1
            except (OSError, KeyError):
                return
            time.sleep(self.every)

    def stop(self):
        self._halt.set()
        self.join(timeout=5)
