"""STS AssumeRoleWithWebIdentity on the admin listener and the session credentials it hands out
(docs/auth-spec.md): a test issuer (RSA and EC P-256 keys, a JWKS file) signs JWTs, boto3's `sts`
client trades them for temporary credentials, boto3's `s3` client reads with them through the
proxy. Session-token key rotation by SIGHUP; every refusal gets no object bytes.

Not covered: a session that expires by itself (the shortest session STS grants is 900 s)."""

from __future__ import annotations

import base64
import datetime as dt
import os
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
import jwt as pyjwt
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import jwt_issuer, sigv4
from helpers.clients import s3_client
from helpers.proxy import FULL_KEY
from helpers.seaweed import REGION
from helpers.sigv4 import Creds, assert_refused

pytestmark = pytest.mark.needs_binary

PID = os.getpid() % 10000
BUCKET = f"stsdata-{PID}"
OTHER = f"stsother-{PID}"
ISSUER = "https://issuer.test"
AUD = "rangecache"
ROLE = "analytics"
ROLE_ARN = f"arn:aws:iam::123456789012:role/{ROLE}"
NARROW_ARN = "arn:aws:iam::000000000000:role/narrow"
SUBJECT = "repo:org/app:ref:main"
BODY = random.Random(101).randbytes(300_000)
OTHER_BODY = random.Random(102).randbytes(3000)


def new_session_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def origin(seaweed):
    d = s3_client(seaweed.endpoint)
    for b in (BUCKET, OTHER):
        try:
            d.create_bucket(Bucket=b)
        except d.exceptions.BucketAlreadyOwnedByYou:
            pass  # the module runs again for the next io driver
    d.put_object(Bucket=BUCKET, Key="data/obj.bin", Body=BODY)
    d.put_object(Bucket=BUCKET, Key="tables/narrow.bin", Body=BODY[:1000])
    d.put_object(Bucket=OTHER, Key="data/other.bin", Body=OTHER_BODY)
    return d


@pytest.fixture(scope="module")
def issuer(tmp_path_factory):
    d = tmp_path_factory.mktemp("issuer")
    rsa, ec = jwt_issuer.rsa_key("rsa-1"), jwt_issuer.ec_key("ec-1")
    return {"rsa": rsa, "ec": ec, "jwks": jwt_issuer.write_jwks(d / "jwks.json", [rsa, ec])}


def auth_section(issuer, session_keys: list[str]) -> dict:
    return {
        "mode": "sigv4",
        "session_token_keys": session_keys,
        "keys": [dict(FULL_KEY)],
        "roles": [
            {"name": ROLE, "issuer": ISSUER, "jwks_file": str(issuer["jwks"]), "audiences": [AUD, "other-aud"],
             "subjects": ["repo:org/*"], "max_duration": "1h",
             "grants": [{"bucket": BUCKET, "prefix": "", "access": ["read", "list"]}]},
            {"name": "narrow", "issuer": ISSUER, "jwks_file": str(issuer["jwks"]), "audiences": [AUD],
             "subjects": ["svc-narrow"], "max_duration": "30m",
             "grants": [{"bucket": BUCKET, "prefix": "tables/", "access": "read"}]},
        ],
    }


def start(factory, seaweed, issuer, session_keys: list[str], env=None):
    env = {"SESSION_TOKEN_KEY": None, **(env or {})}  # only what the test says
    return factory.start(seaweed.endpoint, auth=auth_section(issuer, session_keys), env=env,
                         cache={"memory": "64MiB", "block_size": "1MiB", "metadata_ttl": "1h"})


@pytest.fixture(scope="module")
def sp(module_proxy_factory, seaweed, origin, issuer):
    return start(module_proxy_factory, seaweed, issuer, [new_session_key()])


def sts(p):
    return boto3.session.Session().client(
        "sts", endpoint_url=p.admin, region_name=REGION, aws_access_key_id="unused", aws_secret_access_key="unused",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=30))


def token(issuer, alg: str = "rsa", **kw) -> str:
    kw.setdefault("subject", SUBJECT)
    kw.setdefault("audience", AUD)
    return jwt_issuer.mint(issuer[alg], kw.pop("iss", ISSUER), **kw)


