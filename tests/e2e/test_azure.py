"""An Azure Blob Storage origin (Azurite, in memory, on loopback): boto3, Polars and DuckDB read
and write through rangecache, which translates S3 to the Blob REST API; every result is checked
against the same blob read with Azurite's own API (Shared Key REST, helpers/azurite.py)."""

from __future__ import annotations

import io
import os

import pytest
from botocore.exceptions import ClientError

pl = pytest.importorskip("polars")
pq = pytest.importorskip("pyarrow.parquet")
duckdb = pytest.importorskip("duckdb")
from polars.testing import assert_frame_equal  # noqa: E402

from helpers import procs  # noqa: E402
from helpers.azurite import Azurite  # noqa: E402
from helpers.clients import s3_client  # noqa: E402
from helpers.proxy import RangeCache, base_config  # noqa: E402
from test_dataframes import duck, make_frame, storage_options  # noqa: E402

BUCKET = "lake"          # what clients name
CONTAINER = "data"       # the Azure container behind it
MISSING = "ghost"        # a bucket whose container does not exist
SAS = "lake-sas"         # the same container, reached with an account SAS (from a file)
WRONG = "lake-wrong"     # the same container, with a wrong account key

pytestmark = pytest.mark.needs_binary


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    az = Azurite(tmp_path_factory.mktemp("azurite")).start()
    az.create_container(CONTAINER)
    yield az
    az.stop()


@pytest.fixture(scope="module")
def rc(azurite, tmp_path_factory):
    cfg = base_config("http://127.0.0.1:9", driver=os.environ.get("RANGECACHE_E2E_DRIVERS", "auto").split(",")[0])
    account = {"account": "devstoreaccount1", "endpoint": azurite.endpoint, "shared_key_env": "AZ_TEST_KEY"}
    workdir = tmp_path_factory.mktemp("rc-azure")
    (workdir / "sas.token").write_text("?" + azurite.account_sas() + "\n")
    sas = {"account": "devstoreaccount1", "endpoint": azurite.endpoint, "sas_file": str(workdir / "sas.token")}
    wrong = dict(account, shared_key_env="AZ_WRONG_KEY")
    cfg["bucket"] = [
        {"name": BUCKET, "backend": "azure", "azure": dict(account, container=CONTAINER)},
        {"name": MISSING, "backend": "azure", "azure": dict(account, container="nosuchcontainer")},
        {"name": SAS, "backend": "azure", "azure": dict(sas, container=CONTAINER)},
        {"name": WRONG, "backend": "azure", "azure": dict(wrong, container=CONTAINER)},
    ]
    from helpers.azurite import KEY
    p = RangeCache(workdir, cfg, env={"AZ_TEST_KEY": KEY, "AZ_WRONG_KEY": "d3Jvbmcga2V5"}).start()
    yield p
    p.terminate()


@pytest.fixture(scope="module")
def s3(rc):
    return s3_client(rc.endpoint)


def blob(azurite, key: str) -> bytes:
    status, _, body = azurite.get_blob(CONTAINER, key)
    assert status == 200, (status, body[:200])
    return body


def test_put_then_read_back_every_way(s3, azurite):
    data = os.urandom(300_000)
    put = s3.put_object(Bucket=BUCKET, Key="dir/obj one.bin", Body=data, ContentType="application/x-test",
                        Metadata={"owner": "ana"})
    assert blob(azurite, "dir/obj one.bin") == data
    _, headers, _ = azurite.get_blob(CONTAINER, "dir/obj one.bin")
    assert headers["etag"] == put["ETag"]
    assert headers["content-type"] == "application/x-test"
    assert headers["x-ms-meta-owner"] == "ana"
    head = s3.head_object(Bucket=BUCKET, Key="dir/obj one.bin")
    assert (head["ContentLength"], head["ETag"], head["Metadata"]) == (len(data), put["ETag"], {"owner": "ana"})
    assert head["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")
    for rng, want in [("bytes=10-99", data[10:100]), ("bytes=-1000", data[-1000:]),
                      ("bytes=299000-", data[299000:]), ("bytes=0-999999", data)]:
        got = s3.get_object(Bucket=BUCKET, Key="dir/obj one.bin", Range=rng)
        assert got["Body"].read() == want, rng
        assert got["ETag"] == put["ETag"]
    assert s3.get_object(Bucket=BUCKET, Key="dir/obj one.bin")["Body"].read() == data


