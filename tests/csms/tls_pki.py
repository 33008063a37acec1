"""The PKI of the TLS tests (security profiles 2 and 3), valid now on the real clock.

* a CSMS root CA and its server certificate for 127.0.0.1 and localhost;
* the charger CA (the CSMS's ``ca_cert_file``: it signs chargers' CSRs and, by default, is the
  CA of their client certificates), and an intermediate CA under another root;
* a rogue CA that nobody trusts;
* chargers' client certificates (subject CN = charger id), made on demand by any of them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey
Authority = tuple[x509.Certificate, Key]


def _key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _name(*common_names: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in common_names])


def issue(
    subject: x509.Name,
    key: Key,
    issuer: Authority | None,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
    hosts: tuple[str, ...] = (),
) -> x509.Certificate:
    """A certificate for ``key``, signed by ``issuer`` (self-signed when None)."""
    now = dt.datetime.now(dt.UTC)
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if hosts:
        names: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address(h)) if h[0].isdigit() else x509.DNSName(h)
            for h in hosts
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _write(path: Path, *items: x509.Certificate | Key) -> Path:
    data = b""
    for item in items:
        if isinstance(item, x509.Certificate):
            data += item.public_bytes(serialization.Encoding.PEM)
        else:
            data += item.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
    path.write_bytes(data)
    return path


def _authority(name: str, issuer: Authority | None = None) -> Authority:
    key = _key()
    return issue(_name(name), key, issuer, ca=True), key


@dataclass
class TlsPki:
    """The files of the TLS tests, written under ``directory``."""

    directory: Path
    server_ca: Path = field(init=False)  # what chargers trust for the CSMS
    server_cert: Path = field(init=False)  # 127.0.0.1 and localhost
    server_key: Path = field(init=False)
    charger_ca: Path = field(init=False)  # certificate of the charger CA
    charger_ca_key: Path = field(init=False)
    intermediate_ca: Path = field(init=False)  # an intermediate CA alone (its root not in it)

    def __post_init__(self) -> None:
        d = self.directory
        server_root = _authority("qrcharge test CSMS root")
        server_key = _key()
        server = issue(
            _name("csms.test"),
            server_key,
            server_root,
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            hosts=("127.0.0.1", "localhost"),
        )
        self._authorities = {
            "charger": _authority("qrcharge test charger CA"),
            "rogue": _authority("someone else's CA"),
        }
        self._authorities["intermediate"] = _authority(
            "qrcharge test intermediate CA", _authority("qrcharge test offline root")
        )
        self.server_ca = _write(d / "server-ca.pem", server_root[0])
        self.server_cert = _write(d / "server.pem", server)
        self.server_key = _write(d / "server.key", server_key)
        self.charger_ca = _write(d / "charger-ca.pem", self._authorities["charger"][0])
        self.charger_ca_key = _write(d / "charger-ca.key", self._authorities["charger"][1])
        self.intermediate_ca = _write(
            d / "intermediate-ca.pem", self._authorities["intermediate"][0]
        )

    def client(self, *common_names: str, by: str = "charger") -> tuple[Path, Path]:
        """A client certificate with these subject CNs, signed by the ``by`` CA: the
        (certificate, key) files."""
        key = _key()
        certificate = issue(
            _name(*common_names), key, self._authorities[by], usage=ExtendedKeyUsageOID.CLIENT_AUTH
        )
        stem = f"client-{by}-{'-'.join(common_names) or 'none'}"
        return (
            _write(self.directory / f"{stem}.pem", certificate),
            _write(self.directory / f"{stem}.key", key),
        )

    def client_context(self, *common_names: str, by: str = "charger") -> ssl.SSLContext:
        """A TLS client context that trusts the CSMS, presenting a client certificate when
        ``common_names`` are given."""
        context = ssl.create_default_context(cafile=str(self.server_ca))
        if common_names:
            cert, key = self.client(*common_names, by=by)
            context.load_cert_chain(str(cert), str(key))
        return context
