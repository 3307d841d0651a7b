"""Analytics engines reading Parquet with range GETs: polars, pyarrow, duckdb. Through rangecache
and straight to SeaweedFS they must produce the same frames."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pafs = pytest.importorskip("pyarrow.fs")
duckdb = pytest.importorskip("duckdb")
from polars.testing import assert_frame_equal  # noqa: E402

from helpers.seaweed import ACCESS_KEY, REGION, SECRET_KEY  # noqa: E402

ROWS = 200_000
ROW_GROUP = 20_000


def make_frame() -> "pl.DataFrame":
    import datetime as dt

    n = ROWS
    return pl.DataFrame({
        "id": pl.int_range(0, n, eager=True).cast(pl.Int64),
        "x": (pl.int_range(0, n, eager=True) * 7919 % 10007).cast(pl.Float64) / 10007.0,
        "k": (pl.int_range(0, n, eager=True) % 97).cast(pl.Int32),
        "name": pl.Series([f"name-{i % 1013}-{'ü' if i % 5 == 0 else 'a'}" for i in range(n)]),
        "flag": (pl.int_range(0, n, eager=True) % 3 == 0),
        "ts": pl.datetime_range(dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1) + dt.timedelta(seconds=n - 1),
                                interval="1s", eager=True),
    })


def storage_options(endpoint: str) -> dict[str, str]:
    return {
        "aws_endpoint_url": endpoint,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "aws_region": REGION,
        "aws_allow_http": "true",
        "aws_virtual_hosted_style_request": "false",
    }


@pytest.fixture(scope="module")
def frame():
    return make_frame()


@pytest.fixture(scope="module")
def parquet_key(proxy, module_bucket, frame):
    """The frame written as multi-row-group Parquet *through the proxy* by polars."""
    key = "pq/polars.parquet"
    frame.write_parquet(f"s3://{module_bucket}/{key}", row_group_size=ROW_GROUP, statistics=True,
                        storage_options=storage_options(proxy.endpoint))
    return key


def test_polars_write_landed(parquet_key, module_bucket, seaweed, frame, direct_s3):
    head = direct_s3.head_object(Bucket=module_bucket, Key=parquet_key)
    assert head["ContentLength"] > 1_000_000
    md = pq.ParquetFile(pa.BufferReader(direct_s3.get_object(Bucket=module_bucket, Key=parquet_key)["Body"].read())).metadata
    assert md.num_rows == ROWS
    assert md.num_row_groups == ROWS // ROW_GROUP


@pytest.mark.parametrize("query", ["filter_range", "filter_cols", "full", "head"])
def test_polars_scan(proxy, seaweed, module_bucket, parquet_key, frame, query):
    def q(endpoint):
        lf = pl.scan_parquet(f"s3://{module_bucket}/{parquet_key}", storage_options=storage_options(endpoint))
        if query == "filter_range":
            lf = lf.filter(pl.col("id").is_between(50_000, 121_000) & (pl.col("x") > 0.25))
        elif query == "filter_cols":
            lf = lf.filter(pl.col("k") == 13).select("id", "name", "ts")
        elif query == "head":
            lf = lf.select("id", "flag").head(10)
        return lf.collect()

    via, direct = q(proxy.endpoint), q(seaweed.endpoint)
    assert_frame_equal(via, direct)
    if query == "full":
        assert_frame_equal(via, frame)
    assert via.height > 0


# ------------------------------------------------------------------------------------------ pyarrow
def arrow_fs(hostport: str):
    return pafs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION,
                             endpoint_override=hostport, scheme="http", force_virtual_addressing=False,
                             connect_timeout=10, request_timeout=60)


@pytest.mark.parametrize("args", [
    dict(columns=["id", "x", "name"], filters=[("id", ">=", 150_000)]),
    dict(columns=["k", "ts"], filters=[("k", "=", 42)]),
    dict(),
], ids=["cols+range", "cols+eq", "all"])
def test_pyarrow_read(proxy, seaweed, module_bucket, parquet_key, args):
    path = f"{module_bucket}/{parquet_key}"
    via = pq.read_table(path, filesystem=arrow_fs(proxy.hostport), **args)
    direct = pq.read_table(path, filesystem=arrow_fs(seaweed.hostport), **args)
    assert via.num_rows > 0
    assert via.equals(direct), f"pyarrow tables differ for {args}"


def test_pyarrow_write_and_info(proxy, seaweed, module_bucket, frame):
    table = frame.to_arrow()
    path = f"{module_bucket}/pq/pyarrow-written.parquet"
    pq.write_table(table, path, filesystem=arrow_fs(proxy.hostport), row_group_size=ROW_GROUP)
    fs_p, fs_d = arrow_fs(proxy.hostport), arrow_fs(seaweed.hostport)
    ip, id_ = fs_p.get_file_info(path), fs_d.get_file_info(path)
    assert (ip.size, ip.type) == (id_.size, id_.type)
    sel = pafs.FileSelector(f"{module_bucket}/pq", recursive=True)
    assert sorted((i.path, i.size) for i in fs_p.get_file_info(sel)) == sorted((i.path, i.size) for i in fs_d.get_file_info(sel))
    back = pq.read_table(path, filesystem=fs_d)
    assert back.equals(table)
    # random-access reads of the file through the proxy equal direct ones
    with fs_p.open_input_file(path) as fp, fs_d.open_input_file(path) as fd:
        for off, n in ((0, 4), (ip.size - 8, 8), (12345, 70000), (ip.size // 2, 1 << 20)):
            fp.seek(off)
            fd.seek(off)
            assert fp.read(n) == fd.read(n)


# ------------------------------------------------------------------------------------------ duckdb
def httpfs_extension() -> Path:
    spec = importlib.util.find_spec("duckdb_ext")
    assert spec is not None, "duckdb-ext-httpfs is not installed"
    roots = list(spec.submodule_search_locations or [])
    for root in roots:
        hits = sorted(Path(root).glob(f"extensions/v{duckdb.__version__}/*/httpfs.duckdb_extension"))
        if hits:
            return hits[0]
    raise AssertionError(f"no httpfs.duckdb_extension for duckdb {duckdb.__version__} under {roots}")


def duck(hostport: str):
    con = duckdb.connect(config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"})
    con.execute(f"LOAD '{httpfs_extension()}'")
    con.execute(f"""CREATE SECRET s3secret (TYPE s3, KEY_ID '{ACCESS_KEY}', SECRET '{SECRET_KEY}', REGION '{REGION}',
                    ENDPOINT '{hostport}', URL_STYLE 'path', USE_SSL false)""")
    return con


@pytest.mark.parametrize("sql", [
    "SELECT count(*), sum(x), sum(k) FROM read_parquet('{url}') WHERE id BETWEEN 30000 AND 170000 AND k < 50",
    "SELECT k, count(*), min(name), max(ts) FROM read_parquet('{url}') WHERE flag GROUP BY k ORDER BY k",
    "SELECT id, name FROM read_parquet('{url}') WHERE id % 9973 = 0 ORDER BY id",
    "SELECT count(*) FROM read_parquet('{url}')",
], ids=["sum", "group", "rows", "count"])
def test_duckdb(proxy, seaweed, module_bucket, parquet_key, sql):
    url = f"s3://{module_bucket}/{parquet_key}"
    via = duck(proxy.hostport).execute(sql.format(url=url)).fetchall()
    direct = duck(seaweed.hostport).execute(sql.format(url=url)).fetchall()
    assert via, "no rows"
    assert same_rows(via, direct), f"duckdb results differ:\nvia proxy: {via[:5]}\ndirect:    {direct[:5]}"


def same_rows(a, b) -> bool:
    """Equal rows; floats compared to 1e-9 relative (duckdb sums doubles in parallel, in any order)."""
    import math

    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        if len(ra) != len(rb):
            return False
        for x, y in zip(ra, rb):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True
