"""A throwaway certificate authority for TLS tests: a CA, server certificates for the loopback
address (RSA or ECDSA, written as full chains) and client certificates, as PEM files."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import procs


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key(kind: str):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class Issued:
    """A certificate and its key on disk; `cert` holds the full chain (leaf, then the CA)."""

    cert: Path
    key: Path
    leaf_der: bytes


class TestCA:
    """A CA whose files live in `dir`. `issue_server` / `issue_client` sign new leaves."""

    __test__ = False  # not a pytest class

    def __init__(self, dir: Path, name: str = "rangecache e2e test CA"):
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = _key("ec")
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name)).issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.ca_file = self.dir / f"{_slug(name)}-ca.pem"
        self.ca_file.write_bytes(self.pem)

    def _issue(self, stem: str, cn: str, kind: str, usage, sans: list[x509.GeneralName]) -> Issued:
        key = _key(kind)
        now = dt.datetime.now(dt.timezone.utc)
        b = (
            x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        leaf = b.sign(self.key, hashes.SHA256())
        cert = self.dir / f"{stem}.pem"
        keyf = self.dir / f"{stem}.key"
        cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + self.pem)
        keyf.write_bytes(_pem_key(key))
        return Issued(cert, keyf, leaf.public_bytes(serialization.Encoding.DER))

    def issue_server(self, stem: str, kind: str = "ec") -> Issued:
        """A server certificate for 127.0.0.1 and localhost (`kind` "ec" or "rsa")."""
        sans = [x509.IPAddress(ipaddress.ip_address(procs.LOOPBACK)), x509.DNSName("localhost")]
        return self._issue(stem, "localhost", kind, ExtendedKeyUsageOID.SERVER_AUTH, sans)

    def issue_client(self, stem: str, cn: str = "analytics-client") -> Issued:
        return self._issue(stem, cn, "ec", ExtendedKeyUsageOID.CLIENT_AUTH, [])


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in s.lower()).strip("-")