def assume(p, web_token: str, arn: str = ROLE_ARN, session: str = "e2e-session", **kw) -> dict:
    return sts(p).assume_role_with_web_identity(RoleArn=arn, RoleSessionName=session, WebIdentityToken=web_token,
                                                **kw)


def creds_of(resp: dict) -> Creds:
    c = resp["Credentials"]
    return Creds(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


def s3_with(p, c: Creds):
    return s3_client(p.endpoint, access_key=c.access_key, secret_key=c.secret_key, session_token=c.session_token)


def sts_error(fn, status: int, code: str) -> dict:
    with pytest.raises(ClientError) as ei:
        out = fn()
        raise AssertionError(f"STS handed out credentials: {out}")
    r = ei.value.response
    assert (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]) == (status, code), r
    return r


def assert_reads(p, c: Creds) -> None:
    r = sigv4.request(p.hostport, "GET", BUCKET, "data/obj.bin", creds=c)
    assert (r.status, r.body) == (200, BODY), sigv4.describe(r)


# ------------------------------------------------------------------------------------------ success
@pytest.mark.parametrize("alg", ["rsa", "ec"], ids=["RS256", "ES256"])
def test_assume_role_and_read(sp, origin, issuer, alg):
    t0 = dt.datetime.now(dt.timezone.utc)
    resp = assume(sp, token(issuer, alg), DurationSeconds=900)
    c = resp["Credentials"]
    assert re.fullmatch(r"ASIA[A-Z0-9]{16}", c["AccessKeyId"]), c
    assert len(c["SecretAccessKey"]) == 40 and c["SessionToken"], c
    exp = c["Expiration"]
    assert t0 + dt.timedelta(seconds=880) <= exp <= t0 + dt.timedelta(seconds=960), (t0, exp)
    assert resp["SubjectFromWebIdentityToken"] == SUBJECT
    assert resp["Audience"] == AUD
    assert resp["Provider"] == ISSUER
    assert resp["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::000000000000:assumed-role/{ROLE}/e2e-session"
    assert re.fullmatch(r"AROA[A-Z0-9]{16}:e2e-session", resp["AssumedRoleUser"]["AssumedRoleId"]), resp

    s3 = s3_with(sp, creds_of(resp))
    assert s3.get_object(Bucket=BUCKET, Key="data/obj.bin")["Body"].read() == BODY
    got = s3.get_object(Bucket=BUCKET, Key="data/obj.bin", Range="bytes=1000-1999")["Body"].read()
    assert got == BODY[1000:2000]
    assert s3.head_object(Bucket=BUCKET, Key="data/obj.bin")["ContentLength"] == len(BODY)
    assert "data/obj.bin" in {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}

    # the role grants read + list on BUCKET only
    key = f"data/put-{alg}.bin"
    for fn, code in (
        (lambda: s3.put_object(Bucket=BUCKET, Key=key, Body=b"session write"), "AccessDenied"),
        (lambda: s3.delete_object(Bucket=BUCKET, Key="data/obj.bin"), "AccessDenied"),
        (lambda: s3.get_object(Bucket=OTHER, Key="data/other.bin")["Body"].read(), "AccessDenied"),
        (lambda: s3.list_objects_v2(Bucket=OTHER), "AccessDenied"),
        (lambda: s3.list_buckets(), "AccessDenied"),
    ):
        with pytest.raises(ClientError) as ei:
            fn()
        assert ei.value.response["Error"]["Code"] == code, ei.value.response
        assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError):
        origin.head_object(Bucket=BUCKET, Key=key)
    assert origin.head_object(Bucket=BUCKET, Key="data/obj.bin")["ContentLength"] == len(BODY)


def test_audience_array_and_default_duration(sp, issuer):
    t0 = dt.datetime.now(dt.timezone.utc)
    resp = assume(sp, token(issuer, audience=["someone-else", "other-aud"]))
    assert resp["Audience"] == "other-aud"
    exp = resp["Credentials"]["Expiration"]
    assert t0 + dt.timedelta(seconds=3500) <= exp <= t0 + dt.timedelta(seconds=3700), (t0, exp)
    assert_reads(sp, creds_of(resp))


def test_duration_is_bounded_by_the_role(sp, issuer):
    """narrow's max_duration is 30m: asking for 1h is refused or capped, never granted."""
    t0 = dt.datetime.now(dt.timezone.utc)
    try:
        resp = assume(sp, token(issuer, subject="svc-narrow"), NARROW_ARN, DurationSeconds=3600)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ValidationError", e.response
        return
    assert resp["Credentials"]["Expiration"] <= t0 + dt.timedelta(seconds=1800 + 60), resp["Credentials"]


