"""The settlement: the charger-signed record of a finished session.

Header ``{"alg": "ES256", "typ": "settle+jwt", "kid": <charger kid>}``; every claim of 2.2 is
required: ``iss aud jti txn evse ts te m0 m1 u amt cur tid rsn seq off iat``. The charger builds
it with :func:`build_settlement` (the amount comes from the one cost function) and signs it with
:func:`sign_settlement`. The CSMS finds the key with :func:`peek_settlement` (``iss``, ``kid``),
verifies with :func:`verify_settlement`, and matches it to the order's snapshot with
:func:`check_settlement`; on its hot path it reads the token once (:func:`parse_settlement`,
:func:`peek_parsed`, :func:`verify_parsed_settlement`: the same checks and refusals).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from qr_extension import jws
from qr_extension.errors import TariffError, TokenFormatError
from qr_extension.keys import PublicKey, SigningKey
from qr_extension.refusal import Reason, Refusal
from qr_extension.start import MAX_EVSE_ID, StartAuthorization
from qr_extension.tariff import (
    UsageBucket,
    compute_cost,
    usage_from_claim,
    usage_to_claim,
)

SETTLE_TYP: Final = "settle+jwt"
TRANSACTION_ID_PATTERN: Final = re.compile(r"[\x21-\x7e]{1,36}")  # 2.0.1 transactionId <= 36
TARIFF_ID_PATTERN: Final = re.compile(r"[\x20-\x7e]{1,36}")  # as Tariff.id
CURRENCY_PATTERN: Final = re.compile(r"[A-Z]{3}")
REASON_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # OCPP stop reason vocabulary
_REQUIRED: Final = (
    "iss", "aud", "jti", "txn", "evse", "ts", "te", "m0", "m1",
    "u", "amt", "cur", "tid", "rsn", "seq", "off", "iat",
)  # fmt: skip

# Usage seconds are counted on the rounded-second timeline of the session while ts and te are
# whole seconds cut down, so the buckets may hold a second more than te - ts; nothing more.
USAGE_SLACK_S = 2


@dataclass(frozen=True, slots=True)
class Settlement:
    """A settlement record; field comments name the claims."""

    charge_point_id: str  # iss
    audience: str  # aud, the CSMS issuer id
    order_id: str  # jti
    transaction_id: str  # txn
    evse_id: int  # evse
    started_at: int  # ts
    stopped_at: int  # te
    meter_start_wh: int  # m0
    meter_stop_wh: int  # m1
    usage: tuple[UsageBucket, ...]  # u
    amount: int  # amt, minor units
    currency: str  # cur
    tariff_id: str  # tid
    reason: str  # rsn
    seq: int  # seq
    offline: bool  # off
    issued_at: int  # iat

    @property
    def energy_wh(self) -> int:
        return self.meter_stop_wh - self.meter_start_wh


def _to_claims(s: Settlement) -> dict[str, Any]:
    return {
        "iss": s.charge_point_id,
        "aud": s.audience,
        "jti": s.order_id,
        "txn": s.transaction_id,
        "evse": s.evse_id,
        "ts": s.started_at,
        "te": s.stopped_at,
        "m0": s.meter_start_wh,
        "m1": s.meter_stop_wh,
        "u": usage_to_claim(s.usage),
        "amt": s.amount,
        "cur": s.currency,
        "tid": s.tariff_id,
        "rsn": s.reason,
        "seq": s.seq,
        "off": s.offline,
        "iat": s.issued_at,
    }


def _from_claims(c: dict[str, Any]) -> Settlement:
    """Types every claim strictly; raises TokenFormatError or TariffError."""
    settlement = Settlement(
        charge_point_id=jws.claim_str(c, "iss", pattern=jws.IDENTITY_PATTERN),
        audience=jws.claim_str(c, "aud", pattern=jws.IDENTITY_PATTERN),
        order_id=jws.claim_str(c, "jti", pattern=jws.ORDER_ID_PATTERN),
        transaction_id=jws.claim_str(c, "txn", pattern=TRANSACTION_ID_PATTERN),
        evse_id=jws.claim_int(c, "evse", minimum=1, maximum=MAX_EVSE_ID),
        started_at=jws.claim_epoch(c, "ts"),
        stopped_at=jws.claim_epoch(c, "te"),
        meter_start_wh=jws.claim_int(c, "m0"),
        meter_stop_wh=jws.claim_int(c, "m1"),
        usage=usage_from_claim(c.get("u")),
        amount=jws.claim_int(c, "amt"),
        currency=jws.claim_str(c, "cur", pattern=CURRENCY_PATTERN),
        tariff_id=jws.claim_str(c, "tid", pattern=TARIFF_ID_PATTERN),
        reason=jws.claim_str(c, "rsn", pattern=REASON_PATTERN),
        seq=jws.claim_int(c, "seq"),
        offline=jws.claim_bool(c, "off"),
        issued_at=jws.claim_epoch(c, "iat"),
    )
    _check_sane(settlement)
    return settlement


def _check_sane(s: Settlement) -> None:
    """What any settlement must satisfy regardless of its order."""
    if s.stopped_at < s.started_at:
        raise TokenFormatError("te is before ts")
    if s.meter_stop_wh < s.meter_start_wh:
        raise TokenFormatError("m1 is below m0")


def build_settlement(
    auth: StartAuthorization,
    *,
    audience: str,
    transaction_id: str,
    started_at: int,
    stopped_at: int,
    meter_start_wh: int,
    meter_stop_wh: int,
    usage: Iterable[UsageBucket],
    reason: str,
    seq: int,
    offline: bool,
    issued_at: int,
) -> Settlement:
    """The settlement of a session started with ``auth`` (charger side). The amount is
    ``compute_cost(auth.tariff, usage, limit_amount=auth.limits.amount)``. Raises
    :class:`TokenFormatError` (or TariffError for usage the tariff cannot price) for values the
    CSMS would refuse as malformed."""
    if auth.evse_id is None:
        raise TokenFormatError("the authorization's EVSE must be resolved before settling")
    buckets = tuple(usage)
    cost = compute_cost(auth.tariff, buckets, limit_amount=auth.limits.amount)
    settlement = Settlement(
        charge_point_id=auth.charge_point_id,
        audience=audience,
        order_id=auth.order_id,
        transaction_id=transaction_id,
        evse_id=auth.evse_id,
        started_at=started_at,
        stopped_at=stopped_at,
        meter_start_wh=meter_start_wh,
        meter_stop_wh=meter_stop_wh,
        usage=buckets,
        amount=cost.total,
        currency=auth.tariff.currency,
        tariff_id=auth.tariff.id,
        reason=reason,
        seq=seq,
        offline=offline,
        issued_at=issued_at,
    )
    # the same strict reading the CSMS applies, so a bad value fails here and not there
    return _from_claims(_to_claims(settlement))


def sign_settlement(s: Settlement, key: SigningKey) -> str:
    """The compact settlement JWT, signed with the charger's key."""
    try:
        claims = _to_claims(_from_claims(_to_claims(s)))
    except TariffError as exc:
        raise TokenFormatError(str(exc)) from exc
    return jws.sign(claims, key, typ=SETTLE_TYP)


