"""The block cache seen from outside: answers at block edges (ranges, 416, HEAD, conditionals,
empty objects) equal SeaweedFS's and come from the cache the second time; purges by key, prefix and
bucket make the next read fill again.

Each test starts its own rangecache (`proxy_factory`, once per io driver) with an explicit [cache]
section and reads the proxy's counters from /metrics (summed over workers)."""

from __future__ import annotations

import random
import re

import pytest

from helpers.cache_obs import MiB, counters, delta, purge, stats
from helpers.rawhttp import Response, exchange, request_bytes

pytestmark = pytest.mark.needs_binary


def raw(hostport: str, method: str, path: str, headers=None) -> Response:
    r = exchange(hostport, request_bytes(method, path, hostport, list(headers or [])), method=method, timeout=60)
    assert r is not None, f"{method} {path} {headers}: {hostport} closed without answering"
    return r


def body_of(size: int, salt: int) -> bytes:
    """Deterministic, position-dependent content (no two blocks alike)."""
    return random.Random(salt).randbytes(size)


# ============================================================================================
# 4. Block edges, 416, HEAD, conditionals: equal to SeaweedFS, and from the cache the second time
# ============================================================================================
EDGE_SIZE = 3 * MiB + 123
FUTURE = "Fri, 01 Jan 2100 00:00:00 GMT"
PAST = "Fri, 01 Jan 2010 00:00:00 GMT"


