"""A throwaway OpenID-style token issuer for the STS tests: RSA (RS256) and EC P-256 (ES256) key
pairs made here, their public halves as a JWKS file, and JWTs minted with PyJWT."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64url_uint(n: int, length: int | None = None) -> str:
    raw = n.to_bytes(length or max(1, (n.bit_length() + 7) // 8), "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class SigningKey:
    kid: str
    alg: str  # RS256 | ES256
    private: object = field(repr=False)

    def jwk(self) -> dict:
        pub = self.private.public_key()
        if self.alg == "RS256":
            nums = pub.public_numbers()
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                    "n": b64url_uint(nums.n), "e": b64url_uint(nums.e)}
        nums = pub.public_numbers()
        return {"kty": "EC", "kid": self.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                "x": b64url_uint(nums.x, 32), "y": b64url_uint(nums.y, 32)}


def rsa_key(kid: str | None = None, bits: int = 2048) -> SigningKey:
    return SigningKey(kid or f"rsa-{uuid.uuid4().hex[:8]}", "RS256",
                      rsa.generate_private_key(public_exponent=65537, key_size=bits))


def ec_key(kid: str | None = None) -> SigningKey:
    return SigningKey(kid or f"ec-{uuid.uuid4().hex[:8]}", "ES256", ec.generate_private_key(ec.SECP256R1()))


def write_jwks(path: Path, keys: list[SigningKey]) -> Path:
    path.write_text(json.dumps({"keys": [k.jwk() for k in keys]}, indent=1))
    return path


def mint(key: SigningKey, issuer: str, audience: str | list[str], subject: str, lifetime: int = 600,
         kid: str | None = None, now: float | None = None, **claims) -> str:
    """A signed JWT; `lifetime` may be negative (an expired token), `kid` overrides the header's."""
    now = int(now if now is not None else time.time())
    payload = {"iss": issuer, "aud": audience, "sub": subject, "iat": now, "nbf": now - 5,
               "exp": now + lifetime, "jti": uuid.uuid4().hex, **claims}
    return jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": kid or key.kid})
