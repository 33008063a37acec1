"""Why a token was refused: a stable reason code plus a human-readable detail."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Stable reason codes shown to drivers, logged by chargers and returned by the CSMS."""

    # any token
    MALFORMED = "malformed"  # not a compact JWS, bad base64/JSON, missing or ill-typed claim
    WRONG_TYPE = "wrong_type"  # header typ is not the expected kind
    WRONG_ALGORITHM = "wrong_algorithm"  # header alg is not ES256
    UNKNOWN_KEY = "unknown_key"  # kid names no trusted key
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    # start authorization
    WRONG_CHARGER = "wrong_charger"  # aud is another charge point
    WRONG_EVSE = "wrong_evse"  # evse is not one of this charger's
    NO_EVSE_WAITING = "no_evse_waiting"  # token without evse and no single EVSE waiting
    EVSE_BUSY = "evse_busy"  # the named EVSE cannot start a session now
    RESERVED = "reserved"  # the EVSE is reserved for another driver (or order)
    REPLAYED = "replayed"  # jti already used on this charger
    REVOKED = "revoked"  # the CSMS revoked the jti at this charger (the order was cancelled)
    CLOCK_UNSYNCED = "clock_unsynced"  # charger clock never set and policy forbids trusting it
    # settlement
    WRONG_ISSUER = "wrong_issuer"  # iss does not match the expected charger
    WRONG_AUDIENCE = "wrong_audience"  # aud is not this CSMS's issuer id
    UNKNOWN_ORDER = "unknown_order"
    ORDER_MISMATCH = "order_mismatch"  # charger, evse, tid or cur differ from the order
    OUTSIDE_WINDOW = "outside_window"  # ts outside [iat - leeway, exp + leeway] of the order
    USAGE_MISMATCH = "usage_mismatch"  # buckets do not sum to m1 - m0, or bad bucket index
    COST_MISMATCH = "cost_mismatch"  # recomputed cost differs from amt
    OVER_LIMIT = "over_limit"  # amt above the order's lim.amt
    # trusted keys
    UNTRUSTED_KEYS = "untrusted_keys"  # a TrustedKeys set not signed by a trusted key


@dataclass(frozen=True, slots=True)
class Refusal:
    """A token that was not accepted, and why."""

    reason: Reason
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value