def test_narrow_role_grants(sp, origin, issuer):
    c = creds_of(assume(sp, token(issuer, subject="svc-narrow"), NARROW_ARN, DurationSeconds=900))
    r = sigv4.request(sp.hostport, "GET", BUCKET, "tables/narrow.bin", creds=c)
    assert (r.status, r.body) == (200, BODY[:1000]), sigv4.describe(r)
    assert_refused(sigv4.request(sp.hostport, "GET", BUCKET, "data/obj.bin", creds=c), 403, "AccessDenied", BODY)
    assert_refused(sigv4.request(sp.hostport, "GET", BUCKET, "", creds=c, query=[("list-type", "2"),
                                                                                 ("prefix", "tables/")]),
                   403, "AccessDenied")


def test_sts_by_get_query(sp, issuer):
    q = urllib.parse.urlencode({"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": ROLE_ARN,
                                "RoleSessionName": "by-get", "WebIdentityToken": token(issuer)})
    with urllib.request.urlopen(f"{sp.admin}/?{q}", timeout=10) as r:
        body = r.read().decode()
    ak = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", body).group(1)
    sk = re.search(r"<SecretAccessKey>([^<]+)</SecretAccessKey>", body).group(1)
    st = re.search(r"<SessionToken>([^<]+)</SessionToken>", body).group(1)
    assert_reads(sp, Creds(ak, sk, st))


# ------------------------------------------------------------------------------------------ bad sessions
@pytest.fixture(scope="module")
def session(sp, issuer, origin):
    c = creds_of(assume(sp, token(issuer), DurationSeconds=900))
    assert_reads(sp, c)  # also warms the cache: the refusals below must not come from it
    return c


B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def flip(s: str, i: int) -> str:
    """s with character i changed so that its top base64 bit differs (never only padding bits)."""
    ch = s[i]
    alphabet = B64 + ("-_" if ch in "-_" else "+/")
    rep = alphabet[alphabet.index(ch) ^ 32] if ch in alphabet else "A"
    return s[:i] + rep + s[i + 1:]


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_tampered_session_token(sp, session, where):
    i = {"start": 0, "middle": len(session.session_token) // 2, "end": len(session.session_token) - 2}[where]
    bad = Creds(session.access_key, session.secret_key, flip(session.session_token, i))
    assert_refused(sigv4.request(sp.hostport, "GET", BUCKET, "data/obj.bin", creds=bad), 400, "InvalidToken", BODY)
    bad3 = s3_with(sp, bad)
    with pytest.raises(ClientError) as ei:
        bad3.get_object(Bucket=BUCKET, Key="data/obj.bin")["Body"].read()
    assert ei.value.response["Error"]["Code"] == "InvalidToken", ei.value.response


def test_session_misuse(sp, session, issuer):
    h = sp.hostport
    # the token of one session with the keys of another
    other = creds_of(assume(sp, token(issuer), session="other-session", DurationSeconds=900))
    assert_reads(sp, other)
    mixed = Creds(other.access_key, other.secret_key, session.session_token)
    assert_refused(sigv4.request(h, "GET", BUCKET, "data/obj.bin", creds=mixed), 400, "InvalidToken", BODY)
    # right token, wrong secret
    wrong = Creds(session.access_key, "x" * 40, session.session_token)
    assert_refused(sigv4.request(h, "GET", BUCKET, "data/obj.bin", creds=wrong), 403, "SignatureDoesNotMatch", BODY)
    # the session's key without its token
    bare = Creds(session.access_key, session.secret_key)
    assert_refused(sigv4.request(h, "GET", BUCKET, "data/obj.bin", creds=bare), 403, "InvalidAccessKeyId", BODY)
    # garbage token
    junk = Creds(session.access_key, session.secret_key, "not-a-token")
    assert_refused(sigv4.request(h, "GET", BUCKET, "data/obj.bin", creds=junk), 400, "InvalidToken", BODY)
    # a static key with a (valid) session token attached
    static = Creds(FULL_KEY["access_key_id"], FULL_KEY["secret_access_key"], session.session_token)
    r = sigv4.request(h, "GET", BUCKET, "data/obj.bin", creds=static)
    assert r.status in (400, 403) and BODY[:32] not in r.body, sigv4.describe(r)
    # the session outside its grants
    assert_refused(sigv4.request(h, "GET", OTHER, "data/other.bin", creds=session), 403, "AccessDenied", OTHER_BODY)
    assert_refused(sigv4.request(h, "PUT", BUCKET, "data/session-put.bin", b"x", creds=session), 403, "AccessDenied")


def test_presigned_url_with_session(sp, session, tmp_path):
    s3 = s3_with(sp, session)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "data/obj.bin"}, ExpiresIn=300)
    assert "X-Amz-Security-Token=" in url
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.read() == BODY
    tok = urllib.parse.quote(session.session_token, safe="")
    assert tok in url
    bad = url.replace(tok, urllib.parse.quote(flip(session.session_token, 5), safe=""))
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(bad, timeout=30)
    body = ei.value.read()
    assert ei.value.code in (400, 403) and BODY[:32] not in body, (ei.value.code, body)
    assert b"<Code>InvalidToken</Code>" in body or b"<Code>SignatureDoesNotMatch</Code>" in body, body


