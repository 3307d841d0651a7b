"""Signature Version 2 (`auth.sigv2 = true`), on each io driver, with the keys and objects of
test_auth.py (FULL, READER under DATA/tables/, WRITER write-only, anonymous on PUBLIC).

boto3's default `generate_presigned_url` against a custom endpoint makes a SigV2 URL: it must
work through curl, and an expired or tampered one must get S3's error. boto3 with
`signature_version='s3'` (SigV2 headers) must get, put and list. The refusals of the SigV4
suite are repeated with SigV2 signatures (made by botocore's HmacV1Auth) against an object
already in the cache: none gets a byte, none reaches the origin. With the default
`auth.sigv2 = false` a SigV2 request gets 400 InvalidArgument naming the setting.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time

import boto3
import pytest
from botocore.config import Config

from helpers import cache_obs, sigv2, sigv4
from helpers.seaweed import ACCESS_KEY, REGION, SECRET_KEY
from helpers.sigv4 import FULL, Creds, assert_refused
from test_auth import (BIG, CACHE, DATA, PUBLIC, PUB, READER, SECRET, SMALL, WRITER, absent, assert_curl_refused,
                       auth_section, curl, origin)  # noqa: F401 (origin is a fixture)

pytestmark = pytest.mark.needs_binary

MiB = 1 << 20


@pytest.fixture(scope="module")
def v2(module_proxy_factory, driver, seaweed, origin, tmp_path_factory):
    """A proxy with auth.sigv2 = true and test_auth's keys, once per io driver."""
    from test_auth import ENV_NAME, ENVKEY, FILEKEY

    secret_file = tmp_path_factory.mktemp("secrets-v2") / "filekey"
    secret_file.write_text(FILEKEY.secret_key)
    auth = dict(auth_section(secret_file), sigv2=True)
    return module_proxy_factory.start(seaweed.endpoint, env={ENV_NAME: ENVKEY.secret_key}, cache=CACHE,
                                      auth=auth, server={"io_driver": driver})


def default_client(endpoint: str, creds: Creds = FULL):
    """boto3 as a user writes it: no signature_version, so presigned URLs are SigV2."""
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=creds.access_key,
                        aws_secret_access_key=creds.secret_key, region_name=REGION)


def v2_client(endpoint: str, creds: Creds = FULL):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=creds.access_key,
                        aws_secret_access_key=creds.secret_key, region_name=REGION,
                        config=Config(signature_version="s3", s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1, "mode": "standard"}))


def test_default_presigned_url_works_with_curl(v2, origin, tmp_path):
    c = default_client(v2.endpoint)
    url = c.generate_presigned_url("get_object", Params={"Bucket": DATA, "Key": "tables/big.bin"}, ExpiresIn=300)
    assert "AWSAccessKeyId=" in url and "Signature=" in url and "X-Amz-" not in url, url
    for _ in range(2):  # cold, then from the cache
        st, _, body = curl(url, tmp_path)
        assert st == 200 and body == BIG, (st, body[:300])
    st, _, body = curl(url, tmp_path, "-H", "Range: bytes=100-199")  # SigV2 does not sign Range
    assert (st, body) == (206, BIG[100:200]), (st, body[:300])
    up = tmp_path / "v2-put.bin"
    up.write_bytes(random.Random(91).randbytes(MiB + 9))
    put_url = c.generate_presigned_url("put_object", Params={"Bucket": DATA, "Key": "uploads/v2-presigned.bin"},
                                       ExpiresIn=300)
    st, _, body = curl(put_url, tmp_path, "-T", str(up))
    assert st == 200, (st, body[:500])
    assert origin.get_object(Bucket=DATA, Key="uploads/v2-presigned.bin")["Body"].read() == up.read_bytes()
    # The reader's URL is bound by the reader's grants.
    rc = default_client(v2.endpoint, READER)
    ok = rc.generate_presigned_url("get_object", Params={"Bucket": DATA, "Key": "tables/small.bin"}, ExpiresIn=300)
    assert curl(ok, tmp_path)[0::2] == (200, SMALL)
    denied = rc.generate_presigned_url("get_object", Params={"Bucket": DATA, "Key": "private/secret.bin"},
                                       ExpiresIn=300)
    assert_curl_refused(curl(denied, tmp_path), 403, "AccessDenied", SECRET)


