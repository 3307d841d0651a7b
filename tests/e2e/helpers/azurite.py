"""Azurite (Microsoft's Azure Storage emulator, npm) on loopback, and a minimal Blob REST client
signing with Shared Key, written from the Blob service documentation, to read what rangecache
wrote and write what it must read, without going through rangecache."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from email.utils import formatdate
from pathlib import Path

from . import procs

REPO = Path(__file__).resolve().parents[3]
# Azurite's well-known development account (public, documented; not a secret).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
VERSION = "2021-12-02"


def binary() -> Path:
    return Path(os.environ.get("AZURITE_BIN", REPO / ".azurite" / "node_modules" / ".bin" / "azurite-blob"))


class Azurite:
    """The blob service of Azurite, in memory, on a free loopback port, its debug log (every
    request it serves) in `workdir`."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = procs.free_port()
        self.debug_log = self.workdir / "azurite-debug.log"
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{procs.LOOPBACK}:{self.port}/{ACCOUNT}"

    def start(self) -> "Azurite":
        exe = binary()
        if not exe.exists():
            raise RuntimeError(f"{exe} not found: scripts/test.sh installs Azurite (npm) into .azurite/")
        log = open(self.workdir / "azurite.log", "wb")
        self.proc = procs.track(subprocess.Popen(
            [str(exe), "--blobHost", procs.LOOPBACK, "--blobPort", str(self.port), "--inMemoryPersistence",
             "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--disableProductStyleUrl",
             "--debug", str(self.debug_log)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir))
        log.close()
        procs.wait_until(lambda: procs.port_open(self.port), timeout=30, what="azurite listening")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop_process(self.proc, timeout=10)

    def blob_gets(self) -> int:
        """Get Blob requests Azurite has served so far (from its debug log)."""
        text = self.debug_log.read_text(errors="replace") if self.debug_log.exists() else ""
        return text.count("BlobHandler:downloadBlockBlobOrAppendBlob()")

    # -- Blob REST with Shared Key --------------------------------------------------------------
    def request(self, method: str, path: str, query: dict[str, str] | None = None, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        query = query or {}
        h = {k.lower(): v for k, v in (headers or {}).items()}
        h["x-ms-date"] = formatdate(usegmt=True)
        h["x-ms-version"] = VERSION
        if body or method in ("PUT", "POST"):
            h["content-length"] = str(len(body))
        url_path = f"/{ACCOUNT}{urllib.parse.quote(path)}"
        std = ["content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
               "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range"]
        lines = [method] + [("" if k == "content-length" and h.get(k) == "0" else h.get(k, "")) for k in std]
        canon_headers = "".join(f"{k}:{v}\n" for k, v in sorted(h.items()) if k.startswith("x-ms-"))
        resource = f"/{ACCOUNT}{url_path}" + "".join(f"\n{k.lower()}:{v}" for k, v in sorted(query.items()))
        to_sign = "\n".join(lines) + "\n" + canon_headers + resource
        sig = base64.b64encode(hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest()).decode()
        h["authorization"] = f"SharedKey {ACCOUNT}:{sig}"
        url = f"http://{procs.LOOPBACK}:{self.port}{url_path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        req = urllib.request.Request(url, data=body or None, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def account_sas(self, permissions: str = "rwdlac") -> str:
        """An account SAS token (blob service, all resource types) valid for a day."""
        import datetime as dt

        expiry = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        fields = {"sv": "2019-12-12", "ss": "b", "srt": "sco", "sp": permissions, "se": expiry, "spr": "https,http"}
        to_sign = "\n".join([ACCOUNT, fields["sp"], fields["ss"], fields["srt"], "", fields["se"], "", fields["spr"],
                             fields["sv"], ""])
        fields["sig"] = base64.b64encode(hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest()).decode()
        return urllib.parse.urlencode(fields)

    def create_container(self, name: str) -> None:
        status, _, body = self.request("PUT", f"/{name}", {"restype": "container"})
        assert status in (201, 409), (status, body)

    def put_blob(self, container: str, name: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        status, _, body = self.request("PUT", f"/{container}/{name}", body=data,
                                       headers={"x-ms-blob-type": "BlockBlob", "content-type": content_type})
        assert status == 201, (status, body)

    def get_blob(self, container: str, name: str) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", f"/{container}/{name}")
