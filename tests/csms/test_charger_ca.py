"""The charger CA without sockets: what it signs, what it refuses, how it is configured."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from csms.charger_ca import ChargerCa, configured_ca
from csms.errors import CertificateAuthorityError, CsrRefused

from .pki import NOW, certificate, chain, csr, key_pem, pem, write_ca


def _ca(tmp_path: Path, days: int = 3650) -> tuple[ChargerCa, x509.Certificate]:
    cert_file, key_file, cert = write_ca(tmp_path, days=days)
    return ChargerCa.load(cert_file, key_file, validity_days=365), cert


def test_the_ca_signs_a_client_certificate_naming_the_charger_it_talks_to(
    tmp_path: Path,
) -> None:
    ca, ca_cert = _ca(tmp_path)
    request, key = csr("SOMEONE-ELSE", organisation="ACME Charging")
    issued = ca.sign(request, "CP-7", now=NOW)
    (leaf,) = chain(issued.chain_pem)  # a root CA is not sent back
    leaf.verify_directly_issued_by(ca_cert)
    # the CA decides the subject: never another charger's name, whatever the CSR says
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-7"
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "ACME Charging"
    )
    assert leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert leaf.not_valid_before_utc == NOW - dt.timedelta(minutes=5)
    assert leaf.not_valid_after_utc == NOW + dt.timedelta(days=365) == issued.not_after
    assert issued.serial_number == format(leaf.serial_number, "x")


def test_a_certificate_never_outlives_its_ca(tmp_path: Path) -> None:
    ca, ca_cert = _ca(tmp_path, days=30)
    issued = ca.sign(csr("CP-7")[0], "CP-7", now=NOW)
    assert issued.not_after == ca_cert.not_valid_after_utc


def test_an_intermediate_ca_is_sent_with_the_certificate(tmp_path: Path) -> None:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = certificate("root", root_key)
    sub_key = ec.generate_private_key(ec.SECP256R1())
    sub = certificate("sub CA", sub_key, issuer=(root, root_key))
    (tmp_path / "sub.pem").write_bytes(pem(sub, root))
    (tmp_path / "sub.key").write_bytes(key_pem(sub_key))
    ca = ChargerCa.load(tmp_path / "sub.pem", tmp_path / "sub.key", validity_days=10)
    leaf, intermediate = chain(ca.sign(csr("X")[0], "CP-8", now=NOW).chain_pem)
    assert intermediate == sub
    leaf.verify_directly_issued_by(sub)


def _tampered(request: str) -> str:
    der = bytearray(
        x509.load_pem_x509_csr(request.encode()).public_bytes(serialization.Encoding.DER)
    )
    der[-3] ^= 0x01  # inside the signature
    body = base64.encodebytes(bytes(der)).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


@pytest.mark.parametrize(
    ("request_pem", "reason"),
    [
        ("not a csr", "not a PEM-encoded PKCS#10"),
        (_tampered(csr("CP-7")[0]), "not signed by the key it carries"),
        (csr("CP-7", key=rsa.generate_private_key(65537, 1024))[0], "RSA key of 1024 bits"),
        (csr("CP-7", key=ec.generate_private_key(ec.SECP256K1()))[0], "EC curve secp256k1"),
    ],
)
def test_a_bad_csr_is_refused_with_the_reason(
    tmp_path: Path, request_pem: str, reason: str
) -> None:
    ca, _ = _ca(tmp_path)
    with pytest.raises(CsrRefused, match=reason):
        ca.sign(request_pem, "CP-7", now=NOW)


def test_an_rsa_2048_csr_is_signed(tmp_path: Path) -> None:
    ca, ca_cert = _ca(tmp_path)
    request, _ = csr("CP-9", key=rsa.generate_private_key(65537, 2048))
    (leaf,) = chain(ca.sign(request, "CP-9", now=NOW).chain_pem)
    leaf.verify_directly_issued_by(ca_cert)
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment


def test_configuration(tmp_path: Path) -> None:
    assert configured_ca("", "", validity_days=365) is None  # no CA: SignCertificate Rejected
    cert_file, key_file, _ = write_ca(tmp_path)
    assert isinstance(configured_ca(str(cert_file), str(key_file), validity_days=1), ChargerCa)
    with pytest.raises(CertificateAuthorityError, match="both"):
        configured_ca(str(cert_file), "", validity_days=365)
    with pytest.raises(CertificateAuthorityError, match="cannot read"):
        configured_ca(str(tmp_path / "missing.pem"), str(key_file), validity_days=365)
    other = tmp_path / "other.key"
    other.write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(CertificateAuthorityError, match="is not the key of"):
        configured_ca(str(cert_file), str(other), validity_days=365)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "leaf.pem").write_bytes(pem(certificate("leaf", leaf_key, ca=False)))
    (tmp_path / "leaf.key").write_bytes(key_pem(leaf_key))
    with pytest.raises(CertificateAuthorityError, match="not a CA certificate"):
        configured_ca(str(tmp_path / "leaf.pem"), str(tmp_path / "leaf.key"), validity_days=9)