def test_presigned_v2_tampered_and_expired(v2, origin, tmp_path):
    c = default_client(v2.endpoint)
    assert v2_client(v2.endpoint).get_object(Bucket=DATA, Key="tables/big.bin")["Body"].read() == BIG  # cached
    url = c.generate_presigned_url("get_object", Params={"Bucket": DATA, "Key": "tables/big.bin"}, ExpiresIn=300)
    assert curl(url, tmp_path)[0] == 200
    i = url.index("Signature=") + len("Signature=")
    flipped = url[:i] + ("A" if url[i] != "A" else "B") + url[i + 1:]
    other_key = url.replace("/tables/big.bin?", "/tables/small.bin?")
    later = url.replace("Expires=", "Expires=1")  # a longer validity than was signed
    for bad, secret in [(flipped, BIG), (other_key, SMALL), (url + "&partNumber=1", BIG),
                        (url + "&versionId=null", BIG)]:
        assert_curl_refused(curl(bad, tmp_path), 403, "SignatureDoesNotMatch", secret)
    assert_curl_refused(curl(later, tmp_path), 400, "AuthorizationQueryParametersError", BIG)
    assert_curl_refused(curl(url, tmp_path, "-X", "PUT", "--data-binary", "overwrite"), 403,
                        "SignatureDoesNotMatch")
    assert origin.get_object(Bucket=DATA, Key="tables/big.bin")["Body"].read() == BIG
    unknown = default_client(v2.endpoint, Creds("AKIDUNKNOWN000000000", SECRET_KEY)).generate_presigned_url(
        "get_object", Params={"Bucket": DATA, "Key": "tables/big.bin"}, ExpiresIn=300)
    assert_curl_refused(curl(unknown, tmp_path), 403, "InvalidAccessKeyId", BIG)
    missing = url.split("&Expires=")[0]
    assert_curl_refused(curl(missing, tmp_path), 403, "AccessDenied", BIG)

    expiring = c.generate_presigned_url("get_object", Params={"Bucket": DATA, "Key": "tables/big.bin"}, ExpiresIn=1)
    put_expiring = c.generate_presigned_url("put_object", Params={"Bucket": DATA, "Key": "uploads/v2-expired.bin"},
                                            ExpiresIn=1)
    time.sleep(2.5)
    assert_curl_refused(curl(expiring, tmp_path), 403, "AccessDenied", BIG)
    assert_curl_refused(curl(put_expiring, tmp_path, "-X", "PUT", "--data-binary", "late"), 403, "AccessDenied")
    absent(origin, DATA, "uploads/v2-expired.bin")


def test_boto3_signature_version_s3(v2, origin):
    c = v2_client(v2.endpoint)
    r = c.get_object(Bucket=DATA, Key="tables/big.bin", Range="bytes=1048570-2097160")
    assert r["Body"].read() == BIG[1048570:2097161]
    assert c.head_object(Bucket=DATA, Key="tables/small.bin")["ContentLength"] == len(SMALL)
    body = os.urandom(300_000)
    c.put_object(Bucket=DATA, Key="uploads/v2-boto3.bin", Body=body, ContentType="application/x-test",
                 Metadata={"who": "sigv2"})
    got = origin.get_object(Bucket=DATA, Key="uploads/v2-boto3.bin")
    assert got["Body"].read() == body and got["Metadata"] == {"who": "sigv2"}
    listed = {o["Key"] for o in c.list_objects(Bucket=DATA, Prefix="uploads/")["Contents"]}
    assert "uploads/v2-boto3.bin" in listed
    listed2 = {o["Key"] for o in c.list_objects_v2(Bucket=DATA, Prefix="tables/")["Contents"]}
    assert {"tables/small.bin", "tables/big.bin"} <= listed2
    c.delete_object(Bucket=DATA, Key="uploads/v2-boto3.bin")
    absent(origin, DATA, "uploads/v2-boto3.bin")
    # The reader signs SigV2 too and stays inside its grants.
    rc = v2_client(v2.endpoint, READER)
    assert rc.get_object(Bucket=DATA, Key="tables/small.bin")["Body"].read() == SMALL
    for fn in (lambda: rc.get_object(Bucket=DATA, Key="private/secret.bin")["Body"].read(),
               lambda: rc.put_object(Bucket=DATA, Key="tables/v2-reader.bin", Body=b"no"),
               lambda: rc.list_objects(Bucket=DATA, Prefix="private/")):
        with pytest.raises(rc.exceptions.ClientError) as e:
            fn()
        assert e.value.response["Error"]["Code"] == "AccessDenied", e.value.response
    absent(origin, DATA, "tables/v2-reader.bin")


# ------------------------------------------------------------------------------------------ refusals
def skewed(minutes: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)


def target(key: str) -> str:
    return sigv4.object_path(DATA, key)


