"""rangecache as the OIDC identity provider for its origin (`credentials = "oidc"`), all inside
the project: rangecache B mints RS256 tokens with its own keys and serves its discovery
document and JWKS on its admin listener; rangecache A, B's origin, in front of SeaweedFS, has
an STS role that trusts B's issuer through B's JWKS URL. B exchanges its token at A's STS
(AssumeRoleWithWebIdentity) and signs with the session A hands out: boto3 through B reads and
writes A's objects. B's key file holds two keys (rotation): both are in the JWKS, the newest
signs; a third appended and reloaded signs from the next refresh, without a failed request.
When A stops trusting that key (its role now trusts a JWKS holding only B's older keys),
a B that needs credentials gets none: its log and metrics say why, /readyz is 503, and clients
get an S3 503 instead of an origin 403."""

from __future__ import annotations

import base64
import json
import os
import random
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization

from helpers import jwt_issuer, procs
from helpers.clients import s3_client
from helpers.proxy import FULL_KEY, to_toml
from helpers.seaweed import REGION

pytestmark = pytest.mark.needs_binary

PID = os.getpid() % 10000
BUCKET = f"oidc-{PID}"
AUDIENCE = "rangecache-a"
ROLE = "b-origin"
ROLE_ARN = f"arn:aws:iam::000000000000:role/{ROLE}"
BODY = random.Random(161).randbytes(300_000)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def readyz(p) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(p.admin + "/readyz", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def pem(key) -> bytes:
    return key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def a_auth(trust: dict) -> dict:
    """A's [auth]: the suite's full key, and the role B's tokens are exchanged for."""
    return {
        "mode": "sigv4",
        "session_token_keys": [base64.b64encode(os.urandom(32)).decode()],
        "keys": [dict(FULL_KEY)],
        "roles": [{"name": ROLE, "audiences": [AUDIENCE], "subjects": ["rangecache:*"], "max_duration": "1h",
                   "grants": [{"bucket": BUCKET, "access": "all"}], **trust}],
    }


def test_rangecache_b_gets_a_objects_with_its_own_oidc_identity(proxy_factory, seaweed, tmp_path, figures):
    d = s3_client(seaweed.endpoint)
    try:
        d.create_bucket(Bucket=BUCKET)
    except d.exceptions.BucketAlreadyOwnedByYou:
        pass
    d.put_object(Bucket=BUCKET, Key="data/seeded.bin", Body=BODY)

    old, new = jwt_issuer.rsa_key("old"), jwt_issuer.rsa_key("new")
    key_file = tmp_path / "b-oidc.pem"
    key_file.write_bytes(pem(old) + pem(new))  # the last key is the newest: it signs

    # B's addresses first: A's role names B's JWKS URL.
    b_cfg = proxy_factory.config("http://127.0.0.1:1")
    b_admin = b_cfg["server"]["admin_listen"]
    issuer = f"http://{b_admin}"
    a_cfg = proxy_factory.config(seaweed.endpoint, auth=a_auth(
        {"issuer": issuer, "jwks_url": f"http://{b_admin}/.well-known/jwks.json", "jwks_refresh": "5m"}))
    a = proxy_factory.create(a_cfg, env={"SESSION_TOKEN_KEY": None})
    a.start()

    b_cfg["origin"] = {"endpoint": a.endpoint, "region": REGION, "credentials": "oidc",
                       "oidc": {"key_file": str(key_file), "issuer": issuer, "audience": AUDIENCE,
                                "role_arn": ROLE_ARN, "sts_endpoint": a.admin}}
    b_cfg["cache"] = {"memory": "64MiB", "metadata_ttl": "0s"}
    b = proxy_factory.create(b_cfg, env={"AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": None,
                                         "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None})
    b.start()  # ready = B holds credentials from A's STS

    # B publishes its identity: discovery document and both keys, the newest signing.
    disc = get_json(f"{issuer}/.well-known/openid-configuration")
    assert disc["issuer"] == issuer
    assert disc["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert disc["id_token_signing_alg_values_supported"] == ["RS256"]
    jwks = get_json(disc["jwks_uri"])
    assert [k["n"] for k in jwks["keys"]] == [old.jwk()["n"], new.jwk()["n"]]

    client = s3_client(b.endpoint)
    assert client.get_object(Bucket=BUCKET, Key="data/seeded.bin")["Body"].read() == BODY
    got = client.get_object(Bucket=BUCKET, Key="data/seeded.bin", Range="bytes=100-199")["Body"].read()
    assert got == BODY[100:200]
    client.put_object(Bucket=BUCKET, Key="data/through-b.txt", Body=b"written by B's session")
    assert d.get_object(Bucket=BUCKET, Key="data/through-b.txt")["Body"].read() == b"written by B's session"
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="data/")["Contents"]]
    assert keys == ["data/seeded.bin", "data/through-b.txt"]
    assert b.metric_sum("rangecache_oidc_tokens_minted_total") >= 1
    assert b.metric_sum("rangecache_credential_refreshes_total", result="success") >= 1
    assert b.metric_sum("rangecache_credential_valid", origin="default") == 1
    # A's sessions live an hour: B refreshes them minutes before they expire.
    assert 3000 < b.metric_sum("rangecache_credential_expiry_seconds", origin="default") <= 3600
    # Mint + AssumeRoleWithWebIdentity at A (A fetching B's JWKS the first time).
    figures["oidc_refresh_first_ms"] = round(1000 * b.metric_sum("rangecache_credential_last_refresh_seconds"), 2)

    # Key rotation by reload: a newer key appended to the file signs from B's next refresh,
    # which the reload starts at once while B keeps serving with its current session. A knows
    # the new key only after refetching B's JWKS (at most every 30 s for an unknown key id),
    # so the first exchanges may be refused and retried; clients see none of it.
    newest = jwt_issuer.rsa_key("newest")
    key_file.write_bytes(pem(old) + pem(new) + pem(newest))
    b.reload()
    assert [k["n"] for k in get_json(disc["jwks_uri"])["keys"]] == [k.jwk()["n"] for k in (old, new, newest)]
    problems: list[str] = []
    reads = 0

    def rotated() -> bool:
        nonlocal reads
        if readyz(b)[0] != 200:
            problems.append(f"readyz {readyz(b)}")
        try:
            got = client.get_object(Bucket=BUCKET, Key="data/seeded.bin", Range="bytes=0-99")["Body"].read()
            if got != BODY[:100]:
                problems.append("wrong bytes")
            reads += 1
        except ClientError as e:
            problems.append(repr(e))
        return b.metric_sum("rangecache_credential_refreshes_total", result="success") >= 1 and \
            b.metric_sum("rangecache_oidc_tokens_minted_total") >= 1

    procs.wait_until(rotated, timeout=90, interval=0.5, what="a refresh with the newest key")
    assert not problems and reads >= 1, (problems[:5], b.logs())
    figures["oidc_rotation_reads_meanwhile"] = reads

    # A stops trusting B's signing key: its role now trusts a JWKS that holds only B's old key.
    only_old = jwt_issuer.write_jwks(tmp_path / "only-old.json", [old, new])
    a_cfg = dict(a.config)
    a_cfg["auth"] = a_auth({"issuer": issuer, "jwks_file": str(only_old)})
    a.reload(a_cfg)

    # A B that needs credentials now (here: restarted) gets none, and says why.
    assert b.terminate() == 0
    b2 = proxy_factory.create(b_cfg, env={"AWS_EC2_METADATA_DISABLED": "true"})
    b2.start(require_ready=False)
    procs.wait_until(lambda: b2.metric_sum("rangecache_credential_refreshes_total", result="failure") >= 1,
                     timeout=20, what="a failed credential refresh")
    status, why = readyz(b2)
    assert status == 503 and "no valid credentials" in why and "InvalidIdentityToken" in why, (status, why)
    assert b2.metric_sum("rangecache_credential_valid", origin="default") == 0
    assert b2.metric_sum("rangecache_credential_refreshes_total", result="success") == 0
    with pytest.raises(ClientError) as err:
        s3_client(b2.endpoint).get_object(Bucket=BUCKET, Key="data/seeded.bin")
    e = err.value.response
    assert e["ResponseMetadata"]["HTTPStatusCode"] == 503, e
    assert e["Error"]["Code"] == "ServiceUnavailable" and "credentials" in e["Error"]["Message"], e
    log = b2.stderr_path.read_text() + b2.stdout_path.read_text()
    assert "AssumeRoleWithWebIdentity at" in log and "InvalidIdentityToken" in log, b2.logs()

    # Trust restored: B's refresher retries (with backoff) and recovers by itself.
    a_cfg = dict(a.config)
    a_cfg["auth"] = a_auth({"issuer": issuer, "jwks_url": f"http://{b_admin}/.well-known/jwks.json"})
    a.reload(a_cfg)
    procs.wait_until(lambda: readyz(b2)[0] == 200, timeout=90, what="B ready again")
    assert s3_client(b2.endpoint).get_object(Bucket=BUCKET, Key="data/seeded.bin")["Body"].read() == BODY
    figures["oidc_refresh_recovered_ms"] = round(
        1000 * b2.metric_sum("rangecache_credential_last_refresh_seconds"), 2)