def parse_settlement(token: object) -> jws.Parsed | Refusal:
    """The token read once (shape, header: :func:`~qr_extension.jws.parse`), NOT verified:
    :func:`peek_parsed` and :func:`verify_parsed_settlement` take it from there."""
    return jws.parse(token, typ=SETTLE_TYP)


def peek_parsed(parsed: jws.Parsed) -> tuple[str, str] | Refusal:
    """``(iss, kid)`` of a parsed settlement, NOT verified: only to look up the charger's key."""
    if parsed.claims is None:
        return Refusal(Reason.MALFORMED, "payload is not a JSON object")
    try:
        iss = jws.claim_str(parsed.claims, "iss", pattern=jws.IDENTITY_PATTERN)
    except TokenFormatError as exc:
        return Refusal(Reason.MALFORMED, str(exc))
    return iss, parsed.header["kid"]


def peek_settlement(token: object) -> tuple[str, str] | Refusal:
    """``(iss, kid)`` of a settlement, NOT verified: only to look up the charger's key."""
    parsed = parse_settlement(token)
    return parsed if isinstance(parsed, Refusal) else peek_parsed(parsed)


def verify_settlement(token: object, *, key: PublicKey, audience: str) -> Settlement | Refusal:
    """Verifies a settlement with the charger key found by :func:`peek_settlement`.

    Refuses a token whose ``kid`` is not ``key``'s (UNKNOWN_KEY), whose ``aud`` is not this
    CSMS (WRONG_AUDIENCE), that lacks or mistypes any claim, or whose ``te < ts`` or ``m1 < m0``
    (MALFORMED). No time check: a settlement may legitimately arrive days later.
    """
    parsed = parse_settlement(token)
    if isinstance(parsed, Refusal):
        return parsed
    return verify_parsed_settlement(parsed, key=key, audience=audience)


