"""boto3 through rangecache vs. boto3 straight to SeaweedFS: every answer must be the same."""

from __future__ import annotations

import random

import pytest
from boto3.s3.transfer import TransferConfig

from helpers.compare import assert_same, boto_get, outcome

MiB = 1 << 20

SMALL = random.Random(1).randbytes(1000)
BIG5 = random.Random(2).randbytes(5 * MiB + 123)
ODD_KEY = "dir one/sub+dir/ключ ü + plus & =?.txt"

OBJECTS = {
    "small.bin": SMALL,
    "empty.bin": b"",
    "big5.bin": BIG5,
    ODD_KEY: b"odd key body " * 10,
    "a//double/slash.txt": b"double slash",
}


def side_key(s3, c, key: str) -> str:
    """Writes are made on both sides to different keys; this is the key for client c."""
    return key if c is s3.proxy else f"direct-side/{key}"


@pytest.fixture(scope="module")
def objects(proxy_s3, direct_s3, module_bucket):
    """The OBJECTS, written through the proxy (and the same bodies directly under direct-side/)."""
    for key, body in OBJECTS.items():
        proxy_s3.put_object(Bucket=module_bucket, Key=key, Body=body, ContentType="application/x-test",
                            Metadata={"color": "blue", "n": str(len(body))})
    return module_bucket


# ------------------------------------------------------------------------------------------ puts
@pytest.mark.parametrize("key", list(OBJECTS))
def test_put_object_same_answer(s3, module_bucket, key):
    body = OBJECTS[key]
    s3.both(lambda c: c.put_object(Bucket=module_bucket, Key=side_key(s3, c, "put/" + key), Body=body,
                                   Metadata={"k": "v"}), f"put {key!r}")
    # what the proxy wrote is what the origin holds, and reads back the same both ways
    got = s3.both(lambda c: boto_get(c, Bucket=module_bucket, Key="put/" + key), f"get put/{key!r}")
    assert got["ok"]["ContentLength"] == len(body)
    assert s3.direct.get_object(Bucket=module_bucket, Key="put/" + key)["Body"].read() == body


def test_create_and_delete_bucket(s3, driver):
    names = {id(s3.proxy): f"mk-proxy-{driver.replace('_', '')}", id(s3.direct): f"mk-direct-{driver.replace('_', '')}"}

    def norm(o):
        if "ok" in o:
            o["ok"].pop("Location", None)
        return o

    s3.both(lambda c: c.create_bucket(Bucket=names[id(c)]), "create_bucket", norm=norm)
    s3.both(lambda c: c.head_bucket(Bucket=names[id(c)]), "head_bucket")
    s3.both(lambda c: c.create_bucket(Bucket=names[id(c)]), "create_bucket again", norm=norm)
    s3.both(lambda c: c.delete_bucket(Bucket=names[id(c)]), "delete_bucket")
    s3.both(lambda c: c.head_bucket(Bucket=names[id(c)]), "head_bucket after delete")
    s3.both(lambda c: c.list_objects_v2(Bucket="no-such-bucket-here"), "list missing bucket")


# ------------------------------------------------------------------------------------------ gets
@pytest.mark.parametrize("key", list(OBJECTS))
def test_get_full(s3, objects, key):
    got = s3.both(lambda c: boto_get(c, Bucket=objects, Key=key), f"get {key!r}")
    assert got["ok"]["ContentLength"] == len(OBJECTS[key])
    assert s3.proxy.get_object(Bucket=objects, Key=key)["Body"].read() == OBJECTS[key]


RANGES = ["bytes=0-99", "bytes=100-", "bytes=-50", "bytes=900-5000", "bytes=999-999", "bytes=1000000-",
          "bytes=0-0", "bytes=-5000000", "bytes=5242880-"]


@pytest.mark.parametrize("rng", RANGES)
@pytest.mark.parametrize("key", ["small.bin", "big5.bin", "empty.bin", ODD_KEY])
def test_get_range(s3, objects, key, rng):
    got = s3.both(lambda c: boto_get(c, Bucket=objects, Key=key, Range=rng), f"get {key!r} Range: {rng}")
    if "ok" in got:
        # and the bytes are the right ones
        body = s3.proxy.get_object(Bucket=objects, Key=key, Range=rng)["Body"].read()
        data = OBJECTS[key]
        spec = rng.split("=", 1)[1]
        a, b = spec.split("-")
        if a == "":
            want = data[-int(b):] if int(b) else b""
        else:
            want = data[int(a): (int(b) + 1 if b else None)]
        if got["ok"]["HTTPStatusCode"] == 206:
            assert body == want
        else:
            assert body == data


