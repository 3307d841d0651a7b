"""The disk tier (`[cache.disk]`) end to end, with real clients through rangecache to SeaweedFS:
blocks survive SIGTERM and kill -9 and are served after a restart without an origin GET; a
working set larger than RAM is served from disk; damaged blocks are never served; a full file
system pauses the tier without a client error; purge and stats cover the disk; startup errors
name their phase."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers.cache_obs import MiB, counters, delta, purge, stats
from helpers.clients import s3_client
from helpers.proxy import RangeCache

pytestmark = pytest.mark.needs_binary

FILE_NAME = "rangecache-blocks.dat"
OBJECT_SIZE = 8 * MiB + 12345


def body(i: int, size: int = OBJECT_SIZE) -> bytes:
    return random.Random(7000 + i).randbytes(size)


@pytest.fixture(scope="module")
def disk_objects(seaweed):
    """Six objects uploaded straight to SeaweedFS (48 MiB, more than the 32 MiB RAM used here)."""
    s3 = s3_client(seaweed.endpoint)
    bucket = f"disk-tier-{os.getpid() % 10000}"
    s3.create_bucket(Bucket=bucket)
    keys = {}
    for i in range(6):
        key = f"data/{i}.bin"
        s3.put_object(Bucket=bucket, Key=key, Body=body(i))
        keys[key] = body(i)
    yield bucket, keys
    for key in keys:
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)


def disk_cache(path: Path, size: str = "256MiB", memory: str = "32MiB") -> dict:
    return {"memory": memory, "block_size": "1MiB", "disk": {"path": str(path), "size": size}}


def read_ranges(endpoint: str, bucket: str, keys: dict[str, bytes], seed: int, n: int = 40) -> int:
    """Random ranged GETs through `endpoint`, each checked byte for byte; returns how many."""
    s3 = s3_client(endpoint)
    rng = random.Random(seed)
    for _ in range(n):
        key = rng.choice(sorted(keys))
        data = keys[key]
        first = rng.randrange(len(data))
        last = min(len(data) - 1, first + rng.choice([4096, 65536, MiB, 3 * MiB]))
        got = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{last}")["Body"].read()
        assert got == data[first:last + 1], f"{key} bytes={first}-{last}"
    return n


def read_whole(endpoint: str, bucket: str, keys: dict[str, bytes]) -> None:
    s3 = s3_client(endpoint)
    for key, data in sorted(keys.items()):
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), key


def warm(endpoint: str, bucket: str, keys: dict[str, bytes]) -> None:
    """Read everything twice: a block reaches the disk on its second access."""
    read_whole(endpoint, bucket, keys)
    read_whole(endpoint, bucket, keys)


def wait_for_disk(p: RangeCache, blocks: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = stats(p)["disk"]
        if d["blocks"] >= blocks and d["queued_blocks"] == 0:
            return d
        time.sleep(0.1)
    raise AssertionError(f"disk tier holds {stats(p)['disk']}, expected {blocks} blocks")


def start_with_disk(proxy_factory, seaweed, tmp_path: Path) -> tuple[RangeCache, Path]:
    """rangecache with a disk tier in a fresh directory under `tmp_path`."""
    disk = tmp_path / "disk"
    disk.mkdir()
    return proxy_factory.start(seaweed.endpoint, cache=disk_cache(disk)), disk


def start_warm(proxy_factory, seaweed, tmp_path: Path, bucket: str, keys: dict[str, bytes]):
    """`start_with_disk`, with every block of `keys` read twice and on disk (54 blocks)."""
    p, disk = start_with_disk(proxy_factory, seaweed, tmp_path)
    warm(p.endpoint, bucket, keys)
    return p, disk, wait_for_disk(p, 54)


def restart(factory, p: RangeCache) -> RangeCache:
    """A new process with the same configuration (and so the same disk path)."""
    q = factory.create(p.config)
    q.start()
    return q


def test_blocks_survive_sigterm_and_are_served_without_an_origin_get(driver, proxy_factory, seaweed,
                                                                      disk_objects, tmp_path):
    bucket, keys = disk_objects
    # 6 objects of 9 blocks: all on disk, RAM (32 MiB) holds only part of them.
    p, _, d = start_warm(proxy_factory, seaweed, tmp_path, bucket, keys)
    assert (d["state"], d["direct_io"], d["checksum_failures"]) == ("active", True, 0)
    assert p.terminate() == 0

    q = restart(proxy_factory, p)
    s = stats(q)["disk"]
    assert s["recovered_blocks"] == 54 and s["blocks"] == 54, s
    assert "disk cache: index rebuilt" in q.stderr_path.read_text() + q.stdout_path.read_text()
    before = counters(q)
    read_ranges(q.endpoint, bucket, keys, seed=1)
    read_whole(q.endpoint, bucket, keys)
    moved = delta(before, counters(q))
    assert moved["fill_requests"] == 0, f"origin GETs after restart: {moved}"
    assert moved["origin_requests"] <= len(keys), f"one HEAD per object at most: {moved}"
    after = stats(q)["disk"]
    assert after["hits"] >= 54 and after["checksum_failures"] == 0, after
    assert q.metric_sum("rangecache_disk_hits_total") == after["hits"]
    assert q.metric_sum("rangecache_disk_state", state="active") == 1


def test_analytics_engines_read_through_a_disk_backed_cache(proxy_factory, seaweed, tmp_path, direct_s3):
    pl = pytest.importorskip("polars")
    pq = pytest.importorskip("pyarrow.parquet")
    import test_dataframes as tdf
    from polars.testing import assert_frame_equal

    bucket = f"disk-pq-{os.getpid() % 10000}"
    direct_s3.create_bucket(Bucket=bucket)
    frame = tdf.make_frame()
    key = "pq/frame.parquet"
    frame.write_parquet(f"s3://{bucket}/{key}", row_group_size=tdf.ROW_GROUP,
                        storage_options=tdf.storage_options(seaweed.endpoint))
    disk = tmp_path / "disk"
    disk.mkdir()
    # RAM for 16 blocks (the minimum) of 64 KiB: most reads come from disk on the second pass.
    cache = {"memory": "1MiB", "block_size": "64KiB", "disk": {"path": str(disk), "size": "64MiB"}}
    p = proxy_factory.start(seaweed.endpoint, cache=cache)
    url = f"s3://{bucket}/{key}"
    sql = "SELECT k, count(*), sum(x), max(ts) FROM read_parquet('{url}') WHERE flag GROUP BY k ORDER BY k"

    def one_pass(endpoint: str, hostport: str):
        via_pl = pl.scan_parquet(url, storage_options=tdf.storage_options(endpoint)) \
            .filter(pl.col("k") == 13).select("id", "name", "ts").collect()
        via_pa = pq.read_table(f"{bucket}/{key}", filesystem=tdf.arrow_fs(hostport), columns=["id", "x"])
        via_duck = tdf.duck(hostport).execute(sql.format(url=url)).fetchall()
        return via_pl, via_pa, via_duck

    direct = one_pass(seaweed.endpoint, seaweed.hostport)
    for round_ in range(3):
        before = counters(p)
        got = one_pass(p.endpoint, p.hostport)
        assert_frame_equal(got[0], direct[0])
        assert got[1].equals(direct[1])
        assert tdf.same_rows(got[2], direct[2])
        wait_for_disk(p, 1)
        if round_ == 2:
            moved = delta(before, counters(p))
            assert moved["fill_requests"] == 0, f"second pass went to the origin: {moved}"
    assert stats(p)["disk"]["hits"] > 0


def test_kill_9_while_filling_loses_no_byte_correctness(driver, proxy_factory, seaweed, disk_objects, tmp_path):
    bucket, keys = disk_objects
    p, _ = start_with_disk(proxy_factory, seaweed, tmp_path)
    stop = threading.Event()
    errors: list[BaseException] = []

    def load(seed: int) -> None:
        try:
            s3 = s3_client(p.endpoint)
            rng = random.Random(seed)
            while not stop.is_set():
                key = rng.choice(sorted(keys))
                first = rng.randrange(OBJECT_SIZE)
                s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{first + 2 * MiB}")["Body"].read()
        except Exception as e:  # the process is killed under it: expected
            errors.append(e)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while stats(p)["disk"]["writes"] < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stats(p)["disk"]["writes"] >= 10
    os.kill(p.pid, signal.SIGKILL)
    p.proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=30)

    q = restart(proxy_factory, p)
    recovered = stats(q)["disk"]["recovered_blocks"]
    assert recovered >= 1, stats(q)["disk"]
    # Every byte read back is right, whatever the crash left on disk.
    read_whole(q.endpoint, bucket, keys)
    read_ranges(q.endpoint, bucket, keys, seed=2, n=60)
    d = stats(q)["disk"]
    assert d["hits"] >= 1, d
    # Whatever was torn is counted, never served.
    assert q.metric_sum("rangecache_disk_checksum_failures_total") == d["checksum_failures"]


def test_a_damaged_file_is_never_served(proxy_factory, seaweed, disk_objects, tmp_path):
    bucket, keys = disk_objects
    p, disk, _ = start_warm(proxy_factory, seaweed, tmp_path, bucket, keys)
    assert p.terminate() == 0
    # Scribble over the data of ten slots.
    f = disk / FILE_NAME
    slot = 4096 + MiB
    with open(f, "r+b") as fh:
        for s in range(0, 50, 5):
            fh.seek(4096 + s * slot + 4096 + 1000)
            fh.write(b"\xde\xad\xbe\xef" * 64)
    q = restart(proxy_factory, p)
    read_whole(q.endpoint, bucket, keys)
    d = stats(q)["disk"]
    assert d["checksum_failures"] == 10, d
    assert d["hits"] >= 40, d


def test_purge_covers_the_disk_tier(proxy_factory, seaweed, disk_objects, tmp_path):
    bucket, keys = disk_objects
    p, _, _ = start_warm(proxy_factory, seaweed, tmp_path, bucket, keys)
    out = purge(p, bucket, prefix="data/")
    assert out["blocks"] >= 54, out
    assert stats(p)["disk"]["blocks"] == 0
    assert p.terminate() == 0
    q = restart(proxy_factory, p)
    assert stats(q)["disk"]["blocks"] == 0, "purged blocks do not come back after a restart"


def failed_start(proxy_factory, seaweed, path: Path) -> str:
    """Start rangecache with its disk tier in `path`, expect it to exit non-zero; its logs."""
    p = proxy_factory.create(proxy_factory.config(seaweed.endpoint, cache=disk_cache(path)))
    p.spawn()
    assert p.wait(timeout=30) != 0
    return p.stderr_path.read_text() + p.stdout_path.read_text()


def test_startup_errors_name_the_phase(proxy_factory, seaweed, tmp_path):
    (tmp_path / "file").write_text("x")
    for path, expect in ((tmp_path / "missing", "No such file"), (tmp_path / "file", "not a directory")):
        err = failed_start(proxy_factory, seaweed, path)
        assert "[open_disk_cache]" in err and str(path) in err and expect in err, err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / FILE_NAME).write_bytes(b"not ours" * 1000)
    err = failed_start(proxy_factory, seaweed, foreign)
    assert "[open_disk_cache]" in err and "not a rangecache disk cache file" in err, err
    assert (foreign / FILE_NAME).read_bytes() == b"not ours" * 1000, "a foreign file is left alone"


# --------------------------------------------------------------------------------------------
# A full file system: a 24 MiB ext4 image on a loop device (or a tmpfs), made and removed here.
# --------------------------------------------------------------------------------------------
@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    img = tmp_path / "small.img"
    mounted = None
    if os.geteuid() == 0 and shutil.which("mkfs.ext4"):
        with open(img, "wb") as fh:
            fh.truncate(24 * MiB)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True)
        r = subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], capture_output=True, text=True)
        if r.returncode == 0:
            mounted = "ext4"
    if mounted is None and os.geteuid() == 0:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)],
                           capture_output=True, text=True)
        if r.returncode == 0:
            mounted = "tmpfs"
    if mounted is None:
        pytest.skip("cannot mount a small file system here (needs root and mount rights)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        img.unlink(missing_ok=True)


def test_a_full_file_system_pauses_the_tier_and_no_client_sees_it(proxy_factory, seaweed, disk_objects,
                                                                    small_fs):
    bucket, keys = disk_objects
    # The tier may take 256 MiB; the file system has about 20.
    p = proxy_factory.start(seaweed.endpoint, cache=disk_cache(small_fs))
    warm(p.endpoint, bucket, keys)
    deadline = time.monotonic() + 30
    while stats(p)["disk"]["state"] == "active" and time.monotonic() < deadline:
        time.sleep(0.1)
    d = stats(p)["disk"]
    assert d["state"] == "full" and d["write_errors"] >= 1, d
    assert p.metric_sum("rangecache_disk_state", state="full") == 1
    # Clients never notice: every read is still right, blocks on disk still served.
    read_whole(p.endpoint, bucket, keys)
    read_ranges(p.endpoint, bucket, keys, seed=3)
    assert stats(p)["disk"]["blocks"] >= 1
    assert "file system full" in p.stderr_path.read_text() + p.stdout_path.read_text()
