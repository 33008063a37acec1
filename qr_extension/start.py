"""The start authorization: a CSMS-signed token that lets a charger start offline.

Header ``{"alg": "ES256", "typ": "start+jwt", "kid": <CSMS kid>}``; claims ``aud`` (charge point
id), ``jti`` (order id), optional ``evse``, ``iat``, ``exp``, ``lim`` and ``tar``. The CSMS issues
it with :func:`issue_start_token`; the charger checks it with :func:`verify_start_token`, which
returns either a :class:`StartAuthorization` or a :class:`~qr_extension.refusal.Refusal` whose
reason is shown to the driver. Verification is pure: the trusted keys, the charger's EVSEs, the
clock (``now``) and the used-token store are arguments.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from qr_extension import jws
from qr_extension.errors import TariffError, TokenFormatError
from qr_extension.keys import KeyRing, SigningKey
from qr_extension.refusal import Reason, Refusal
from qr_extension.tariff import (
    Limits,
    Tariff,
    limits_from_claim,
    limits_to_claim,
    tariff_from_claim,
    tariff_to_claim,
)

START_TYP: Final = "start+jwt"
MAX_EVSE_ID: Final = 2**31 - 1
_REQUIRED: Final = ("aud", "jti", "iat", "exp", "lim", "tar")


@dataclass(frozen=True, slots=True)
class StartAuthorization:
    """What a verified (or merely read) start token authorises."""

    order_id: str  # jti
    charge_point_id: str  # aud
    evse_id: int | None  # evse; resolved to the waiting EVSE by verify_start_token
    issued_at: int  # iat
    expires_at: int  # exp
    limits: Limits  # lim
    tariff: Tariff  # tar
    kid: str  # the CSMS key that signed it

    def usable_until(self, leeway_s: int) -> int:
        """The last second a charger could accept this token: ``exp + leeway``. Record a used
        order id at least until then (the ``expires_at`` of :meth:`MemoryUsedTokens.mark_used`)."""
        return self.expires_at + leeway_s


class UsedTokens(Protocol):
    """The charger's record of order ids it has started."""

    def is_used(self, order_id: str) -> bool: ...


class MemoryUsedTokens:
    """An in-memory :class:`UsedTokens` (tests, simulations); a real charger keeps its record
    durably and writes it before the relay closes."""

    def __init__(self) -> None:
        self._until: dict[str, int] = {}

    def is_used(self, order_id: str) -> bool:
        return order_id in self._until

    def mark_used(self, order_id: str, expires_at: int) -> None:
        """Records ``order_id`` as used; ``expires_at`` should be
        :meth:`StartAuthorization.usable_until`, after which the token is refused anyway."""
        self._until[order_id] = max(expires_at, self._until.get(order_id, expires_at))

    def prune(self, floor: int) -> None:
        """Forgets ids whose ``expires_at`` lies below ``floor`` (the charger's time floor, which
        never goes back), so they can no longer be replayed inside their validity."""
        self._until = {k: v for k, v in self._until.items() if v >= floor}

    def __len__(self) -> int:
        return len(self._until)


def issue_start_token(
    *,
    key: SigningKey,
    charge_point_id: str,
    order_id: str,
    evse_id: int | None,
    tariff: Tariff,
    limits: Limits,
    issued_at: int,
    validity_s: int,
) -> str:
    """Signs a start authorization (CSMS side). Raises :class:`TokenFormatError` for values no
    charger would accept (bad order id, EVSE, times)."""
    claims: dict[str, Any] = {
        "aud": jws.check_identity(charge_point_id, "charge point id"),
        "jti": jws.check_order_id(order_id),
    }
    if evse_id is not None:
        claims["evse"] = jws.claim_int({"evse": evse_id}, "evse", minimum=1, maximum=MAX_EVSE_ID)
    if type(validity_s) is not int or validity_s < 1:
        raise TokenFormatError("validity_s must be a positive integer")
    claims["iat"] = jws.claim_epoch({"iat": issued_at}, "iat")
    claims["exp"] = jws.claim_epoch({"exp": issued_at + validity_s}, "exp")
    if not isinstance(tariff, Tariff) or not isinstance(limits, Limits):
        raise TokenFormatError("tariff and limits must be Tariff and Limits")
    claims["lim"] = limits_to_claim(limits)
    claims["tar"] = tariff_to_claim(tariff)
    return jws.sign(claims, key, typ=START_TYP)


