"""Analytics engines (polars, pyarrow, duckdb) re-running the same filtered query over a
multi-row-group Parquet file through rangecache: the first run fills the cache, the second costs
the origin nothing (no fill, no request at all with a long metadata TTL); results equal direct."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from helpers.cache_obs import MiB, counters, delta
from helpers.seaweed import ACCESS_KEY, REGION, SECRET_KEY

pytestmark = pytest.mark.needs_binary

# ============================================================================================
# Repeated analytics queries: the second run sends nothing to the origin
# ============================================================================================
pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pafs = pytest.importorskip("pyarrow.fs")
duckdb = pytest.importorskip("duckdb")
from polars.testing import assert_frame_equal  # noqa: E402

ROWS = 300_000
ROW_GROUP = 30_000


def analytics_frame() -> "pl.DataFrame":
    idx = pl.int_range(0, ROWS, eager=True)
    return pl.DataFrame({
        "id": idx.cast(pl.Int64),
        "k": (idx % 97).cast(pl.Int32),
        "h1": idx.hash(1),  # incompressible: keeps the file well above 8 MiB
        "h2": idx.hash(2),
        "x": (idx.hash(3) % 1_000_003).cast(pl.Float64) / 1_000_003.0,
        "name": idx.hash(4).cast(pl.Utf8),
    })


def storage_options(endpoint: str) -> dict[str, str]:
    return {"aws_endpoint_url": endpoint, "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY,
            "aws_region": REGION, "aws_allow_http": "true", "aws_virtual_hosted_style_request": "false"}


def arrow_fs(hostport: str):
    return pafs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION, endpoint_override=hostport,
                             scheme="http", force_virtual_addressing=False, connect_timeout=10, request_timeout=60)


def httpfs_extension() -> Path:
    spec = importlib.util.find_spec("duckdb_ext")
    assert spec is not None, "duckdb-ext-httpfs is not installed"
    for root in spec.submodule_search_locations or []:
        hits = sorted(Path(root).glob(f"extensions/v{duckdb.__version__}/*/httpfs.duckdb_extension"))
        if hits:
            return hits[0]
    raise AssertionError(f"no httpfs.duckdb_extension for duckdb {duckdb.__version__}")


def duck(hostport: str):
    con = duckdb.connect(config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"})
    con.execute(f"LOAD '{httpfs_extension()}'")
    con.execute(f"""CREATE SECRET s3secret (TYPE s3, KEY_ID '{ACCESS_KEY}', SECRET '{SECRET_KEY}', REGION '{REGION}',
                    ENDPOINT '{hostport}', URL_STYLE 'path', USE_SSL false)""")
    return con


@pytest.fixture(scope="module")
def analytics_parquet(module_bucket, seaweed, direct_s3):
    """A ~10 MiB, 10-row-group Parquet file written by polars straight to SeaweedFS."""
    key = "analytics/events.parquet"
    analytics_frame().write_parquet(f"s3://{module_bucket}/{key}", row_group_size=ROW_GROUP, statistics=True,
                                    storage_options=storage_options(seaweed.endpoint))
    size = direct_s3.head_object(Bucket=module_bucket, Key=key)["ContentLength"]
    assert size >= 8 * MiB, f"test file is only {size} bytes"
    return module_bucket, key, size


def q_polars(endpoint: str, bucket: str, key: str):
    lf = pl.scan_parquet(f"s3://{bucket}/{key}", storage_options=storage_options(endpoint))
    return (lf.filter(pl.col("id").is_between(45_000, 200_000) & (pl.col("k") < 40))
              .select("id", "k", "x", "name").collect())


def q_pyarrow(hostport: str, bucket: str, key: str):
    return pq.read_table(f"{bucket}/{key}", filesystem=arrow_fs(hostport), columns=["id", "h1", "x"],
                         filters=[("id", ">=", 120_000), ("id", "<", 250_000)])


def q_duckdb(hostport: str, bucket: str, key: str):
    con = duck(hostport)
    try:
        return con.execute(f"SELECT k, count(*), sum(x), min(name), max(h2) FROM read_parquet('s3://{bucket}/{key}') "
                           "WHERE id BETWEEN 30000 AND 260000 AND k % 3 = 0 GROUP BY k ORDER BY k").fetchall()
    finally:
        con.close()


def same_rows(a, b) -> bool:
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


def test_repeated_analytics_queries_cost_the_origin_nothing(driver, proxy_factory, seaweed, analytics_parquet,
                                                            figures):
    bucket, key, size = analytics_parquet
    p = proxy_factory.start(seaweed.endpoint, cache={"memory": "256MiB", "block_size": "1MiB",
                                                     "metadata_ttl": "1h"})
    direct = {
        "polars": q_polars(seaweed.endpoint, bucket, key),
        "pyarrow": q_pyarrow(seaweed.hostport, bucket, key),
        "duckdb": q_duckdb(seaweed.hostport, bucket, key),
    }
    run = {
        "polars": lambda: q_polars(p.endpoint, bucket, key),
        "pyarrow": lambda: q_pyarrow(p.hostport, bucket, key),
        "duckdb": lambda: q_duckdb(p.hostport, bucket, key),
    }

    def check(name, got):
        if name == "polars":
            assert_frame_equal(got, direct[name])
            assert got.height > 0
        elif name == "pyarrow":
            assert got.num_rows > 0 and got.equals(direct[name]), "pyarrow: proxy and direct tables differ"
        else:
            assert got and same_rows(got, direct[name]), f"duckdb differs:\n{got[:3]}\n{direct[name][:3]}"

    fig = {"file_bytes": size}
    for name, fn in run.items():
        c0 = counters(p)
        check(name, fn())  # first run: warms whatever is not cached yet
        c1 = counters(p)
        check(name, fn())  # second run: everything must come from the cache
        c2 = counters(p)
        warm, again = delta(c0, c1), delta(c1, c2)
        fig[name] = {"first_fill_requests": warm["fill_requests"], "first_origin_requests": warm["origin_requests"],
                     "second_fill_requests": again["fill_requests"],
                     "second_origin_requests": again["origin_requests"],
                     "second_block_hits": again["cache_block_hits"]}
        assert again["fill_requests"] == 0, f"{name}: the second run issued {again['fill_requests']:.0f} fills: {again}"
        assert again["origin_requests"] == 0, (
            f"{name}: the second run sent {again['origin_requests']:.0f} requests to the origin "
            f"(metadata_ttl is 1h, so not even a HEAD is due): {again}")
        assert again["cache_block_hits"] > 0, f"{name}: the second run read no block from the cache: {again}"
    total = counters(p)
    assert total["fill_requests"] > 0, "the first runs never filled: the cache was not used"
    # nothing was fetched twice: every fill fetched at least one block no one had before
    assert total["fill_bytes"] <= size, f"filled {total['fill_bytes']} bytes of a {size}-byte file"
    fig["fill_bytes_total"] = total["fill_bytes"]
    figures[f"cache_analytics_{driver}"] = fig
    assert p.alive()


