"""An https:// origin: rangecache's origin client over rustls, trusting the CA from
`origin.ca_file`, against SeaweedFS's S3 API over TLS. Reads, cached reads, writes and a
listing through the proxy must match the same object read directly; a CA that did not sign the
origin's certificate must be refused (an S3 error, never a plaintext fallback)."""

from __future__ import annotations

import os
import subprocess

from helpers.clients import s3_client

MiB = 1 << 20


def test_https_origin_reads_writes_and_caches(proxy_factory, seaweed, direct_s3, new_bucket):
    assert seaweed.ca_file is not None
    p = proxy_factory.start(seaweed.https_endpoint, origin={"ca_file": str(seaweed.ca_file)})
    via = s3_client(p.endpoint)
    bucket = new_bucket("tls")
    data = os.urandom(3 * MiB + 7)
    via.put_object(Bucket=bucket, Key="dir/obj.bin", Body=data, Metadata={"k": "v"})
    assert direct_s3.get_object(Bucket=bucket, Key="dir/obj.bin")["Body"].read() == data
    for _ in range(2):  # cold (filled over TLS), then from the cache
        r = via.get_object(Bucket=bucket, Key="dir/obj.bin", Range="bytes=100-2000000")
        assert r["ContentRange"] == f"bytes 100-2000000/{len(data)}"
        assert r["Body"].read() == data[100:2000001]
    head = via.head_object(Bucket=bucket, Key="dir/obj.bin")
    assert head["ContentLength"] == len(data) and head["Metadata"] == {"k": "v"}
    keys = [o["Key"] for o in via.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["dir/obj.bin"]
    via.delete_object(Bucket=bucket, Key="dir/obj.bin")
    assert "Contents" not in direct_s3.list_objects_v2(Bucket=bucket)


def test_https_origin_with_untrusted_certificate_is_refused(proxy_factory, seaweed, tmp_path, new_bucket):
    other = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(other), "-days", "1", "-subj", "/CN=not-the-origins-ca"],
                   check=True, capture_output=True)
    bucket = new_bucket("tlsbad")
    p = proxy_factory.start(seaweed.https_endpoint, origin={"ca_file": str(other)})
    via = s3_client(p.endpoint)
    try:
        via.list_objects_v2(Bucket=bucket)
        raise AssertionError("a listing through an origin with an untrusted certificate succeeded")
    except via.exceptions.ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 502, e.response
        assert e.response["Error"]["Code"] == "BadGateway", e.response