def _authorization(claims: dict[str, Any], kid: str) -> StartAuthorization | Refusal:
    """Types every claim; anything ill-typed or out of range is MALFORMED."""
    try:
        issued_at = jws.claim_epoch(claims, "iat")
        expires_at = jws.claim_epoch(claims, "exp")
        if expires_at < issued_at:
            raise TokenFormatError("exp is before iat")
        return StartAuthorization(
            order_id=jws.claim_str(claims, "jti", pattern=jws.ORDER_ID_PATTERN),
            charge_point_id=jws.claim_str(claims, "aud", pattern=jws.IDENTITY_PATTERN),
            evse_id=jws.claim_optional_int(claims, "evse", minimum=1, maximum=MAX_EVSE_ID),
            issued_at=issued_at,
            expires_at=expires_at,
            limits=limits_from_claim(claims.get("lim")),
            tariff=tariff_from_claim(claims.get("tar")),
            kid=kid,
        )
    except (TokenFormatError, TariffError) as exc:
        return Refusal(Reason.MALFORMED, str(exc))


def verify_start_token(
    token: object,
    *,
    trusted: KeyRing,
    charge_point_id: str,
    evse_ids: Collection[int],
    waiting_evse_ids: Collection[int],
    now: int,
    leeway_s: int,
    used: UsedTokens,
) -> StartAuthorization | Refusal:
    """Checks a scanned start token on the charger.

    In order: type, algorithm, key, signature, claim types, ``aud`` (WRONG_CHARGER), ``evse``
    (WRONG_EVSE; without one, exactly one EVSE must be waiting, else NO_EVSE_WAITING), time
    ``iat - leeway <= now <= exp + leeway`` (NOT_YET_VALID / EXPIRED) and replay (REPLAYED).
    ``now`` is the charger's ``max(clock, floor)``; the wall clock is never read here.
    Whether the named EVSE can start right now (EVSE_BUSY) is the charger's decision. The token
    is not marked used: the charger does that durably when it starts.
    """
    verified = jws.verify(
        token,
        typ=START_TYP,
        key_for=trusted.get,
        require=_REQUIRED,
        audience=charge_point_id,
        audience_mismatch=Reason.WRONG_CHARGER,
    )
    if isinstance(verified, Refusal):
        return verified
    auth = _authorization(verified.claims, verified.key.kid)
    if isinstance(auth, Refusal):
        return auth
    if auth.charge_point_id != charge_point_id:  # PyJWT checked it; kept as a guard
        return Refusal(Reason.WRONG_CHARGER, f"token is for {auth.charge_point_id!r}")
    evse_id = auth.evse_id
    if evse_id is None:
        waiting = sorted(set(waiting_evse_ids) & set(evse_ids))
        if len(waiting) != 1:
            return Refusal(
                Reason.NO_EVSE_WAITING,
                f"token names no EVSE and {len(waiting)} EVSEs are waiting: plug in first",
            )
        evse_id = waiting[0]
    elif evse_id not in evse_ids:
        return Refusal(Reason.WRONG_EVSE, f"this charger has no EVSE {evse_id}")
    if now < auth.issued_at - leeway_s:
        return Refusal(Reason.NOT_YET_VALID, f"issued at {auth.issued_at}, now is {now}")
    if now > auth.expires_at + leeway_s:
        return Refusal(Reason.EXPIRED, f"expired at {auth.expires_at}, now is {now}")
    if used.is_used(auth.order_id):
        return Refusal(Reason.REPLAYED, f"order {auth.order_id} was already started here")
    return replace(auth, evse_id=evse_id)


def read_start_token(token: object) -> StartAuthorization | Refusal:
    """Parses a start token WITHOUT verifying its signature, audience or time: for display and
    the CLI only, never to authorise anything."""
    read = jws.read_header(token, typ=START_TYP)
    if isinstance(read, Refusal):
        return read
    text, header = read
    claims = jws.unverified_claims(text)
    if isinstance(claims, Refusal):
        return claims
    missing = [name for name in _REQUIRED if claims.get(name) is None]
    if missing:
        return Refusal(Reason.MALFORMED, f"missing claim {missing[0]}")
    return _authorization(claims, header["kid"])


def inspect_token(token: object) -> tuple[dict[str, Any], dict[str, Any]]:
    """Unverified header and claims of any of our tokens (CLI ``decode``); raises
    :class:`TokenFormatError` when it is not a readable compact JWS."""
    return jws.inspect(token)
