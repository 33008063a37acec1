"""The certificate authority that signs chargers' certificates (OCPP ``SignCertificate``).

Configured with a CA certificate and its private key (PEM files, settings ``ca_cert_file``
and ``ca_key_file``); without them the CSMS has no CA and answers ``SignCertificate`` with
``Rejected``. The CA decides what it signs, not the requester:

* the CSR must parse and be signed by the key it carries (proof of possession), with an EC key
  on P-256 or P-384 or an RSA key of at least 2048 bits;
* the subject is ``CN = <charger id>`` (the identity the charger authenticated with on this
  connection), with the CSR's ``O`` kept when it has one: a charger can never obtain a
  certificate that names another charger, whatever its CSR says;
* the certificate is an end-entity client certificate (``CA:FALSE``, ``clientAuth``), valid
  from five minutes before ``now`` (clock skew) for ``charger_cert_validity_days``, never
  beyond the CA's own expiry.

The chain sent back (``certificateChain``) is the new certificate followed by the CA file's
certificates that are not self-signed (intermediates; a root is left out, as chargers hold it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from csms.errors import CertificateAuthorityError, CsrRefused

CLOCK_SKEW = timedelta(minutes=5)
RSA_MIN_BITS = 2048
EC_CURVES = (ec.SECP256R1, ec.SECP384R1)


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """What the CA signed: the PEM chain to send and what the operator needs to find it."""

    chain_pem: str
    serial_number: str  # hex
    not_after: datetime


class ChargerCa:
    """Signs chargers' CSRs with one CA key (see the module docstring for the rules)."""

    def __init__(
        self,
        certificate: x509.Certificate,
        key: CertificateIssuerPrivateKeyTypes,
        *,
        intermediates: list[x509.Certificate],
        validity: timedelta,
    ) -> None:
        self._certificate = certificate
        self._key = key
        self._intermediates_pem = "".join(
            c.public_bytes(serialization.Encoding.PEM).decode() for c in intermediates
        )
        self._validity = validity

    @classmethod
    def load(cls, cert_file: str | Path, key_file: str | Path, *, validity_days: int) -> ChargerCa:
        """Reads the CA; raises :class:`CertificateAuthorityError` saying what is wrong."""
        try:
            certificates = x509.load_pem_x509_certificates(Path(cert_file).read_bytes())
            key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
        except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise CertificateAuthorityError(f"cannot read the charger CA: {exc}") from exc
        certificate = certificates[0]
        if not isinstance(
            key,
            ec.EllipticCurvePrivateKey
            | rsa.RSAPrivateKey
            | ed25519.Ed25519PrivateKey
            | ed448.Ed448PrivateKey,
        ):
            raise CertificateAuthorityError("the charger CA key must be EC, RSA or EdDSA")
        if _public_der(key.public_key()) != _public_der(certificate.public_key()):
            raise CertificateAuthorityError(f"{key_file} is not the key of {cert_file}")
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is not None and not constraints.value.ca:
            raise CertificateAuthorityError(f"{cert_file} is not a CA certificate (CA:FALSE)")
        if validity_days < 1:
            raise CertificateAuthorityError("charger_cert_validity_days must be at least 1")
        intermediates = [c for c in certificates if c.issuer != c.subject]
        return cls(
            certificate, key, intermediates=intermediates, validity=timedelta(days=validity_days)
        )

    def sign(self, csr_pem: str, charger_id: str, *, now: datetime) -> IssuedCertificate:
        """Signs ``csr_pem`` for ``charger_id``; raises :class:`CsrRefused` with the reason."""
        csr = _checked_csr(csr_pem)
        public_key = csr.public_key()
        not_after = min(now + self._validity, self._certificate.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_subject(csr, charger_id))
            .issuer_name(self._certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(public_key), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        algorithm = (
            None
            if isinstance(self._key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
            else hashes.SHA256()
        )
        certificate = builder.sign(self._key, algorithm)
        leaf = certificate.public_bytes(serialization.Encoding.PEM).decode()
        return IssuedCertificate(
            chain_pem=leaf + self._intermediates_pem,
            serial_number=format(certificate.serial_number, "x"),
            not_after=not_after,
        )


def _subject(csr: x509.CertificateSigningRequest, charger_id: str) -> x509.Name:
    """``CN = charger_id``, with the CSR's organisation when it names one."""
    names = [x509.NameAttribute(NameOID.COMMON_NAME, charger_id)]
    organisation = csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if organisation and isinstance(organisation[0].value, str):
        names.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[0].value))
    return x509.Name(names)


def _key_usage(public_key: PublicKeyTypes) -> x509.KeyUsage:
    """Signing, plus key agreement (EC) or key encipherment (RSA) for TLS."""
    is_rsa = isinstance(public_key, rsa.RSAPublicKey)
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=is_rsa,
        data_encipherment=False,
        key_agreement=not is_rsa,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _checked_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(csr_pem.strip().encode())
    except ValueError as exc:
        raise CsrRefused("the CSR is not a PEM-encoded PKCS#10 request") from exc
    try:
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CsrRefused("the CSR's public key cannot be read") from exc
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, EC_CURVES):
            raise CsrRefused(f"EC curve {public_key.curve.name} not accepted (P-256, P-384)")
    elif isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < RSA_MIN_BITS:
            raise CsrRefused(f"RSA key of {public_key.key_size} bits, below {RSA_MIN_BITS}")
    else:
        raise CsrRefused("the CSR's key must be EC (P-256, P-384) or RSA")
    if not csr.is_signature_valid:
        raise CsrRefused("the CSR is not signed by the key it carries")
    return csr


def _public_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def configured_ca(cert_file: str, key_file: str, *, validity_days: int) -> ChargerCa | None:
    """The CA the settings name, or None when they name none (both files empty)."""
    if not cert_file and not key_file:
        return None
    if not (cert_file and key_file):
        raise CertificateAuthorityError("set both ca_cert_file and ca_key_file, or neither")
    return ChargerCa.load(cert_file, key_file, validity_days=validity_days)
