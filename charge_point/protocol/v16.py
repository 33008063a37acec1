"""OCPP 1.6J adapter: maps station events to 1.6 messages and 1.6 commands to the station.

Thin on purpose: the effect of every command is in :mod:`.commands`, the logic in the station;
the RPC itself is :class:`~charge_point.protocol.connection.Connection`'s (a CALLERROR to one
of our calls is an exception, never a silent None).
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from charge_point import reservations
from charge_point.events import Kind
from charge_point.evse import Status
from charge_point.firmware import installed_version
from charge_point.protocol import commands
from charge_point.protocol.commands import CommandContext, handles
from charge_point.protocol.connection import Connection, Socket
from charge_point.protocol.vendor import VendorChannel
from charge_point.queue import rewritten_transaction_id
from charge_point.reservations import Reservation
from charge_point.store import QueuedMessage
from qr_extension.wire import VENDOR_ID, ocpp_timestamp, parse_ocpp_timestamp

log = logging.getLogger(__name__)

VENDOR = "qrcharge"
MODEL = "qrcharge-reference"


def _status_of(info: Any) -> str:
    """``idTagInfo.status`` whether the library gave a dict or a dataclass."""
    if isinstance(info, dict):
        return str(info.get("status"))
    return str(getattr(info, "status", None))


def meter_value(timestamp: float, wh: int, power_w: int, context: str) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": ocpp_timestamp(timestamp),
            "sampled_value": [
                {
                    "value": str(wh),
                    "measurand": "Energy.Active.Import.Register",
                    "unit": "Wh",
                    "context": context,
                },
                {
                    "value": str(power_w),
                    "measurand": "Power.Active.Import",
                    "unit": "W",
                    "context": context,
                },
            ],
        }
    ]


class Adapter16(Connection):
    """One OCPP 1.6 connection of the charger."""

    version = "1.6"
    call_results = call_result
    calls = call

    def __init__(self, ctx: CommandContext, socket: Socket | None, *, timeout: float) -> None:
        super().__init__(ctx.station.id, socket, timeout=timeout)
        self.ctx = ctx
        self.station = ctx.station
        self.vendor = VendorChannel(self.data_transfer, ctx.station.id)
        self.forced = ctx.station.forced

    # --- outgoing ------------------------------------------------------------------------
    async def boot(self, reason: str = "PowerUp") -> tuple[str, float | None, int]:
        """BootNotification (1.6 has no boot reason): (registration status, CSMS time,
        interval)."""
        answer = await self.call(
            call.BootNotification(
                charge_point_model=MODEL,
                charge_point_vendor=VENDOR,
                firmware_version=installed_version(self.station.store),
            ),
        )
        current = parse_ocpp_timestamp(answer.current_time).timestamp()
        return str(answer.status), current, int(answer.interval)

    async def heartbeat(self) -> float:
        answer = await self.call(call.Heartbeat())
        return parse_ocpp_timestamp(answer.current_time).timestamp()

    async def send_status(self, evse_id: int, status: Status, *, force: bool = False) -> None:
        await self.call(
            call.StatusNotification(
                connector_id=evse_id,
                error_code="NoError",
                status=status.value,
                timestamp=ocpp_timestamp(self.station.now()),
            ),
        )

    async def data_transfer(self, message_id: str, data: str) -> str:
        answer = await self.call(
            call.DataTransfer(vendor_id=VENDOR_ID, message_id=message_id, data=data),
        )
        return str(answer.status)

    async def authorize(self, id_tag: str, token_type: str) -> tuple[str, float | None]:
        """Authorize (1.6 id tags have no type: ``token_type`` is for 2.0.1 only)."""
        answer = await self.call(call.Authorize(id_tag=id_tag))
        info = answer.id_tag_info
        expiry = info.get("expiry_date") if isinstance(info, dict) else None
        return _status_of(info), parse_ocpp_timestamp(expiry).timestamp() if expiry else None

    async def send_meter_values(self, evse_id: int) -> None:
        meter = self.station.meters[evse_id]
        session = self.station.sessions.get(evse_id)
        csms_id = None if session is None else self.station.store.csms_id(session.local_id)
        await self.call(
            call.MeterValues(
                connector_id=evse_id,
                transaction_id=None if csms_id is None else int(csms_id),
                meter_value=meter_value(
                    self.station.now(), meter.register_wh, round(meter.power_w), "Trigger"
                ),
            ),
        )

    async def deliver(self, message: QueuedMessage) -> None:
        """One queue row as 1.6: StartTransaction, MeterValues, StopTransaction, DataTransfer."""
        p = message.payload
        store = self.station.store
        if message.kind == Kind.SETTLEMENT:
            await self.vendor.deliver_settlement(p)
            return
        assert message.txn is not None
        if message.kind == Kind.STARTED:
            answer = await self.call(
                call.StartTransaction(
                    connector_id=p["evse_id"],
                    id_tag=p["id_tag"],
                    meter_start=p["meter_wh"],
                    timestamp=ocpp_timestamp(p["timestamp"]),
                    reservation_id=p.get("reservation_id"),
                ),
            )
            store.set_csms_id(message.txn, str(answer.transaction_id))
            info = answer.id_tag_info
            expiry = info.get("expiry_date") if isinstance(info, dict) else None
            self.station.remember_tag(p["id_tag"], _status_of(info), expiry)
            if _status_of(answer.id_tag_info) != "Accepted":
                self.station.deauthorize(message.txn)
            return
        csms_id = rewritten_transaction_id(store, message.txn)
        if message.kind == Kind.UPDATED:
            await self.call(
                call.MeterValues(
                    connector_id=p["evse_id"],
                    transaction_id=csms_id,
                    meter_value=meter_value(
                        p["timestamp"], p["meter_wh"], p["power_w"], "Sample.Periodic"
                    ),
                ),
            )
        elif message.kind == Kind.ENDED:
            await self.call(
                call.StopTransaction(
                    meter_stop=p["meter_wh"],
                    timestamp=ocpp_timestamp(p["timestamp"]),
                    transaction_id=csms_id,
                    reason=p["reason"],
                    id_tag=p["id_tag"],
                ),
            )

    # --- incoming ------------------------------------------------------------------------
    @handles(Action.remote_start_transaction)
    def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, **_: Any
    ) -> call_result.RemoteStartTransaction:
        ok = commands.remote_start(self.ctx, id_tag, connector_id, None)
        return call_result.RemoteStartTransaction(status="Accepted" if ok else "Rejected")

    @handles(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int) -> call_result.RemoteStopTransaction:
        ok = commands.remote_stop(self.ctx, str(transaction_id))
        return call_result.RemoteStopTransaction(status="Accepted" if ok else "Rejected")

    @handles(Action.reset)
    def on_reset(self, type: str) -> call_result.Reset:
        commands.reset(self.ctx, hard=type == "Hard")
        return call_result.Reset(status="Accepted")

    @handles(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str) -> call_result.ChangeConfiguration:
        return call_result.ChangeConfiguration(
            status=commands.change_configuration(self.ctx, key, value)
        )

    @handles(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None) -> call_result.GetConfiguration:
        items = self.station.config.items()
        known = {k.name for k, _ in items}
        wanted = set(key) if key else known
        return call_result.GetConfiguration(
            configuration_key=[
                {"key": k.name, "readonly": k.readonly, "value": v}
                for k, v in items
                if k.name in wanted
            ],
            unknown_key=sorted(wanted - known) or None,
        )

    @handles(Action.unlock_connector)
    def on_unlock(self, connector_id: int) -> call_result.UnlockConnector:
        ok = commands.unlock(self.ctx, connector_id)
        return call_result.UnlockConnector(status="Unlocked" if ok else "NotSupported")

    @handles(Action.trigger_message)
    def on_trigger(
        self, requested_message: str, connector_id: int | None = None
    ) -> call_result.TriggerMessage:
        if connector_id and connector_id not in self.station.connectors:
            return call_result.TriggerMessage(status="Rejected")
        ok = self.ctx.trigger(requested_message, connector_id or None)
        return call_result.TriggerMessage(status="Accepted" if ok else "NotImplemented")

    @handles(Action.send_local_list)
    def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
    ) -> call_result.SendLocalList:
        entries = []
        for item in local_authorization_list or []:
            info = item.get("id_tag_info") or {}
            entries.append((item["id_tag"], info.get("status"), info.get("expiry_date")))
        status = commands.send_local_list(self.ctx, list_version, update_type == "Full", entries)
        return call_result.SendLocalList(status=status)

    @handles(Action.get_local_list_version)
    def on_get_local_list_version(self) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(list_version=commands.local_list_version(self.ctx))

    @handles(Action.clear_cache)
    def on_clear_cache(self) -> call_result.ClearCache:
        commands.clear_cache(self.ctx)
        return call_result.ClearCache(status="Accepted")

    @handles(Action.change_availability)
    def on_change_availability(
        self, connector_id: int, type: str
    ) -> call_result.ChangeAvailability:
        """Connector 0 is the whole charge point."""
        status = self.station.change_availability(connector_id or None, type == "Operative")
        return call_result.ChangeAvailability(status=status)

    @handles(Action.reserve_now)
    def on_reserve_now(
        self,
        connector_id: int,
        expiry_date: str,
        id_tag: str,
        reservation_id: int,
        parent_id_tag: str | None = None,
    ) -> call_result.ReserveNow:
        """Connector 0: any connector of the charge point."""
        reservation = Reservation(
            reservation_id,
            connector_id or None,
            id_tag,
            parse_ocpp_timestamp(expiry_date).timestamp(),
            parent_id_tag,
        )
        return call_result.ReserveNow(status=reservations.reserve(self.station, reservation))

    @handles(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int) -> call_result.CancelReservation:
        ok = reservations.cancel(self.station, reservation_id)
        return call_result.CancelReservation(status="Accepted" if ok else "Rejected")

    @handles(Action.data_transfer)
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: Any = None
    ) -> call_result.DataTransfer:
        status = commands.data_transfer(self.ctx, vendor_id, message_id, data)
        return call_result.DataTransfer(status=status)

    # --- firmware, diagnostics, smart charging (charge_point.firmware, .diagnostics,
    # .smart_charging; the effect is in commands) ------------------------------------------
    @handles(Action.update_firmware)
    def on_update_firmware(
        self,
        location: str,
        retrieve_date: str,
        retries: int | None = None,
        retry_interval: int | None = None,
    ) -> call_result.UpdateFirmware:
        commands.update_firmware(
            self.ctx,
            version=self.version,
            location=location,
            retrieve_at=retrieve_date,
            retries=retries,
            retry_interval=retry_interval,
        )
        return call_result.UpdateFirmware()

    @handles(Action.get_diagnostics)
    def on_get_diagnostics(
        self,
        location: str,
        retries: int | None = None,
        retry_interval: int | None = None,
        start_time: str | None = None,
        stop_time: str | None = None,
    ) -> call_result.GetDiagnostics:
        """The file name, or none when there is nothing this charger can upload there."""
        status, name = commands.upload_log(
            self.ctx,
            version=self.version,
            location=location,
            retries=retries,
            retry_interval=retry_interval,
            window={"start_time": start_time, "stop_time": stop_time},
        )
        return call_result.GetDiagnostics(file_name=name if status != "Rejected" else None)

    @handles(Action.set_charging_profile)
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any]
    ) -> call_result.SetChargingProfile:
        status = commands.set_charging_profile(
            self.ctx, connector_id, cs_charging_profiles, version=self.version
        )
        return call_result.SetChargingProfile(status=status)

    @handles(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
    ) -> call_result.ClearChargingProfile:
        status = commands.clear_charging_profile(
            self.ctx,
            profile_id=id,
            evse_id=connector_id,
            purpose=charging_profile_purpose,
            stack_level=stack_level,
        )
        return call_result.ClearChargingProfile(status=status)

    @handles(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None
    ) -> call_result.GetCompositeSchedule:
        found = commands.composite_schedule(self.ctx, connector_id, duration, charging_rate_unit)
        if found is None:
            return call_result.GetCompositeSchedule(status="Rejected")
        start, unit, periods = found
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=ocpp_timestamp(start),
            charging_schedule={
                "duration": duration,
                "start_schedule": ocpp_timestamp(start),
                "charging_rate_unit": unit,
                "charging_schedule_period": commands.periods_ocpp(periods),
            },
        )
