"""CORS for browser clients (issue 16): `[[cors]]` rules shaped like S3 bucket CORS.

- A real browser: headless Chromium (Debian's `chromium`, installed by scripts/test.sh) loads a
  page served from one loopback origin that `fetch`es a presigned range of an object from
  rangecache on another origin and reads `Content-Range` and `ETag`; the same page served from
  an origin no rule allows is refused by the browser. Each run's DOM dump and screenshot are kept
  under target/e2e-artifacts/cors/.
- Preflights are answered by rangecache without auth and without the origin (a bucket the origin
  does not have still gets 200), 403 `AccessForbidden` (CORSResponse) when no rule matches;
  actual responses (miss, hit, error) carry the rule's headers; no rule or no `Origin`, no
  CORS headers.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from helpers import procs, rawhttp
from helpers.clients import s3_client
from helpers.proxy import REPO

pytestmark = pytest.mark.needs_binary

ARTIFACTS = REPO / "target" / "e2e-artifacts" / "cors"
BODY = bytes(range(256)) * 64  # 16 KiB, every byte value
EXPOSE = ["Content-Range", "ETag", "Content-Length"]


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise RuntimeError("chromium not found: scripts/test.sh installs it (apt-get install chromium)")
    return exe


class PageServer:
    """A static page on its own loopback origin (http.server in a thread)."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer((procs.LOOPBACK, 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://{procs.LOOPBACK}:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>rangecache CORS</title></head>
<body><h1>fetch from another origin</h1><pre id="result" style="white-space:pre-wrap">pending</pre>
<script>
const url = {url};
// X-Client is not CORS-safelisted: the browser sends a preflight first.
fetch(url, {{headers: {{"Range": "bytes=100-163", "X-Client": "dashboard"}}}})
  .then(async (r) => {{
    const body = new Uint8Array(await r.arrayBuffer());
    return {{ok: true, status: r.status, contentRange: r.headers.get("content-range"),
            etag: r.headers.get("etag"), contentLength: r.headers.get("content-length"),
            first: body[0], length: body.length}};
  }})
  .catch((e) => ({{ok: false, error: String(e)}}))
  .then((res) => {{ document.getElementById("result").textContent = JSON.stringify(res); }});
</script></body></html>
"""


def run_browser(page_url: str, name: str, workdir: Path) -> dict:
    """Load `page_url` in headless Chromium; return the result the page wrote into its DOM.
    The DOM dump and a screenshot are kept under ARTIFACTS as `name`.*."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    common = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-extensions", "--disable-default-apps", "--metrics-recording-only",
        # Loopback only: every host name fails to resolve, so nothing leaves the machine.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={workdir / ('profile-' + name)}",
        "--virtual-time-budget=15000",
    ]
    dom = subprocess.run(common + ["--dump-dom", page_url], capture_output=True, text=True, timeout=120)
    (ARTIFACTS / f"{name}.dom.html").write_text(dom.stdout)
    (ARTIFACTS / f"{name}.chromium.log").write_text(dom.stderr)
    shot = ARTIFACTS / f"{name}.png"
    subprocess.run(common + [f"--screenshot={shot}", "--window-size=900,400", page_url],
                   capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="result"[^>]*>(.*?)</pre>', dom.stdout, re.S)
    assert m, f"no result in the DOM (exit {dom.returncode}):\n{dom.stdout[-2000:]}\n{dom.stderr[-2000:]}"
    text = html.unescape(m.group(1))
    assert text != "pending", f"the page's fetch did not finish:\n{dom.stderr[-2000:]}"
    return json.loads(text)


@pytest.fixture
def cors_env(seaweed, direct_s3, proxy_factory, tmp_path):
    bucket = f"cors-{int(time.time() * 1000) % 10**8}"
    direct_s3.create_bucket(Bucket=bucket)
    direct_s3.put_object(Bucket=bucket, Key="data.bin", Body=BODY)
    allowed_root, other_root = tmp_path / "allowed", tmp_path / "other"
    allowed_root.mkdir()
    other_root.mkdir()
    allowed, other = PageServer(allowed_root), PageServer(other_root)
    rules = [
        {"bucket": bucket, "allowed_origins": [allowed.origin], "allowed_methods": ["GET", "HEAD"],
         "allowed_headers": ["range", "x-amz-*", "x-client"], "expose_headers": EXPOSE, "max_age": 600},
        {"bucket": "wild", "allowed_origins": ["http://*.example.com"], "allowed_methods": ["GET"]},
    ]
    cfg = proxy_factory.config(seaweed.endpoint)
    cfg["cors"] = rules  # an array of tables: set whole, not merged
    p = proxy_factory.create(cfg).start()
    yield bucket, p, allowed, other, allowed_root, other_root
    allowed.stop()
    other.stop()


def test_browser_reads_a_presigned_range_across_origins(cors_env, tmp_path):
    bucket, p, allowed, other, allowed_root, other_root = cors_env
    url = s3_client(p.endpoint).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "data.bin"}, ExpiresIn=600)
    etag = s3_client(p.endpoint).head_object(Bucket=bucket, Key="data.bin")["ETag"]
    for root in (allowed_root, other_root):
        (root / "page.html").write_text(PAGE.format(url=json.dumps(url)))

    ok = run_browser(allowed.origin + "/page.html", "allowed-origin", tmp_path)
    # The browser asked first (X-Client needs a preflight), then read the range.
    assert p.metric_sum("rangecache_cors_preflights_total", result="allowed") >= 1
    assert ok["ok"], ok
    assert ok["status"] == 206, ok
    assert ok["contentRange"] == f"bytes 100-163/{len(BODY)}", ok
    assert ok["etag"] == etag, ok
    assert ok["contentLength"] == "64", ok
    assert (ok["first"], ok["length"]) == (100, 64), ok

    refused = run_browser(other.origin + "/page.html", "unlisted-origin", tmp_path)
    assert refused == {"ok": False, "error": "TypeError: Failed to fetch"}, refused
    assert p.metric_sum("rangecache_cors_preflights_total", result="refused") >= 1