def test_concurrent_ranged_gets(s3, objects):
    """Many clients reading overlapping ranges at once all get exactly their bytes."""
    from concurrent.futures import ThreadPoolExecutor

    rnd = random.Random(4)
    ranges = []
    for _ in range(64):
        a = rnd.randrange(0, len(BIG5))
        ranges.append((a, min(len(BIG5) - 1, a + rnd.choice([0, 99, 4095, 65535, 1 << 20, 3 << 20]))))

    def fetch(rng):
        a, b = rng
        return rng, s3.proxy.get_object(Bucket=objects, Key="big5.bin", Range=f"bytes={a}-{b}")["Body"].read()

    with ThreadPoolExecutor(8) as pool:
        for (a, b), body in pool.map(fetch, ranges):
            assert body == BIG5[a: b + 1], f"bytes={a}-{b}: got {len(body)} bytes, wrong content"


def test_range_416_passes_through(s3, objects):
    o = outcome(boto_get, s3.proxy, Bucket=objects, Key="small.bin", Range="bytes=1000000-")
    assert o == {"error": {"Code": "InvalidRange", "HTTPStatusCode": 416}}


def test_head_object(s3, objects):
    for key in OBJECTS:
        got = s3.both(lambda c: c.head_object(Bucket=objects, Key=key), f"head {key!r}")
        ok = got["ok"]
        assert ok["ContentLength"] == len(OBJECTS[key])
        assert ok["ContentType"] == "application/x-test"
        assert ok["Metadata"] == {"color": "blue", "n": str(len(OBJECTS[key]))}
        assert ok["ETag"].startswith('"')


def test_missing_things(s3, objects):
    s3.both(lambda c: c.head_object(Bucket=objects, Key="nope/none"), "head missing key")
    s3.both(lambda c: boto_get(c, Bucket=objects, Key="nope/none"), "get missing key")
    s3.both(lambda c: boto_get(c, Bucket="no-such-bucket-x", Key="k"), "get in missing bucket")
    s3.both(lambda c: c.head_object(Bucket="no-such-bucket-x", Key="k"), "head in missing bucket")


def test_conditional_get(s3, objects):
    etag = s3.direct.head_object(Bucket=objects, Key="small.bin")["ETag"]
    lm = s3.direct.head_object(Bucket=objects, Key="small.bin")["LastModified"]
    o = s3.both(lambda c: boto_get(c, Bucket=objects, Key="small.bin", IfNoneMatch=etag), "If-None-Match: etag")
    assert o == {"error": {"Code": "304", "HTTPStatusCode": 304}}
    o = s3.both(lambda c: boto_get(c, Bucket=objects, Key="small.bin", IfMatch='"0123456789abcdef"'), "If-Match wrong")
    assert o["error"]["HTTPStatusCode"] == 412
    s3.both(lambda c: boto_get(c, Bucket=objects, Key="small.bin", IfMatch=etag), "If-Match right")
    s3.both(lambda c: boto_get(c, Bucket=objects, Key="small.bin", IfNoneMatch='"0123456789abcdef"'), "If-None-Match other")
    s3.both(lambda c: boto_get(c, Bucket=objects, Key="small.bin", IfMatch=etag, Range="bytes=10-19"), "If-Match + Range")
    s3.both(lambda c: c.head_object(Bucket=objects, Key="small.bin", IfNoneMatch=etag), "HEAD If-None-Match")
    s3.both(lambda c: c.head_object(Bucket=objects, Key="small.bin", IfMatch='"0123"'), "HEAD If-Match wrong")
    import datetime as dt

    later = lm + dt.timedelta(days=1)
    earlier = lm - dt.timedelta(days=1)
    s3.both(lambda c: boto_get(c, Bucket=objects, Key="small.bin", IfModifiedSince=later), "If-Modified-Since later")
    s3.both(lambda c: boto_get(c, Bucket=objects, Key="small.bin", IfModifiedSince=earlier), "If-Modified-Since earlier")
    s3.both(lambda c: boto_get(c, Bucket=objects, Key="small.bin", IfUnmodifiedSince=earlier), "If-Unmodified-Since earlier")


