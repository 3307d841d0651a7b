"""The `backend = "gcs"` preset, checked on the wire: rangecache in front of a recording relay in
front of SeaweedFS (GCS itself is not reachable from here). What reaches the origin must be what
GCS's XML API takes: SigV4 in region `auto`, no S3 flexible-checksum headers (recent AWS SDKs
send them by default, and GCS refuses UploadPart and CompleteMultipartUpload with them), a
client's CRC32C as `x-goog-hash`."""

from __future__ import annotations

import base64
import io
import os

import pytest

from helpers.clients import s3_client
from helpers.counting_relay import CountingRelay
from helpers.proxy import RangeCache, base_config
from helpers.seaweed import ACCESS_KEY, SECRET_KEY

pytestmark = pytest.mark.needs_binary


def crc32c(data: bytes) -> str:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return base64.b64encode((crc ^ 0xFFFFFFFF).to_bytes(4, "big")).decode()


def test_gcs_preset_sends_what_gcs_takes(seaweed, tmp_path):
    bucket = f"gcs-preset-{os.getpid() % 10000}"
    s3_client(seaweed.endpoint).create_bucket(Bucket=bucket)
    with CountingRelay(seaweed.hostport) as relay:
        cfg = base_config(seaweed.endpoint)
        cfg["bucket"] = [{"name": bucket, "backend": "gcs", "endpoint": relay.endpoint,
                          "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}]
        p = RangeCache(tmp_path, cfg).start()
        try:
            s3 = s3_client(p.endpoint)
            small = os.urandom(1000)
            s3.put_object(Bucket=bucket, Key="a.bin", Body=small, ChecksumCRC32C=crc32c(small))
            s3.put_object(Bucket=bucket, Key="b.bin", Body=small, ChecksumAlgorithm="CRC32")
            big = os.urandom(11 * 1024 * 1024)
            from boto3.s3.transfer import TransferConfig
            s3.upload_fileobj(io.BytesIO(big), bucket, "mp.bin",
                              Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
            assert s3.get_object(Bucket=bucket, Key="a.bin", Range="bytes=10-19")["Body"].read() == small[10:20]
            assert s3.head_object(Bucket=bucket, Key="mp.bin")["ContentLength"] == len(big)
            assert s3.get_object(Bucket=bucket, Key="mp.bin")["Body"].read() == big
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
            assert keys == ["a.bin", "b.bin", "mp.bin"]
        finally:
            p.terminate()
        seen = relay.requests()
    assert seen, "nothing reached the origin"
    methods = {r.method for r in seen}
    assert {"PUT", "POST", "GET", "HEAD"} <= methods, methods
    for r in seen:
        names = {k.lower() for k in r.headers}
        assert not any(n.startswith("x-amz-checksum-") for n in names), (r.method, r.target, names)
        assert "x-amz-sdk-checksum-algorithm" not in names, (r.method, r.target)
        assert "/auto/s3/aws4_request" in r.headers.get("authorization", ""), r.headers.get("authorization")
    put_a = [r for r in seen if r.method == "PUT" and r.path.endswith("/a.bin")]
    assert put_a and put_a[0].headers.get("x-goog-hash") == f"crc32c={crc32c(small)}", put_a[0].headers