def test_foreign_session_token(module_proxy_factory, seaweed, sp, issuer, origin):
    """Credentials from a proxy with another session key are refused here."""
    foreign = start(module_proxy_factory, seaweed, issuer, [new_session_key()])
    c = creds_of(assume(foreign, token(issuer), DurationSeconds=900))
    assert_reads(foreign, c)
    assert_refused(sigv4.request(sp.hostport, "GET", BUCKET, "data/obj.bin", creds=c), 400, "InvalidToken", BODY)
    foreign.terminate()


# ------------------------------------------------------------------------------------------ rotation
def test_session_key_rotation(proxy_factory, seaweed, origin, issuer):
    old, new = new_session_key(), new_session_key()
    p = start(proxy_factory, seaweed, issuer, [old])
    only_old = start(proxy_factory, seaweed, issuer, [old])
    a = creds_of(assume(p, token(issuer), session="before-rotation", DurationSeconds=900))
    assert_reads(p, a)
    assert_reads(only_old, a)  # same key: the other proxy opens it too

    cfg = dict(p.config)
    cfg["auth"] = auth_section(issuer, [new, old])
    p.reload(cfg)
    assert_reads(p, a)  # sealed with the old key, still opened
    b = creds_of(assume(p, token(issuer, "ec"), session="after-rotation", DurationSeconds=900))
    assert_reads(p, b)
    # b is sealed with the new key, which only_old does not have
    assert_refused(sigv4.request(only_old.hostport, "GET", BUCKET, "data/obj.bin", creds=b), 400, "InvalidToken", BODY)

    cfg = dict(p.config)
    cfg["auth"] = auth_section(issuer, [new])
    p.reload(cfg)
    assert_refused(sigv4.request(p.hostport, "GET", BUCKET, "data/obj.bin", creds=a), 400, "InvalidToken", BODY)
    assert_reads(p, b)


def test_session_token_key_from_environment(proxy_factory, seaweed, origin, issuer):
    """SESSION_TOKEN_KEY is prepended to session_token_keys: it seals, the file's keys still open."""
    env_key, file_key = new_session_key(), new_session_key()
    p = start(proxy_factory, seaweed, issuer, [file_key], env={"SESSION_TOKEN_KEY": env_key})
    c = creds_of(assume(p, token(issuer), DurationSeconds=900))
    assert_reads(p, c)
    with_env = start(proxy_factory, seaweed, issuer, [env_key])
    with_file = start(proxy_factory, seaweed, issuer, [file_key])
    assert_reads(with_env, c)
    assert_refused(sigv4.request(with_file.hostport, "GET", BUCKET, "data/obj.bin", creds=c), 400, "InvalidToken",
                   BODY)
    # and a token sealed with the file's key is still opened by p
    d = creds_of(assume(with_file, token(issuer), DurationSeconds=900))
    assert_reads(p, d)


def test_sts_without_session_keys(proxy_factory, seaweed, origin, issuer):
    p = start(proxy_factory, seaweed, issuer, [], env={"SESSION_TOKEN_KEY": None})
    sts_error(lambda: assume(p, token(issuer)), 503, "ServiceUnavailable")


