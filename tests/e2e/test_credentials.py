"""Origin credentials that rangecache refreshes itself (`credentials = "chain"`), from the AWS
default provider chain: a container-credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI)
and a web identity token file exchanged at an STS (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN,
AWS_ENDPOINT_URL_STS). Both endpoints are served by this test on loopback.

The origin is a rangecache "A" in front of SeaweedFS, so that it can reject expired keys:
every credential generation the test hands out is a real session of A's STS, sealed with a
session-token key of its own; when the generation's stated expiry passes, the test reloads A
without that key, and A refuses the session from then on. Each generation is stated to live
GENERATION_LIFE seconds, so rangecache "B" (credentials = "chain", A as its origin) must
refresh several times while boto3 reads and writes through it without a single failure.
A's access log then shows that every request B sent arrived before the expiry of the key it
was signed with.

The chain cannot reach IMDS or anything off loopback: B runs with AWS_EC2_METADATA_DISABLED,
no profile files, no AWS_* keys, and a HOME of its own."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import random
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import boto3
import pytest
from botocore.config import Config

from helpers import jwt_issuer, procs
from helpers.clients import s3_client
from helpers.proxy import FULL_KEY, to_toml
from helpers.seaweed import REGION

pytestmark = pytest.mark.needs_binary

PID = os.getpid() % 10000
BUCKET = f"creds-{PID}"
ISSUER = "https://test-issuer.test"
ROLE = "origin-access"
ROLE_ARN = f"arn:aws:iam::123456789012:role/{ROLE}"
GENERATION_LIFE = 20  # seconds each credential generation is stated to live
RUN_FOR = 42  # seconds of traffic: two generations, so at least three fetches and one retirement
CONTAINER_TOKEN = "container-auth-token-for-the-test"
STATIC_BODY = random.Random(151).randbytes(200_000)


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_session_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


class Authority:
    """Hands out credential generations (sessions of A's STS) and retires them at their stated
    expiry by reloading A without the session-token key that sealed them."""

    def __init__(self, a, issuer_key):
        self.a = a
        self.issuer_key = issuer_key
        self.lock = threading.Lock()
        self.live: list[tuple[str, float]] = []  # (session-token key, stated expiry), newest first
        self.issued: dict[str, float] = {}  # access key id -> stated expiry
        self.retired = 0
        self.stop = threading.Event()
        self.sweeper = threading.Thread(target=self._sweep, daemon=True)

    def auth_section(self, keys: list[str]) -> dict:
        return {
            "mode": "sigv4",
            "session_token_keys": keys,
            "keys": [dict(FULL_KEY)],
            "roles": [{"name": ROLE, "issuer": ISSUER, "jwks_file": str(self.issuer_key["jwks"]),
                       "audiences": ["sts"], "max_duration": "1h",
                       "grants": [{"bucket": BUCKET, "access": "all"}]}],
        }

    def _reload_a(self) -> None:
        cfg = dict(self.a.config)
        keys = [k for k, _ in self.live] or [new_session_key()]
        cfg["auth"] = self.auth_section(keys)
        self.a.reload(cfg)

    def issue(self) -> dict:
        """A new generation: a new sealing key at A, a session sealed with it."""
        with self.lock:
            key = new_session_key()
            expires = time.time() + GENERATION_LIFE
            self.live.insert(0, (key, expires))
            self._reload_a()
            sts = boto3.session.Session().client(
                "sts", endpoint_url=self.a.admin, region_name=REGION, aws_access_key_id="unused",
                aws_secret_access_key="unused", config=Config(retries={"max_attempts": 1}))
            token = jwt_issuer.mint(self.issuer_key["rsa"], ISSUER, "sts", "test-workload")
            c = sts.assume_role_with_web_identity(RoleArn=ROLE_ARN, RoleSessionName="b-session",
                                                  WebIdentityToken=token, DurationSeconds=900)["Credentials"]
            self.issued[c["AccessKeyId"]] = expires
            return {"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                    "SessionToken": c["SessionToken"], "Expiration": iso(expires)}

    def _sweep(self) -> None:
        while not self.stop.wait(0.2):
            with self.lock:
                now = time.time()
                if any(exp <= now for _, exp in self.live):
                    self.live = [(k, exp) for k, exp in self.live if exp > now]
                    self.retired += 1
                    self._reload_a()


class Endpoint:
    """The test's credential endpoint on loopback: container credentials (GET with the
    authorization token) or STS AssumeRoleWithWebIdentity (POST, the token from the file)."""

    def __init__(self, authority: Authority, web_token: str):
        self.authority = authority
        self.calls: list[str] = []
        self.refused: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # container credentials
                if self.headers.get("Authorization") != CONTAINER_TOKEN:
                    outer.refused.append(f"GET {self.path} Authorization={self.headers.get('Authorization')!r}")
                    return self.reply(401, "application/json", b'{"message":"bad token"}')
                c = outer.authority.issue()
                outer.calls.append(c["AccessKeyId"])
                body = {"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                        "Token": c["SessionToken"], "Expiration": c["Expiration"]}
                self.reply(200, "application/json", json.dumps(body).encode())

            def do_POST(self):  # STS
                n = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                one = lambda k: form.get(k, [""])[0]  # noqa: E731
                if one("Action") != "AssumeRoleWithWebIdentity" or one("WebIdentityToken") != web_token \
                        or one("RoleArn") != "arn:aws:iam::000000000000:role/b-origin":
                    outer.refused.append(f"POST {dict((k, v[0][:40]) for k, v in form.items())}")
                    return self.reply(400, "text/xml", b"<ErrorResponse><Error><Type>Sender</Type>"
                                      b"<Code>InvalidIdentityToken</Code><Message>no</Message></Error>"
                                      b"</ErrorResponse>")
                c = outer.authority.issue()
                outer.calls.append(c["AccessKeyId"])
                xml = (
                    '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                    "<AssumeRoleWithWebIdentityResult>"
                    "<SubjectFromWebIdentityToken>b</SubjectFromWebIdentityToken><Audience>sts</Audience>"
                    "<AssumedRoleUser><Arn>arn:aws:sts::000000000000:assumed-role/b-origin/b</Arn>"
                    "<AssumedRoleId>AROATEST:b</AssumedRoleId></AssumedRoleUser>"
                    f"<Credentials><SessionToken>{escape(c['SessionToken'])}</SessionToken>"
                    f"<SecretAccessKey>{escape(c['SecretAccessKey'])}</SecretAccessKey>"
                    f"<Expiration>{c['Expiration']}</Expiration>"
                    f"<AccessKeyId>{c['AccessKeyId']}</AccessKeyId></Credentials>"
                    "<Provider>test</Provider></AssumeRoleWithWebIdentityResult>"
                    "<ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata>"
                    "</AssumeRoleWithWebIdentityResponse>"
                )
                self.reply(200, "text/xml", xml.encode())

        self.server = ThreadingHTTPServer((procs.LOOPBACK, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def origin_bucket(seaweed):
    d = s3_client(seaweed.endpoint)
    try:
        d.create_bucket(Bucket=BUCKET)
    except d.exceptions.BucketAlreadyOwnedByYou:
        pass
    d.put_object(Bucket=BUCKET, Key="static.bin", Body=STATIC_BODY)
    return d


def isolated_env(home, extra: dict) -> dict:
    """B's environment: nothing of the caller's AWS setup, no IMDS, only `extra`."""
    env = {k: None for k in os.environ if k.startswith("AWS_")}
    env.update({
        "HOME": str(home),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9",
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_REGION": REGION,
        **extra,
    })
    return env


def access_lines(a) -> list[dict]:
    path = a.workdir / "access.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def arrival(line: dict) -> float:
    finished = dt.datetime.fromisoformat(line["time"].replace("Z", "+00:00")).timestamp()
    return finished - float(line.get("duration_ms") or 0) / 1000


@pytest.mark.parametrize("kind", ["container", "web_identity"])
def test_chain_credentials_rotate_without_failures(kind, proxy_factory, seaweed, origin_bucket, tmp_path, figures):
    issuer = {"rsa": jwt_issuer.rsa_key("t-1")}
    issuer["jwks"] = jwt_issuer.write_jwks(tmp_path / "jwks.json", [issuer["rsa"]])
    a = proxy_factory.create(proxy_factory.config(seaweed.endpoint, log={"access": "access.log"}),
                             env={"SESSION_TOKEN_KEY": None})
    authority = Authority(a, issuer)
    a.config["auth"] = authority.auth_section([new_session_key()])
    a.config_path.write_text(to_toml(a.config))
    a.start()
    authority.sweeper.start()

    web_token = "web-identity-token-" + os.urandom(8).hex()
    (tmp_path / "token").write_text(web_token)
    home = tmp_path / "home"
    home.mkdir()
    with Endpoint(authority, web_token) as ep:
        if kind == "container":
            extra = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{ep.port}/creds",
                     "AWS_CONTAINER_AUTHORIZATION_TOKEN": CONTAINER_TOKEN}
        else:
            extra = {"AWS_WEB_IDENTITY_TOKEN_FILE": str(tmp_path / "token"),
                     "AWS_ROLE_ARN": "arn:aws:iam::000000000000:role/b-origin",
                     "AWS_ROLE_SESSION_NAME": "b", "AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{ep.port}"}
        origin = {"endpoint": a.endpoint, "credentials": "chain", "access_key_id": "", "secret_access_key": ""}
        # No cache: every read is an origin request signed with the current credentials.
        b = proxy_factory.create(proxy_factory.config(a.endpoint, origin=origin,
                                                      cache={"memory": 0, "metadata_ttl": "0s"}),
                                 env=isolated_env(home, extra))
        b.config["origin"].pop("access_key_id")
        b.config["origin"].pop("secret_access_key")
        b.config_path.write_text(to_toml(b.config))
        try:
            b.start()
            client = s3_client(b.endpoint)  # no retries: a 503 for want of credentials fails the test
            started = time.monotonic()
            n = 0
            while time.monotonic() - started < RUN_FOR:
                body = f"object {n} through rotating credentials ".encode() * (1 + n % 50)
                client.put_object(Bucket=BUCKET, Key=f"{kind}/obj-{n}", Body=body)
                assert client.get_object(Bucket=BUCKET, Key=f"{kind}/obj-{n}")["Body"].read() == body
                got = client.get_object(Bucket=BUCKET, Key="static.bin", Range="bytes=1000-50999")["Body"].read()
                assert got == STATIC_BODY[1000:51000]
                n += 1
                time.sleep(0.1)
            metrics_ok = b.metric_sum("rangecache_credential_refreshes_total", result="success")
            metrics_bad = b.metric_sum("rangecache_credential_refreshes_total", result="failure")
            refresh_total = b.metric_sum("rangecache_credential_refresh_seconds_total")
        finally:
            authority.stop.set()
            b.terminate()
        assert not ep.refused, f"the chain asked the endpoint wrongly: {ep.refused}"
    assert a.terminate() == 0, a.logs()  # flushes A's access log
    # Several generations were used, each fetched by B's refresher before the last expired.
    assert len(ep.calls) >= 3, f"only {len(ep.calls)} credential fetches in {RUN_FOR}s\n{b.logs()}"
    assert metrics_ok == len(ep.calls) and metrics_bad == 0, (metrics_ok, metrics_bad, b.logs())
    assert authority.retired >= 1, "no generation expired during the run: the test proved nothing"
    # The origin never saw an expired key: every request signed with a generation's key arrived
    # before that generation's stated expiry (and A refused them after it anyway).
    lines = [line for line in access_lines(a) if line.get("access_key") in authority.issued]
    used = {line["access_key"] for line in lines}
    assert len(used) >= 3, f"B signed with {len(used)} generations only"
    late = [(line["access_key"], line["time"]) for line in lines if arrival(line) >= authority.issued[line["access_key"]]]
    assert not late, f"requests reached the origin with expired keys: {late[:5]}"
    assert all(line["status"] < 400 for line in lines), [line for line in lines if line["status"] >= 400][:3]
    figures[f"credential_refresh_mean_ms_{kind}"] = round(1000 * refresh_total / max(1, metrics_ok), 2)
    figures[f"credential_rotations_{kind}"] = len(ep.calls)
    figures[f"credential_requests_{kind}"] = n * 3
