"""Names and formats that the charger and the CSMS must agree on over OCPP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

VENDOR_ID: Final = "org.qrcharge"

# DataTransfer messageId values under VENDOR_ID; ``data`` is always a string.
MSG_TRUSTED_KEYS: Final = "TrustedKeys"  # CSMS -> charger: compact JWS (typ keys+jwt) of a JWKS
MSG_SETTLEMENT_KEY: Final = "SettlementKey"  # charger -> CSMS: public JWK JSON, or JWS of it
MSG_SETTLEMENT: Final = "Settlement"  # charger -> CSMS: compact settlement JWT
MSG_SYNCED: Final = "Synced"  # charger -> CSMS: {"seq": n} after its queue is drained
MSG_REVOKE: Final = "Revoke"  # CSMS -> charger: {"jti": order id, "exp": epoch s} (cancelled)

SUBPROTOCOL_16: Final = "ocpp1.6"
SUBPROTOCOL_201: Final = "ocpp2.0.1"

ID_TAG_MAX_16: Final = 20
ID_TOKEN_MAX_201: Final = 36


def ocpp_timestamp(moment: datetime | float) -> str:
    """UTC with milliseconds and ``Z`` (``2026-11-26T23:59:01.123Z``), as strict peers expect.

    Accepts an aware datetime or epoch seconds; a naive datetime is refused, never guessed.
    """
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("naive datetime: time is UTC inside qrcharge, say so explicitly")
        dt = moment.astimezone(UTC)
    else:
        dt = datetime.fromtimestamp(moment, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_ocpp_timestamp(text: str) -> datetime:
    """Parses an OCPP timestamp (any ISO 8601 offset, ``Z`` included) into aware UTC.

    Raises ValueError for anything else, a time that is no UTC date (year 1 with a positive
    offset, year 9999 with a negative one) included."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{text!r} is outside the UTC calendar") from exc
