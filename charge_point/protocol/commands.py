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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from charge_point.errors import ConfigurationError, ProfileInvalid
from charge_point.events import ORDER_TOKEN_TYPE
from charge_point.qrstart import read_revoke
from charge_point.smart_charging import Period, profile_from_ocpp
from charge_point.station import Station
from ocpp_rpc import on
from qr_extension.wire import MSG_REVOKE, MSG_TRUSTED_KEYS, VENDOR_ID

if TYPE_CHECKING:
    from charge_point.jobs import RemoteJobs

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
    remote: RemoteJobs | None = None  # firmware and log jobs (None: not offered)


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


# --- Smart charging ------------------------------------------------------------------------
def set_charging_profile(
    ctx: CommandContext, evse_id: int, data: dict[str, Any], *, version: str
) -> str:
    """Installs a profile (``data`` snake_cased, 1.6 ``csChargingProfiles`` or 2.0.1
    ``chargingProfile``) on ``evse_id`` (0: the station): ``Accepted`` or ``Rejected``."""
    station = ctx.station
    if evse_id != 0 and evse_id not in station.connectors:
        return "Rejected"
    try:
        profile = profile_from_ocpp(evse_id, data, installed_at=station.now())
    except (ProfileInvalid, KeyError, TypeError, ValueError) as exc:
        log.info("%s: charging profile refused: %s", station.id, exc)
        return "Rejected"
    session = station.sessions.get(evse_id)
    running = None
    if session is not None:  # 1.6 names the CSMS's transaction id, 2.0.1 the charger's
        running = station.store.csms_id(session.local_id) if version == "1.6" else session.local_id
    if version != "1.6":  # kept as sent, for GetChargingProfiles (2.0.1 only)
        profile = replace(profile, extra={"ocpp": data})
    accepted = station.profiles.install(profile, transaction_id=running)
    station.tick()  # the meters apply it from now on
    return "Accepted" if accepted else "Rejected"


def clear_charging_profile(
    ctx: CommandContext,
    *,
    profile_id: int | None,
    evse_id: int | None,
    purpose: str | None,
    stack_level: int | None,
) -> str:
    """``Accepted`` when a profile was removed, else ``Unknown``."""
    ctx.station.tick()  # energy up to now under the old limits
    cleared = ctx.station.profiles.clear(
        profile_id=profile_id, evse_id=evse_id, purpose=purpose, stack_level=stack_level
    )
    return "Accepted" if cleared else "Unknown"


def composite_schedule(
    ctx: CommandContext, evse_id: int, duration_s: int, unit: str | None
) -> tuple[float, str, list[Period]] | None:
    """(start, unit, periods) of the composite schedule of ``evse_id`` from now, or None
    (Rejected) for an EVSE this charger does not have."""
    station = ctx.station
    if evse_id != 0 and evse_id not in station.connectors:
        return None
    now = round(station.now(), 3)  # the wire's milliseconds: never a moment already past
    session = station.sessions.get(evse_id)
    unit = unit or "W"
    hardware = station.hardware_w() * (len(station.connectors) if evse_id == 0 else 1)
    periods = station.profiles.composite(
        evse_id,
        now,
        max(1, duration_s),
        unit=unit,
        tx_start=None if session is None else session.started_at,
        hardware_w=hardware,
    )
    return now, unit, periods


def periods_ocpp(periods: list[Period]) -> list[dict[str, Any]]:
    """``chargingSchedulePeriod`` (snake_cased) of both versions."""
    return [
        {"start_period": p.start_s, "limit": p.limit}
        | ({} if p.phases is None else {"number_phases": p.phases})
        for p in periods
    ]


# --- Firmware and diagnostics / logs --------------------------------------------------------
def update_firmware(
    ctx: CommandContext,
    *,
    version: str,
    location: str,
    retrieve_at: str,
    request_id: int | None = None,
    retries: int | None = None,
    retry_interval: int | None = None,
    signature: str | None = None,
) -> str:
    """Starts a firmware update: ``Accepted`` or ``AcceptedCanceled`` (or ``Rejected`` when
    this charger runs no jobs)."""
    if ctx.remote is None:
        return "Rejected"
    return ctx.remote.firmware.request(
        version=version,
        location=location,
        retrieve_at=_expiry(retrieve_at) or ctx.station.now(),
        request_id=request_id,
        retries=retries or 0,
        retry_interval_s=float(retry_interval or 0),
        signature=signature,
    )


def upload_log(
    ctx: CommandContext,
    *,
    version: str,
    location: str,
    request_id: int | None = None,
    log_type: str = "DiagnosticsLog",
    retries: int | None = None,
    retry_interval: int | None = None,
    window: dict[str, Any] | None = None,
) -> tuple[str, str | None]:
    """Starts a diagnostics / log upload: (status, file name)."""
    if ctx.remote is None:
        return "Rejected", None
    return ctx.remote.logs.request(
        version=version,
        location=location,
        request_id=request_id,
        log_type=log_type,
        retries=retries or 0,
        retry_interval_s=float(retry_interval or 0),
        window=window,
    )
