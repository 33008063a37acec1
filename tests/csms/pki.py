"""A small PKI for the certificate tests: CAs, intermediate CAs and chargers' CSRs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
)
from cryptography.x509.oid import NameOID

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        names.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(names)


def certificate(
    subject: str,
    key: CertificateIssuerPrivateKeyTypes,
    *,
    issuer: tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes] | None = None,
    ca: bool = True,
    days: int = 3650,
) -> x509.Certificate:
    """A certificate for ``key``: self-signed, or signed by ``issuer`` (certificate, key)."""
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (_name(subject), key)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_ca(directory: Path, *, days: int = 3650) -> tuple[Path, Path, x509.Certificate]:
    """A self-signed P-256 CA as PEM files: (certificate file, key file, certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate("qrcharge test CA", key, days=days)
    cert_file, key_file = directory / "ca.pem", directory / "ca.key"
    cert_file.write_bytes(pem(cert))
    key_file.write_bytes(key_pem(key))
    return cert_file, key_file, cert


def csr(
    common_name: str,
    *,
    organisation: str | None = None,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
) -> tuple[str, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]:
    """A PEM CSR signed by ``key`` (a new P-256 key by default), and the key."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(common_name, organisation))
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM).decode(), key


def chain(text: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(text.encode())