def tampered(h: str, key: str, method: str):
    headers = sigv2.sign(method, target(key), h)
    headers = [(k, v[:-2] + ("A=" if v[-2] != "A" else "B=")) if k == "Authorization" else (k, v)
               for k, v in headers]
    return sigv2.send(h, method, target(key), headers)


def changed_path(h: str, key: str, method: str):
    """Signed by the reader for tables/small.bin (allowed), sent for the target key."""
    return sigv2.send(h, method, target(key), sigv2.sign(method, target("tables/small.bin"), h, creds=READER))


def added_sub_resource(h: str, key: str, method: str):
    return sigv2.send(h, method, target(key) + "?versionId=null", sigv2.sign(method, target(key), h))


def changed_amz_header(h: str, key: str, method: str):
    headers = sigv2.sign(method, target(key), h, [("x-amz-request-payer", "requester")])
    return sigv2.send(h, method, target(key), [(k, "x" if k == "x-amz-request-payer" else v) for k, v in headers])


def no_date(h: str, key: str, method: str):
    return sigv2.send(h, method, target(key), [(k, v) for k, v in sigv2.sign(method, target(key), h) if k != "Date"])


REFUSALS = {
    "wrong-secret": (lambda h, k, m: sigv2.request(h, m, target(k), Creds(ACCESS_KEY, "not-the-secret")),
                     403, "SignatureDoesNotMatch"),
    "unknown-key": (lambda h, k, m: sigv2.request(h, m, target(k), Creds("AKIDUNKNOWN000000000", SECRET_KEY)),
                    403, "InvalidAccessKeyId"),
    "tampered-signature": (tampered, 403, "SignatureDoesNotMatch"),
    "path-changed-after-signing": (changed_path, 403, "SignatureDoesNotMatch"),
    "sub-resource-added-after-signing": (added_sub_resource, 403, "SignatureDoesNotMatch"),
    "amz-header-changed-after-signing": (changed_amz_header, 403, "SignatureDoesNotMatch"),
    "clock-20min-behind": (lambda h, k, m: sigv2.request(h, m, target(k), when=skewed(-20)), 403,
                           "RequestTimeTooSkewed"),
    "clock-20min-ahead": (lambda h, k, m: sigv2.request(h, m, target(k), when=skewed(20)), 403,
                          "RequestTimeTooSkewed"),
    "no-date": (no_date, 403, "AccessDenied"),
    "reader-outside-prefix": (lambda h, k, m: sigv2.request(h, m, target(k), READER), 403, "AccessDenied"),
    "writer-reads": (lambda h, k, m: sigv2.request(h, m, target(k), WRITER), 403, "AccessDenied"),
}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("name", list(REFUSALS))
def test_refused_v2_read_of_cached_object(v2, origin, name, method):
    key = "private/secret.bin"
    fn, status, code = REFUSALS[name]
    warm = sigv2.request(v2.hostport, "GET", target(key))
    assert warm.status == 200 and warm.body == SECRET, sigv4.describe(warm)
    assert sigv2.request(v2.hostport, "GET", target(key)).body == SECRET
    before = cache_obs.counters(v2)
    r = fn(v2.hostport, key, method)
    assert_refused(r, status, code, SECRET, method=method)
    after = cache_obs.delta(before, cache_obs.counters(v2))
    assert after["origin_requests"] == 0, f"a refused request went to the origin: {after}"
    assert after["cache_block_hits"] == 0, f"a refused request read cached blocks: {after}"


def test_v2_skew_within_15_minutes_and_anonymous_unchanged(v2):
    for minutes in (-10, 10):
        r = sigv2.request(v2.hostport, "GET", target("tables/small.bin"), when=skewed(minutes))
        assert (r.status, r.body) == (200, SMALL), (minutes, sigv4.describe(r))
    r = sigv4.anonymous(v2.hostport, "GET", PUBLIC, "pub.bin")
    assert (r.status, r.body) == (200, PUB)


def test_sigv2_is_refused_by_default_naming_the_setting(proxy, tmp_path):
    """The suite's shared proxy runs with the default auth.sigv2 = false."""
    url = default_client(proxy.endpoint).generate_presigned_url(
        "get_object", Params={"Bucket": "any", "Key": "k"}, ExpiresIn=60)
    st, headers, body = curl(url, tmp_path)
    assert st == 400 and b"<Code>InvalidArgument</Code>" in body, (st, body)
    assert b"auth.sigv2" in body and b"Signature Version 4" in body, body
    r = sigv2.request(proxy.hostport, "GET", "/any/k")
    assert_refused(r, 400, "InvalidArgument")
    assert b"auth.sigv2" in r.body