# ------------------------------------------------------------------------------------------ bad identity tokens
def hs256(issuer) -> str:
    now = int(time.time())
    return pyjwt.encode({"iss": ISSUER, "aud": AUD, "sub": SUBJECT, "iat": now, "exp": now + 600}, "s" * 32,
                        algorithm="HS256", headers={"kid": issuer["rsa"].kid})


def alg_none(issuer) -> str:
    now = int(time.time())
    return pyjwt.encode({"iss": ISSUER, "aud": AUD, "sub": SUBJECT, "iat": now, "exp": now + 600}, None,
                        algorithm="none", headers={"kid": issuer["rsa"].kid})


def resigned(issuer) -> str:
    """Header and claims of a good token with the signature of another good token."""
    a, b = token(issuer).split("."), token(issuer, subject="repo:org/other").split(".")
    return ".".join([a[0], a[1], b[2]])


BAD_JWTS = {
    "expired": (lambda i: token(i, now=time.time() - 1000, lifetime=300), 400, "ExpiredTokenException"),
    "wrong-issuer": (lambda i: token(i, iss="https://evil.test"), 400, "InvalidIdentityToken"),
    "wrong-audience": (lambda i: token(i, audience="not-rangecache"), 403, "AccessDenied"),
    "subject-not-allowed": (lambda i: token(i, subject="repo:other/app"), 403, "AccessDenied"),
    "other-key-same-kid": (lambda i: jwt_issuer.mint(jwt_issuer.rsa_key(i["rsa"].kid), ISSUER, AUD, SUBJECT), 400,
                           "InvalidIdentityToken"),
    "other-ec-key-same-kid": (lambda i: jwt_issuer.mint(jwt_issuer.ec_key(i["ec"].kid), ISSUER, AUD, SUBJECT), 400,
                              "InvalidIdentityToken"),
    "unknown-kid": (lambda i: token(i, kid="no-such-kid"), 400, "InvalidIdentityToken"),
    "ec-token-with-rsa-kid": (lambda i: token(i, "ec", kid=i["rsa"].kid), 400, "InvalidIdentityToken"),
    "not-yet-valid": (lambda i: token(i, nbf=int(time.time()) + 600, iat=int(time.time()) + 600), 400,
                      "InvalidIdentityToken"),
    "hs256": (hs256, 400, "InvalidIdentityToken"),
    "alg-none": (alg_none, 400, "InvalidIdentityToken"),
    "signature-swapped": (resigned, 400, "InvalidIdentityToken"),
    "malformed": (lambda i: "not.a.jwt", 400, "InvalidIdentityToken"),
}


@pytest.mark.parametrize("name", list(BAD_JWTS))
def test_bad_identity_token(sp, issuer, name):
    make, status, code = BAD_JWTS[name]
    sts_error(lambda: assume(sp, make(issuer), DurationSeconds=900), status, code)


def test_bad_sts_requests(sp, issuer):
    good = token(issuer)
    sts_error(lambda: assume(sp, good, arn="arn:aws:iam::123456789012:role/nobody"), 403, "AccessDenied")

    def post(params: dict) -> tuple[int, bytes]:
        req = urllib.request.Request(sp.admin + "/", data=urllib.parse.urlencode(params).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    base = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": ROLE_ARN,
            "RoleSessionName": "raw", "WebIdentityToken": good}
    st, body = post({k: v for k, v in base.items() if k != "WebIdentityToken"})
    assert st == 400 and b"<Code>ValidationError</Code>" in body, (st, body)
    st, body = post({k: v for k, v in base.items() if k != "RoleArn"})
    assert st == 400 and b"<Code>ValidationError</Code>" in body, (st, body)
    for bad in ({"RoleSessionName": "x"}, {"RoleSessionName": "has space"}, {"DurationSeconds": "899"},
                {"DurationSeconds": "43201"}, {"DurationSeconds": "soon"}):
        st, body = post({**base, **bad})
        assert st == 400 and b"<Code>ValidationError</Code>" in body and b"<SessionToken>" not in body, (bad, st, body)
    st, body = post({**base, "Action": "AssumeRole"})
    assert st == 400 and b"<Code>InvalidAction</Code>" in body, (st, body)
    st, body = post(base)
    assert st == 200 and b"<SessionToken>" in body, (st, body)
