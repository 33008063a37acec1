"""OCPP 1.6J adapter: library ``@on`` handlers that translate to the functional blocks.

Only translation lives here (snake_cased payload in, ``call_result`` dataclass out); what to
answer and what to store is decided by the blocks, shared with 2.0.1.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from csms.context import CsmsContext
from csms.ports import IdTagDecision
from csms.protocol import (
    certificates,
    monitoring,
    provisioning,
    reservations,
    transactions,
    violations,
)
from csms.protocol import data_transfer as dt
from csms.protocol import meter_values as mv
from csms.protocol.base import CsmsChargePoint, Transport, on
from qr_extension.wire import ocpp_timestamp

ACCEPTED = "Accepted"


def id_tag_info(decision: IdTagDecision) -> dict[str, Any]:
    info: dict[str, Any] = {"status": decision.status}
    if decision.expiry is not None:
        info["expiry_date"] = ocpp_timestamp(decision.expiry)
    return info


class ChargePoint16(CsmsChargePoint):
    """One OCPP 1.6J connection."""

    _ocpp_version = "1.6"

    def __init__(
        self,
        charger_id: str,
        transport: Transport,
        ctx: CsmsContext,
        *,
        registration: str,
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
        self, charge_point_vendor: str, charge_point_model: str, **kw: Any
    ) -> call_result.BootNotification:
        info = provisioning.BootInfo(
            vendor=charge_point_vendor,
            model=charge_point_model,
            serial_number=kw.get("charge_point_serial_number"),
            firmware_version=kw.get("firmware_version"),
        )
        answer = await provisioning.boot(self._ctx, self.charger_id, "1.6", info)
        self.booted(answer.status)
        if answer.status == ACCEPTED:
            self.defer(*dt.trusted_keys_call(self._ctx, self._ocpp_version))
        return call_result.BootNotification(
            current_time=ocpp_timestamp(answer.current_time),
            interval=answer.interval_s,
            status=answer.status,
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        now = await provisioning.heartbeat(self._ctx, self.charger_id)
        return call_result.Heartbeat(current_time=ocpp_timestamp(now))

    @on(Action.status_notification)
    async def on_status(
        self, connector_id: int, error_code: str, status: str, **kw: Any
    ) -> call_result.StatusNotification:
        await provisioning.connector_status(
            self._ctx,
            self.charger_id,
            evse_id=connector_id,
            connector_id=1,
            status=status,
            error_code=None if error_code == "NoError" else error_code,
            timestamp=_time(kw.get("timestamp"), "StatusNotification"),
        )
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> call_result.Authorize:
        decision = await self._ctx.authorization.authorize(self.charger_id, id_tag)
        return call_result.Authorize(id_tag_info=id_tag_info(decision))

    @on(Action.start_transaction)
    async def on_start(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kw: Any
    ) -> call_result.StartTransaction:
        answer = await transactions.start_transaction(
            self._ctx,
            self.charger_id,
            transactions.StartRequest(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=meter_start,
                timestamp=violations.timestamp(timestamp, action="StartTransaction"),
                reservation_id=kw.get("reservation_id"),
            ),
        )
        if kw.get("reservation_id") is not None:  # the transaction used the reservation
            await reservations.used(
                self._ctx, self.charger_id, kw["reservation_id"], str(answer.transaction_id)
            )
        return call_result.StartTransaction(
            transaction_id=answer.transaction_id, id_tag_info=id_tag_info(answer.decision)
        )

    @on(Action.stop_transaction)
    async def on_stop(
        self, meter_stop: int, timestamp: str, transaction_id: int, **kw: Any
    ) -> call_result.StopTransaction:
        decision = await transactions.stop_transaction(
            self._ctx,
            self.charger_id,
            transactions.StopRequest(
                transaction_id=transaction_id,
                meter_stop=meter_stop,
                timestamp=violations.timestamp(timestamp, action="StopTransaction"),
                id_tag=kw.get("id_tag"),
                reason=kw.get("reason"),
                samples=mv.samples_from_ocpp(kw.get("transaction_data") or ()),
            ),
        )
        if decision is None:
            return call_result.StopTransaction()
        return call_result.StopTransaction(id_tag_info=id_tag_info(decision))

    @on(Action.meter_values)
    async def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **kw: Any
    ) -> call_result.MeterValues:
        txn = kw.get("transaction_id")
        await mv.meter_values(
            self._ctx,
            self.charger_id,
            evse_id=connector_id,
            transaction_id=str(txn) if txn is not None else None,
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

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status(
        self, **payload: Any
    ) -> call_result.DiagnosticsStatusNotification:
        await monitoring.diagnostics_status(
            self._ctx, self.charger_id, "DiagnosticsStatusNotification", payload
        )
        return call_result.DiagnosticsStatusNotification()

    # --- security extension (OCPP 1.6 security whitepaper) -----------------------------------

    @on(Action.log_status_notification)
    async def on_log_status(self, **payload: Any) -> call_result.LogStatusNotification:
        await monitoring.diagnostics_status(
            self._ctx, self.charger_id, "LogStatusNotification", payload
        )
        return call_result.LogStatusNotification()

    @on(Action.signed_firmware_status_notification)
    async def on_signed_firmware_status(
        self, **payload: Any
    ) -> call_result.SignedFirmwareStatusNotification:
        await monitoring.firmware_status(
            self._ctx, self.charger_id, "SignedFirmwareStatusNotification", payload
        )
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.security_event_notification)
    async def on_security_event(self, **payload: Any) -> call_result.SecurityEventNotification:
        await monitoring.security_event(self._ctx, self.charger_id, payload)
        return call_result.SecurityEventNotification()

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, csr: str) -> call_result.SignCertificate:
        answer = await certificates.sign_certificate(self._ctx, self.charger_id, csr=csr)
        await certificates.record(self._ctx, self.charger_id, {"csr": csr}, answer)
        if answer.issued is not None:  # sent once this answer is
            self.defer("CertificateSigned", certificates.certificate_signed("1.6", answer.issued))
        return call_result.SignCertificate(status=answer.status)


def _time(text: str | None, action: str) -> datetime | None:
    return violations.timestamp(text, action=action) if text else None
