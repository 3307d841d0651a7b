"""Run the same operation through the proxy and directly against the origin; compare outcomes."""

from __future__ import annotations

import hashlib
import json
import pprint
from dataclasses import dataclass
from typing import Any, Callable

from botocore.exceptions import ClientError

# Fields that legitimately differ between two answers of the same server.
VOLATILE_KEYS = {"RequestId", "HostId", "ResponseMetadata", "RetryAttempts", "Date"}


def digest(data: bytes) -> str:
    return f"{len(data)}:{hashlib.sha256(data).hexdigest()[:16]}"


def normalize(value: Any) -> Any:
    """Drop volatile fields; turn bytes bodies into (length, sha) so diffs stay readable."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in VOLATILE_KEYS:
                continue
            out[k] = normalize(v)
        if isinstance(value.get("ResponseMetadata"), dict):
            out["HTTPStatusCode"] = value["ResponseMetadata"].get("HTTPStatusCode")
        return out
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return digest(bytes(value))
    return value


def outcome(fn: Callable, *args, **kw) -> dict:
    """Call fn and describe what happened: its (normalized) result or the S3 error it raised."""
    try:
        return {"ok": normalize(fn(*args, **kw))}
    except ClientError as e:
        err = e.response.get("Error", {})
        meta = e.response.get("ResponseMetadata", {})
        return {"error": {"Code": err.get("Code"), "HTTPStatusCode": meta.get("HTTPStatusCode")}}


def assert_same(through_proxy: Any, direct: Any, what: str = "") -> None:
    if through_proxy != direct:
        raise AssertionError(
            f"proxy and direct differ{(' for ' + what) if what else ''}:\n"
            f"--- through proxy ---\n{pprint.pformat(through_proxy, width=110)}\n"
            f"--- direct ---\n{pprint.pformat(direct, width=110)}"
        )


@dataclass
class Pair:
    """Two clients of the same kind: one through the proxy, one straight to the origin."""

    proxy: Any
    direct: Any

    def both(self, fn: Callable[[Any], Any], what: str = "", norm: Callable[[Any], Any] | None = None) -> dict:
        """Run fn(client) through the proxy, then directly; assert equal outcomes; return the proxy's."""
        p = outcome(fn, self.proxy)
        d = outcome(fn, self.direct)
        if norm is not None:
            p, d = norm(p), norm(d)
        assert_same(p, d, what)
        return p


def boto_get(s3, **kw) -> dict:
    """get_object with the body read; the StreamingBody is replaced by its bytes."""
    r = s3.get_object(**kw)
    r["Body"] = r["Body"].read()
    return r


def json_dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str)
