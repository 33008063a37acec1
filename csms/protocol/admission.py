"""Which OCPP security profile a charger connects with, and whether this connection meets it.

Each charger row has a ``security_profile``:

1. HTTP Basic auth (user name = charger id), with or without TLS.
2. HTTP Basic auth over TLS: a plain ``ws://`` connection is refused. With TLS on the CSMS's
   own port no plain connection exists; behind a TLS-terminating proxy the scheme is the one
   a trusted proxy reports (``X-Forwarded-Proto``).
3. A TLS client certificate whose subject CN is the charger id, signed by the
   client-certificate CA (the TLS layer refuses any other, :mod:`csms.tls`). No password is
   asked, and a password alone is refused: a charger moved to profile 3 cannot fall back.

Whatever the profile, a client certificate that names another charger is refused: the
certificate is an identity claim and it contradicts the URL. OCPP puts the charger's identity
in the subject's commonName (its serial number, which is its identity here); a certificate with
no CN or several is refused too, rather than guessed at.

An unknown charger id with a certificate naming it is registered ``Pending`` on profile 3 when
``auto_register_chargers`` is on (the CA vouches for the name; the operator still accepts it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from config.settings import Settings
from csms.context import CsmsContext
from csms.errors import StoreError
from csms.protocol import provisioning
from csms.store import chargers as store
from csms.store.models import CHARGER_ID_PATTERN

LOG = logging.getLogger("csms.admission")
CERTIFICATE_ONLY = 3
_CHARGER_ID = re.compile(CHARGER_ID_PATTERN)


class Admitted(Enum):
    """What the connection may do next, when nothing refused it."""

    BY_CERTIFICATE = "certificate"  # in: the certificate named this charger on profile 3
    PASSWORD_NEEDED = "password"  # HTTP Basic decides (profiles 1 and 2, or an unknown id)


@dataclass(frozen=True, slots=True)
class Refused:
    """The HTTP status to refuse the handshake with, and why (sent to the charger)."""

    status: int
    reason: str


def default_profile(settings: Settings) -> int:
    """The profile of a charger registered without one: 2 when this CSMS serves TLS itself."""
    return 2 if settings.tls_cert_file else 1


def peer_certificate(scope: Mapping[str, Any]) -> x509.Certificate | None:
    """The verified client certificate of this connection (ASGI ``tls`` extension), if any."""
    tls = scope.get("extensions", {}).get("tls") or {}
    chain = list(tls.get("client_cert_chain") or ())
    return x509.load_pem_x509_certificate(chain[0].encode("ascii")) if chain else None


def certificate_identity(certificate: x509.Certificate) -> str | None:
    """The charger id a certificate names: its one subject commonName (None: none, or many)."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        return None
    value = names[0].value
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def check_certificate(certificate: x509.Certificate | None, charger_id: str) -> Refused | None:
    """Refuses a certificate that does not name ``charger_id`` (the app's half of profile 3)."""
    if certificate is None:
        return None
    named = certificate_identity(certificate)
    if named == charger_id:
        return None
    if named is None:
        return Refused(403, "the client certificate must have exactly one subject CN")
    return Refused(403, f"the client certificate names charger {named[:48]!r}, not this one")


async def admit(ctx: CsmsContext, charger_id: str, scope: Mapping[str, Any]) -> Admitted | Refused:
    """Judges the connection's certificate and scheme against the charger's profile, before
    any password is looked at."""
    certificate = peer_certificate(scope)
    refused = check_certificate(certificate, charger_id)
    if refused is not None:
        return refused
    if not _CHARGER_ID.fullmatch(charger_id):
        return Refused(404, "unknown charger id")  # no such charger can exist
    profile = await ctx.db.reader.run(store.security_profile_of, charger_id)
    if profile is None:
        if certificate is None:
            return Admitted.PASSWORD_NEEDED  # unknown id: Basic auth answers (404, or registers)
        return await _register_certified(ctx, charger_id)
    if profile >= CERTIFICATE_ONLY:
        if certificate is None:
            return Refused(
                403, "security profile 3: a client certificate naming this charger is required"
            )
        return Admitted.BY_CERTIFICATE
    if profile == 2 and scope.get("scheme") != "wss":
        return Refused(403, "security profile 2: connect over TLS (wss://)")
    return Admitted.PASSWORD_NEEDED


async def _register_certified(ctx: CsmsContext, charger_id: str) -> Admitted | Refused:
    if not ctx.settings.auto_register_chargers:
        return Refused(404, "unknown charger id")
    async with ctx.db.session() as session:
        try:
            await store.create_charger(
                session,
                charger_id=charger_id,
                password_hash=None,
                registration=provisioning.PENDING,
                security_profile=CERTIFICATE_ONLY,
                now=ctx.clock(),
            )
        except StoreError:
            return Refused(409, "charger is being registered, retry")
    LOG.info("%s: registered Pending on security profile 3 (client certificate)", charger_id)
    return Admitted.BY_CERTIFICATE
