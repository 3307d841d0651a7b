"""Client authentication and authorization at rangecache's front door (docs/auth-spec.md).

One proxy, several keys:
  FULL    test/test, everything (what every client of the suite signs with)
  READER  read + list on DATA under "tables/" only
  WRITER  write on DATA only
  ENVKEY  read on DATA, its secret from an environment variable (secret_access_key_env)
  FILEKEY read on DATA, its secret from a file (secret_access_key_file, whitespace trimmed)
  anonymous: read on PUBLIC only.

Setup writes buckets and objects straight to SeaweedFS, so it does not depend on the proxy.
Every refusal is checked for its status, its S3 <Code>, an x-amz-request-id and the absence of
object bytes; refused reads of an object already in the cache must stay refused ("none gets a
byte from origin or cache"), refused writes must leave nothing at the origin.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from helpers import cache_obs, sigv4
from helpers.rawhttp import Closed, Conn, request_bytes
from helpers.clients import clean_aws_env, s3_client
from helpers.proxy import FULL_KEY
from helpers.seaweed import ACCESS_KEY, REGION, SECRET_KEY
from helpers.sigv4 import FULL, Creds, assert_refused

pytestmark = pytest.mark.needs_binary

MiB = 1 << 20
BIN = Path(sys.executable).parent
PID = os.getpid() % 10000
DATA = f"authdata-{PID}"
OTHER = f"authother-{PID}"
PUBLIC = f"authpublic-{PID}"

READER = Creds("AKIDREADER0000000001", "reader/secret+0123456789abcdefghijklmno")
WRITER = Creds("AKIDWRITER0000000001", "writer/secret+0123456789abcdefghijklmno")
ENVKEY = Creds("AKIDFROMENV000000001", "env-secret-0123456789abcdefghijklmnopqr")
FILEKEY = Creds("AKIDFROMFILE00000001", "file-secret-0123456789abcdefghijklmnopq")
ENV_NAME = "RC_E2E_AUTH_SECRET"

SMALL = random.Random(21).randbytes(1000)
BIG = random.Random(22).randbytes(3 * MiB + 17)
SECRET = random.Random(23).randbytes(70_000)
PUB = random.Random(24).randbytes(5000)
OTHER_BODY = random.Random(25).randbytes(4000)

OBJECTS = {
    (DATA, "tables/small.bin"): SMALL,
    (DATA, "tables/big.bin"): BIG,
    (DATA, "private/secret.bin"): SECRET,
    (OTHER, "tables/other.bin"): OTHER_BODY,
    (PUBLIC, "pub.bin"): PUB,
}


def auth_section(secret_file: Path) -> dict:
    return {
        "mode": "sigv4",
        "keys": [
            dict(FULL_KEY),
            {"access_key_id": READER.access_key, "secret_access_key": READER.secret_key,
             "grants": [{"bucket": DATA, "prefix": "tables/", "access": ["read", "list"]}]},
            {"access_key_id": WRITER.access_key, "secret_access_key": WRITER.secret_key,
             "grants": [{"bucket": DATA, "access": "write"}]},
            {"access_key_id": ENVKEY.access_key, "secret_access_key_env": ENV_NAME,
             "grants": [{"bucket": DATA, "prefix": "", "access": ["read"]}]},
            {"access_key_id": FILEKEY.access_key, "secret_access_key_file": str(secret_file),
             "grants": [{"bucket": DATA, "access": "read"}]},
        ],
        "anonymous": [{"bucket": PUBLIC, "prefix": "", "access": ["read"]}],
    }


CACHE = {"memory": "64MiB", "block_size": "1MiB", "metadata_ttl": "1h"}


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def origin(seaweed):
    """Buckets and objects, made directly at SeaweedFS."""
    d = s3_client(seaweed.endpoint)
    for b in (DATA, OTHER, PUBLIC):
        try:
            d.create_bucket(Bucket=b)
        except d.exceptions.BucketAlreadyOwnedByYou:
            pass  # the module runs again for the next io driver
    for (b, k), body in OBJECTS.items():
        d.put_object(Bucket=b, Key=k, Body=body)
    return d


@pytest.fixture(scope="module")
def ap(module_proxy_factory, driver, seaweed, origin, tmp_path_factory):
    """The auth proxy, once per io driver (bodies are verified while they stream)."""
    secret_file = tmp_path_factory.mktemp("secrets") / "filekey"
    secret_file.write_text(f"  {FILEKEY.secret_key}\n\n")
    return module_proxy_factory.start(seaweed.endpoint, env={ENV_NAME: ENVKEY.secret_key}, cache=CACHE,
                                      auth=auth_section(secret_file), server={"io_driver": driver})


def client(p, creds: Creds = FULL, **kw):
    return s3_client(p.endpoint, access_key=creds.access_key, secret_key=creds.secret_key,
                     session_token=creds.session_token, **kw)


def absent(origin, bucket: str, key: str) -> None:
    """Nothing was stored under bucket/key at the origin (after a moment for an upload the proxy
    may have started and abandoned to settle there)."""
    time.sleep(0.2)
    try:
        got = origin.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        assert e.response["Error"]["Code"] in ("404", "NoSuchKey"), e.response
        return
    raise AssertionError(f"{bucket}/{key} exists at the origin ({got['ContentLength']} bytes) after a refused write")


def client_error(fn, status: int, code: str) -> ClientError:
    """fn() must raise the S3 error `code` with `status` and an x-amz-request-id."""
    with pytest.raises(ClientError) as ei:
        out = fn()
        if isinstance(out, dict) and "Body" in out:
            out["Body"].read()
    e = ei.value
    md = e.response.get("ResponseMetadata", {})
    assert (md.get("HTTPStatusCode"), e.response["Error"]["Code"]) == (status, code), e.response
    assert md.get("HTTPHeaders", {}).get("x-amz-request-id"), f"no x-amz-request-id: {md}"
    return e


# ------------------------------------------------------------------------------------------ the signer itself
@pytest.mark.parametrize("trailer", [False, True], ids=["chunks", "chunks+trailer"])
def test_raw_signer_is_accepted_by_the_origin(seaweed, origin, trailer):
    """helpers/sigv4.py signs as SeaweedFS (which enforces SigV4) expects, including chunk
    signatures: so what rangecache refuses below is refused because of the tampering."""
    h = seaweed.hostport
    r = sigv4.request(h, "GET", DATA, "tables/small.bin", headers=[("Range", "bytes=10-19")])
    assert (r.status, r.body) == (206, SMALL[10:20]), sigv4.describe(r)
    assert sigv4.request(h, "GET", DATA, "tables/small.bin", creds=Creds(ACCESS_KEY, "wrong")).status == 403
    data = random.Random(3).randbytes(150_000)
    key = f"signer-check/{trailer}"
    r = sigv4.put_signed_chunked(h, DATA, key, data, trailer=trailer)
    assert r.status == 200, sigv4.describe(r)
    assert origin.get_object(Bucket=DATA, Key=key)["Body"].read() == data
    r = sigv4.put_signed_chunked(h, DATA, key + "-bad", data, trailer=trailer, tamper="chunk-sig-first")
    assert r.status >= 400, sigv4.describe(r)


# ------------------------------------------------------------------------------------------ real clients
def test_boto3_full_key(ap, origin):
    c = client(ap)
    assert c.get_object(Bucket=DATA, Key="tables/small.bin")["Body"].read() == SMALL
    assert c.head_object(Bucket=DATA, Key="tables/big.bin")["ContentLength"] == len(BIG)
    got = c.get_object(Bucket=DATA, Key="tables/big.bin", Range="bytes=1048570-2097160")
    assert got["Body"].read() == BIG[1048570:2097161]
    assert got["ContentRange"] == f"bytes 1048570-2097160/{len(BIG)}"
    body = random.Random(31).randbytes(70_000)
    c.put_object(Bucket=DATA, Key="full/put.bin", Body=body)
    assert origin.get_object(Bucket=DATA, Key="full/put.bin")["Body"].read() == body
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=DATA, Prefix="tables/")["Contents"]]
    assert {"tables/small.bin", "tables/big.bin"} <= set(keys)
    assert {DATA, OTHER, PUBLIC} <= {b["Name"] for b in c.list_buckets()["Buckets"]}

    # multipart: two 5 MiB parts and a tail
    parts_data = [random.Random(40 + i).randbytes(n) for i, n in enumerate((5 * MiB, 5 * MiB, 12345))]
    mp = c.create_multipart_upload(Bucket=DATA, Key="full/multi.bin")
    parts = []
    for i, pd in enumerate(parts_data, 1):
        r = c.upload_part(Bucket=DATA, Key="full/multi.bin", UploadId=mp["UploadId"], PartNumber=i, Body=pd)
        parts.append({"PartNumber": i, "ETag": r["ETag"]})
    listed = c.list_parts(Bucket=DATA, Key="full/multi.bin", UploadId=mp["UploadId"])
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    c.complete_multipart_upload(Bucket=DATA, Key="full/multi.bin", UploadId=mp["UploadId"],
                                MultipartUpload={"Parts": parts})
    assert origin.get_object(Bucket=DATA, Key="full/multi.bin")["Body"].read() == b"".join(parts_data)

    # copy (read on the source, write on the destination)
    c.copy_object(Bucket=DATA, Key="full/copy.bin", CopySource={"Bucket": DATA, "Key": "tables/small.bin"})
    assert origin.get_object(Bucket=DATA, Key="full/copy.bin")["Body"].read() == SMALL
    c.delete_object(Bucket=DATA, Key="full/copy.bin")
    absent(origin, DATA, "full/copy.bin")


def test_boto3_reader_key(ap, origin):
    c = client(ap, READER)
    assert c.get_object(Bucket=DATA, Key="tables/small.bin")["Body"].read() == SMALL
    assert c.get_object(Bucket=DATA, Key="tables/big.bin", Range="bytes=-100")["Body"].read() == BIG[-100:]
    assert c.head_object(Bucket=DATA, Key="tables/big.bin")["ContentLength"] == len(BIG)
    keys = {o["Key"] for o in c.list_objects_v2(Bucket=DATA, Prefix="tables/")["Contents"]}
    assert {"tables/small.bin", "tables/big.bin"} <= keys
    assert not any(k.startswith("private/") for k in keys)
    v1 = {o["Key"] for o in c.list_objects(Bucket=DATA, Prefix="tables/b")["Contents"]}
    assert v1 == {"tables/big.bin"}

    # outside its grants
    client_error(lambda: c.get_object(Bucket=DATA, Key="private/secret.bin"), 403, "AccessDenied")
    client_error(lambda: c.head_object(Bucket=DATA, Key="private/secret.bin"), 403, "403")
    client_error(lambda: c.get_object(Bucket=OTHER, Key="tables/other.bin"), 403, "AccessDenied")
    client_error(lambda: c.put_object(Bucket=DATA, Key="tables/new.bin", Body=b"nope"), 403, "AccessDenied")
    absent(origin, DATA, "tables/new.bin")
    client_error(lambda: c.delete_object(Bucket=DATA, Key="tables/small.bin"), 403, "AccessDenied")
    assert origin.head_object(Bucket=DATA, Key="tables/small.bin")["ContentLength"] == len(SMALL)
    client_error(lambda: c.create_multipart_upload(Bucket=DATA, Key="tables/mp.bin"), 403, "AccessDenied")
    client_error(lambda: c.copy_object(Bucket=DATA, Key="tables/copy.bin",
                                       CopySource={"Bucket": DATA, "Key": "tables/small.bin"}), 403, "AccessDenied")
    absent(origin, DATA, "tables/copy.bin")
    client_error(lambda: c.list_objects_v2(Bucket=DATA), 403, "AccessDenied")
    client_error(lambda: c.list_objects_v2(Bucket=DATA, Prefix="tab"), 403, "AccessDenied")
    client_error(lambda: c.list_objects_v2(Bucket=DATA, Prefix="private/"), 403, "AccessDenied")
    client_error(lambda: c.list_objects(Bucket=DATA), 403, "AccessDenied")
    client_error(lambda: c.list_objects_v2(Bucket=OTHER, Prefix="tables/"), 403, "AccessDenied")
    client_error(lambda: c.list_buckets(), 403, "AccessDenied")


def test_boto3_writer_key(ap, origin):
    c = client(ap, WRITER)
    body = random.Random(51).randbytes(123_456)
    c.put_object(Bucket=DATA, Key="uploads/w.bin", Body=body)
    assert origin.get_object(Bucket=DATA, Key="uploads/w.bin")["Body"].read() == body
    # write on the destination is not enough for a copy: it needs read on the source
    client_error(lambda: c.copy_object(Bucket=DATA, Key="uploads/copy.bin",
                                       CopySource={"Bucket": DATA, "Key": "private/secret.bin"}), 403, "AccessDenied")
    absent(origin, DATA, "uploads/copy.bin")
    client_error(lambda: c.get_object(Bucket=DATA, Key="uploads/w.bin"), 403, "AccessDenied")
    client_error(lambda: c.get_object(Bucket=DATA, Key="tables/small.bin"), 403, "AccessDenied")
    client_error(lambda: c.list_objects_v2(Bucket=DATA, Prefix="uploads/"), 403, "AccessDenied")
    client_error(lambda: c.put_object(Bucket=OTHER, Key="w.bin", Body=b"x"), 403, "AccessDenied")
    absent(origin, OTHER, "w.bin")
    c.delete_object(Bucket=DATA, Key="uploads/w.bin")
    absent(origin, DATA, "uploads/w.bin")


@pytest.mark.parametrize("creds", [ENVKEY, FILEKEY], ids=["secret_access_key_env", "secret_access_key_file"])
def test_secret_from_env_and_file(ap, creds):
    c = client(ap, creds)
    assert c.get_object(Bucket=DATA, Key="private/secret.bin")["Body"].read() == SECRET
    bad = client(ap, Creds(creds.access_key, creds.secret_key + "x"))
    client_error(lambda: bad.get_object(Bucket=DATA, Key="private/secret.bin"), 403, "SignatureDoesNotMatch")
    # the file's surrounding whitespace is not part of the secret
    padded = client(ap, Creds(creds.access_key, f"  {creds.secret_key}\n"))
    client_error(lambda: padded.get_object(Bucket=DATA, Key="private/secret.bin"), 403, "SignatureDoesNotMatch")


def run(cmd: list[str], env: dict, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}\nstdout: {r.stdout[-3000:]!r}\n"
                             f"stderr: {r.stderr[-3000:]!r}")
    return r


def test_awscli(ap, origin, tmp_path):
    def aws(creds: Creds, *args, check=True):
        env = clean_aws_env(tmp_path / f"aws-{creds.access_key}", creds.access_key, creds.secret_key)
        return run([str(BIN / "aws"), "--endpoint-url", ap.endpoint, *args], env, check=check)

    data = random.Random(61).randbytes(9 * MiB + 7)  # > 8 MiB: a multipart upload
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    aws(WRITER, "s3", "cp", str(src), f"s3://{DATA}/uploads/cli.bin")
    assert origin.get_object(Bucket=DATA, Key="uploads/cli.bin")["Body"].read() == data
    small = tmp_path / "small.txt"
    small.write_bytes(b"small via awscli\n")
    aws(FULL, "s3", "cp", str(small), f"s3://{DATA}/tables/cli-small.txt")
    assert origin.get_object(Bucket=DATA, Key="tables/cli-small.txt")["Body"].read() == small.read_bytes()

    out = aws(READER, "s3", "ls", f"s3://{DATA}/tables/").stdout.decode()
    assert "big.bin" in out and "cli-small.txt" in out, out
    dst = tmp_path / "down.bin"
    aws(READER, "s3", "cp", f"s3://{DATA}/tables/big.bin", str(dst))
    assert dst.read_bytes() == BIG
    assert "cli.bin" in aws(FULL, "s3", "ls", f"s3://{DATA}/uploads/").stdout.decode()
    assert PUBLIC in aws(FULL, "s3", "ls").stdout.decode()

    for args in (["s3", "ls", f"s3://{DATA}/"], ["s3", "ls"]):
        r = aws(READER, *args, check=False)
        assert r.returncode != 0 and b"AccessDenied" in r.stderr, (args, r.stdout, r.stderr)
    r = aws(READER, "s3", "cp", f"s3://{DATA}/private/secret.bin", str(tmp_path / "nope.bin"), check=False)
    assert r.returncode != 0 and b"403" in r.stderr, r.stderr
    assert not (tmp_path / "nope.bin").exists() or (tmp_path / "nope.bin").read_bytes() != SECRET
    r = aws(READER, "s3", "cp", str(small), f"s3://{DATA}/tables/by-reader.txt", check=False)
    assert r.returncode != 0 and b"AccessDenied" in r.stderr, r.stderr
    absent(origin, DATA, "tables/by-reader.txt")
    r = aws(Creds(READER.access_key, "wrong"), "s3", "ls", f"s3://{DATA}/tables/", check=False)
    assert r.returncode != 0 and b"SignatureDoesNotMatch" in r.stderr, r.stderr


def test_s5cmd(ap, origin, tmp_path):
    def s5(creds: Creds, *args, check=True):
        env = clean_aws_env(tmp_path / f"s5-{creds.access_key}", creds.access_key, creds.secret_key)
        return run([str(BIN / "s5cmd"), "--endpoint-url", ap.endpoint, "--retry-count", "0", *args], env, check=check)

    body = random.Random(71).randbytes(6 * MiB + 1)
    (tmp_path / "s5.bin").write_bytes(body)
    s5(FULL, "cp", str(tmp_path / "s5.bin"), f"s3://{DATA}/tables/s5.bin")
    assert origin.get_object(Bucket=DATA, Key="tables/s5.bin")["Body"].read() == body
    s5(WRITER, "cp", str(tmp_path / "s5.bin"), f"s3://{DATA}/uploads/s5.bin")
    assert origin.get_object(Bucket=DATA, Key="uploads/s5.bin")["Body"].read() == body

    out = s5(READER, "ls", f"s3://{DATA}/tables/").stdout.decode()
    assert "s5.bin" in out and "small.bin" in out, out
    down = tmp_path / "down"
    down.mkdir()
    s5(READER, "cp", f"s3://{DATA}/tables/s5.bin", str(down) + "/")
    assert (down / "s5.bin").read_bytes() == body
    assert s5(READER, "cat", f"s3://{DATA}/tables/small.bin").stdout == SMALL
    assert DATA in s5(FULL, "ls").stdout.decode()

    r = s5(READER, "cat", f"s3://{DATA}/private/secret.bin", check=False)
    assert r.returncode != 0 and SECRET[:32] not in r.stdout, r.stderr
    assert b"AccessDenied" in r.stderr or b"403" in r.stderr, r.stderr
    r = s5(READER, "cp", str(tmp_path / "s5.bin"), f"s3://{DATA}/tables/s5-by-reader.bin", check=False)
    assert r.returncode != 0, r.stdout
    absent(origin, DATA, "tables/s5-by-reader.bin")
    r = s5(READER, "ls", check=False)
    assert r.returncode != 0 and b"AccessDenied" in r.stderr, r.stderr


# ------------------------------------------------------------------------------------------ dataframes
@pytest.fixture(scope="module")
def parquet(origin):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 60_000
    table = pa.table({"id": pa.array(range(n), pa.int64()), "k": pa.array([i % 97 for i in range(n)], pa.int32()),
                      "name": pa.array([f"n{i % 1013}" for i in range(n)])})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=10_000)
    origin.put_object(Bucket=DATA, Key="tables/t.parquet", Body=buf.getvalue())
    origin.put_object(Bucket=DATA, Key="private/t.parquet", Body=buf.getvalue())
    return table


def test_polars_reader_key(ap, parquet):
    import polars as pl

    opts = {"aws_endpoint_url": ap.endpoint, "aws_access_key_id": READER.access_key,
            "aws_secret_access_key": READER.secret_key, "aws_region": REGION, "aws_allow_http": "true",
            "aws_virtual_hosted_style_request": "false"}
    df = pl.scan_parquet(f"s3://{DATA}/tables/t.parquet", storage_options=opts).filter(pl.col("k") == 13).collect()
    assert df.height == sum(1 for i in range(parquet.num_rows) if i % 97 == 13)
    assert pl.read_parquet(f"s3://{DATA}/tables/t.parquet", storage_options=opts).height == parquet.num_rows
    with pytest.raises(Exception) as ei:
        pl.read_parquet(f"s3://{DATA}/private/t.parquet", storage_options=opts)
    assert "403" in str(ei.value) or "AccessDenied" in str(ei.value) or "Forbidden" in str(ei.value), ei.value


def test_pyarrow_reader_key(ap, parquet):
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    fs = pafs.S3FileSystem(access_key=READER.access_key, secret_key=READER.secret_key, region=REGION,
                           endpoint_override=ap.hostport, scheme="http", force_virtual_addressing=False,
                           connect_timeout=10, request_timeout=60)
    got = pq.read_table(f"{DATA}/tables/t.parquet", filesystem=fs, columns=["id", "k"], filters=[("id", ">=", 45_000)])
    assert got.num_rows == 15_000
    assert pq.read_table(f"{DATA}/tables/t.parquet", filesystem=fs).equals(parquet)
    with pytest.raises(OSError) as ei:
        pq.read_table(f"{DATA}/private/t.parquet", filesystem=fs)
    assert "403" in str(ei.value) or "AccessDenied" in str(ei.value) or "ACCESS_DENIED" in str(ei.value), ei.value


def test_duckdb_reader_key(ap, parquet):
    duckdb = pytest.importorskip("duckdb")
    from test_dataframes import httpfs_extension

    con = duckdb.connect(config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"})
    con.execute(f"LOAD '{httpfs_extension()}'")
    con.execute(f"""CREATE SECRET s3secret (TYPE s3, KEY_ID '{READER.access_key}', SECRET '{READER.secret_key}',
                    REGION '{REGION}', ENDPOINT '{ap.hostport}', URL_STYLE 'path', USE_SSL false)""")
    rows = con.execute(f"SELECT count(*), sum(id) FROM read_parquet('s3://{DATA}/tables/t.parquet') WHERE k = 5").fetchall()
    ids = [i for i in range(parquet.num_rows) if i % 97 == 5]
    assert rows == [(len(ids), sum(ids))]
    with pytest.raises(Exception) as ei:
        con.execute(f"SELECT count(*) FROM read_parquet('s3://{DATA}/private/t.parquet')").fetchall()
    assert "403" in str(ei.value) or "AccessDenied" in str(ei.value) or "Forbidden" in str(ei.value), ei.value


# ------------------------------------------------------------------------------------------ presigned URLs
def curl(url: str, tmp: Path, *extra: str) -> tuple[int, dict[str, str], bytes]:
    out, hdr = tmp / f"curl-{time.monotonic_ns()}.out", tmp / f"curl-{time.monotonic_ns()}.hdr"
    r = subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", "60", "-o", str(out), "-D", str(hdr),
                        "-w", "%{http_code}", *extra, url], capture_output=True, timeout=90)
    assert r.returncode == 0, r.stderr
    headers = {}
    for line in hdr.read_text(errors="replace").splitlines()[1:]:
        k, _, v = line.partition(":")
        if v:
            headers[k.strip().lower()] = v.strip()
    return int(r.stdout), headers, out.read_bytes() if out.exists() else b""


def assert_curl_refused(got, status: int, code: str, secret: bytes | None = None):
    st, headers, body = got
    assert st == status, (st, headers, body[:500])
    assert f"<Code>{code}</Code>".encode() in body, body[:500]
    assert headers.get("x-amz-request-id"), headers
    if secret:
        assert secret[:32] not in body


def test_presigned_get_and_put_with_curl(ap, origin, tmp_path):
    c = client(ap)
    url = c.generate_presigned_url("get_object", Params={"Bucket": DATA, "Key": "tables/big.bin"}, ExpiresIn=300)
    st, _, body = curl(url, tmp_path)
    assert st == 200 and body == BIG, (st, len(body))
    st, _, body = curl(url, tmp_path, "-H", "Range: bytes=100-199")  # Range is not signed: allowed
    assert st == 206 and body == BIG[100:200], (st, body[:100])

    up = tmp_path / "presigned-put.bin"
    up.write_bytes(random.Random(81).randbytes(2 * MiB + 3))
    put_url = c.generate_presigned_url("put_object", Params={"Bucket": DATA, "Key": "uploads/presigned.bin"},
                                       ExpiresIn=300)
    st, _, body = curl(put_url, tmp_path, "-T", str(up))
    assert st == 200, (st, body[:500])
    assert origin.get_object(Bucket=DATA, Key="uploads/presigned.bin")["Body"].read() == up.read_bytes()

    # the reader's presigned URL is bound by the reader's grants
    rc = client(ap, READER)
    ok = rc.generate_presigned_url("get_object", Params={"Bucket": DATA, "Key": "tables/small.bin"}, ExpiresIn=300)
    st, _, body = curl(ok, tmp_path)
    assert (st, body) == (200, SMALL)
    denied = rc.generate_presigned_url("get_object", Params={"Bucket": DATA, "Key": "private/secret.bin"},
                                       ExpiresIn=300)
    assert_curl_refused(curl(denied, tmp_path), 403, "AccessDenied", SECRET)
    put_denied = rc.generate_presigned_url("put_object", Params={"Bucket": DATA, "Key": "tables/presigned-r.bin"},
                                           ExpiresIn=300)
    assert_curl_refused(curl(put_denied, tmp_path, "-T", str(up)), 403, "AccessDenied")
    absent(origin, DATA, "tables/presigned-r.bin")


def test_presigned_tampered_and_expired(ap, origin, tmp_path):
    c = client(ap)
    # warm the cache: the refusals below must not be served from it
    assert c.get_object(Bucket=DATA, Key="tables/big.bin")["Body"].read() == BIG
    url = c.generate_presigned_url("get_object", Params={"Bucket": DATA, "Key": "tables/big.bin"}, ExpiresIn=300)
    assert curl(url, tmp_path)[0] == 200

    assert_curl_refused(curl(url + "&extra=1", tmp_path), 403, "SignatureDoesNotMatch", BIG)
    assert_curl_refused(curl(url + "&partNumber=1", tmp_path), 403, "SignatureDoesNotMatch", BIG)
    i = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    flipped = url[:i] + ("0" if url[i] != "0" else "1") + url[i + 1:]
    assert_curl_refused(curl(flipped, tmp_path), 403, "SignatureDoesNotMatch", BIG)
    other_key = url.replace("/tables/big.bin?", "/tables/small.bin?")
    assert other_key != url
    assert_curl_refused(curl(other_key, tmp_path), 403, "SignatureDoesNotMatch", SMALL)
    # a presigned GET used for a PUT
    assert_curl_refused(curl(url, tmp_path, "-X", "PUT", "--data-binary", "overwrite"), 403, "SignatureDoesNotMatch")
    assert origin.get_object(Bucket=DATA, Key="tables/big.bin")["Body"].read() == BIG

    expiring = c.generate_presigned_url("get_object", Params={"Bucket": DATA, "Key": "tables/big.bin"}, ExpiresIn=1)
    put_expiring = c.generate_presigned_url("put_object", Params={"Bucket": DATA, "Key": "uploads/expired.bin"},
                                            ExpiresIn=1)
    time.sleep(2.5)
    assert_curl_refused(curl(expiring, tmp_path), 403, "AccessDenied", BIG)
    assert_curl_refused(curl(put_expiring, tmp_path, "-X", "PUT", "--data-binary", "late"), 403, "AccessDenied")
    absent(origin, DATA, "uploads/expired.bin")


# ------------------------------------------------------------------------------------------ streaming uploads
def test_boto3_streaming_trailer_upload(ap, origin, monkeypatch):
    """botocore's own aws-chunked encoder: STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer
    (request_checksum_calculation="when_supported", a stream body). botocore only does this over
    https (payload signing is always on over http), so it is told the endpoint is https for the
    checksum decision; what goes on the wire is checked below."""
    import botocore.httpchecksum as hc

    real = hc.urlparse
    monkeypatch.setattr(hc, "urlparse", lambda u, *a, **k: real(u, *a, **k)._replace(scheme="https"))
    seen = []
    for creds, key in ((FULL, "tables/stream-full.bin"), (WRITER, "uploads/stream-writer.bin")):
        c = client(ap, creds, request_checksum_calculation="when_supported")
        c.meta.events.register("before-send.s3.PutObject", lambda request, **kw: seen.append(dict(request.headers)))
        data = random.Random(hash(key) & 0xFFFF).randbytes(1 * MiB + 333)
        c.put_object(Bucket=DATA, Key=key, Body=io.BytesIO(data))
        assert origin.get_object(Bucket=DATA, Key=key)["Body"].read() == data
        sent = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in seen[-1].items()}
        assert sent["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", sent
        assert sent["x-amz-trailer"] == "x-amz-checksum-crc32" and "aws-chunked" in sent["content-encoding"], sent
    # the reader may not write, streaming or not
    c = client(ap, READER, request_checksum_calculation="when_supported")
    client_error(lambda: c.put_object(Bucket=DATA, Key="tables/stream-reader.bin", Body=io.BytesIO(b"x" * 1000)),
                 403, "AccessDenied")
    absent(origin, DATA, "tables/stream-reader.bin")


STREAM_DATA = random.Random(91).randbytes(300_000 + 11)
# A body that arrives whole with the head, and one that streams in many pieces.
SIZES = {"small": STREAM_DATA[:100], "large": STREAM_DATA}


@pytest.mark.parametrize("trailer", [False, True], ids=["signed-chunks", "signed-chunks+trailer"])
def test_signed_chunked_upload(ap, origin, trailer):
    key = f"uploads/chunked-ok-{trailer}.bin"
    r = sigv4.put_signed_chunked(ap.hostport, DATA, key, STREAM_DATA, trailer=trailer)
    assert r.status == 200, sigv4.describe(r)
    got = origin.get_object(Bucket=DATA, Key=key)
    assert got["Body"].read() == STREAM_DATA
    assert got.get("ContentEncoding") in (None, ""), got.get("ContentEncoding")


def test_unsigned_trailer_upload(ap, origin):
    r = sigv4.put_unsigned_trailer(ap.hostport, DATA, "uploads/ut-ok.bin", STREAM_DATA)
    assert r.status == 200, sigv4.describe(r)
    assert origin.get_object(Bucket=DATA, Key="uploads/ut-ok.bin")["Body"].read() == STREAM_DATA


SIG = (403, "SignatureDoesNotMatch")
BAD_CHUNKED = {
    # (trailer, tamper): acceptable (status, code)s
    (False, "chunk-sig-first"): [SIG],
    (False, "chunk-sig-last"): [SIG],
    (False, "chunk-sig-final"): [SIG],
    (False, "chunk-body-first"): [SIG],
    (False, "chunk-body-last"): [SIG],
    (True, "chunk-sig-first"): [SIG],
    (True, "chunk-sig-final"): [SIG],
    (True, "chunk-body-last"): [SIG],
    (True, "trailer-sig"): [SIG],
    (True, "trailer-value"): [(400, "BadDigest")],
    (True, "drop-trailer-sig"): [(400, "MalformedTrailerError"), SIG],
}


# (one chunk: "-last" is the same as "-first" for the small body)
CHUNKED_CASES = [(c, size) for c in BAD_CHUNKED for size in SIZES
                 if not (size == "small" and c[1] in ("chunk-sig-last", "chunk-body-last"))]


@pytest.mark.parametrize("case,size", CHUNKED_CASES,
                         ids=[f"{'trailer' if c[0] else 'chunks'}-{c[1]}-{size}" for c, size in CHUNKED_CASES])
def test_tampered_signed_chunked_upload_is_refused(ap, origin, case, size):
    trailer, tamper = case
    data = SIZES[size]
    key = f"uploads/chunked-bad-{trailer}-{tamper}-{size}.bin"
    r = sigv4.put_signed_chunked(ap.hostport, DATA, key, data, trailer=trailer, tamper=tamper)
    want = BAD_CHUNKED[case]
    assert (r.status, sigv4.error_code(r)) in want, f"want one of {want}: {sigv4.describe(r)}"
    assert r.header("x-amz-request-id"), sigv4.describe(r)
    absent(origin, DATA, key)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("tamper", ["wrong-crc", "chunk-body-first"])
def test_bad_unsigned_trailer_upload_is_refused(ap, origin, tamper, size):
    key = f"uploads/ut-bad-{tamper}-{size}.bin"
    if tamper == "wrong-crc":
        r = sigv4.put_unsigned_trailer(ap.hostport, DATA, key, SIZES[size], checksum=sigv4.crc32_b64(b"other"))
    else:
        r = sigv4.put_unsigned_trailer(ap.hostport, DATA, key, SIZES[size], tamper=tamper)
    assert_refused(r, 400, "BadDigest")
    absent(origin, DATA, key)


@pytest.mark.parametrize("size", [11, 20_000, 2 * MiB + 5])
def test_payload_sha256_mismatch_is_refused(ap, origin, size):
    body = random.Random(size).randbytes(size)
    key = f"uploads/sha-mismatch-{size}-{ap.port}.bin"
    wrong = sigv4.sha256_hex(body[:-1] + bytes([body[-1] ^ 1]))
    r = sigv4.request(ap.hostport, "PUT", DATA, key, body, payload_hash=wrong)
    assert_refused(r, 400, "XAmzContentSHA256Mismatch")
    absent(origin, DATA, key)
    # and the same with the right hash goes through
    r = sigv4.request(ap.hostport, "PUT", DATA, key, body)
    assert r.status == 200, sigv4.describe(r)
    assert origin.get_object(Bucket=DATA, Key=key)["Body"].read() == body


# ------------------------------------------------------------------------------------------ refusals
def skewed(minutes: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)


def tampered_sig(h: str, key: str, method: str):
    s = sigv4.sign(method, sigv4.object_path(DATA, key), h)
    auth = s.header("Authorization")
    bad = auth[:-1] + ("0" if auth[-1] != "0" else "1")
    return sigv4.send(h, s, headers=s.with_header("Authorization", bad))


def changed_range(h: str, key: str, method: str):
    s = sigv4.sign(method, sigv4.object_path(DATA, key), h, [("Range", "bytes=0-99")])
    return sigv4.send(h, s, headers=s.with_header("Range", "bytes=0-199"))


def dropped_range(h: str, key: str, method: str):
    s = sigv4.sign(method, sigv4.object_path(DATA, key), h, [("Range", "bytes=0-99")])
    return sigv4.send(h, s, headers=[(k, v) for k, v in s.headers if k != "Range"])


def changed_path(h: str, key: str, method: str):
    """Signed for tables/small.bin (which the reader may read), sent for the target key."""
    s = sigv4.sign(method, sigv4.object_path(DATA, "tables/small.bin"), h, creds=READER)
    s.path = sigv4.object_path(DATA, key)
    return sigv4.send(h, s)


def added_query(h: str, key: str, method: str):
    s = sigv4.sign(method, sigv4.object_path(DATA, key), h)
    s.query = "partNumber=1"
    return sigv4.send(h, s)


def no_content_sha(h: str, key: str, method: str):
    s = sigv4.sign(method, sigv4.object_path(DATA, key), h)
    return sigv4.send(h, s, headers=[(k, v) for k, v in s.headers if k.lower() != "x-amz-content-sha256"])


REFUSALS = {
    "wrong-secret": (lambda h, k, m: sigv4.request(h, m, DATA, k, creds=Creds(ACCESS_KEY, "not-the-secret")),
                     403, "SignatureDoesNotMatch"),
    "unknown-key": (lambda h, k, m: sigv4.request(h, m, DATA, k, creds=Creds("AKIDUNKNOWN000000000", SECRET_KEY)),
                    403, "InvalidAccessKeyId"),
    "tampered-signature": (tampered_sig, 403, "SignatureDoesNotMatch"),
    "range-changed-after-signing": (changed_range, 403, "SignatureDoesNotMatch"),
    "signed-range-dropped": (dropped_range, 403, "SignatureDoesNotMatch"),
    "path-changed-after-signing": (changed_path, 403, "SignatureDoesNotMatch"),
    "query-added-after-signing": (added_query, 403, "SignatureDoesNotMatch"),
    "clock-20min-behind": (lambda h, k, m: sigv4.request(h, m, DATA, k, when=skewed(-20)), 403, "RequestTimeTooSkewed"),
    "clock-20min-ahead": (lambda h, k, m: sigv4.request(h, m, DATA, k, when=skewed(20)), 403, "RequestTimeTooSkewed"),
    "reader-outside-prefix": (lambda h, k, m: sigv4.request(h, m, DATA, k, creds=READER), 403, "AccessDenied"),
    "writer-reads": (lambda h, k, m: sigv4.request(h, m, DATA, k, creds=WRITER), 403, "AccessDenied"),
    "anonymous-private-bucket": (lambda h, k, m: sigv4.anonymous(h, m, DATA, k), 403, "AccessDenied"),
    "missing-content-sha256": (no_content_sha, 400, "InvalidRequest"),
}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("name", list(REFUSALS))
def test_refused_read_of_cached_object(ap, origin, name, method):
    """The object is in the cache (read with the full key first); the bad request still gets
    nothing, and nothing is asked of the origin for it."""
    key = "private/secret.bin"
    fn, status, code = REFUSALS[name]
    warm = sigv4.request(ap.hostport, "GET", DATA, key)
    assert warm.status == 200 and warm.body == SECRET, sigv4.describe(warm)
    assert sigv4.request(ap.hostport, "GET", DATA, key).body == SECRET
    before = cache_obs.counters(ap)
    r = fn(ap.hostport, key, method)
    assert_refused(r, status, code, SECRET, method=method)
    after = cache_obs.delta(before, cache_obs.counters(ap))
    assert after["origin_requests"] == 0, f"a refused request went to the origin: {after}"
    assert after["cache_block_hits"] == 0, f"a refused request read cached blocks: {after}"


def test_skew_within_15_minutes_is_accepted(ap):
    for minutes in (-10, 10):
        r = sigv4.request(ap.hostport, "GET", DATA, "tables/small.bin", when=skewed(minutes))
        assert (r.status, r.body) == (200, SMALL), (minutes, sigv4.describe(r))


def test_anonymous_grants(ap, origin):
    h = ap.hostport
    r = sigv4.anonymous(h, "GET", PUBLIC, "pub.bin")
    assert (r.status, r.body) == (200, PUB), sigv4.describe(r)
    r = sigv4.anonymous(h, "GET", PUBLIC, "pub.bin", headers=[("Range", "bytes=10-19")])
    assert (r.status, r.body) == (206, PUB[10:20]), sigv4.describe(r)
    assert sigv4.anonymous(h, "HEAD", PUBLIC, "pub.bin").status == 200
    assert_refused(sigv4.anonymous(h, "GET", DATA, "tables/small.bin"), 403, "AccessDenied", SMALL)
    assert_refused(sigv4.anonymous(h, "GET", OTHER, "tables/other.bin"), 403, "AccessDenied", OTHER_BODY)
    assert_refused(sigv4.anonymous(h, "PUT", PUBLIC, "anon-put.bin", body=b"anonymous write"), 403, "AccessDenied")
    absent(origin, PUBLIC, "anon-put.bin")
    assert_refused(sigv4.anonymous(h, "DELETE", PUBLIC, "pub.bin"), 403, "AccessDenied")
    assert origin.head_object(Bucket=PUBLIC, Key="pub.bin")["ContentLength"] == len(PUB)
    assert_refused(sigv4.anonymous(h, "GET", PUBLIC), 403, "AccessDenied")  # list: read only
    assert_refused(sigv4.anonymous(h, "GET", ""), 403, "AccessDenied")  # ListBuckets
    # a bad signature is not downgraded to an anonymous request, even where anonymous may read
    r = sigv4.request(h, "GET", PUBLIC, "pub.bin", creds=Creds(ACCESS_KEY, "wrong"))
    assert_refused(r, 403, "SignatureDoesNotMatch", PUB)
    r = sigv4.request(h, "GET", PUBLIC, "pub.bin", creds=Creds("AKIDUNKNOWN000000000", "x"))
    assert_refused(r, 403, "InvalidAccessKeyId", PUB)
    # a key without a grant on PUBLIC does not get the anonymous grant either
    assert_refused(sigv4.request(h, "GET", PUBLIC, "pub.bin", creds=WRITER), 403, "AccessDenied", PUB)


def test_list_buckets_refusals(ap):
    h = ap.hostport
    r = sigv4.request(h, "GET", "")
    assert r.status == 200 and DATA.encode() in r.body, sigv4.describe(r)
    for creds in (READER, WRITER):
        assert_refused(sigv4.request(h, "GET", "", creds=creds), 403, "AccessDenied")


# ------------------------------------------------------------------------------------------ other configurations
def test_default_is_deny(proxy_factory, seaweed, origin):
    """An [auth] section with nothing in it: no key is known, no request is anonymous-allowed."""
    p = proxy_factory.start(seaweed.endpoint, auth={})
    assert_refused(sigv4.request(p.hostport, "GET", DATA, "tables/small.bin"), 403, "InvalidAccessKeyId", SMALL)
    assert_refused(sigv4.anonymous(p.hostport, "GET", PUBLIC, "pub.bin"), 403, "AccessDenied", PUB)
    assert_refused(sigv4.anonymous(p.hostport, "PUT", PUBLIC, "default-deny.bin", body=b"x"), 403, "AccessDenied")
    absent(origin, PUBLIC, "default-deny.bin")


def test_mode_none_serves_unsigned_and_warns(proxy_factory, seaweed, origin):
    p = proxy_factory.start(seaweed.endpoint, auth={"mode": "none"})
    r = sigv4.anonymous(p.hostport, "GET", DATA, "private/secret.bin")
    assert (r.status, r.body) == (200, SECRET), sigv4.describe(r)
    r = sigv4.anonymous(p.hostport, "PUT", DATA, "uploads/mode-none.bin", body=b"unsigned write")
    assert r.status == 200, sigv4.describe(r)
    assert origin.get_object(Bucket=DATA, Key="uploads/mode-none.bin")["Body"].read() == b"unsigned write"
    lines = [ln for ln in p.stderr_path.read_text(errors="replace").splitlines() + p.stdout_path.read_text(
        errors="replace").splitlines() if "auth.mode" in ln]
    assert any("WARN" in ln.upper() or "ERROR" in ln.upper() for ln in lines), \
        f"no warning about auth.mode in the log:\n{p.logs()}"
    # ... and again on every reload
    n = len(lines)
    p.reload()
    lines = [ln for ln in p.stderr_path.read_text(errors="replace").splitlines() + p.stdout_path.read_text(
        errors="replace").splitlines() if "auth.mode" in ln]
    assert len(lines) > n, f"no auth.mode warning after a reload:\n{p.logs()}"


def test_reload_revokes_and_adds_keys(proxy_factory, seaweed, origin, tmp_path):
    secret_file = tmp_path / "filekey"
    secret_file.write_text(FILEKEY.secret_key)
    auth = auth_section(secret_file)
    p = proxy_factory.start(seaweed.endpoint, env={ENV_NAME: ENVKEY.secret_key}, cache=CACHE, auth=auth)
    h = p.hostport
    assert sigv4.request(h, "GET", DATA, "tables/small.bin", creds=READER).body == SMALL
    newkey = Creds("AKIDNEWKEY0000000001", "new-secret-0123456789abcdefghijklmnopqrs")
    cfg = dict(p.config)
    cfg["auth"] = dict(auth, keys=[k for k in auth["keys"] if k["access_key_id"] != READER.access_key] + [
        {"access_key_id": newkey.access_key, "secret_access_key": newkey.secret_key,
         "grants": [{"bucket": DATA, "prefix": "tables/", "access": "read"}]}])
    assert_refused(sigv4.request(h, "GET", DATA, "tables/small.bin", creds=newkey), 403, "InvalidAccessKeyId")
    p.reload(cfg)
    assert_refused(sigv4.request(h, "GET", DATA, "tables/small.bin", creds=READER), 403, "InvalidAccessKeyId", SMALL)
    assert sigv4.request(h, "GET", DATA, "tables/small.bin", creds=newkey).body == SMALL
    # the secret file is read again on reload
    secret_file.write_text("rotated-file-secret-0123456789abcdefghij\n")
    p.reload()
    assert_refused(sigv4.request(h, "GET", DATA, "tables/small.bin", creds=FILEKEY), 403, "SignatureDoesNotMatch",
                   SMALL)
    r = sigv4.request(h, "GET", DATA, "tables/small.bin",
                      creds=Creds(FILEKEY.access_key, "rotated-file-secret-0123456789abcdefghij"))
    assert (r.status, r.body) == (200, SMALL), sigv4.describe(r)


# ------------------------------------------------------------------------------------------ edges
TRAVERSALS = [
    "tables/../private/secret.bin",
    "tables/%2e%2e/private/secret.bin",
    "tables/%2E%2E/private/secret.bin",
    "tables%2F..%2Fprivate%2Fsecret.bin",
    "tables/..%2Fprivate/secret.bin",
    "tables/./../private/secret.bin",
    "tables//../../private/secret.bin",
]


@pytest.mark.parametrize("raw_key", TRAVERSALS)
def test_reader_cannot_escape_its_prefix(ap, raw_key):
    """S3 keys are not paths: whatever the origin makes of dots, the reader (tables/ only) never
    gets private/secret.bin. The request is signed over the path exactly as sent."""
    path = f"/{DATA}/{raw_key}"
    s = sigv4.sign("GET", path, ap.hostport, creds=READER)
    r = sigv4.send(ap.hostport, s)
    assert SECRET[:32] not in r.body, f"{path}: the reader got private bytes: {sigv4.describe(r)}"
    assert r.status in (400, 403, 404), sigv4.describe(r)
    # and the full key asking the same gets what S3 would: not the secret object either (the key
    # "tables/../private/secret.bin" does not exist)
    r = sigv4.send(ap.hostport, sigv4.sign("GET", path, ap.hostport))
    assert SECRET[:32] not in r.body, f"{path}: a literal key was resolved as a path: {sigv4.describe(r)}"


@pytest.mark.parametrize("prefix", ["tables/../private/", "tables/../", "tables/%2e%2e/private/"])
def test_reader_list_cannot_escape_its_prefix(ap, prefix):
    r = sigv4.request(ap.hostport, "GET", DATA, "", creds=READER,
                      query=[("list-type", "2"), ("prefix", prefix)])
    assert b"private/secret.bin" not in r.body, sigv4.describe(r)


def test_bucket_level_requests_need_a_whole_bucket_grant(ap, origin):
    h = ap.hostport
    c = client(ap, READER)
    c.head_bucket(Bucket=DATA)  # any grant on the bucket
    client_error(lambda: c.head_bucket(Bucket=OTHER), 403, "403")
    # bucket sub-resources need a grant without a prefix
    for q in ("acl", "policy", "tagging", "versioning", "cors"):
        assert_refused(sigv4.request(h, "GET", DATA, "", creds=READER, query=[(q, "")]), 403, "AccessDenied")
    # multi-delete names keys in its body: the reader may not, the whole-bucket writer may
    body = (b'<?xml version="1.0" encoding="UTF-8"?><Delete><Object><Key>tables/small.bin</Key></Object>'
            b"</Delete>")
    import base64
    import hashlib

    md5 = [("Content-MD5", base64.b64encode(hashlib.md5(body).digest()).decode())]
    r = sigv4.request(h, "POST", DATA, "", body, creds=READER, headers=md5, query=[("delete", "")])
    assert_refused(r, 403, "AccessDenied")
    assert origin.head_object(Bucket=DATA, Key="tables/small.bin")["ContentLength"] == len(SMALL)
    # object sub-resource writes are writes
    tagging = b"<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>"
    r = sigv4.request(h, "PUT", DATA, "tables/small.bin", tagging, creds=READER, query=[("tagging", "")],
                      headers=[("Content-MD5", base64.b64encode(hashlib.md5(tagging).digest()).decode())])
    assert_refused(r, 403, "AccessDenied")
    # creating or deleting buckets
    assert_refused(sigv4.request(h, "PUT", f"authnew-{PID}", creds=READER), 403, "AccessDenied")
    assert_refused(sigv4.request(h, "DELETE", OTHER, creds=WRITER), 403, "AccessDenied")
    assert origin.head_bucket(Bucket=OTHER)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_anonymous_post_and_unsigned_amz_headers(ap, origin):
    h = ap.hostport
    # a browser-form POST (no signature at all) to a bucket anonymous may only read
    boundary = "----rcboundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nanon-post.bin\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\nposted\r\n--{boundary}--\r\n").encode()
    r = sigv4.anonymous(h, "POST", PUBLIC, headers=[("Content-Type", f"multipart/form-data; boundary={boundary}")],
                        body=form)
    assert r.status in (400, 403, 405, 501) and r.header("x-amz-request-id"), sigv4.describe(r)
    absent(origin, PUBLIC, "anon-post.bin")
    # an x-amz-copy-source added after signing a plain PUT is not obeyed
    s = sigv4.sign("PUT", sigv4.object_path(DATA, "uploads/unsigned-copy.bin"), h, payload_hash=sigv4.EMPTY_SHA256)
    r = sigv4.send(h, s, headers=s.headers + [("x-amz-copy-source", f"/{DATA}/private/secret.bin")])
    assert r.status == 403 and sigv4.error_code(r) in ("AccessDenied", "SignatureDoesNotMatch"), sigv4.describe(r)
    absent(origin, DATA, "uploads/unsigned-copy.bin")


def test_two_auth_mechanisms_and_bad_presign_parameters(ap, tmp_path):
    c = client(ap)
    url = c.generate_presigned_url("get_object", Params={"Bucket": DATA, "Key": "private/secret.bin"}, ExpiresIn=300)
    s = sigv4.sign("GET", sigv4.object_path(DATA, "private/secret.bin"), ap.hostport)
    st, headers, body = curl(url, tmp_path, "-H", f"Authorization: {s.header('Authorization')}",
                             "-H", f"x-amz-date: {s.date}", "-H", f"x-amz-content-sha256: {sigv4.EMPTY_SHA256}")
    assert st == 400 and b"<Code>InvalidArgument</Code>" in body and SECRET[:32] not in body, (st, body[:300])
    too_long = c.generate_presigned_url("get_object", Params={"Bucket": DATA, "Key": "private/secret.bin"},
                                        ExpiresIn=604801)
    assert_curl_refused(curl(too_long, tmp_path), 400, "AuthorizationQueryParametersError", SECRET)
    no_sig = url.split("&X-Amz-Signature=")[0]
    st, _, body = curl(no_sig, tmp_path)
    assert st in (400, 403) and SECRET[:32] not in body, (st, body[:300])


@pytest.mark.parametrize("why", ["wrong-secret", "not-granted"])
def test_refused_upload_body_is_not_read_as_a_request(ap, origin, why):
    """A refused PUT's body, which happens to look like a request, is never taken for the next
    request on the connection: the next answer is the next request's, or the connection ends."""
    h = ap.hostport
    smuggled = f"GET /{PUBLIC}/pub.bin HTTP/1.1\r\nHost: {h}\r\n\r\n".encode()
    body = smuggled * 50
    creds = Creds(ACCESS_KEY, "wrong") if why == "wrong-secret" else READER
    key = f"tables/smuggle-{why}-{ap.port}.bin"
    put = sigv4.sign("PUT", sigv4.object_path(DATA, key), h, payload_hash=sigv4.sha256_hex(body), creds=creds)
    get = sigv4.sign("GET", sigv4.object_path(DATA, "tables/small.bin"), h)
    with Conn(h, timeout=30) as c:
        c.send(request_bytes("PUT", put.target, h, put.headers, body=body)
               + request_bytes("GET", get.target, h, get.headers))
        first = c.read_response("PUT")
        assert first.status == 403, sigv4.describe(first)
        try:
            second = c.read_response("GET")
        except Closed:
            second = None
        if second is not None:
            assert (second.status, second.body) == (200, SMALL), f"answer to the smuggled bytes? {sigv4.describe(second)}"
            try:
                c.sock.settimeout(1.0)
                extra = c.read_response("GET")
                raise AssertionError(f"a third answer to two requests: {sigv4.describe(extra)}")
            except (Closed, TimeoutError, OSError):
                pass
    absent(origin, DATA, key)
