"""The effect of the CSMS's commands, shared by the 1.6 and 2.0.1 adapters.

Grouped by OCPP functional block. Each function changes the station's state and returns a
plain result that the adapter turns into its version's answer. None of them awaits a CALL:
incoming messages are handled one after another on a connection, so a handler that waited for
an answer of the CSMS would deadlock; what must be sent afterwards is queued or
signalled to the link instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from charge_point.errors import ConfigurationError
from charge_point.events import ORDER_TOKEN_TYPE
from charge_point.qrstart import read_revoke
from charge_point.station import Station
from ocpp_rpc import on
from qr_extension.wire import MSG_REVOKE, MSG_TRUSTED_KEYS, VENDOR_ID

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def handles(action: str) -> Callable[[F], F]:
    """Marks an adapter method as the handler of the CSMS's CALL ``action``
    (:func:`ocpp_rpc.routing.on`: a table per class, no module-level registry)."""
    return on(action)


@dataclass
class CommandContext:
    """What a command handler may touch: the station and the link's hooks."""

    station: Station
    reconnect: Callable[[], None]  # after Reset: drop the connection, boot again
    trigger: Callable[[str, int | None], bool]  # TriggerMessage: (what, evse) -> accepted
    follow_up: Callable[[str, Callable[[], Awaitable[None]]], None]  # a CALL to send after


# --- Provisioning: configuration, reset ------------------------------------------------
def change_configuration(ctx: CommandContext, key: str, value: str) -> str:
    """``Accepted``, ``Rejected`` (read-only or bad value) or ``NotSupported``."""
    try:
        ctx.station.config.key(key)
    except ConfigurationError:
        return "NotSupported"
    try:
        ctx.station.config.set(key, value)
    except ConfigurationError as exc:
        log.info("configuration %s=%r refused: %s", key, value, exc)
        return "Rejected"
    return "Accepted"


def reset(ctx: CommandContext, *, hard: bool) -> None:
    """Ends every session, then reconnects and boots again."""
    ctx.station.reset(hard)
    ctx.reconnect()


# --- Transactions ----------------------------------------------------------------------
def remote_start(
    ctx: CommandContext,
    id_tag: str,
    evse_id: int | None,
    remote_start_id: int | None,
    token_type: str = ORDER_TOKEN_TYPE,
) -> bool:
    """False (the answer is Rejected) while the CSMS has not accepted the charger: the
    station is offline until a boot is answered Accepted (2.0.1 B02.FR.05)."""
    if not ctx.station.online:
        log.info("remote start of %s refused: the charger is not accepted", id_tag)
        return False
    return ctx.station.remote_start(id_tag, evse_id, remote_start_id, token_type)


def remote_stop(ctx: CommandContext, transaction_id: str) -> bool:
    """Refused like :func:`remote_start` while the charger is not accepted."""
    if not ctx.station.online:
        log.info("remote stop of %s refused: the charger is not accepted", transaction_id)
        return False
    return ctx.station.remote_stop(transaction_id)


def unlock(ctx: CommandContext, evse_id: int) -> bool:
    return ctx.station.unlock(evse_id)


# --- Local authorisation list and cache --------------------------------------------------
def send_local_list(
    ctx: CommandContext, version: int, full: bool, entries: list[tuple[str, str | None, Any]]
) -> str:
    """Applies a SendLocalList; ``entries`` are (id_tag, status or None to remove, expiry)."""
    store = ctx.station.store
    current = int(store.get("local_list_version", 0))
    if not full and version <= current:
        return "VersionMismatch"
    keep = {tag: (status, _expiry(expiry)) for tag, status, expiry in entries if status}
    removed = [tag for tag, status, _ in entries if not status]
    with store.atomic():
        if full:
            store.replace_local_list(keep)
        else:
            store.update_local_list(keep, removed)
        store.put("local_list_version", version)
    return "Accepted"


def local_list_version(ctx: CommandContext) -> int:
    return int(ctx.station.store.get("local_list_version", 0))


def clear_cache(ctx: CommandContext) -> None:
    ctx.station.store.clear_cache()


def _expiry(value: Any) -> float | None:
    if not value:
        return None
    from qr_extension.wire import parse_ocpp_timestamp

    return parse_ocpp_timestamp(str(value)).timestamp()


# --- Data transfer (our vendor extension) ------------------------------------------------
def data_transfer(ctx: CommandContext, vendor_id: str, message_id: str | None, data: Any) -> str:
    """``Accepted``, ``Rejected``, ``UnknownVendorId`` or ``UnknownMessageId``."""
    if vendor_id != VENDOR_ID:
        return "UnknownVendorId"
    if message_id == MSG_TRUSTED_KEYS:
        if not isinstance(data, str):
            data = json.dumps(data)
        refusal = ctx.station.install_trusted_keys(data)
        return "Accepted" if refusal is None else "Rejected"
    if message_id == MSG_REVOKE:
        return revoke(ctx, data)
    return "UnknownMessageId"


def revoke(ctx: CommandContext, data: Any) -> str:
    """``Revoke``: ``Accepted`` only once the revocation is stored durably; ``Rejected`` for
    malformed data or a token already used here (its order is not unused)."""
    parsed = read_revoke(data)
    if parsed is None:
        log.info("Revoke refused: malformed data %r", str(data)[:80])
        return "Rejected"
    return "Accepted" if ctx.station.revoke_token(*parsed) else "Rejected"
