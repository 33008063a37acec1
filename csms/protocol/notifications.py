"""What a charger reports unasked, kept for the operator (both OCPP versions).

Security events, firmware / log / diagnostics progress, 2.0.1 monitoring events and reports,
charging limits and needs, reservation updates, certificate requests: each message is stored
as the charger sent it (``csms/store/notifications``), with the few members an operator
filters by (a status or type, the request id, the charger's own time stamp) picked out by
:data:`MEMBERS`, and listed by ``GET /api/v1/admin/chargers/{id}/notifications``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from csms.context import CsmsContext
from csms.protocol.naming import to_camel
from csms.store.models import ChargerNotification
from csms.store.notifications import add_notification
from qr_extension.wire import parse_ocpp_timestamp

LOG = logging.getLogger("csms.notifications")
INT32 = range(-(2**31), 2**31)  # a request id beyond this is kept in the payload only

# action: (status or type, request id, time stamp), as dotted paths into the camelCase payload
MEMBERS: dict[str, tuple[str | None, str | None, str | None]] = {
    "SecurityEventNotification": ("type", None, "timestamp"),
    "FirmwareStatusNotification": ("status", "requestId", None),
    "SignedFirmwareStatusNotification": ("status", "requestId", None),
    "PublishFirmwareStatusNotification": ("status", "requestId", None),
    "DiagnosticsStatusNotification": ("status", None, None),
    "LogStatusNotification": ("status", "requestId", None),
    "ReservationStatusUpdate": ("reservationUpdateStatus", None, None),
    "NotifyEvent": ("eventData.0.trigger", None, "generatedAt"),
    "NotifyMonitoringReport": (None, "requestId", "generatedAt"),
    "NotifyCustomerInformation": (None, "requestId", "generatedAt"),
    "NotifyDisplayMessages": (None, "requestId", None),
    "NotifyEVChargingNeeds": ("chargingNeeds.requestedEnergyTransfer", None, None),
    "NotifyEVChargingSchedule": (None, None, "timeBase"),
    "ReportChargingProfiles": ("chargingLimitSource", "requestId", None),
    "ClearedChargingLimit": ("chargingLimitSource", None, None),
    "NotifyChargingLimit": ("chargingLimit.chargingLimitSource", None, None),
    "SignCertificate": ("certificateType", None, None),
    "Get15118EVCertificate": ("action", None, None),
    "GetCertificateStatus": ("ocspRequestData.hashAlgorithm", None, None),
    "CertificateSigned": ("serialNumber", None, None),  # what the CSMS's CA signed and sent
}


def member(payload: Mapping[str, Any], path: str | None) -> Any:
    """The value at a dotted ``path`` (list items by index), or None when absent."""
    value: Any = payload
    for step in path.split(".") if path else ():
        if isinstance(value, Mapping):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value if path else None


def notification_of(
    charger_id: str,
    action: str,
    payload: Mapping[str, Any],
    *,
    received_at: datetime,
    answer: str | None = None,
) -> ChargerNotification:
    """The row for one message (``payload`` camelCase, as sent)."""
    status_path, request_path, time_path = MEMBERS.get(action, (None, None, None))
    status, request_id, stamp = (member(payload, p) for p in (status_path, request_path, time_path))
    return ChargerNotification(
        charger_id=charger_id,
        action=action,
        status=status[:50] if isinstance(status, str) else None,
        request_id=request_id if isinstance(request_id, int) and request_id in INT32 else None,
        answer=answer,
        occurred_at=_time(stamp),
        received_at=received_at,
        payload=json.dumps(payload, ensure_ascii=False, default=str),
    )


async def record(
    ctx: CsmsContext,
    charger_id: str,
    action: str,
    payload: Mapping[str, Any],
    *,
    answer: str | None = None,
    snake_case: bool = True,
) -> None:
    """Stores one message; ``payload`` as the handler got it (the library's snake_case keys,
    turned back into the charger's camelCase) unless ``snake_case`` is False."""
    sent = to_camel(dict(payload)) if snake_case else dict(payload)
    row = notification_of(charger_id, action, sent, received_at=ctx.clock(), answer=answer)
    async with ctx.db.session() as session:
        stored = await add_notification(session, row, keep=ctx.settings.notification_limit)
    LOG.info(
        "%s: %s %s%s%s",
        charger_id,
        action,
        row.status or "",
        f" answered {answer}" if answer else "",
        "" if stored else " (not stored: charger deleted)",
    )


def _time(value: object) -> datetime | None:
    """The charger's time stamp, or None (the schemas do not check date-time formats)."""
    if not isinstance(value, str):
        return None
    try:
        return parse_ocpp_timestamp(value)
    except ValueError:
        return None