def test_reads_of_blobs_written_by_azure(s3, azurite):
    data = os.urandom(70_000)
    azurite.put_blob(CONTAINER, "native/x.bin", data)
    assert s3.get_object(Bucket=BUCKET, Key="native/x.bin", Range="bytes=-10")["Body"].read() == data[-10:]
    assert s3.get_object(Bucket=BUCKET, Key="native/x.bin")["Body"].read() == data


def test_list_prefix_delimiter_pagination(s3, azurite):
    keys = [f"ls/a/{i:02d}" for i in range(7)] + ["ls/b/x", "ls/c", "ls/d e"]
    for k in keys:
        azurite.put_blob(CONTAINER, k, k.encode())
    got = s3.list_objects_v2(Bucket=BUCKET, Prefix="ls/", Delimiter="/")
    assert [c["Prefix"] for c in got["CommonPrefixes"]] == ["ls/a/", "ls/b/"]
    assert [o["Key"] for o in got["Contents"]] == ["ls/c", "ls/d e"]
    assert got["Contents"][0]["Size"] == 4 and got["Contents"][0]["ETag"].startswith('"')
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="ls/", PaginationConfig={"PageSize": 3}))
    assert len(pages) == 4
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == sorted(keys)
    assert all(p["IsTruncated"] for p in pages[:-1]) and not pages[-1]["IsTruncated"]
    after = s3.list_objects_v2(Bucket=BUCKET, Prefix="ls/a/", StartAfter="ls/a/04")
    assert [o["Key"] for o in after["Contents"]] == ["ls/a/05", "ls/a/06"]
    v1 = s3.list_objects(Bucket=BUCKET, Prefix="ls/a/")
    assert [o["Key"] for o in v1["Contents"]] == keys[:7]


def test_delete(s3, azurite):
    s3.put_object(Bucket=BUCKET, Key="del/me", Body=b"x")
    assert s3.delete_object(Bucket=BUCKET, Key="del/me")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert azurite.get_blob(CONTAINER, "del/me")[0] == 404
    # S3 deletes are idempotent: a missing key is 204 too.
    assert s3.delete_object(Bucket=BUCKET, Key="del/me")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_errors_are_s3_errors(s3, rc):
    for call in (lambda: s3.get_object(Bucket=BUCKET, Key="no/such/key"),
                 lambda: s3.get_object(Bucket=BUCKET, Key="no/such/key", Range="bytes=-5")):
        with pytest.raises(ClientError) as e:
            call()
        err = e.value.response
        assert err["Error"]["Code"] == "NoSuchKey"
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert err["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")
        assert err["Error"].get("Message")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=BUCKET, Key="no/such/key")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=MISSING)
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"
    s3.put_object(Bucket=BUCKET, Key="err/small", Body=b"0123456789")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=BUCKET, Key="err/small", Range="bytes=50-60")
    assert e.value.response["Error"]["Code"] == "InvalidRange"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=BUCKET, Key="err/copy", CopySource={"Bucket": BUCKET, "Key": "err/small"})
    assert e.value.response["Error"]["Code"] == "NotImplemented"
    assert s3.head_bucket(Bucket=BUCKET)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_multipart_upload(s3, azurite):
    from boto3.s3.transfer import TransferConfig

    data = os.urandom(12 * 1024 * 1024 + 12345)
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_fileobj(io.BytesIO(data), BUCKET, "mp/big.bin", Config=cfg, ExtraArgs={"ContentType": "application/x-big"})
    assert blob(azurite, "mp/big.bin") == data
    _, headers, _ = azurite.get_blob(CONTAINER, "mp/big.bin")
    assert headers["content-type"] == "application/x-big"
    out = io.BytesIO()
    s3.download_fileobj(BUCKET, "mp/big.bin", out)
    assert out.getvalue() == data
    # An aborted upload leaves nothing visible.
    up = s3.create_multipart_upload(Bucket=BUCKET, Key="mp/aborted")
    s3.upload_part(Bucket=BUCKET, Key="mp/aborted", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 100)
    s3.abort_multipart_upload(Bucket=BUCKET, Key="mp/aborted", UploadId=up["UploadId"])
    assert azurite.get_blob(CONTAINER, "mp/aborted")[0] == 404
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=BUCKET, Key="mp/x", UploadId="bogus", PartNumber=1, Body=b"x")
    assert e.value.response["Error"]["Code"] == "NoSuchUpload"


