"""Prefetch, seen from the origin side: a counting relay between rangecache and SeaweedFS records
every origin GET, so a read served from a prefetch is one that caused no GET of its own.

(a) a sequential reader's next block was fetched before it asked; (b) after a Parquet file's
footer (written by pyarrow) and row group 0's chunk of a column were read, row group 1's chunk of
that column is already fetched; (c) a reader that disconnects stops the prefetching: the origin
GETs stop, at most `prefetch.max_window` past what the reader asked for."""

from __future__ import annotations

import io
import random
import time

import pytest

from helpers.cache_obs import MiB
from helpers.counting_relay import CountingRelay, block_span_of
from helpers.rawhttp import Conn, request_bytes, signed_headers

pytestmark = pytest.mark.needs_binary

BS = MiB
PREFETCH_METRICS = ("rangecache_prefetch_bytes_total", "rangecache_prefetch_used_bytes_total")


def start(proxy_factory, relay, max_window: str = "16MiB"):
    return proxy_factory.start(relay.endpoint,
                               cache={"memory": "256MiB", "block_size": "1MiB", "metadata_ttl": "60s",
                                      "inflight_memory": "64MiB"},
                               prefetch={"enabled": True, "max_window": max_window, "parquet": True})


def get(p, path: str, first: int, last: int) -> bytes:
    """One signed range GET through rangecache on a fresh connection; the body."""
    import http.client

    host, port = p.hostport.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("GET", path, headers=dict(signed_headers("GET", path, p.hostport,
                                                              [("Range", f"bytes={first}-{last}")])))
        r = conn.getresponse()
        body = r.read()
        assert r.status == 206, (r.status, body[:300])
        return body
    finally:
        conn.close()


def wait_prefetched(p, at_least: float, timeout: float = 20.0) -> float:
    """Wait until rangecache says it has prefetched at least `at_least` bytes, then until its
    origin GETs have finished (fills counted as bytes arrive); return the counter."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = p.metric_sum("rangecache_prefetch_bytes_total")
        if v >= at_least:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"prefetched {p.metric_sum('rangecache_prefetch_bytes_total')} bytes, wanted {at_least}\n{p.logs(40)}")
    settle(p)
    return p.metric_sum("rangecache_prefetch_bytes_total")


def settle(p, quiet: float = 0.6, timeout: float = 20.0) -> None:
    """Wait until rangecache's fill byte counter stops moving for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, since = p.metric_sum("rangecache_fill_bytes_total"), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = p.metric_sum("rangecache_fill_bytes_total")
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


def gets_touching(relay, path: str, size: int, blocks: range, since: int = 0) -> list:
    """Origin GETs of `path` (from the `since`-th on) whose range covers any of `blocks`."""
    out = []
    for r in relay.requests("GET", path)[since:]:
        span = block_span_of(r.range, size, BS)
        if span and span[0] <= blocks[-1] and blocks[0] <= span[1]:
            out.append(r)
    return out


# ============================================================================================
# (a) sequential read-ahead
# ============================================================================================
def test_sequential_reader_next_block_is_served_without_an_origin_get(driver, proxy_factory, seaweed,
                                                                       direct_s3, module_bucket):
    bucket = module_bucket
    size = 16 * MiB
    data = random.Random(11).randbytes(size)
    direct_s3.put_object(Bucket=bucket, Key="seq.bin", Body=data)
    path = f"/{bucket}/seq.bin"
    with CountingRelay(seaweed.hostport) as relay:
        p = start(proxy_factory, relay)
        # Two reads that follow each other: the second opens the read-ahead window.
        for i in range(2):
            assert get(p, path, i * BS, (i + 1) * BS - 1) == data[i * BS:(i + 1) * BS]
        wait_prefetched(p, BS)
        mark = len(relay.requests("GET", path))
        used0 = p.metric_sum("rangecache_prefetch_used_bytes_total")
        # The third block was prefetched: reading it sends no GET for it.
        assert get(p, path, 2 * BS, 3 * BS - 1) == data[2 * BS:3 * BS]
        own = gets_touching(relay, path, size, range(2, 3), since=mark)
        used = p.metric_sum("rangecache_prefetch_used_bytes_total") - used0
        seen = relay.summary()
    assert not own, f"block 2 was fetched again after the prefetch:\n{seen}"
    assert used >= BS, f"prefetch_used_bytes grew by {used}, not a whole block"
    # The prefetch itself went to the origin as ranges past what the reader asked for.
    assert gets_touching(relay, path, size, range(2, 3)), f"no origin GET ever covered block 2:\n{seen}"