def edge_cases(etag: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    s = EDGE_SIZE
    rng = lambda v: [("Range", f"bytes={v}")]  # noqa: E731
    return [
        ("whole", "GET", []),
        ("block 0 exactly", "GET", rng("0-1048575")),
        ("block 1 exactly", "GET", rng("1048576-2097151")),
        ("inside one block", "GET", rng("1048600-1049000")),
        ("one byte", "GET", rng("2097152-2097152")),
        ("straddles an edge by one byte each side", "GET", rng("1048575-1048576")),
        ("across many blocks", "GET", rng("1000-3145000")),
        ("last short block, suffix", "GET", rng("-100")),
        ("last short block, open", "GET", rng("3145728-")),
        ("ends at the last byte", "GET", rng(f"3000000-{s - 1}")),
        ("past the end", "GET", rng("3000000-99999999")),
        ("open from 0", "GET", rng("0-")),
        ("suffix longer than the object", "GET", rng(f"-{s + 10}")),
        ("last byte", "GET", rng(f"{s - 1}-")),
        ("starts at size (416)", "GET", rng(f"{s}-")),
        ("starts past size (416)", "GET", rng(f"{s + 5000}-{s + 6000}")),
        ("If-None-Match: etag (304)", "GET", [("If-None-Match", etag)]),
        ("If-None-Match: etag + Range (304)", "GET", [("If-None-Match", etag), ("Range", "bytes=0-9")]),
        ("If-None-Match: other", "GET", [("If-None-Match", '"0000"'), ("Range", "bytes=10-20000")]),
        ("If-Match: wrong (412)", "GET", [("If-Match", '"0000"')]),
        ("If-Match: wrong + Range (412)", "GET", [("If-Match", '"0000"'), ("Range", "bytes=0-9")]),
        ("If-Match: right + Range", "GET", [("If-Match", etag), ("Range", "bytes=2000000-2200000")]),
        ("If-Modified-Since: future", "GET", [("If-Modified-Since", FUTURE)]),
        ("If-Modified-Since: past", "GET", [("If-Modified-Since", PAST), ("Range", "bytes=-5000")]),
        ("If-Unmodified-Since: past (412)", "GET", [("If-Unmodified-Since", PAST)]),
        ("If-Unmodified-Since: future", "GET", [("If-Unmodified-Since", FUTURE), ("Range", "bytes=5-50")]),
        ("HEAD", "HEAD", []),
        ("HEAD If-None-Match (304)", "HEAD", [("If-None-Match", etag)]),
        ("HEAD If-Match wrong (412)", "HEAD", [("If-Match", '"0000"')]),
    ]


def error_code(r: Response) -> str | None:
    m = re.search(rb"<Code>([^<]*)</Code>", r.body or b"")
    return m.group(1).decode() if m else None


def view(r: Response, method: str) -> dict:
    """What must be equal through the proxy and direct."""
    v = {"status": r.status, "complete": r.complete}
    for h in ("content-range", "etag"):
        v[h] = r.header(h)
    if r.status in (200, 206):
        # (a 304 from the cache also carries Last-Modified, as S3's do; SeaweedFS's does not)
        v["last-modified"] = r.header("last-modified")
    if r.status in (200, 206):
        v["content-length"] = r.header("content-length")
    if r.status >= 400 and method != "HEAD":
        v["code"] = error_code(r)
    elif method == "GET":
        v["body"] = (len(r.body), hash(r.body))
    return v


def compare_edges(p, seaweed, path, cases, round_no, cached: bool):
    for what, method, headers in cases:
        before = counters(p) if cached else None
        via = raw(p.hostport, method, path, headers)
        after = counters(p) if cached else None
        d = raw(seaweed.hostport, method, path, headers)
        assert view(via, method) == view(d, method), (
            f"round {round_no}, {what}: {method} {path} {headers}\n"
            f"through proxy: {view(via, method)}\n  {via.headers}\ndirect:        {view(d, method)}\n  {d.headers}")
        if cached:
            dd = delta(before, after)
            assert dd["fill_requests"] == 0 and dd["origin_requests"] == 0, (
                f"round {round_no}, {what}: answered with origin traffic on a warm cache: {dd}")
            if method == "GET" and via.status in (200, 206) and via.body:
                assert dd["cache_block_hits"] > 0, f"round {round_no}, {what}: no block hit on a warm cache: {dd}"


def test_block_edges_equal_direct_and_second_round_is_cached(driver, proxy_factory, seaweed, direct_s3, new_bucket):
    bucket = new_bucket("edges")
    data = body_of(EDGE_SIZE, 4)
    etag = direct_s3.put_object(Bucket=bucket, Key="edges.bin", Body=data)["ETag"]
    direct_s3.put_object(Bucket=bucket, Key="empty.bin", Body=b"")
    p = proxy_factory.start(seaweed.endpoint, cache={"memory": "64MiB", "block_size": "1MiB", "metadata_ttl": "1h"})
    path = f"/{bucket}/edges.bin"
    cases = edge_cases(etag)
    compare_edges(p, seaweed, path, cases, 1, cached=False)
    # the body itself, once, byte for byte
    assert raw(p.hostport, "GET", path).body == data
    assert counters(p)["fill_requests"] > 0
    compare_edges(p, seaweed, path, cases, 2, cached=True)

    # a zero-byte object: whatever the origin answers, the proxy answers the same, twice
    empty_cases = [
        ("empty: GET", "GET", []),
        ("empty: GET bytes=0-", "GET", [("Range", "bytes=0-")]),
        ("empty: GET bytes=-1", "GET", [("Range", "bytes=-1")]),
        ("empty: HEAD", "HEAD", []),
        ("empty: If-None-Match", "GET", [("If-None-Match", '"d41d8cd98f00b204e9800998ecf8427e"')]),
    ]
    compare_edges(p, seaweed, f"/{bucket}/empty.bin", empty_cases, 1, cached=False)
    compare_edges(p, seaweed, f"/{bucket}/empty.bin", empty_cases, 2, cached=True)
    assert p.alive()


def test_head_with_range_follows_s3(driver, proxy_factory, seaweed, direct_s3, new_bucket):
    """HEAD with a Range. S3 documents (HeadObject, `Range`): a satisfiable range changes only
    Content-Length (status 206, with Content-Range), an unsatisfiable one is a 416. SeaweedFS 4.x
    ignores Range on HEAD (200, whole length); the cache answers HEAD from metadata like S3. This
    test pins both behaviours so that a change on either side shows up."""
    bucket = new_bucket("headrange")
    etag = direct_s3.put_object(Bucket=bucket, Key="o.bin", Body=body_of(EDGE_SIZE, 5))["ETag"]
    direct_s3.put_object(Bucket=bucket, Key="empty.bin", Body=b"")
    p = proxy_factory.start(seaweed.endpoint, cache={"memory": "64MiB", "block_size": "1MiB", "metadata_ttl": "1h"})
    s = EDGE_SIZE
    for rng, want in (("bytes=0-9", (206, f"bytes 0-9/{s}", "10")),
                      ("bytes=-100", (206, f"bytes {s - 100}-{s - 1}/{s}", "100")),
                      ("bytes=1048576-", (206, f"bytes 1048576-{s - 1}/{s}", str(s - 1048576))),
                      (f"bytes={s}-", (416, f"bytes */{s}", None))):
        for round_no in (1, 2):
            via = raw(p.hostport, "HEAD", f"/{bucket}/o.bin", [("Range", rng)])
            d = raw(seaweed.hostport, "HEAD", f"/{bucket}/o.bin", [("Range", rng)])
            got = (via.status, via.header("content-range"), via.header("content-length") if via.status == 206 else None)
            assert got == want, f"HEAD Range: {rng} (round {round_no}) through the proxy: {got}, S3 would say {want}"
            if want[0] == 206:
                assert via.header("etag") == d.header("etag") == etag
            assert (d.status, d.header("content-length")) in ((200, str(s)), (via.status, via.header("content-length"))), \
                f"SeaweedFS changed its HEAD Range answer: {d.status} {d.headers}"
    # zero-byte object: every range is unsatisfiable
    via = raw(p.hostport, "HEAD", f"/{bucket}/empty.bin", [("Range", "bytes=0-")])
    assert (via.status, via.header("content-range")) == (416, "bytes */0"), via.headers


# ============================================================================================
# 6. Purge by key, prefix and bucket: the next read fills again
# ============================================================================================
def test_purge_by_key_prefix_and_bucket(driver, proxy_factory, seaweed, direct_s3, new_bucket):
    bucket = new_bucket("purge")
    objs = {"dir/a.bin": body_of(2 * MiB + 17, 61), "dir/b.bin": body_of(MiB + 3, 62),
            "other/c.bin": body_of(3 * MiB, 63)}
    for k, v in objs.items():
        direct_s3.put_object(Bucket=bucket, Key=k, Body=v)
    p = proxy_factory.start(seaweed.endpoint, cache={"memory": "64MiB", "block_size": "1MiB", "metadata_ttl": "1h"})

    def read_all() -> dict[str, float]:
        """GET every object; the fills each one caused."""
        fills = {}
        for k, v in objs.items():
            c0 = counters(p)
            r = raw(p.hostport, "GET", f"/{bucket}/{k}")
            assert r.status == 200 and r.body == v, f"{k}: {r.status}, {len(r.body)} bytes"
            fills[k] = delta(c0, counters(p))["fill_requests"]
        return fills

    assert all(n > 0 for n in read_all().values())  # cold
    assert read_all() == {k: 0 for k in objs}  # warm
    blocks_warm = stats(p)["blocks"]
    assert blocks_warm >= 7, stats(p)

    out = purge(p, bucket, key="dir/a.bin")
    assert out.get("blocks") == 3 and out.get("objects") == 1, out
    assert stats(p)["blocks"] == blocks_warm - 3
    fills = read_all()
    assert fills["dir/a.bin"] > 0 and fills["dir/b.bin"] == 0 and fills["other/c.bin"] == 0, fills

    out = purge(p, bucket, prefix="dir/")
    assert out.get("objects") == 2 and out.get("blocks") == 5, out
    fills = read_all()
    assert fills["dir/a.bin"] > 0 and fills["dir/b.bin"] > 0 and fills["other/c.bin"] == 0, fills

    out = purge(p, bucket)
    assert out.get("objects") == 3 and out.get("blocks") == 8, out
    assert stats(p)["blocks"] == 0
    assert all(n > 0 for n in read_all().values())

    # purging another bucket (or a key that is not cached) drops nothing here
    assert purge(p, bucket + "-nope").get("blocks") == 0
    assert purge(p, bucket, key="dir/nothing").get("blocks") == 0
    assert read_all() == {k: 0 for k in objs}
    assert p.alive()