def test_polars_and_duckdb_write_and_read(rc, azurite, tmp_path):
    frame = make_frame()
    # Polars writes through rangecache (multipart, UNSIGNED-PAYLOAD) ...
    frame.write_parquet(f"s3://{BUCKET}/pq/polars.parquet", row_group_size=20_000,
                        storage_options=storage_options(rc.endpoint))
    # ... and DuckDB writes a second file through it.
    con = duck(rc.hostport)
    con.execute(f"COPY (SELECT * FROM range(100000) t(i)) TO 's3://{BUCKET}/pq/duck.parquet' (FORMAT parquet)")
    # What Azure holds, read with its own API, is what was written.
    native = pl.read_parquet(io.BytesIO(blob(azurite, "pq/polars.parquet")))
    assert_frame_equal(native, frame)
    duck_native = pq.read_table(io.BytesIO(blob(azurite, "pq/duck.parquet")))
    assert duck_native.num_rows == 100_000

    query = "SELECT k, count(*) AS n, sum(x) AS sx FROM read_parquet('{url}') WHERE id % 7 = 0 GROUP BY k ORDER BY k"
    want = duckdb.sql(query.format(url=str(_local(tmp_path, blob(azurite, "pq/polars.parquet"))))).fetchall()

    def analytics_pass():
        lazy = pl.scan_parquet(f"s3://{BUCKET}/pq/polars.parquet", storage_options=storage_options(rc.endpoint))
        got = lazy.filter(pl.col("k") < 10).select("id", "k", "x").collect()
        expect = native.filter(pl.col("k") < 10).select("id", "k", "x")
        assert_frame_equal(got, expect)
        rows = duck(rc.hostport).execute(query.format(url=f"s3://{BUCKET}/pq/polars.parquet")).fetchall()
        assert [r[:2] for r in rows] == [r[:2] for r in want]
        assert all(abs(a[2] - b[2]) <= 1e-9 * max(1.0, abs(b[2])) for a, b in zip(rows, want))
        count = duck(rc.hostport).execute(f"SELECT count(*), sum(i) FROM read_parquet('s3://{BUCKET}/pq/duck.parquet')").fetchone()
        assert count == (100_000, sum(range(100_000)))

    analytics_pass()
    gets_before = azurite.blob_gets()
    origin_before = rc.metric_sum("rangecache_origin_requests_total")
    analytics_pass()
    # The second pass is served from rangecache's cache: no Get Blob reaches Azure.
    assert azurite.blob_gets() == gets_before, "the second analytics pass sent Get Blob requests"
    assert rc.metric_sum("rangecache_origin_requests_total") == origin_before
    assert gets_before > 0, "Azurite's debug log shows no Get Blob at all: the check would be vacuous"


def _local(tmp_path, data: bytes):
    path = tmp_path / "native.parquet"
    path.write_bytes(data)
    return path


def test_sas_and_wrong_key(s3, azurite):
    data = os.urandom(5000)
    s3.put_object(Bucket=SAS, Key="sas/obj", Body=data)
    assert blob(azurite, "sas/obj") == data
    assert s3.get_object(Bucket=SAS, Key="sas/obj", Range="bytes=100-199")["Body"].read() == data[100:200]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=SAS, Prefix="sas/")["Contents"]] == ["sas/obj"]
    for call in (lambda: s3.get_object(Bucket=WRONG, Key="sas/obj"),
                 lambda: s3.put_object(Bucket=WRONG, Key="sas/other", Body=b"x")):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "AccessDenied"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert azurite.get_blob(CONTAINER, "sas/other")[0] == 404


def test_empty_object_and_conditional_reads(s3, azurite):
    put = s3.put_object(Bucket=BUCKET, Key="edge/empty", Body=b"")
    assert blob(azurite, "edge/empty") == b""
    assert s3.get_object(Bucket=BUCKET, Key="edge/empty")["Body"].read() == b""
    assert s3.head_object(Bucket=BUCKET, Key="edge/empty")["ContentLength"] == 0
    s3.put_object(Bucket=BUCKET, Key="edge/cond", Body=b"v1")
    etag = s3.head_object(Bucket=BUCKET, Key="edge/cond")["ETag"]
    assert s3.get_object(Bucket=BUCKET, Key="edge/cond", IfMatch=etag)["Body"].read() == b"v1"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=BUCKET, Key="edge/cond", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=BUCKET, Key="edge/cond", IfMatch=put["ETag"])
    assert e.value.response["Error"]["Code"] == "PreconditionFailed"
    # A write through rangecache is read back at once (its cached metadata was dropped).
    s3.put_object(Bucket=BUCKET, Key="edge/cond", Body=b"version two")
    assert s3.get_object(Bucket=BUCKET, Key="edge/cond")["Body"].read() == b"version two"