# ============================================================================================
# (b) Parquet-aware prefetch on a file written by pyarrow
# ============================================================================================
def pyarrow_file() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 200_000  # x 8 B of random int64: about 1.6 MB per column chunk, uncompressed
    rng = random.Random(5)
    groups = []
    for _ in range(4):
        groups.append(pa.table({name: pa.array([rng.getrandbits(62) for _ in range(rows)], pa.int64())
                                for name in ("a", "b", "c")}))
    buf = io.BytesIO()
    with pq.ParquetWriter(buf, groups[0].schema, compression="NONE", use_dictionary=False) as w:
        for t in groups:
            w.write_table(t, row_group_size=rows)
    return buf.getvalue()


def chunk_range(meta, rg: int, col: int) -> tuple[int, int]:
    c = meta.row_group(rg).column(col)
    start = c.dictionary_page_offset if c.has_dictionary_page else c.data_page_offset
    return start, start + c.total_compressed_size - 1


def test_parquet_next_row_group_chunk_is_served_without_an_origin_get(driver, proxy_factory, seaweed,
                                                                      direct_s3, module_bucket):
    import pyarrow.parquet as pq

    data = pyarrow_file()
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    assert meta.num_row_groups == 4
    bucket = module_bucket
    direct_s3.put_object(Bucket=bucket, Key="t.parquet", Body=data)
    path, size = f"/{bucket}/t.parquet", len(data)
    col = 1
    a0, b0 = chunk_range(meta, 0, col)
    a1, b1 = chunk_range(meta, 1, col)
    with CountingRelay(seaweed.hostport) as relay:
        p = start(proxy_factory, relay)
        # Footer first, as pyarrow and DuckDB read it (a 64 KiB suffix), then row group 0's chunk.
        assert get(p, path, size - 65536, size - 1) == data[-65536:]
        settle(p)
        before = p.metric_sum("rangecache_prefetch_bytes_total")
        assert get(p, path, a0, b0) == data[a0:b0 + 1]
        wait_prefetched(p, before + (b1 - a1 + 1))
        mark = len(relay.requests("GET", path))
        used0 = p.metric_sum("rangecache_prefetch_used_bytes_total")
        assert get(p, path, a1, b1) == data[a1:b1 + 1]
        own = gets_touching(relay, path, size, range(a1 // BS, b1 // BS + 1), since=mark)
        used = p.metric_sum("rangecache_prefetch_used_bytes_total") - used0
        seen = relay.summary()
    assert not own, f"row group 1's chunk of column {col} ({a1}-{b1}) went to the origin after the prefetch:\n{seen}"
    assert used >= b1 - a1 + 1 - 2 * BS, f"prefetch_used_bytes grew by {used} for a {b1 - a1 + 1}-byte chunk"


# ============================================================================================
# (c) a reader that goes away stops the prefetching
# ============================================================================================
def origin_end(relay, path: str, size: int) -> int:
    """One past the highest byte any origin GET of `path` asked for."""
    end = 0
    for r in relay.requests("GET", path):
        span = block_span_of(r.range, size, 1)
        if span:
            end = max(end, span[1] + 1)
    return end


def test_prefetch_stops_when_the_reader_disconnects(driver, proxy_factory, seaweed, direct_s3, module_bucket):
    bucket = module_bucket
    size = 96 * MiB
    window = 8 * MiB
    direct_s3.put_object(Bucket=bucket, Key="long.bin", Body=random.Random(3).randbytes(size))
    path = f"/{bucket}/long.bin"
    with CountingRelay(seaweed.hostport) as relay:
        p = start(proxy_factory, relay, max_window="8MiB")
        # A sequential reader on one keep-alive connection: 12 blocks, then a 13th request it
        # abandons after a few bytes (the socket closes mid-body).
        asked = 13 * BS
        with Conn(p.hostport, timeout=60) as c:
            for i in range(12):
                c.send(request_bytes("GET", path, p.hostport, [("Range", f"bytes={i * BS}-{(i + 1) * BS - 1}")]))
                r = c.read_response()
                assert r.status == 206
            c.send(request_bytes("GET", path, p.hostport, [("Range", f"bytes={12 * BS}-{asked - 1}")]))
            c.read_head()
        settle(p, quiet=1.5)
        end1, n1 = origin_end(relay, path, size), len(relay.requests("GET", path))
        time.sleep(2.0)
        end2, n2 = origin_end(relay, path, size), len(relay.requests("GET", path))
        fetched = p.metric_sum("rangecache_prefetch_bytes_total")
        seen = relay.summary()
    assert fetched > 0, "the sequential reader got no prefetch at all"
    assert (n2, end2) == (n1, end1), f"origin GETs kept coming after the reader left:\n{seen}"
    # Never more than the window (plus the block the window ends in) past what was asked.
    assert end2 <= asked + window + BS, (
        f"origin reads reach byte {end2}, {end2 - asked} past the reader's last request "
        f"(max_window {window}):\n{seen}")
    assert end2 < size, "the whole object was read ahead"
