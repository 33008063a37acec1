"""OCPP 2.0.1 adapter: library ``@on`` handlers that translate to the functional blocks."""

from __future__ import annotations

import logging
from typing import Any

from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from csms.context import CsmsContext
from csms.ports import IdTagDecision
from csms.protocol import data_transfer as dt
from csms.protocol import meter_values as mv
from csms.protocol import monitoring, provisioning, reservations, transactions, violations
from csms.protocol.base import CsmsChargePoint, Transport, on
from csms.protocol.v201_unasked import Unasked201
from csms.store import device_model
from qr_extension.wire import ocpp_timestamp

ACCEPTED = "Accepted"
LOG = logging.getLogger("csms.protocol")


def id_token_info(decision: IdTagDecision) -> dict[str, Any]:
    info: dict[str, Any] = {"status": decision.status}
    if decision.expiry is not None:
        info["cache_expiry_date_time"] = ocpp_timestamp(decision.expiry)
    return info


class ChargePoint201(Unasked201, CsmsChargePoint):
    """One OCPP 2.0.1 connection (the messages a station sends unasked: :class:`Unasked201`)."""

    _ocpp_version = "2.0.1"

    def __init__(
        self, charger_id: str, transport: Transport, ctx: CsmsContext, *, registration: str
    ) -> None:
        super().__init__(
            charger_id,
            transport,
            response_timeout_s=ctx.settings.ocpp_call_timeout_s,
            max_frame_bytes=ctx.settings.ocpp_max_frame_bytes,
            registration=registration,
        )
        self._ctx = ctx

    @on(Action.boot_notification)
    async def on_boot(
        self, charging_station: dict[str, Any], reason: str, **kw: Any
    ) -> call_result.BootNotification:
        info = provisioning.BootInfo(
            vendor=charging_station.get("vendor_name", ""),
            model=charging_station.get("model", ""),
            serial_number=charging_station.get("serial_number"),
            firmware_version=charging_station.get("firmware_version"),
        )
        answer = await provisioning.boot(self._ctx, self.charger_id, "2.0.1", info)
        self.booted(answer.status)
        if answer.status == ACCEPTED:
            self.defer(*dt.trusted_keys_call(self._ctx, self._ocpp_version))
        return call_result.BootNotification(
            current_time=ocpp_timestamp(answer.current_time),
            interval=answer.interval_s,
            status=answer.status,
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **kw: Any) -> call_result.Heartbeat:
        """``kw``: customData, which every 2.0.1 message may carry (unread)."""
        now = await provisioning.heartbeat(self._ctx, self.charger_id)
        return call_result.Heartbeat(current_time=ocpp_timestamp(now))

    @on(Action.status_notification)
    async def on_status(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **kw: Any
    ) -> call_result.StatusNotification:
        await provisioning.connector_status(
            self._ctx,
            self.charger_id,
            evse_id=evse_id,
            connector_id=connector_id,
            status=connector_status,
            error_code=None,
            timestamp=violations.timestamp(timestamp, action="StatusNotification"),
        )
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_token: dict[str, Any], **kw: Any) -> call_result.Authorize:
        decision = await self._ctx.authorization.authorize(self.charger_id, id_token["id_token"])
        return call_result.Authorize(id_token_info=id_token_info(decision))

    @on(Action.transaction_event)
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        **kw: Any,
    ) -> call_result.TransactionEvent:
        evse = kw.get("evse") or {}
        token = kw.get("id_token") or {}
        decision = await transactions.transaction_event(
            self._ctx,
            self.charger_id,
            transactions.TransactionEvent(
                event_type=event_type,
                timestamp=violations.timestamp(timestamp, action="TransactionEvent"),
                trigger_reason=trigger_reason,
                seq_no=seq_no,
                transaction_id=transaction_info["transaction_id"],
                offline=bool(kw.get("offline", False)),
                id_token=token.get("id_token"),
                evse_id=evse.get("id"),
                connector_id=evse.get("connector_id"),
                stopped_reason=transaction_info.get("stopped_reason"),
                samples=mv.samples_from_ocpp(kw.get("meter_value") or ()),
            ),
        )
        if kw.get("reservation_id") is not None:  # the transaction used the reservation
            await reservations.used(
                self._ctx,
                self.charger_id,
                kw["reservation_id"],
                transaction_info["transaction_id"],
            )
        if decision is None:
            return call_result.TransactionEvent()
        return call_result.TransactionEvent(id_token_info=id_token_info(decision))

    @on(Action.meter_values)
    async def on_meter_values(
        self, evse_id: int, meter_value: list[dict[str, Any]], **kw: Any
    ) -> call_result.MeterValues:
        await mv.meter_values(
            self._ctx,
            self.charger_id,
            evse_id=evse_id,
            transaction_id=None,
            samples=mv.samples_from_ocpp(meter_value),
        )
        return call_result.MeterValues()

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **kw: Any) -> call_result.DataTransfer:
        answer = await dt.data_transfer(
            self._ctx,
            self.charger_id,
            vendor_id=vendor_id,
            message_id=kw.get("message_id"),
            data=kw.get("data"),
        )
        return call_result.DataTransfer(status=answer.status, data=answer.data)

    @on(Action.firmware_status_notification)
    async def on_firmware_status(self, **payload: Any) -> call_result.FirmwareStatusNotification:
        await monitoring.firmware_status(
            self._ctx, self.charger_id, "FirmwareStatusNotification", payload
        )
        return call_result.FirmwareStatusNotification()

    @on(Action.log_status_notification)
    async def on_log_status(self, **payload: Any) -> call_result.LogStatusNotification:
        await monitoring.diagnostics_status(
            self._ctx, self.charger_id, "LogStatusNotification", payload
        )
        return call_result.LogStatusNotification()

    @on(Action.security_event_notification)
    async def on_security_event(self, **payload: Any) -> call_result.SecurityEventNotification:
        await monitoring.security_event(self._ctx, self.charger_id, payload)
        return call_result.SecurityEventNotification()

    @on(Action.notify_report)
    async def on_notify_report(
        self, request_id: int, generated_at: str, seq_no: int, **kw: Any
    ) -> call_result.NotifyReport:
        """Stores each part of a device-model report as it arrives (csms/store/device_model)."""
        rows = device_model.rows_from_report(
            self.charger_id, kw.get("report_data") or (), now=self._ctx.clock()
        )
        async with self._ctx.db.session() as session:
            stored = await device_model.store_report_part(session, rows)
        LOG.info(
            "%s: report %s part %s: %d attributes %s%s",
            self.charger_id,
            request_id,
            seq_no,
            len(rows),
            "stored" if stored else "dropped (charger deleted)",
            " (more to come)" if kw.get("tbc") else "",
        )
        return call_result.NotifyReport()
