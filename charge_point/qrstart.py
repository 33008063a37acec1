"""Start QR codes: camera frame -> decoded text -> verified authorisation, or a refusal.

The order of checks: the clock policy first (an unsynchronised
clock is never silently trusted), then the core's ``verify_start_token`` (type, algorithm,
trusted key, signature, charger, EVSE, time window with leeway, replay), then the
revocations the CSMS sent for cancelled orders (DataTransfer ``Revoke``, read by
:func:`read_revoke`), then the EVSE's reservation (another order's reservation refuses it).
Marking the order id
used is NOT done here: the station does it durably, in the same commit that starts the
transaction, before the relay closes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from qr_extension.errors import QrDecodeError
from qr_extension.keys import KeyRing
from qr_extension.qr import decode_qr
from qr_extension.refusal import Reason, Refusal
from qr_extension.start import (
    StartAuthorization,
    UsedTokens,
    read_start_token,
    verify_start_token,
)

__all__ = [
    "RevokedTokens",
    "ScanContext",
    "StartAuthorization",
    "check_start",
    "decode_frame",
    "read_authorization",
    "read_revoke",
]

ORDER_ID = re.compile(r"[A-Z0-9]{1,20}")
MAX_EPOCH = 2**40  # far beyond any clock; a larger exp is malformed


class RevokedTokens(Protocol):
    """The order ids whose start token the CSMS revoked (the charger's store)."""

    def is_revoked(self, order_id: str) -> bool: ...


def decode_frame(image: bytes) -> list[str] | Refusal:
    """The texts of the QR codes in one camera frame, or a refusal if there is none."""
    try:
        return decode_qr(image)
    except QrDecodeError as exc:
        return Refusal(Reason.MALFORMED, f"no readable QR code in the image ({exc})")
    except (OSError, ValueError) as exc:  # not an image at all
        return Refusal(Reason.MALFORMED, f"not an image: {exc}")


@dataclass(frozen=True, slots=True)
class ScanContext:
    """What the station knows when a code is scanned."""

    charge_point_id: str
    evse_ids: tuple[int, ...]
    waiting_evse_ids: tuple[int, ...]  # EVSEs with an EV plugged in and no session
    now: int  # max(clock, durable time floor)
    clock_synced: bool
    accept_unsynced_clock: bool
    leeway_s: int
    reserved_for: Mapping[int, str] = field(default_factory=dict)  # EVSE -> its order id


def check_start(
    token: str,
    *,
    trusted: KeyRing,
    ctx: ScanContext,
    used: UsedTokens,
    revoked: RevokedTokens | None = None,
) -> StartAuthorization | Refusal:
    """Verifies a start token for this charger now; never raises for a bad token."""
    if not ctx.clock_synced and not ctx.accept_unsynced_clock:
        return Refusal(Reason.CLOCK_UNSYNCED, "the charger's clock was never set by the CSMS")
    result = verify_start_token(
        token,
        trusted=trusted,
        charge_point_id=ctx.charge_point_id,
        evse_ids=ctx.evse_ids,
        waiting_evse_ids=ctx.waiting_evse_ids,
        now=ctx.now,
        leeway_s=ctx.leeway_s,
        used=used,
    )
    if isinstance(result, Refusal):
        return result
    if revoked is not None and revoked.is_revoked(result.order_id):
        return Refusal(Reason.REVOKED, f"order {result.order_id} was cancelled")
    holder = None if result.evse_id is None else ctx.reserved_for.get(result.evse_id)
    if holder is not None and holder != result.order_id:
        return Refusal(Reason.RESERVED, f"EVSE {result.evse_id} is reserved for another order")
    if result.evse_id is not None and result.evse_id not in ctx.waiting_evse_ids:
        return Refusal(Reason.EVSE_BUSY, f"plug the EV into EVSE {result.evse_id} first")
    return result


def read_authorization(token: str) -> StartAuthorization:
    """Re-reads a token this charger verified earlier (restart of a running session)."""
    result = read_start_token(token)
    if isinstance(result, Refusal):
        raise ValueError(f"stored start token no longer parses: {result}")
    return result


def read_revoke(data: Any) -> tuple[str, int | None] | None:
    """The ``Revoke`` DataTransfer's data: the JSON string ``{"jti": order id, "exp": epoch
    seconds}`` (``exp`` optional) as (order id, exp); None when it is anything else."""
    if not isinstance(data, str) or len(data) > 200:
        return None
    try:
        value: Any = json.loads(data)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    jti, exp = value.get("jti"), value.get("exp")
    if not isinstance(jti, str) or ORDER_ID.fullmatch(jti) is None:
        return None
    if exp is not None and (type(exp) is not int or not 0 <= exp < MAX_EPOCH):
        return None
    return jti, exp
