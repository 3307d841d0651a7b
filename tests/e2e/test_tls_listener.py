"""TLS and mTLS on the client listener (`[server.tls]`), on each io driver.

Real clients (boto3, awscli, s5cmd, polars, pyarrow, duckdb) talk https to rangecache, trusting
a throwaway CA the test creates (helpers/tls_ca.py), and must see what they see straight from
SeaweedFS. mTLS refuses a connection without a client certificate in the handshake while SigV4
still authorizes each request. A SIGHUP rotates the certificate for new connections while a
connection made before keeps working; a reload with a bad file keeps the running certificate; a
bad file at startup is a `[validate_config]` error.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from conftest import check_driver, short
from helpers import procs
from helpers.clients import clean_aws_env
from helpers.proxy import RangeCache, base_config
from helpers.rawhttp import Closed, Conn, request_bytes
from helpers.seaweed import ACCESS_KEY, REGION, SECRET_KEY
from helpers.tls_ca import TestCA

BIN = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).resolve().parents[2] / ".venv")) / "bin"
MiB = 1 << 20

pytestmark = pytest.mark.needs_binary


def tls_section(server, client_ca: Path | None = None) -> dict:
    t = {"cert_file": str(server.cert), "key_file": str(server.key), "handshake_timeout": "5s"}
    if client_ca is not None:
        t["client_ca_file"] = str(client_ca)
    return t


def https(p: RangeCache) -> str:
    return f"https://{p.listen}"


def boto(endpoint: str, verify, secret: str = SECRET_KEY, client_cert=None, **kw):
    cfg = dict(s3={"addressing_style": "path"}, signature_version="s3v4",
               retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    if client_cert is not None:
        cfg["client_cert"] = client_cert
    cfg.update(kw)
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret,
        region_name=REGION, verify=str(verify), config=Config(**cfg))


class TlsConn(Conn):
    """helpers.rawhttp.Conn over TLS: exact bytes out, exact responses back, one session."""

    def __init__(self, hostport: str, ca: Path, cert=None, timeout: float = 15.0):
        host, port = hostport.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=str(ca))
        if cert is not None:
            ctx.load_cert_chain(str(cert.cert), str(cert.key))
        raw = socket.create_connection((host, int(port)), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        self.buf = b""
        self.eof = False

    def peer_der(self) -> bytes:
        return self.sock.getpeercert(binary_form=True)

    def get(self, path: str, host: str):
        self.send(request_bytes("GET", path, host))
        return self.read_response()


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_proxy(driver, seaweed, ca, tmp_path_factory):
    """rangecache on `driver` with TLS on its client listener (ECDSA certificate)."""
    server = ca.issue_server(f"server-{short(driver)}", "ec")
    cfg = base_config(seaweed.endpoint, driver)
    cfg["server"]["tls"] = tls_section(server)
    p = RangeCache(tmp_path_factory.mktemp(f"tls-{short(driver)}"), cfg).start()
    try:
        check_driver(p, driver)
    except BaseException:
        p.terminate()
        raise
    yield p
    code = p.terminate(timeout=30)
    assert code == 0, f"rangecache exited with {code} after SIGTERM\n{p.logs()}"


@pytest.fixture(scope="module")
def tls_bucket(direct_s3, driver):
    """One bucket per driver for every test here (each bucket costs the origin volumes)."""
    name = f"tls-{short(driver)}-{os.getpid() % 10000}"
    direct_s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def tls_object(tls_bucket, direct_s3):
    data = os.urandom(3 * MiB + 123)
    direct_s3.put_object(Bucket=tls_bucket, Key="data/blob.bin", Body=data)
    return "data/blob.bin", data


def test_boto3_over_tls(tls_proxy, tls_bucket, tls_object, direct_s3, ca):
    via = boto(https(tls_proxy), ca.ca_file)
    key, data = tls_object
    for _ in range(2):  # cold, then from the cache
        r = via.get_object(Bucket=tls_bucket, Key=key, Range="bytes=1000-2100000")
        assert r["Body"].read() == data[1000:2100001]
    assert via.get_object(Bucket=tls_bucket, Key=key)["Body"].read() == data
    body = os.urandom(200_000)
    via.put_object(Bucket=tls_bucket, Key="up/one.bin", Body=body)
    assert direct_s3.get_object(Bucket=tls_bucket, Key="up/one.bin")["Body"].read() == body
    listed = sorted(o["Key"] for o in via.list_objects_v2(Bucket=tls_bucket)["Contents"])
    assert listed == sorted(o["Key"] for o in direct_s3.list_objects_v2(Bucket=tls_bucket)["Contents"])
    assert via.head_object(Bucket=tls_bucket, Key=key)["ContentLength"] == len(data)
    assert tls_proxy.metric_sum("rangecache_tls_handshakes_total") > 0


def test_untrusted_certificate_is_refused_by_the_client(tls_proxy, tls_bucket, tmp_path):
    stranger = TestCA(tmp_path / "other", "some other CA")
    via = boto(https(tls_proxy), stranger.ca_file)
    with pytest.raises(Exception) as e:
        via.list_objects_v2(Bucket=tls_bucket)
    assert "CERTIFICATE_VERIFY_FAILED" in str(e.value) or "SSL" in type(e.value).__name__, e.value


def test_plain_http_to_the_tls_listener_gets_no_answer(tls_proxy):
    before = tls_proxy.metric_sum("rangecache_tls_handshake_failures_total")
    with Conn(tls_proxy.listen, timeout=10) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while c._fill():
            got = c.buf
    assert not got.startswith(b"HTTP/"), got[:100]
    procs.wait_until(lambda: tls_proxy.metric_sum("rangecache_tls_handshake_failures_total") > before, 10,
                     what="handshake failure counted")


def test_awscli_and_s5cmd_over_tls(tls_proxy, tls_bucket, tls_object, ca, tmp_path):
    key, data = tls_object
    env = clean_aws_env(tmp_path / "aws")
    aws = [str(BIN / "aws"), "--endpoint-url", https(tls_proxy), "--ca-bundle", str(ca.ca_file)]
    out = tmp_path / "aws.bin"
    subprocess.run([*aws, "s3", "cp", f"s3://{tls_bucket}/{key}", str(out)], env=env, check=True,
                   capture_output=True, timeout=120)
    assert out.read_bytes() == data
    part = tmp_path / "part.bin"
    subprocess.run([*aws, "s3api", "get-object", "--bucket", tls_bucket, "--key", key, "--range", "bytes=5-70004",
                    str(part)], env=env, check=True, capture_output=True, timeout=120)
    assert part.read_bytes() == data[5:70005]
    # s5cmd (Go) trusts the CA through SSL_CERT_FILE.
    s5env = dict(env, SSL_CERT_FILE=str(ca.ca_file))
    s5 = [str(BIN / "s5cmd"), "--endpoint-url", https(tls_proxy), "--retry-count", "0"]
    got = subprocess.run([*s5, "cat", f"s3://{tls_bucket}/{key}"], env=s5env, check=True, capture_output=True,
                         timeout=120).stdout
    assert got == data
    src = tmp_path / "s5-up.bin"
    src.write_bytes(data[:300_000])
    subprocess.run([*s5, "cp", str(src), f"s3://{tls_bucket}/s5/up.bin"], env=s5env, check=True,
                   capture_output=True, timeout=120)
    ls = subprocess.run([*s5, "ls", f"s3://{tls_bucket}/s5/"], env=s5env, check=True, capture_output=True,
                        timeout=120).stdout.decode()
    assert "up.bin" in ls and "300000" in ls, ls


@pytest.fixture(scope="module")
def tls_parquet(tls_bucket, direct_s3):
    pl = pytest.importorskip("polars")
    import io

    frame = pl.DataFrame({"id": list(range(50_000)), "v": [i * 0.5 for i in range(50_000)],
                          "name": [f"n{i % 101}" for i in range(50_000)]})
    buf = io.BytesIO()
    frame.write_parquet(buf, row_group_size=5_000)
    direct_s3.put_object(Bucket=tls_bucket, Key="pq/t.parquet", Body=buf.getvalue())
    return "pq/t.parquet", frame


def test_polars_over_tls(tls_proxy, tls_bucket, tls_parquet, ca, monkeypatch):
    pl = pytest.importorskip("polars")
    from polars.testing import assert_frame_equal

    key, frame = tls_parquet
    # object_store (rustls with the platform roots) trusts the CA through SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_file))
    opts = {"aws_endpoint_url": https(tls_proxy), "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY, "aws_region": REGION,
            "aws_virtual_hosted_style_request": "false"}
    got = (pl.scan_parquet(f"s3://{tls_bucket}/{key}", storage_options=opts)
           .filter(pl.col("id") >= 40_000).collect())
    assert_frame_equal(got, frame.filter(pl.col("id") >= 40_000))


def test_pyarrow_over_tls(tls_proxy, tls_bucket, tls_parquet, ca):
    pafs = pytest.importorskip("pyarrow.fs")
    pq = pytest.importorskip("pyarrow.parquet")
    key, frame = tls_parquet
    fs = pafs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION,
                           endpoint_override=tls_proxy.listen, scheme="https", force_virtual_addressing=False,
                           tls_ca_file_path=str(ca.ca_file), connect_timeout=10, request_timeout=60)
    table = pq.read_table(f"{tls_bucket}/{key}", filesystem=fs, columns=["id", "name"])
    assert table.equals(frame.select("id", "name").to_arrow())


def test_duckdb_over_tls(tls_proxy, tls_bucket, tls_parquet, ca):
    duckdb = pytest.importorskip("duckdb")
    from test_dataframes import httpfs_extension

    key, frame = tls_parquet
    con = duckdb.connect(config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"})
    con.execute(f"LOAD '{httpfs_extension()}'")
    # httpfs does not verify server certificates unless told to: make it verify against the CA.
    con.execute("SET enable_server_cert_verification = true")
    con.execute(f"SET ca_cert_file = '{ca.ca_file}'")
    con.execute(f"""CREATE SECRET s3tls (TYPE s3, KEY_ID '{ACCESS_KEY}', SECRET '{SECRET_KEY}', REGION '{REGION}',
                    ENDPOINT '{tls_proxy.listen}', URL_STYLE 'path', USE_SSL true)""")
    got = con.execute(f"SELECT count(*), sum(id) FROM read_parquet('s3://{tls_bucket}/{key}') WHERE id < 1000").fetchall()
    assert got == [(1000, sum(range(1000)))]


# ------------------------------------------------------------------------------------------ mTLS
def test_mtls_requires_a_client_certificate_and_sigv4_still_decides(proxy_factory, seaweed, ca, tmp_path,
                                                                     direct_s3, tls_bucket):
    server = ca.issue_server("mtls-server", "rsa")
    client = ca.issue_client("mtls-client")
    stranger = TestCA(tmp_path / "stranger", "stranger CA").issue_client("stranger-client")
    p = proxy_factory.start(seaweed.endpoint, server={"tls": tls_section(server, client_ca=ca.ca_file)})
    bucket = tls_bucket
    direct_s3.put_object(Bucket=bucket, Key="mtls/k", Body=b"mutual")
    # With a client certificate from the CA: served.
    ok = boto(https(p), ca.ca_file, client_cert=(str(client.cert), str(client.key)))
    assert ok.get_object(Bucket=bucket, Key="mtls/k")["Body"].read() == b"mutual"
    # The certificate admits the connection, not the request: a wrong secret is still refused.
    bad = boto(https(p), ca.ca_file, secret="not-the-secret", client_cert=(str(client.cert), str(client.key)))
    with pytest.raises(bad.exceptions.ClientError) as e:
        bad.get_object(Bucket=bucket, Key="mtls/k")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    # Without a certificate, or with one from another CA: refused in the handshake.
    before = p.metric_sum("rangecache_tls_handshake_failures_total")
    for cert in (None, stranger):
        with pytest.raises((ssl.SSLError, OSError, Closed)):
            with TlsConn(p.listen, ca.ca_file, cert=cert) as c:
                c.get(f"/{bucket}/mtls/k", p.listen)
    procs.wait_until(lambda: p.metric_sum("rangecache_tls_handshake_failures_total") >= before + 2, 10,
                     what="both refusals counted as handshake failures")


# -------------------------------------------------------------------------------- rotation
def test_sighup_rotates_the_certificate_and_keeps_open_connections(proxy_factory, seaweed, ca, direct_s3,
                                                                   tls_bucket):
    first = ca.issue_server("rot-first", "rsa")
    p = proxy_factory.start(seaweed.endpoint, server={"tls": tls_section(first)})
    bucket = tls_bucket
    direct_s3.put_object(Bucket=bucket, Key="rot/k", Body=b"x" * 1000)
    path = f"/{bucket}/rot/k"
    old = TlsConn(p.listen, ca.ca_file)
    try:
        assert old.peer_der() == first.leaf_der
        assert old.get(path, p.listen).status == 200
        # Renew in place (as certbot does): same paths, new certificate and key, then SIGHUP.
        second = ca.issue_server("rot-second", "ec")
        Path(first.cert).write_bytes(Path(second.cert).read_bytes())
        Path(first.key).write_bytes(Path(second.key).read_bytes())
        p.reload()
        with TlsConn(p.listen, ca.ca_file) as new:
            assert new.peer_der() == second.leaf_der
            assert new.get(path, p.listen).status == 200
        # The connection opened before the rotation still serves, on its old session.
        r = old.get(path, p.listen)
        assert r.status == 200 and r.body == b"x" * 1000
        assert old.peer_der() == first.leaf_der
        # A reload with a broken key file is rejected; the running certificate stays.
        Path(first.key).write_text("not a key\n")
        with pytest.raises(AssertionError, match="reload failed"):
            p.reload()
        assert "server.tls.key_file" in p.logs(200)
        with TlsConn(p.listen, ca.ca_file) as again:
            assert again.peer_der() == second.leaf_der
            assert again.get(path, p.listen).status == 200
        assert old.get(path, p.listen).status == 200
    finally:
        old.close()


def test_bad_certificate_file_is_a_phase_named_startup_error(proxy_factory, seaweed, ca, tmp_path):
    server = ca.issue_server("bad-start", "ec")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    for tls, want in [
        ({"cert_file": str(garbage), "key_file": str(server.key)}, "server.tls.cert_file"),
        ({"cert_file": str(server.cert), "key_file": str(tmp_path / "missing.key")}, "server.tls.key_file"),
        ({"cert_file": str(server.cert), "key_file": str(ca.issue_server("other", "rsa").key)}, "server.tls.key_file"),
    ]:
        p = proxy_factory.create(proxy_factory.config(seaweed.endpoint, server={"tls": tls}))
        p.spawn()
        code = p.wait(timeout=30)
        err = p.stderr_path.read_text()
        assert code != 0, err
        assert f"[validate_config] {want}: " in err, err
