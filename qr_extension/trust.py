"""The ``TrustedKeys`` DataTransfer payload: the CSMS's public keys, signed.

A compact JWS with header ``typ: keys+jwt`` whose payload is the JWKS ``{"keys": [...]}`` plus
``iat``. A charger that already trusts keys accepts a new set only when it is signed by one of
them; a charger with none may, if its policy allows (``--trust-first-keys``), take a set signed by
a key inside that set (proof that the sender holds the key, not that the key is genuine: this is
why the policy is off by default and the set must arrive over an authenticated connection).
The set replaces the charger's whole ring; ``iat`` lets it refuse a set older than its current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from qr_extension import jws
from qr_extension.errors import KeyFormatError, TokenFormatError
from qr_extension.keys import KeyRing, SigningKey
from qr_extension.refusal import Reason, Refusal

KEYS_TYP: Final = "keys+jwt"
_REQUIRED: Final = ("keys", "iat")


@dataclass(frozen=True, slots=True)
class TrustedKeySet:
    """A verified ``TrustedKeys`` payload: the new ring, when it was signed and by which key."""

    ring: KeyRing
    issued_at: int
    signed_by: str  # kid


def sign_trusted_keys(ring: KeyRing, key: SigningKey, *, issued_at: int) -> str:
    """The ``TrustedKeys`` JWS of ``ring``, signed by ``key``.

    ``key`` must be a key the chargers already trust (normally the current CSMS key, which is
    also in ``ring``). Raises :class:`TokenFormatError` for an empty ring.
    """
    if len(ring) == 0:
        raise TokenFormatError("a TrustedKeys set must hold at least one key")
    jws.claim_epoch({"iat": issued_at}, "iat")
    return jws.sign({**ring.to_jwks(), "iat": issued_at}, key, typ=KEYS_TYP)


def verify_trusted_key_set(
    token: object, *, trusted: KeyRing | None, not_before: int | None = None
) -> TrustedKeySet | Refusal:
    """Verifies a ``TrustedKeys`` JWS; see :func:`verify_trusted_keys`.

    With ``not_before`` (the ``issued_at`` of the set the charger holds), an older set is refused
    as REPLAYED, so a captured set cannot bring back a retired key.
    """
    if trusted is None:
        # trust-first-keys: the candidate signers are the keys of the (not yet verified) set
        read = jws.read_header(token, typ=KEYS_TYP)
        if isinstance(read, Refusal):
            return read
        payload = jws.unverified_claims(read[0])
        if isinstance(payload, Refusal):
            return payload
        signers = _ring_of(payload)
        if isinstance(signers, Refusal):
            return signers
    else:
        signers = trusted
    verified = jws.verify(
        token,
        typ=KEYS_TYP,
        key_for=signers.get,
        require=_REQUIRED,
        audience=None,
        audience_mismatch=Reason.MALFORMED,
    )
    if isinstance(verified, Refusal):
        if verified.reason is Reason.UNKNOWN_KEY:
            policy = "the set itself" if trusted is None else "the trusted keys"
            return Refusal(Reason.UNTRUSTED_KEYS, f"signing key not in {policy}")
        return verified
    ring = _ring_of(verified.claims)
    if isinstance(ring, Refusal):
        return ring
    try:
        issued_at = jws.claim_epoch(verified.claims, "iat")
    except TokenFormatError as exc:
        return Refusal(Reason.MALFORMED, str(exc))
    if not_before is not None and issued_at < not_before:
        return Refusal(Reason.REPLAYED, "older than the key set already installed")
    return TrustedKeySet(ring=ring, issued_at=issued_at, signed_by=verified.key.kid)


def _ring_of(payload: dict[str, Any]) -> KeyRing | Refusal:
    try:
        ring = KeyRing.from_jwks(payload)
    except KeyFormatError as exc:
        return Refusal(Reason.MALFORMED, f"bad JWKS: {exc}")
    if len(ring) == 0:
        return Refusal(Reason.MALFORMED, "an empty key set would leave the charger with no keys")
    return ring


def verify_trusted_keys(token: object, *, trusted: KeyRing | None) -> KeyRing | Refusal:
    """The new key ring from a ``TrustedKeys`` JWS, or why it was refused.

    With ``trusted``, the JWS must be signed by one of its keys (else UNTRUSTED_KEYS). With
    ``None`` (trust-first-keys policy), it must be signed by a key contained in the set itself.
    """
    result = verify_trusted_key_set(token, trusted=trusted)
    return result if isinstance(result, Refusal) else result.ring
