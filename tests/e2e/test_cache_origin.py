"""The block cache against its origin: memory stays bounded under a long stream of misses, and an
origin that fails in the middle of a fill never gets a wrong or partial block into the cache."""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import procs
from helpers.cache_obs import MiB, RssSampler, counters, delta, stats
from helpers.clients import s3_client
from helpers.rawhttp import Response, exchange, request_bytes, signed_headers
from helpers.slow_origin import SlowOrigin

pytestmark = pytest.mark.needs_binary


# ============================================================================================
# 5. RSS stays bounded while 400 MiB of distinct data streams through a 64 MiB cache
# ============================================================================================
RSS_OBJECTS = 50
RSS_OBJECT_SIZE = 8 * MiB
CACHE_MEMORY = 64 * MiB


def rss_object(i: int) -> bytes:
    return random.Random(1000 + i).randbytes(RSS_OBJECT_SIZE)


@pytest.fixture(scope="session")
def rss_objects(seaweed):
    """50 distinct 8 MiB objects uploaded straight to SeaweedFS once (both drivers read them)."""
    s3 = s3_client(seaweed.endpoint)
    bucket = f"cache-rss-{os.getpid() % 10000}"
    s3.create_bucket(Bucket=bucket)
    digests = {}

    def up(i: int) -> None:
        body = rss_object(i)
        key = f"stream/{i:03d}.bin"
        s3_client(seaweed.endpoint).put_object(Bucket=bucket, Key=key, Body=body)
        digests[key] = hashlib.sha256(body).hexdigest()

    with ThreadPoolExecutor(4) as ex:
        list(ex.map(up, range(RSS_OBJECTS)))
    yield bucket, digests
    for key in digests:
        s3.delete_object(Bucket=bucket, Key=key)


def test_rss_bounded_under_sustained_misses(driver, proxy_factory, seaweed, rss_objects, figures):
    bucket, digests = rss_objects
    p = proxy_factory.start(seaweed.endpoint, cache={"memory": "64MiB", "block_size": "1MiB", "metadata_ttl": "60s"})
    host, port = p.hostport.rsplit(":", 1)
    # warm-up: lazily built state (one fill, one hit) belongs to the baseline
    warm = http.client.HTTPConnection(host, int(port), timeout=60)
    for _ in range(2):
        warm_path = f"/{bucket}/stream/000.bin"
        warm.request("GET", warm_path, headers=dict(signed_headers("GET", warm_path, p.hostport,
                                                                  [("Range", "bytes=0-1023")])))
        assert warm.getresponse().read() is not None
    warm.close()
    time.sleep(0.3)
    base = procs.rss_kib(p.pid)["VmRSS"] * 1024
    sampler = RssSampler(p.pid, every=0.02)
    sampler.start()
    bad = []

    def read(key: str) -> int:
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            conn.request("GET", f"/{bucket}/{key}", headers=dict(signed_headers("GET", f"/{bucket}/{key}", p.hostport)))
            r = conn.getresponse()
            h = hashlib.sha256()
            n = 0
            while True:
                chunk = r.read(256 * 1024)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
            if r.status != 200 or h.hexdigest() != digests[key]:
                bad.append((key, r.status, n))
            return n
        finally:
            conn.close()

    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as ex:
        total = sum(ex.map(read, sorted(digests)))
    secs = time.monotonic() - t0
    sampler.stop()
    after = procs.rss_kib(p.pid)
    st = stats(p)
    peak = max(sampler.max_rss, after["VmHWM"] * 1024)
    limit = CACHE_MEMORY * 1.1 + 64 * MiB + base
    fig = {
        "cache_memory_mib": CACHE_MEMORY // MiB,
        "read_mib": round(total / MiB, 1),
        "seconds": round(secs, 2),
        "mib_s": round(total / MiB / secs, 1),
        "rss_baseline_mib": round(base / MiB, 1),
        "rss_max_sampled_mib": round(sampler.max_rss / MiB, 1),
        "hwm_mib": round(after["VmHWM"] / 1024, 1),
        "rss_after_mib": round(after["VmRSS"] / 1024, 1),
        "limit_mib": round(limit / MiB, 1),
        "samples": sampler.samples,
        "cache_bytes_mib": round(st["bytes"] / MiB, 1),
        "evictions": st["evictions"],
        "insertions": st["insertions"],
    }
    figures[f"cache_rss_{driver}"] = fig
    print(f"\ncache RSS ({driver}): {fig}")
    assert not bad, f"wrong bodies (key, status, bytes): {bad[:5]}"
    assert total == RSS_OBJECTS * RSS_OBJECT_SIZE
    assert st["bytes"] <= st["capacity_bytes"] == CACHE_MEMORY, st
    assert st["evictions"] > 0, st
    assert peak <= limit, f"peak RSS {peak / MiB:.1f} MiB > {limit / MiB:.1f} MiB (64 MiB x 1.1 + 64 MiB + baseline): {fig}"


# ============================================================================================
# 7. An origin that dies in the middle of a fill
# ============================================================================================
SIZE = 4 * MiB


@pytest.fixture
def flaky_origin():
    with SlowOrigin(default_size=SIZE) as o:
        yield o