# ------------------------------------------------------------------------------------------ lists
LIST_KEYS = ["list/a/1", "list/a/2", "list/a/3/x", "list/b/1", "list/c", "list/d e", "list/f+g",
             "list/ü/1", "list/zz", "list/z/1", "list/z/2", "list/y"]


@pytest.fixture(scope="module")
def listed(proxy_s3, module_bucket):
    for k in LIST_KEYS:
        proxy_s3.put_object(Bucket=module_bucket, Key=k, Body=k.encode())
    return module_bucket


def pages_v2(c, **kw):
    pages, token = [], None
    for _ in range(50):
        args = dict(kw)
        if token:
            args["ContinuationToken"] = token
        r = c.list_objects_v2(**args)
        pages.append(r)
        if not r.get("IsTruncated"):
            return pages
        token = r["NextContinuationToken"]
    raise AssertionError("list_objects_v2 did not end after 50 pages")


def pages_v1(c, **kw):
    pages, marker = [], None
    for _ in range(50):
        args = dict(kw)
        if marker:
            args["Marker"] = marker
        r = c.list_objects(**args)
        pages.append(r)
        if not r.get("IsTruncated"):
            return pages
        marker = r.get("NextMarker") or r["Contents"][-1]["Key"]
    raise AssertionError("list_objects did not end after 50 pages")