def verify_parsed_settlement(
    parsed: jws.Parsed, *, key: PublicKey, audience: str
) -> Settlement | Refusal:
    """:func:`verify_settlement` of a token already read by :func:`parse_settlement` (the
    CSMS reads it once: the unverified ``iss``, ``kid`` and ``jti`` pick the key and rows)."""
    verified = jws.verify_parsed(
        parsed,
        key=key,
        require=_REQUIRED,
        audience=audience,
        audience_mismatch=Reason.WRONG_AUDIENCE,
    )
    if isinstance(verified, Refusal):
        return verified
    try:
        return _from_claims(verified.claims)
    except (TokenFormatError, TariffError) as exc:
        return Refusal(Reason.MALFORMED, str(exc))


def check_settlement(
    s: Settlement, order: StartAuthorization, *, leeway_s: int, now: int | None = None
) -> Refusal | None:
    """Matches a verified settlement to the order's snapshot; None when it pays.

    ``order`` is the authorization exactly as signed (its ``tar`` and ``lim``), never a billing
    model edited since. With ``now`` (the verifier's clock, epoch seconds) a settlement that
    ends or was signed later than ``now + leeway_s`` is refused: no charger has been there yet.
    """
    if s.charge_point_id != order.charge_point_id:
        return Refusal(
            Reason.WRONG_ISSUER, f"iss {s.charge_point_id}, order is for {order.charge_point_id}"
        )
    pairs: list[tuple[str, object, object]] = [
        ("jti", s.order_id, order.order_id),
        ("evse", s.evse_id, s.evse_id if order.evse_id is None else order.evse_id),
        ("tid", s.tariff_id, order.tariff.id),
        ("cur", s.currency, order.tariff.currency),
    ]
    for name, got, want in pairs:
        if got != want:
            return Refusal(Reason.ORDER_MISMATCH, f"{name} {got!r}, order has {want!r}")
    low, high = order.issued_at - leeway_s, order.expires_at + leeway_s
    if not low <= s.started_at <= high:
        return Refusal(Reason.OUTSIDE_WINDOW, f"ts {s.started_at} outside [{low}, {high}]")
    if s.stopped_at < s.started_at:
        return Refusal(Reason.OUTSIDE_WINDOW, f"te {s.stopped_at} before ts {s.started_at}")
    if now is not None and max(s.stopped_at, s.issued_at) > now + leeway_s:
        latest = max(s.stopped_at, s.issued_at)
        return Refusal(Reason.OUTSIDE_WINDOW, f"te/iat {latest} after now {now} + {leeway_s}")
    usage = _check_usage(s, order)
    if usage is not None:
        return usage
    if s.amount > order.limits.amount:
        return Refusal(Reason.OVER_LIMIT, f"amt {s.amount} above lim.amt {order.limits.amount}")
    expected = compute_cost(order.tariff, s.usage, limit_amount=order.limits.amount).total
    if s.amount != expected:
        return Refusal(Reason.COST_MISMATCH, f"amt {s.amount}, recomputed {expected}")
    return None


def _check_usage(s: Settlement, order: StartAuthorization) -> Refusal | None:
    if s.meter_stop_wh < s.meter_start_wh:
        return Refusal(Reason.USAGE_MISMATCH, f"m1 {s.meter_stop_wh} below m0 {s.meter_start_wh}")
    highest = len(order.tariff.tou)
    indices = [b.tou_index for b in s.usage]
    if any(i > highest for i in indices) or len(set(indices)) != len(indices):
        return Refusal(
            Reason.USAGE_MISMATCH, f"bucket indices {indices} do not fit {highest} tou periods"
        )
    total = sum(b.wh for b in s.usage)
    if total != s.energy_wh:
        return Refusal(Reason.USAGE_MISMATCH, f"buckets hold {total} Wh, m1 - m0 = {s.energy_wh}")
    seconds = sum(b.charging_s + b.idle_s for b in s.usage)
    if seconds > s.stopped_at - s.started_at + USAGE_SLACK_S:
        return Refusal(
            Reason.USAGE_MISMATCH,
            f"buckets hold {seconds} s, te - ts = {s.stopped_at - s.started_at} s",
        )
    return None
