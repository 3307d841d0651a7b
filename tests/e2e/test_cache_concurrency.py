"""The block cache under concurrency: concurrent cold readers of the same blocks cost the origin one
GET per block (counted by a relay between rangecache and SeaweedFS), and readers racing with
writers (through the proxy and straight to the origin) always get a body from one version."""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter

import pytest

from helpers.cache_obs import MiB, counters
from helpers.counting_relay import CountingRelay, block_span_of
from helpers.rawhttp import Closed, Conn, exchange, request_bytes, signed_headers

pytestmark = pytest.mark.needs_binary


# ============================================================================================
# 2. 64 concurrent identical cold range requests: one origin GET per block
# ============================================================================================
READERS = 64
RANGE = (1_000_000, 3_500_000)


def test_concurrent_cold_readers_coalesce_to_one_get_per_block(driver, proxy_factory, seaweed, direct_s3,
                                                               new_bucket, figures):
    bucket = new_bucket("coalesce")
    size = 8 * MiB
    data = random.Random(2).randbytes(size)
    etag = direct_s3.put_object(Bucket=bucket, Key="cold.bin", Body=data)["ETag"]
    path = f"/{bucket}/cold.bin"
    first, last = RANGE
    want = data[first: last + 1]
    bs = MiB
    blocks = set(range(first // bs, last // bs + 1))  # {0, 1, 2, 3}

    with CountingRelay(seaweed.hostport) as relay:
        p = proxy_factory.start(relay.endpoint, cache={"memory": "64MiB", "block_size": "1MiB",
                                                       "metadata_ttl": "60s"})
        host, port = p.hostport.rsplit(":", 1)
        relay.reset()
        c0 = counters(p)
        barrier = threading.Barrier(READERS)
        results: list = [None] * READERS

        def reader(i: int) -> None:
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            try:
                conn.connect()
                barrier.wait(timeout=30)
                conn.request("GET", path, headers=dict(signed_headers("GET", path, p.hostport,
                                                                      [("Range", f"bytes={first}-{last}")])))
                r = conn.getresponse()
                results[i] = (r.status, r.getheader("Content-Range"), r.read())
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = ("error", repr(e), b"")
            finally:
                conn.close()

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        c1 = counters(p)
        gets = relay.requests("GET", path)
        heads = relay.requests("HEAD", path)
        seen = relay.summary()

    bad = [(i, r[0], r[1], len(r[2])) for i, r in enumerate(results)
           if r is None or r[0] != 206 or r[1] != f"bytes {first}-{last}/{size}" or r[2] != want]
    assert not bad, f"{len(bad)} of {READERS} responses wrong (index, status, content-range, length): {bad[:10]}"

    # Every fill is pinned to the planned version with If-Match, except the GETs sent before
    # the ETag is known: the first fetch, which learns the object (size, ETag) from its own
    # 206 instead of a HEAD, and beside it the rest of the first reader's first window in
    # runs of at least 2 MiB (early GETs, used only if their ETag is the first fetch's). The
    # other 63 readers of the same bytes send none of their own: one set for the herd.
    first_fetches = [g for g in gets if "if-match" not in g.headers]
    runs = -(-(last // bs - first // bs + 1) // 2)
    assert len(first_fetches) <= runs, f"{len(first_fetches)} GETs without If-Match\norigin saw:\n{seen}"
    assert not (first_fetches and heads), f"a first fetch and a HEAD for one object\norigin saw:\n{seen}"
    # A fill starts on a block boundary, or at the client's first byte (the cold first fetch,
    # so the first byte waits for nothing before it) with the block's head fetched beside it
    # (ending just before that byte). Together the fills cover each byte of the blocks once.
    spans = []
    for g in gets:
        a, b = (int(x) for x in g.range.removeprefix("bytes=").split("-"))
        b = min(b, size - 1)
        assert a % bs == 0 or a == first, f"fill neither block-aligned nor at the first byte: {g.range}"
        assert (b + 1) % bs == 0 or b + 1 == size or b + 1 == first, f"fill ends mid-block: {g.range}"
        if g not in first_fetches:
            assert g.headers.get("if-match") == etag, f"fill without If-Match {etag}: {g.headers}"
        spans.append((a, b))
    spans.sort()
    overlaps = [(x, y) for x, y in zip(spans, spans[1:]) if y[0] <= x[1]]
    per_block: Counter = Counter()
    for a, b in spans:
        per_block.update(range(a // bs, b // bs + 1))
    covered = sum(b - a + 1 for a, b in spans)
    fig = {
        "readers": READERS,
        "blocks_covered": len(blocks),
        "origin_gets": len(gets),
        "origin_heads": len(heads),
        "origin_gets_per_block": round(len(gets) / len(blocks), 3),
        "origin_gets_touching_one_block": max(per_block.values(), default=0),
        "fill_requests": c1["fill_requests"] - c0["fill_requests"],
        "coalesced_waits": c1["coalesced_waits"] - c0["coalesced_waits"],
    }
    figures[f"cache_coalescing_{driver}"] = fig
    print(f"\ncoalescing ({driver}): {fig}\norigin saw:\n{seen}")
    whole = (max(blocks) - min(blocks) + 1) * bs
    assert set(per_block) == blocks and not overlaps and covered == whole, (
        f"the origin should see each byte of blocks {sorted(blocks)} fetched exactly once; "
        f"overlapping fills {overlaps}, {covered} bytes fetched of {whole}\norigin saw:\n{seen}")
    assert len(heads) <= 1, f"{len(heads)} HEADs for one cold object (want at most 1)\norigin saw:\n{seen}"


def test_a_long_cold_read_is_fetched_by_parallel_gets_each_byte_once(driver, proxy_factory, seaweed,
                                                                     direct_s3, new_bucket, figures):
    """With the object's metadata known, a cold read of 23 blocks is split into parallel runs of
    2 MiB (1 MiB blocks, 8 MiB window): block-aligned fills with If-Match that together ask for
    each byte once; then eight concurrent readers of the same cold range on a second object
    share the fills (the origin sends far less than eight copies)."""
    bucket = new_bucket("parallel")
    size = 24 * MiB
    bs = MiB
    with CountingRelay(seaweed.hostport) as relay:
        p = proxy_factory.start(relay.endpoint, cache={"memory": "256MiB", "block_size": "1MiB",
                                                       "metadata_ttl": "60s"})
        results = {}
        for key, readers in (("one.bin", 1), ("eight.bin", 8)):
            data = random.Random(len(key)).randbytes(size)
            etag = direct_s3.put_object(Bucket=bucket, Key=key, Body=data)["ETag"]
            path = f"/{bucket}/{key}"
            r = get_range(p.hostport, path, 0, 9)  # learns the metadata, caches block 0
            assert r is not None and r.status == 206 and r.body == data[:10]
            r = get_range(p.hostport, path, 0, bs - 1)  # ends once block 0's fill has ended
            assert r is not None and r.status == 206 and r.body == data[:bs]
            relay.reset()
            down0 = relay.bytes_down
            out: list = [None] * readers

            def reader(i: int) -> None:
                r = get_range(p.hostport, path, bs, size - 1)
                out[i] = None if r is None else (r.status, r.body)

            threads = [threading.Thread(target=reader, args=(i,)) for i in range(readers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            bad = [i for i, o in enumerate(out) if o is None or o[0] != 206 or o[1] != data[bs:]]
            assert not bad, f"{key}: readers {bad} got a wrong answer"
            gets = relay.requests("GET", path)
            for g in gets:
                a, b = (int(x) for x in g.range.removeprefix("bytes=").split("-"))
                assert a % bs == 0 and (min(b, size - 1) + 1) % bs == 0, f"fill not on blocks: {g.range}"
                assert g.headers.get("if-match") == etag, f"fill without If-Match {etag}: {g.headers}"
            results[key] = (gets, relay.bytes_down - down0, relay.summary())
        gets, down, seen = results["one.bin"]
        spans = sorted(tuple(int(x) for x in g.range.removeprefix("bytes=").split("-")) for g in gets)
        overlaps = [(x, y) for x, y in zip(spans, spans[1:]) if y[0] <= x[1]]
        covered = sum(min(b, size - 1) - a + 1 for a, b in spans)
        assert not overlaps and covered == size - bs, (
            f"one reader: fills should ask for each byte once; overlaps {overlaps}, {covered} bytes "
            f"of {size - bs}\norigin saw:\n{seen}")
        assert len(gets) >= 4, f"one reader: {len(gets)} GETs for 23 blocks, not split\norigin saw:\n{seen}"
        # Body bytes plus one response head (well under 4 KiB) per GET.
        assert down <= size - bs + 4096 * len(gets), f"one reader: origin sent {down} bytes for {size - bs}"
        gets8, down8, seen8 = results["eight.bin"]
        assert down8 < 2 * (size - bs), (
            f"eight readers: origin sent {down8} bytes for {size - bs} wanted (not shared)\n{seen8}")
    figures[f"cache_parallel_runs_{driver}"] = {
        "one_reader_gets": len(gets), "one_reader_origin_bytes": down,
        "eight_readers_gets": len(gets8), "eight_readers_origin_bytes": down8, "bytes_wanted": size - bs}


# ============================================================================================
# 3. One version per response while the object is overwritten (through the proxy and directly)
# ============================================================================================
VSIZE = 4 * MiB + 777
BIG = 12 * MiB + 777
BASE = random.Random(3).randbytes(BIG)
XOR = [bytes(b ^ k for b in range(256)) for k in range(256)]


def version_bytes(k: int, start: int = 0, end: int = VSIZE) -> bytes:
    """Bytes [start, end) of version k (1..255): BASE xor k, so every byte tells its version."""
    return BASE[start:end].translate(XOR[k])


VERSIONS = {k: version_bytes(k) for k in range(1, 7)}  # the 4 MiB object's versions


def which_version(body: bytes, start: int) -> int | None:
    """The version `body` (read at offset `start`) entirely comes from, or None for a mix."""
    if not body:
        return 0
    k = body[0] ^ BASE[start]
    if k == 0 or version_bytes(k, start, start + len(body)) != body:
        return None
    return k


def versions_in(body: bytes, start: int) -> list[int]:
    return sorted({b ^ BASE[start + i] for i, b in enumerate(body)})


def put_via_proxy(hostport: str, path: str, body: bytes) -> int:
    r = exchange(hostport, request_bytes("PUT", path, hostport, [], body=body), timeout=60)
    assert r is not None, f"PUT {path}: the proxy closed without answering"
    return r.status


def get_range(hostport: str, path: str, start: int, end: int):
    return exchange(hostport, request_bytes("GET", path, hostport, [("Range", f"bytes={start}-{end}")]), timeout=60)


class Reader(threading.Thread):
    """Reads random ranges of an object of `size` bytes in a loop; every 206 must be one version."""

    SIZES = (1, 700, 20_000, 64 * 1024, 200_000)

    def __init__(self, hostport: str, path: str, size: int, seed: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.hostport, self.path, self.size, self.stop_ev = hostport, path, size, stop
        self.rng = random.Random(seed)
        self.tally: Counter = Counter()
        self.failures: list[str] = []

    def pick(self) -> tuple[int, int]:
        n = self.rng.choice(self.SIZES)
        start = self.rng.randrange(0, self.size)
        return start, min(self.size - 1, start + n - 1)

    def run(self) -> None:
        try:
            self.loop()
        except Exception as e:  # noqa: BLE001 - a reader that dies must fail the test, not vanish
            self.failures.append(f"reader crashed: {e!r}")

    def loop(self) -> None:
        conn = None
        while not self.stop_ev.is_set():
            start, end = self.pick()
            try:
                if conn is None:
                    conn = Conn(self.hostport, timeout=60)
                conn.send(request_bytes("GET", self.path, self.hostport, [("Range", f"bytes={start}-{end}")]))
                r = conn.read_response()
            except (Closed, OSError) as e:
                self.tally["closed_before_head"] += 1
                if conn is not None:
                    conn.close()
                conn = None
                if isinstance(e, OSError) and not isinstance(e, ConnectionError):
                    self.failures.append(f"bytes={start}-{end}: {e!r}")  # a timeout is a hang
                continue
            if r.status >= 500:
                self.tally[f"status_{r.status}"] += 1
            elif r.status != 206:
                self.tally[f"status_{r.status}"] += 1
                self.failures.append(f"bytes={start}-{end}: unexpected {r.status} {r.body[:200]!r}")
            else:
                want_len = end - start + 1
                cr = r.header("content-range")
                if cr != f"bytes {start}-{end}/{self.size}":
                    self.failures.append(f"bytes={start}-{end}: Content-Range {cr}")
                k = which_version(r.body, start)
                if k is None:
                    self.failures.append(f"bytes={start}-{end}: body mixes versions "
                                         f"(complete={r.complete}, {len(r.body)} bytes, "
                                         f"versions seen: {versions_in(r.body, start)})")
                elif r.complete:
                    if len(r.body) != want_len:
                        self.failures.append(f"bytes={start}-{end}: complete response of {len(r.body)} bytes")
                    self.tally[f"v{k}"] += 1
                elif r.extra.get("timeout"):
                    self.failures.append(f"bytes={start}-{end}: body hung after {len(r.body)} bytes")
                else:
                    # a cut: acceptable, since it is short and what came is one version
                    self.tally["cut"] += 1
            if not r.complete or (r.header("connection") or "").lower() == "close":
                conn.close()
                conn = None
        if conn is not None:
            conn.close()


def test_read_your_writes_through_the_proxy(driver, proxy_factory, seaweed, direct_s3, new_bucket):
    """Sequential: a PUT through the proxy is visible to the next GET through it (same connection
    and a new one), even after the object was changed behind the proxy's back."""
    bucket = new_bucket("ryw")
    path = f"/{bucket}/obj.bin"
    direct_s3.put_object(Bucket=bucket, Key="obj.bin", Body=VERSIONS[1])
    p = proxy_factory.start(seaweed.endpoint, cache={"memory": "64MiB", "block_size": "1MiB", "metadata_ttl": "1h"})
    rng = random.Random(5)
    assert which_version(get_range(p.hostport, path, 0, VSIZE - 1).body, 0) == 1  # warm v1, whole object
    for i, k in enumerate([2, 3, 4, 2, 5, 6, 1, 3]):
        if i % 3 == 2:
            # behind the proxy's back first: the cache may keep serving the old version (within the
            # metadata TTL), but the proxy write that follows must win
            direct_s3.put_object(Bucket=bucket, Key="obj.bin", Body=VERSIONS[(k % 6) + 1])
        assert put_via_proxy(p.hostport, path, VERSIONS[k]) == 200
        for _ in range(3):
            start = rng.randrange(0, VSIZE)
            end = min(VSIZE - 1, start + rng.choice((10, 2 * MiB)))
            r = get_range(p.hostport, path, start, end)
            assert r is not None and r.status == 206 and r.complete, (r and r.status)
            got = which_version(r.body, start)
            assert got == k, f"write {i}: PUT v{k} through the proxy, then GET bytes={start}-{end} returned v{got}"
        with Conn(p.hostport) as c:  # same connection: PUT then GET
            k2 = (k % 6) + 1
            c.send(request_bytes("PUT", path, p.hostport, [], body=VERSIONS[k2]))
            assert c.read_response().status == 200
            c.send(request_bytes("GET", path, p.hostport, [("Range", f"bytes=0-{VSIZE - 1}")]))
            r = c.read_response()
            assert r.status == 206 and which_version(r.body, 0) == k2, f"same connection: wanted v{k2}"
    # a tight loop: PUT on one connection, GET on a fresh one (often served by the other worker)
    stale = []
    for i in range(60):
        k = 1 + i % 6
        assert put_via_proxy(p.hostport, path, VERSIONS[k]) == 200
        start = rng.randrange(0, VSIZE - 10)
        r = get_range(p.hostport, path, start, start + 9)
        got = which_version(r.body, start) if r is not None and r.status == 206 else None
        if got != k:
            stale.append(f"#{i}: PUT v{k} (200), then GET bytes={start}-{start + 9} on a new connection -> "
                         f"{r and r.status} v{got}, ETag {r and r.header('etag')}")
    assert not stale, f"{len(stale)} of 60 GETs right after a PUT through the proxy did not see it:\n" + "\n".join(stale)
    assert p.alive()


def test_one_version_per_response_under_overwrites(driver, proxy_factory, seaweed, direct_s3, new_bucket, figures):
    bucket = new_bucket("versions")
    path = f"/{bucket}/big.bin"
    direct_s3.put_object(Bucket=bucket, Key="big.bin", Body=version_bytes(1, 0, BIG))
    # A short metadata TTL so that writes straight to the origin are noticed while readers run,
    # and small blocks so that many are still uncached when the object changes: fills then meet
    # If-Match 412s (re-plans, cut responses) as well as expiry. Every write is a new version.
    p = proxy_factory.start(seaweed.endpoint, cache={"memory": "64MiB", "block_size": "64KiB", "metadata_ttl": "1s"})
    stop = threading.Event()
    readers = [Reader(p.hostport, path, BIG, seed, stop) for seed in range(8)]
    for r in readers:
        r.start()
    ryw_failures = []
    writes = Counter()
    rng = random.Random(7)
    try:
        time.sleep(0.5)
        for i in range(12):
            k = 2 + i
            if i % 2 == 0:
                status = put_via_proxy(p.hostport, path, version_bytes(k, 0, BIG))
                assert status == 200, f"PUT through the proxy: {status}"
                writes["proxy"] += 1
                # read-your-writes while readers keep the cache busy
                start = rng.randrange(0, BIG - 10)
                r = get_range(p.hostport, path, start, start + 9)
                got = which_version(r.body, start) if r is not None and r.status == 206 else None
                if got != k:
                    ryw_failures.append(f"write {i}: PUT v{k} via proxy, then GET bytes={start}-{start + 9} -> "
                                        f"{r and r.status} v{got}")
            else:
                direct_s3.put_object(Bucket=bucket, Key="big.bin", Body=version_bytes(k, 0, BIG))
                writes["direct"] += 1
            time.sleep(rng.uniform(0.2, 0.6))
    finally:
        stop.set()
        for r in readers:
            r.join(timeout=120)
    tally = sum((r.tally for r in readers), Counter())
    failures = [f for r in readers for f in r.failures]
    c = counters(p)
    fig = {"tally": dict(sorted(tally.items())), "writes": dict(writes), "replans": c["replans"],
           "fill_requests": c["fill_requests"]}
    figures[f"cache_versions_{driver}"] = fig
    print(f"\nresponses under overwrites ({driver}): {fig}")
    assert not failures, f"{len(failures)} bad responses, e.g.:\n" + "\n".join(failures[:10])
    ok = sum(n for k, n in tally.items() if k.startswith("v"))
    assert ok > 50, f"too few good responses to mean anything: {dict(tally)}"
    assert len([k for k in tally if k.startswith("v")]) >= 4, f"readers saw few versions: {dict(tally)}"
    assert not ryw_failures, "read-your-writes broken under concurrent readers:\n" + "\n".join(ryw_failures)
    assert p.alive()


def test_change_behind_the_cache_is_detected_by_if_match(driver, proxy_factory, seaweed, direct_s3, new_bucket):
    """The object changes at the origin while the proxy still trusts its metadata (TTL 1h): the next
    fill's If-Match gets a 412, and the response is re-planned on the new version (or, when headers
    were already out, cut short); never a mix."""
    bucket = new_bucket("ifmatch")
    path = f"/{bucket}/obj.bin"
    direct_s3.put_object(Bucket=bucket, Key="obj.bin", Body=VERSIONS[1])
    p = proxy_factory.start(seaweed.endpoint, cache={"memory": "64MiB", "block_size": "1MiB", "metadata_ttl": "1h"})
    r = get_range(p.hostport, path, 0, 9)
    assert r.status == 206 and which_version(r.body, 0) == 1  # metadata v1 and block 0 of v1 cached

    direct_s3.put_object(Bucket=bucket, Key="obj.bin", Body=VERSIONS[2])
    c0 = counters(p)
    r = get_range(p.hostport, path, 2 * MiB, 2 * MiB + 99)  # block 2: not cached -> fill -> 412 -> re-plan
    c1 = counters(p)
    assert r is not None and r.status == 206 and r.complete, (r and r.status, r and r.body[:300])
    assert which_version(r.body, 2 * MiB) == 2, "after the 412 the response must come from the new version"
    assert c1["replans"] - c0["replans"] == 1, {k: c1[k] - c0[k] for k in c1}
    r = get_range(p.hostport, path, 0, 9)  # the metadata was refreshed: block 0 comes from v2 now
    assert r.status == 206 and which_version(r.body, 0) == 2

    # a range over a cached block (0, v2) and an uncached one (1): after the object changes, the
    # response either is one version or is cut short; the next one is v3
    direct_s3.put_object(Bucket=bucket, Key="obj.bin", Body=VERSIONS[3])
    r = get_range(p.hostport, path, 0, MiB + MiB // 2)
    if r is not None and r.status == 206:
        k = which_version(r.body, 0)
        assert k in (2, 3), f"body mixes versions ({len(r.body)} bytes, complete={r.complete})"
        assert r.complete == (len(r.body) == MiB + MiB // 2 + 1)
    else:
        assert r is None or r.status >= 500, (r.status, r.body[:300])
    r = get_range(p.hostport, path, 0, MiB + MiB // 2)
    assert r.status == 206 and r.complete and which_version(r.body, 0) == 3
    assert p.alive()