@pytest.mark.parametrize("kw", [
    {"Prefix": "list/"},
    {"Prefix": "list/", "Delimiter": "/"},
    {"Prefix": "list/a/"},
    {"Prefix": "list/", "MaxKeys": 3},
    {"Prefix": "list/", "Delimiter": "/", "MaxKeys": 2},
    {"Prefix": "list/", "StartAfter": "list/c"},
    {"Prefix": "nothing-here/"},
    {"Prefix": "list/", "EncodingType": "url"},
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_list_objects_v2(s3, listed, kw):
    got = s3.both(lambda c: pages_v2(c, Bucket=listed, **kw), f"list_objects_v2 {kw}")
    assert got["ok"]


@pytest.mark.parametrize("kw", [
    {"Prefix": "list/"},
    {"Prefix": "list/", "Delimiter": "/"},
    {"Prefix": "list/", "MaxKeys": 4},
    {"Prefix": "list/", "Delimiter": "/", "MaxKeys": 3},
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_list_objects_v1(s3, listed, kw):
    s3.both(lambda c: pages_v1(c, Bucket=listed, **kw), f"list_objects {kw}")


def test_list_buckets(s3, objects):
    got = s3.both(lambda c: c.list_buckets(), "list_buckets")
    assert objects in [b["Name"] for b in got["ok"]["Buckets"]]


# ------------------------------------------------------------------------------------------ copy / delete
def test_copy_object(s3, objects):
    def norm(o):
        if "ok" in o:
            o["ok"].get("CopyObjectResult", {}).pop("LastModified", None)
        return o

    for src in ("small.bin", ODD_KEY, "big5.bin"):
        s3.both(lambda c: c.copy_object(Bucket=objects, Key=side_key(s3, c, "copies/" + src),
                                        CopySource={"Bucket": objects, "Key": src}), f"copy {src!r}", norm=norm)
        got = s3.both(lambda c: boto_get(c, Bucket=objects, Key="copies/" + src), f"get copy of {src!r}")
        assert got["ok"]["ContentLength"] == len(OBJECTS[src])
        assert s3.direct.get_object(Bucket=objects, Key="copies/" + src)["Body"].read() == OBJECTS[src]
    s3.both(lambda c: c.copy_object(Bucket=objects, Key=side_key(s3, c, "copies/replaced"),
                                    CopySource={"Bucket": objects, "Key": "small.bin"}, MetadataDirective="REPLACE",
                                    Metadata={"new": "meta"}, ContentType="text/plain"), "copy REPLACE", norm=norm)
    s3.both(lambda c: c.head_object(Bucket=objects, Key="copies/replaced"), "head replaced copy")
    s3.both(lambda c: c.copy_object(Bucket=objects, Key=side_key(s3, c, "copies/none"),
                                    CopySource={"Bucket": objects, "Key": "no/such/source"}), "copy missing source")


def test_delete_object(s3, objects):
    for c in (s3.proxy, s3.direct):
        c.put_object(Bucket=objects, Key=side_key(s3, c, "del/one"), Body=b"x")
    s3.both(lambda c: c.delete_object(Bucket=objects, Key=side_key(s3, c, "del/one")), "delete_object")
    s3.both(lambda c: c.head_object(Bucket=objects, Key=side_key(s3, c, "del/one")), "head after delete")
    s3.both(lambda c: c.delete_object(Bucket=objects, Key=side_key(s3, c, "del/never-existed")), "delete missing")


def test_delete_object_then_get_through_proxy(s3, objects):
    """A key read through the proxy, deleted through the proxy, is gone through the proxy."""
    s3.proxy.put_object(Bucket=objects, Key="del/cached", Body=b"to be deleted")
    assert boto_get(s3.proxy, Bucket=objects, Key="del/cached")["Body"] == b"to be deleted"
    s3.proxy.delete_object(Bucket=objects, Key="del/cached")
    s3.both(lambda c: boto_get(c, Bucket=objects, Key="del/cached"), "get after delete")
    s3.proxy.put_object(Bucket=objects, Key="del/cached", Body=b"second version")
    assert boto_get(s3.proxy, Bucket=objects, Key="del/cached")["Body"] == b"second version"


def test_delete_objects(s3, objects):
    names = ["dm/a", "dm/b b", "dm/ü+c"]
    for c in (s3.proxy, s3.direct):
        for n in names:
            c.put_object(Bucket=objects, Key=side_key(s3, c, n), Body=n.encode())

    def run(c):
        r = c.delete_objects(Bucket=objects, Delete={"Objects": [{"Key": side_key(s3, c, n)} for n in names + ["dm/missing"]]})
        prefix = side_key(s3, c, "")
        r["Deleted"] = sorted((d["Key"][len(prefix):], d.get("DeleteMarker")) for d in r.get("Deleted", []))
        r["Errors"] = r.get("Errors", [])
        return r

    got = s3.both(run, "delete_objects")
    assert [k for k, _ in got["ok"]["Deleted"]] == sorted(names + ["dm/missing"])
    for n in names:
        s3.both(lambda c: c.head_object(Bucket=objects, Key=side_key(s3, c, n)), f"head {n!r} after delete_objects")


# ------------------------------------------------------------------------------------------ multipart
PARTS = [random.Random(10 + i).randbytes(n) for i, n in enumerate([5 * MiB, 5 * MiB, 1 * MiB + 7])]


def multipart_flow(s3, c, bucket, key):
    key = side_key(s3, c, key)
    up = c.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/x-mp", Metadata={"mp": "yes"})
    uid = up["UploadId"]
    etags = []
    for i, data in enumerate(PARTS, 1):
        r = c.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i, Body=data)
        etags.append(r["ETag"])
    lp = c.list_parts(Bucket=bucket, Key=key, UploadId=uid)
    parts = [{k: p[k] for k in ("PartNumber", "ETag", "Size")} for p in lp["Parts"]]
    done = c.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": i, "ETag": e} for i, e in enumerate(etags, 1)]})
    return {"part_etags": etags, "listed": parts, "list_truncated": lp.get("IsTruncated"),
            "complete_etag": done["ETag"], "complete_status": done["ResponseMetadata"]["HTTPStatusCode"],
            "complete_key": done.get("Key", "").replace("direct-side/", "")}


@pytest.fixture(scope="module")
def mp_object(s3, objects):
    got = s3.both(lambda c: multipart_flow(s3, c, objects, "mp/object.bin"), "multipart upload flow")
    assert len(got["ok"]["listed"]) == 3
    return objects, "mp/object.bin"


def test_multipart_read_back(s3, mp_object):
    bucket, key = mp_object
    whole = b"".join(PARTS)
    got = s3.both(lambda c: boto_get(c, Bucket=bucket, Key=key), "get multipart object")
    assert got["ok"]["ContentLength"] == len(whole)
    assert s3.proxy.get_object(Bucket=bucket, Key=key)["Body"].read() == whole
    s3.both(lambda c: c.head_object(Bucket=bucket, Key=key), "head multipart object")
    for rng in ("bytes=5242870-5242900", "bytes=-100", f"bytes={len(whole) - 10}-"):
        s3.both(lambda c: boto_get(c, Bucket=bucket, Key=key, Range=rng), f"multipart range {rng}")


@pytest.mark.parametrize("part", [1, 2, 3, 4])
def test_part_number(s3, mp_object, part):
    bucket, key = mp_object
    got = s3.both(lambda c: boto_get(c, Bucket=bucket, Key=key, PartNumber=part), f"get partNumber={part}")
    if "ok" in got and got["ok"]["HTTPStatusCode"] == 206:
        assert s3.proxy.get_object(Bucket=bucket, Key=key, PartNumber=part)["Body"].read() == PARTS[part - 1]
    s3.both(lambda c: c.head_object(Bucket=bucket, Key=key, PartNumber=part), f"head partNumber={part}")


def test_version_id_null(s3, mp_object):
    bucket, key = mp_object
    s3.both(lambda c: c.head_object(Bucket=bucket, Key=key, VersionId="null"), "head versionId=null")
    s3.both(lambda c: boto_get(c, Bucket=bucket, Key=key, VersionId="null", Range="bytes=0-9"), "get versionId=null")


def test_multipart_abort(s3, objects):
    key = "mp/aborted.bin"
    up = s3.proxy.create_multipart_upload(Bucket=objects, Key=key)
    uid = up["UploadId"]
    s3.proxy.upload_part(Bucket=objects, Key=key, UploadId=uid, PartNumber=1, Body=PARTS[2])

    def uploads(c):
        r = c.list_multipart_uploads(Bucket=objects, Prefix="mp/")
        return sorted((u["Key"], u["UploadId"]) for u in r.get("Uploads", []))

    got = s3.both(uploads, "list_multipart_uploads")
    assert (key, uid) in [tuple(x) for x in got["ok"]]
    s3.both(lambda c: c.list_parts(Bucket=objects, Key=key, UploadId=uid)["Parts"][0]["Size"], "list_parts")
    r = s3.proxy.abort_multipart_upload(Bucket=objects, Key=key, UploadId=uid)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    got = s3.both(uploads, "list_multipart_uploads after abort")
    assert (key, uid) not in [tuple(x) for x in got["ok"]]
    s3.both(lambda c: c.list_parts(Bucket=objects, Key=key, UploadId=uid), "list_parts after abort")
    s3.both(lambda c: c.head_object(Bucket=objects, Key=key), "head aborted key")


# ------------------------------------------------------------------------------------------ transfer manager
def test_upload_download_file(s3, objects, tmp_path):
    data = random.Random(99).randbytes(20 * MiB + 17)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)
    for c in (s3.proxy, s3.direct):
        c.upload_file(str(src), objects, side_key(s3, c, "xfer/20mib.bin"), Config=cfg)
    s3.both(lambda c: c.head_object(Bucket=objects, Key=side_key(s3, c, "xfer/20mib.bin"))["ETag"], "multipart ETag")
    s3.both(lambda c: c.head_object(Bucket=objects, Key="xfer/20mib.bin"), "head uploaded file")
    outs = {}
    for name, c in (("proxy", s3.proxy), ("direct", s3.direct)):
        dst = tmp_path / f"dst-{name}.bin"
        c.download_file(objects, "xfer/20mib.bin", str(dst), Config=cfg)
        outs[name] = dst.read_bytes()
    assert outs["proxy"] == data
    assert outs["direct"] == data
    # the default transfer config too (8 MiB chunks, last range open-ended)
    dst = tmp_path / "dst-default.bin"
    s3.proxy.download_file(objects, "xfer/20mib.bin", str(dst))
    assert dst.read_bytes() == data


def test_crosscheck_origin_holds_what_proxy_wrote(s3, objects):
    for key, body in OBJECTS.items():
        assert_same(s3.direct.get_object(Bucket=objects, Key=key)["Body"].read(), body, key)
