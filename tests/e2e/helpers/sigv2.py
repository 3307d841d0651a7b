"""Signature Version 2 requests on raw sockets, signed by botocore's own `HmacV1Auth` (an
implementation independent of rangecache's), with hooks to tamper after signing."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime

from botocore.auth import HmacV1Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from . import rawhttp
from .sigv4 import FULL, Creds


class _Signer(HmacV1Auth):
    def __init__(self, credentials, when: dt.datetime | None):
        super().__init__(credentials)
        self._when = when

    def _get_date(self):
        if self._when is None:
            return super()._get_date()
        return format_datetime(self._when.astimezone(dt.timezone.utc), usegmt=True)


def sign(method: str, target: str, host: str, headers: list[tuple[str, str]] | None = None,
         creds: Creds = FULL, when: dt.datetime | None = None) -> list[tuple[str, str]]:
    """The headers of `method target` (path and query as sent) signed with SigV2: `headers`
    plus `Date` and `Authorization: AWS key:signature` (and `x-amz-security-token`)."""
    req = AWSRequest(method=method, url=f"http://{host}{target}", headers=dict(headers or []))
    req.auth_path = None
    _Signer(Credentials(creds.access_key, creds.secret_key, creds.session_token), when).add_auth(req)
    return list(req.headers.items())


def send(host: str, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"",
         timeout: float = 30.0) -> rawhttp.Response:
    data = rawhttp.request_bytes(method, target, host, headers, body=body, sign=False)
    with rawhttp.Conn(host, timeout=timeout) as c:
        c.send(data)
        return c.read_response(method)


def request(host: str, method: str, target: str, creds: Creds = FULL, headers: list[tuple[str, str]] | None = None,
            body: bytes = b"", when: dt.datetime | None = None) -> rawhttp.Response:
    return send(host, method, target, sign(method, target, host, headers, creds, when), body)