def get(p, path: str, headers=None) -> Response | None:
    return exchange(p.hostport, request_bytes("GET", path, p.hostport, list(headers or [])), timeout=60)


def check_failed_response(r: Response | None, want: bytes, what: str) -> str:
    """A GET whose fill the origin cut: a cut body, a 5xx S3 error, or (if the proxy retried) the
    right bytes. Returns which one it was."""
    if r is None:
        return "closed"
    if r.status >= 500:
        assert r.header("x-amz-request-id"), f"{what}: {r.status} without x-amz-request-id"
        assert b"<Error>" in r.body and b"<Code>" in r.body, f"{what}: {r.status} body is not S3 XML: {r.body[:300]!r}"
        return f"status_{r.status}"
    assert r.status in (200, 206), f"{what}: unexpected {r.status} {r.body[:300]!r}"
    if not r.complete:
        assert len(r.body) < len(want), f"{what}: cut, yet {len(r.body)} bytes"
        assert r.body == want[: len(r.body)], f"{what}: the bytes before the cut are wrong"
        return "cut"
    assert len(r.body) == len(want) and r.body == want, (
        f"{what}: a complete {r.status} response ({len(r.body)} bytes) that is not the object's bytes")
    return "complete"


@pytest.mark.parametrize("cut_after,rng", [
    (0, None),  # head, no body byte, reset
    (1000, None),  # inside block 0
    (MiB + MiB // 2, None),  # block 0 complete, block 1 cut
    (100_000, (1_500_000, 2_600_000)),  # the fill starts at block 1; cut before the client's first byte
    (600_000, (1_500_000, 2_600_000)),  # cut after the client's first bytes
], ids=["no-body", "in-block0", "in-block1", "range-before-first-byte", "range-after-first-byte"])
def test_origin_cut_mid_fill_caches_nothing_partial(driver, proxy_factory, flaky_origin, cut_after, rng):
    o = flaky_origin
    key = f"cut-{cut_after}-{rng and rng[0]}.bin"
    path = f"/bkt/{key}"
    p = proxy_factory.start(o.endpoint, cache={"memory": "64MiB", "block_size": "1MiB", "metadata_ttl": "1h"})
    first, last = rng if rng else (0, SIZE - 1)
    want = o.expected(key, first, last - first + 1)
    headers = [("Range", f"bytes={first}-{last}")] if rng else []
    o.fail_gets(key, cut_after=cut_after, times=1)

    c0 = counters(p)
    what = f"GET {path} {headers} (origin cut after {cut_after} body bytes)"
    outcome = check_failed_response(get(p, path, headers), want, what)
    print(f"\n{what}: {outcome}")
    c1 = counters(p)
    assert c1["fill_requests"] > c0["fill_requests"], "the first GET did not fill"
    if outcome == "complete":
        assert len(o.requests("GET", key)) >= 2, f"{what}: complete response without a second origin GET"

    # the origin is healthy now: the same request gets every right byte, refetching what was cut
    r = get(p, path, headers)
    assert r is not None and r.status == (206 if rng else 200) and r.complete, (r and r.status, r and r.body[:300])
    assert r.body == want, f"{what}: the retry returned wrong bytes: a partial block was cached"
    c2 = counters(p)
    if outcome != "complete":
        assert c2["fill_requests"] > c1["fill_requests"], f"{what}: the retry did not fill again: {delta(c1, c2)}"
    # and the whole object, once more from the cache
    r = get(p, path)
    assert r.status == 200 and r.body == o.expected(key), "whole object wrong after the failed fill"
    c3 = counters(p)
    r = get(p, path)
    assert r.status == 200 and r.body == o.expected(key)
    assert delta(c3, counters(p))["fill_requests"] == 0, "a warm whole-object GET filled again"
    assert p.alive()


def test_coalesced_waiters_share_a_failed_fill(driver, proxy_factory, flaky_origin):
    """Eight clients wait on one fill that the origin cuts: each sees a cut or an S3 5xx (or right
    bytes), none a wrong complete body; then everyone gets the object."""
    o = flaky_origin
    key = "shared-cut.bin"
    path = f"/bkt/{key}"
    p = proxy_factory.start(o.endpoint, cache={"memory": "64MiB", "block_size": "1MiB", "metadata_ttl": "1h"})
    # metadata first, so that all eight plan at once and coalesce on one fill
    assert exchange(p.hostport, request_bytes("HEAD", path, p.hostport, []), method="HEAD").status == 200
    o.fail_gets(key, cut_after=300_000, times=1)
    want = o.expected(key)
    barrier = threading.Barrier(8)
    outcomes: list = [None] * 8

    def one(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            outcomes[i] = check_failed_response(get(p, path), want, f"waiter {i}")
        except AssertionError as e:
            outcomes[i] = f"FAILED: {e}"

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    print(f"\nwaiters: {outcomes}")
    assert not [x for x in outcomes if x is None or x.startswith("FAILED")], outcomes
    gets = o.requests("GET", key)
    assert len(gets) >= 1
    for _ in range(2):
        r = get(p, path)
        assert r.status == 200 and r.complete and r.body == want
    assert p.alive()
