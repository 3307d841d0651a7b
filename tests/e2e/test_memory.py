"""Bodies are streamed, never buffered whole: a 1 GiB PUT and a 1 GiB GET through the proxy must
not grow its resident memory by more than 64 MiB. Figures go to target/e2e-figures.json."""

from __future__ import annotations

import hashlib
import http.client
import random
import time

import pytest

from helpers.cache_obs import RssSampler
from helpers import procs
from helpers.rawhttp import signed_headers

pytestmark = [pytest.mark.needs_binary, pytest.mark.big]

MiB = 1 << 20
TOTAL = 1 << 30
LIMIT = 64 * MiB


def blocks(n_bytes: int, hasher):
    base = bytearray(random.Random(123).randbytes(MiB))
    for i in range(n_bytes // MiB):
        base[:8] = i.to_bytes(8, "little")
        chunk = bytes(base)
        hasher.update(chunk)
        yield chunk


def test_1gib_put_and_get_stream(driver, proxy_factory, seaweed, direct_s3, figures):
    bucket = f"mem-{driver.replace('_', '')}"
    direct_s3.create_bucket(Bucket=bucket)
    # The streaming bound of the pass-through: no block cache (its own bound is tested apart).
    p = proxy_factory.start(seaweed.endpoint, cache={"memory": 0})
    host, port = p.hostport.rsplit(":", 1)

    # warm up: one small PUT and GET so that lazily built state is in the baseline
    warm = http.client.HTTPConnection(host, int(port), timeout=120)
    warm.request("PUT", f"/{bucket}/warm", body=b"w" * MiB,
                 headers=dict(signed_headers("PUT", f"/{bucket}/warm", p.hostport, [("Content-Length", str(MiB))])))
    assert warm.getresponse().read() is not None
    warm.request("GET", f"/{bucket}/warm", headers=dict(signed_headers("GET", f"/{bucket}/warm", p.hostport)))
    assert len(warm.getresponse().read()) == MiB
    warm.close()
    time.sleep(0.5)
    before = procs.rss_kib(p.pid)
    base = before["VmRSS"] * 1024

    # 1 GiB PUT, UNSIGNED-PAYLOAD, Content-Length, body from a generator
    sampler = RssSampler(p.pid)
    sampler.start()
    sent = hashlib.sha256()
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    conn.request("PUT", f"/{bucket}/big.bin", body=blocks(TOTAL, sent),
                 headers=dict(signed_headers("PUT", f"/{bucket}/big.bin", p.hostport,
                                             [("Content-Length", str(TOTAL))])))
    resp = conn.getresponse()
    put_body = resp.read()
    put_s = time.monotonic() - t0
    assert resp.status == 200, (resp.status, put_body[:300])
    after_put = procs.rss_kib(p.pid)

    # 1 GiB GET streamed into a hash
    got = hashlib.sha256()
    n = 0
    t0 = time.monotonic()
    conn.request("GET", f"/{bucket}/big.bin", headers=dict(signed_headers("GET", f"/{bucket}/big.bin", p.hostport)))
    resp = conn.getresponse()
    assert resp.status == 200
    while True:
        chunk = resp.read(MiB)
        if not chunk:
            break
        got.update(chunk)
        n += len(chunk)
    get_s = time.monotonic() - t0
    conn.close()
    sampler.stop()
    after = procs.rss_kib(p.pid)

    peak = max(sampler.max_rss, after["VmHWM"] * 1024)
    fig = {
        "rss_before_mib": round(base / MiB, 1),
        "hwm_before_mib": round(before["VmHWM"] / 1024, 1),
        "rss_max_sampled_mib": round(sampler.max_rss / MiB, 1),
        "rss_after_put_mib": round(after_put["VmRSS"] / 1024, 1),
        "rss_after_get_mib": round(after["VmRSS"] / 1024, 1),
        "hwm_after_mib": round(after["VmHWM"] / 1024, 1),
        "growth_mib": round((peak - base) / MiB, 1),
        "samples": sampler.samples,
        "put_seconds": round(put_s, 2),
        "get_seconds": round(get_s, 2),
        "put_mib_s": round(TOTAL / MiB / put_s, 1),
        "get_mib_s": round(TOTAL / MiB / get_s, 1),
    }
    figures[f"memory_1gib_{driver}"] = fig
    print(f"\nmemory figures ({driver}): {fig}")
    stored = None
    if got.hexdigest() != sent.hexdigest():
        # which leg corrupted it? hash what the origin holds
        h = hashlib.sha256()
        for chunk in direct_s3.get_object(Bucket=bucket, Key="big.bin")["Body"].iter_chunks(MiB):
            h.update(chunk)
        stored = "the origin holds what was PUT (the GET through the proxy is wrong)" if h.hexdigest() == sent.hexdigest() \
            else "the origin holds something else than was PUT (the PUT through the proxy is wrong)"
    direct_s3.delete_object(Bucket=bucket, Key="big.bin")

    assert n == TOTAL, f"GET returned {n} bytes"
    assert got.hexdigest() == sent.hexdigest(), f"GET body differs from what was PUT: {stored}"
    assert peak - base < LIMIT, f"proxy RSS grew by {(peak - base) / MiB:.1f} MiB (limit 64 MiB): {fig}"