def raw(p, method: str, path: str, headers: list[tuple[str, str]]) -> rawhttp.Response:
    with rawhttp.Conn(p.hostport) as c:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {p.hostport}"] + [f"{k}: {v}" for k, v in headers]
        c.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        return c.read_response(method)


def test_preflight_answered_locally_without_auth(cors_env):
    bucket, p, allowed, *_ = cors_env
    ask = [("Origin", allowed.origin), ("Access-Control-Request-Method", "GET"),
           ("Access-Control-Request-Headers", "range, x-amz-date")]
    origin_before = p.metric_sum("rangecache_origin_requests_total")
    r = raw(p, "OPTIONS", f"/{bucket}/data.bin", ask)
    assert r.status == 200, (r.status, r.body)
    assert r.header("access-control-allow-origin") == allowed.origin
    assert r.header("access-control-allow-methods") == "GET, HEAD"
    assert r.header("access-control-allow-headers") == "range, x-amz-date"
    assert r.header("access-control-max-age") == "600"
    assert r.header("access-control-expose-headers") == ", ".join(EXPOSE)
    assert "Origin" in r.header("vary")
    # A wildcard origin rule on a bucket the origin does not even have: answered here.
    r = raw(p, "OPTIONS", "/wild/k", [("Origin", "http://app.example.com"),
                                      ("Access-Control-Request-Method", "GET")])
    assert r.status == 200 and r.header("access-control-allow-origin") == "http://app.example.com"
    assert p.metric_sum("rangecache_origin_requests_total") == origin_before

    # Refusals, as S3 words them.
    for path, headers, status, text in [
        (f"/{bucket}/data.bin", [("Origin", "http://evil.test"), ("Access-Control-Request-Method", "GET")],
         403, b"CORSResponse: This CORS request is not allowed"),
        (f"/{bucket}/data.bin", [("Origin", allowed.origin), ("Access-Control-Request-Method", "PUT")],
         403, b"CORSResponse"),
        (f"/{bucket}/data.bin", ask[:2] + [("Access-Control-Request-Headers", "x-custom")], 403, b"CORSResponse"),
        ("/nocors/k", [("Origin", allowed.origin), ("Access-Control-Request-Method", "GET")],
         403, b"CORS is not enabled for this bucket"),
        (f"/{bucket}/data.bin", [("Access-Control-Request-Method", "GET")], 400, b"Origin request header"),
    ]:
        r = raw(p, "OPTIONS", path, headers)
        assert r.status == status and text in r.body, (path, headers, r.status, r.body)
        assert b"<Code>" in r.body and r.header("x-amz-request-id")
        assert r.header("access-control-allow-origin") is None
    assert p.metric_sum("rangecache_cors_preflights_total", result="refused") == 5
    assert p.metric_sum("rangecache_cors_preflights_total", result="allowed") == 2


def test_actual_responses_carry_the_rule_headers(cors_env):
    bucket, p, allowed, *_ = cors_env
    s3 = s3_client(p.endpoint)
    origin_hdr = {"Origin": allowed.origin}

    def get(key: str, origin: str | None, rng: str | None = None):
        # Signed by boto3; the Origin header rides along unsigned, as a browser would add it.
        def add(request, **_):
            if origin:
                request.headers["Origin"] = origin
        s3.meta.events.register_first("before-sign.s3.GetObject", add)
        try:
            kw = {"Range": rng} if rng else {}
            return s3.get_object(Bucket=bucket, Key=key, **kw)["ResponseMetadata"]["HTTPHeaders"]
        finally:
            s3.meta.events.unregister("before-sign.s3.GetObject", add)

    miss = get("data.bin", allowed.origin, "bytes=0-9")
    hit = get("data.bin", allowed.origin, "bytes=0-9")
    for h in (miss, hit):
        assert h["access-control-allow-origin"] == allowed.origin, h
        assert h["access-control-expose-headers"] == ", ".join(EXPOSE), h
        assert h["access-control-allow-credentials"] == "true", h
        assert "Origin" in h["vary"], h
        assert h["content-range"] == f"bytes 0-9/{len(BODY)}", h
    assert p.metric_sum("rangecache_cache_block_hits_total") >= 1
    # No Origin: no CORS headers. An origin no rule lists: none either.
    assert "access-control-allow-origin" not in get("data.bin", None)
    assert "access-control-allow-origin" not in get("data.bin", "http://evil.test")
    # Errors S3 would decorate carry them too (404 NoSuchKey through the pass-through/cache path).
    r = raw(p, "GET", f"/{bucket}/missing", [("Origin", allowed.origin)])
    assert r.status == 403 and r.header("access-control-allow-origin") == allowed.origin, (r.status, r.headers)
    with pytest.raises(Exception) as err:
        get("missing", allowed.origin)
    hdrs = err.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert err.value.response["Error"]["Code"] == "NoSuchKey"
    assert hdrs["access-control-allow-origin"] == allowed.origin, hdrs
    del origin_hdr
