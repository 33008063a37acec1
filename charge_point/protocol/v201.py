"""OCPP 2.0.1 adapter: maps station events to 2.0.1 messages and 2.0.1 commands to the station.

Differences from 1.6 handled here: connector statuses are coarser (:func:`status_201`), every
transaction message is a TransactionEvent with a gapless ``seqNo`` per transaction and
``offline: true`` for events that happened while the link was down, the transaction id is the
charger's own (so no rewrite is needed), configuration is component/variable based and is
reported as a device model (:mod:`charge_point.device_model`, sent in NotifyReport parts after
the GetBaseReport / GetReport answer, by the link). Every handler takes ``**_`` so that a
request's optional ``customData`` is accepted.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from charge_point import device_model, reservations
from charge_point.device_model import Entry
from charge_point.errors import ConfigurationError
from charge_point.events import ORDER_TOKEN_TYPE, Kind, StopReason, Trigger
from charge_point.evse import Status, status_201
from charge_point.firmware import installed_version
from charge_point.protocol import commands
from charge_point.protocol.commands import CommandContext, handles
from charge_point.protocol.connection import Connection, Socket
from charge_point.protocol.vendor import VendorChannel
from charge_point.reservations import Reservation
from charge_point.store import QueuedMessage
from qr_extension.wire import VENDOR_ID, ocpp_timestamp, parse_ocpp_timestamp

log = logging.getLogger(__name__)

VENDOR = "qrcharge"
MODEL = "qrcharge-reference"

EVENT_TYPE = {Kind.STARTED: "Started", Kind.UPDATED: "Updated", Kind.ENDED: "Ended"}
STOPPED_REASON = {
    StopReason.LOCAL: "Local",
    StopReason.REMOTE: "Remote",
    StopReason.EV_DISCONNECTED: "EVDisconnected",
    StopReason.POWER_LOSS: "PowerLoss",
    StopReason.HARD_RESET: "ImmediateReset",
    StopReason.SOFT_RESET: "ImmediateReset",
    StopReason.UNLOCK_COMMAND: "Other",
    StopReason.DEAUTHORIZED: "DeAuthorized",
    StopReason.OTHER: "Other",
}
ENDED_TRIGGER = {
    StopReason.LOCAL: Trigger.STOP_AUTHORIZED,
    StopReason.REMOTE: Trigger.REMOTE_STOP,
    StopReason.EV_DISCONNECTED: Trigger.EV_DEPARTED,
    StopReason.POWER_LOSS: Trigger.ABNORMAL_CONDITION,
    StopReason.HARD_RESET: Trigger.RESET_COMMAND,
    StopReason.SOFT_RESET: Trigger.RESET_COMMAND,
    StopReason.UNLOCK_COMMAND: Trigger.UNLOCK_COMMAND,
    StopReason.DEAUTHORIZED: Trigger.STOP_AUTHORIZED,
    StopReason.OTHER: Trigger.ABNORMAL_CONDITION,
}


def _status_of(info: Any) -> str | None:
    if info is None:
        return None
    if isinstance(info, dict):
        return str(info.get("status"))
    return str(getattr(info, "status", None))


def meter_value(timestamp: float, wh: int, power_w: int, context: str) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": ocpp_timestamp(timestamp),
            "sampled_value": [
                {
                    "value": wh,
                    "measurand": "Energy.Active.Import.Register",
                    "context": context,
                    "unit_of_measure": {"unit": "Wh"},
                },
                {
                    "value": power_w,
                    "measurand": "Power.Active.Import",
                    "context": context,
                    "unit_of_measure": {"unit": "W"},
                },
            ],
        }
    ]


class Adapter201(Connection):
    """One OCPP 2.0.1 connection of the charger."""

    version = "2.0.1"
    call_results = call_result
    calls = call

    def __init__(self, ctx: CommandContext, socket: Socket | None, *, timeout: float) -> None:
        super().__init__(ctx.station.id, socket, timeout=timeout)
        self.ctx = ctx
        self.station = ctx.station
        self.vendor = VendorChannel(self.data_transfer, ctx.station.id)
        self.forced = ctx.station.forced
        self._sent_status: dict[int, str] = {}

    # --- outgoing ------------------------------------------------------------------------
    async def boot(self, reason: str = "PowerUp") -> tuple[str, float | None, int]:
        """BootNotification: (registration status, CSMS time, interval)."""
        answer = await self.call(
            call.BootNotification(
                charging_station={
                    "model": MODEL,
                    "vendor_name": VENDOR,
                    "firmware_version": installed_version(self.station.store),
                },
                reason=reason,
            ),
        )
        current = parse_ocpp_timestamp(answer.current_time).timestamp()
        return str(answer.status), current, int(answer.interval)

    async def heartbeat(self) -> float:
        answer = await self.call(call.Heartbeat())
        return parse_ocpp_timestamp(answer.current_time).timestamp()

    async def send_status(self, evse_id: int, status: Status, *, force: bool = False) -> None:
        """Sends the 2.0.1 connector status, skipping a repeat of the value last sent on this
        connection (Preparing -> Charging is Occupied -> Occupied) unless ``force``d."""
        value = status_201(status)
        if self._sent_status.get(evse_id) == value and not force:
            return
        self._sent_status[evse_id] = value
        await self.call(
            call.StatusNotification(
                timestamp=ocpp_timestamp(self.station.now()),
                connector_status=value,
                evse_id=evse_id,
                connector_id=1,
            ),
        )

    async def data_transfer(self, message_id: str, data: str) -> str:
        answer = await self.call(
            call.DataTransfer(vendor_id=VENDOR_ID, message_id=message_id, data=data),
        )
        return str(answer.status)

    async def authorize(self, id_tag: str, token_type: str) -> tuple[str, float | None]:
        answer = await self.call(call.Authorize(id_token={"id_token": id_tag, "type": token_type}))
        info = answer.id_token_info
        expiry = info.get("cache_expiry_date_time") if isinstance(info, dict) else None
        return str(_status_of(info)), parse_ocpp_timestamp(expiry).timestamp() if expiry else None

    async def send_meter_values(self, evse_id: int) -> None:
        meter = self.station.meters[evse_id]
        await self.call(
            call.MeterValues(
                evse_id=evse_id,
                meter_value=meter_value(
                    self.station.now(), meter.register_wh, round(meter.power_w), "Trigger"
                ),
            ),
        )

    async def deliver(self, message: QueuedMessage) -> None:
        """One queue row as a TransactionEvent (or the Settlement DataTransfer)."""
        p = message.payload
        if message.kind == Kind.SETTLEMENT:
            await self.vendor.deliver_settlement(p)
            return
        kind = Kind(message.kind)
        info: dict[str, Any] = {
            "transaction_id": message.txn,
            "charging_state": p["charging_state"],
        }
        trigger = p["trigger"]
        if kind is Kind.STARTED and p.get("remote_start_id") is not None:
            info["remote_start_id"] = p["remote_start_id"]
        if kind is Kind.ENDED:
            reason = StopReason(p["reason"])
            info["stopped_reason"] = STOPPED_REASON[reason]
            info["charging_state"] = (
                "EVConnected" if reason is not StopReason.EV_DISCONNECTED else "Idle"
            )
            trigger = ENDED_TRIGGER[reason].value
        context = {Kind.STARTED: "Transaction.Begin", Kind.ENDED: "Transaction.End"}.get(
            kind, "Sample.Periodic"
        )
        answer = await self.call(
            call.TransactionEvent(
                event_type=EVENT_TYPE[kind],
                timestamp=ocpp_timestamp(p["timestamp"]),
                trigger_reason=trigger,
                seq_no=p["seq_no"],
                transaction_info=info,
                meter_value=meter_value(p["timestamp"], p["meter_wh"], p["power_w"], context),
                offline=True if p["offline"] else None,
                reservation_id=p.get("reservation_id") if kind is Kind.STARTED else None,
                evse={"id": p["evse_id"], "connector_id": 1},
                id_token={"id_token": p["id_tag"], "type": p.get("token_type", ORDER_TOKEN_TYPE)}
                if kind is Kind.STARTED
                else None,
            ),
        )
        answered = _status_of(answer.id_token_info)
        if kind is Kind.STARTED and answered not in (None, "Accepted"):
            assert message.txn is not None
            self.station.deauthorize(message.txn)
        if kind is Kind.STARTED and answered is not None:
            info_obj = answer.id_token_info
            expiry = info_obj.get("cache_expiry_date_time") if isinstance(info_obj, dict) else None
            self.station.remember_tag(p["id_tag"], answered, expiry)

    # --- incoming ------------------------------------------------------------------------
    @handles(Action.request_start_transaction)
    def on_request_start(
        self, id_token: dict[str, Any], remote_start_id: int, evse_id: int | None = None, **_: Any
    ) -> call_result.RequestStartTransaction:
        ok = commands.remote_start(
            self.ctx, id_token["id_token"], evse_id, remote_start_id, id_token["type"]
        )
        return call_result.RequestStartTransaction(status="Accepted" if ok else "Rejected")

    @handles(Action.request_stop_transaction)
    def on_request_stop(self, transaction_id: str, **_: Any) -> call_result.RequestStopTransaction:
        ok = commands.remote_stop(self.ctx, transaction_id)
        return call_result.RequestStopTransaction(status="Accepted" if ok else "Rejected")

    @handles(Action.reset)
    def on_reset(self, type: str, evse_id: int | None = None, **_: Any) -> call_result.Reset:
        if type == "OnIdle" and self.station.sessions:
            self.station.reset_when_idle = True  # the link resets when the last session ends
            return call_result.Reset(status="Scheduled")
        commands.reset(self.ctx, hard=True)
        return call_result.Reset(status="Accepted")

    @handles(Action.get_variables)
    def on_get_variables(
        self, get_variable_data: list[dict[str, Any]], **_: Any
    ) -> call_result.GetVariables:
        results = []
        for item in get_variable_data:
            component, variable = item["component"], item["variable"]
            result: dict[str, Any] = {"component": component, "variable": variable}
            try:
                key = self.station.config.key_for_variable(component["name"], variable["name"])
                value = dict((k.name, v) for k, v in self.station.config.items())[key.name]
                result.update(attribute_status="Accepted", attribute_value=value)
            except ConfigurationError:
                result["attribute_status"] = "UnknownVariable"
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @handles(Action.set_variables)
    def on_set_variables(
        self, set_variable_data: list[dict[str, Any]], **_: Any
    ) -> call_result.SetVariables:
        results = []
        for item in set_variable_data:
            component, variable = item["component"], item["variable"]
            try:
                key = self.station.config.key_for_variable(component["name"], variable["name"])
            except ConfigurationError:
                status = "UnknownVariable"
            else:
                status = commands.change_configuration(self.ctx, key.name, item["attribute_value"])
            results.append(
                {"attribute_status": status, "component": component, "variable": variable}
            )
        return call_result.SetVariables(set_variable_result=results)

    @handles(Action.unlock_connector)
    def on_unlock(self, evse_id: int, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        ok = commands.unlock(self.ctx, evse_id)
        return call_result.UnlockConnector(status="Unlocked" if ok else "UnknownConnector")

    @handles(Action.trigger_message)
    def on_trigger(
        self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        evse_id = None if evse is None else evse.get("id")
        if evse_id and evse_id not in self.station.connectors:
            return call_result.TriggerMessage(status="Rejected")
        ok = self.ctx.trigger(requested_message, evse_id or None)
        return call_result.TriggerMessage(status="Accepted" if ok else "NotImplemented")

    @handles(Action.send_local_list)
    def on_send_local_list(
        self,
        version_number: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> call_result.SendLocalList:
        entries = []
        for item in local_authorization_list or []:
            info = item.get("id_token_info") or {}
            tag = item["id_token"]["id_token"]
            entries.append((tag, info.get("status"), info.get("cache_expiry_date_time")))
        status = commands.send_local_list(self.ctx, version_number, update_type == "Full", entries)
        return call_result.SendLocalList(status=status)

    @handles(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(version_number=commands.local_list_version(self.ctx))

    @handles(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        commands.clear_cache(self.ctx)
        return call_result.ClearCache(status="Accepted")

    @handles(Action.change_availability)
    def on_change_availability(
        self,
        operational_status: str,
        evse: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.ChangeAvailability:
        """Without ``evse`` (or EVSE 0): the whole station."""
        evse_id = (evse or {}).get("id") or None
        status = self.station.change_availability(evse_id, operational_status == "Operative")
        return call_result.ChangeAvailability(status=status)

    @handles(Action.reserve_now)
    def on_reserve_now(
        self,
        id: int,
        expiry_date_time: str,
        id_token: dict[str, Any],
        evse_id: int | None = None,
        group_id_token: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.ReserveNow:
        """Without ``evseId``: any EVSE of the station (one is kept free for it)."""
        reservation = Reservation(
            id,
            evse_id or None,
            id_token["id_token"],
            parse_ocpp_timestamp(expiry_date_time).timestamp(),
            None if group_id_token is None else group_id_token.get("id_token"),
        )
        return call_result.ReserveNow(status=reservations.reserve(self.station, reservation))

    @handles(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> call_result.CancelReservation:
        ok = reservations.cancel(self.station, reservation_id)
        return call_result.CancelReservation(status="Accepted" if ok else "Rejected")

    async def send_reservation_update(self, reservation_id: int, status: str) -> None:
        """ReservationStatusUpdate: a reservation expired or was removed."""
        await self.call(
            call.ReservationStatusUpdate(
                reservation_id=reservation_id, reservation_update_status=status
            )
        )

    @handles(Action.data_transfer)
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: Any = None, **_: Any
    ) -> call_result.DataTransfer:
        status = commands.data_transfer(self.ctx, vendor_id, message_id, data)
        return call_result.DataTransfer(status=status)

    # --- device model: reports ------------------------------------------------------------
    @handles(Action.get_base_report)
    def on_get_base_report(
        self, request_id: int, report_base: str, **_: Any
    ) -> call_result.GetBaseReport:
        """Accepted, then the report follows in NotifyReport parts (B07)."""
        entries = device_model.base_report(self._device_model(), report_base)
        if entries is None:
            return call_result.GetBaseReport(status="NotSupported")
        self._report_later(request_id, entries)
        return call_result.GetBaseReport(status="Accepted")

    @handles(Action.get_report)
    def on_get_report(
        self,
        request_id: int,
        component_variable: list[dict[str, Any]] | None = None,
        component_criteria: list[str] | None = None,
        **_: Any,
    ) -> call_result.GetReport:
        """The variables asked for, in NotifyReport parts (B08); EmptyResultSet if none."""
        entries = device_model.custom_report(
            self._device_model(), component_variable, component_criteria
        )
        if not entries:
            return call_result.GetReport(status="EmptyResultSet")
        self._report_later(request_id, entries)
        return call_result.GetReport(status="Accepted")

    async def send_report(self, request_id: int, entries: list[Entry]) -> None:
        """NotifyReport messages of one report: ``seqNo`` from 0, ``tbc`` until the last."""
        chunks = device_model.parts(entries)
        generated_at = ocpp_timestamp(self.station.now())
        for seq_no, chunk in enumerate(chunks):
            await self.call(
                call.NotifyReport(
                    request_id=request_id,
                    generated_at=generated_at,
                    seq_no=seq_no,
                    report_data=[e.report_data() for e in chunk] or None,
                    tbc=seq_no < len(chunks) - 1,
                ),
            )

    def _device_model(self) -> list[Entry]:
        return device_model.snapshot(self.station, model=MODEL, vendor=VENDOR)

    def _report_later(self, request_id: int, entries: list[Entry]) -> None:
        send = functools.partial(self.send_report, request_id, entries)
        self.ctx.follow_up(f"NotifyReport {request_id}", send)

    # --- transactions: status, cost -----------------------------------------------------
    @handles(Action.get_transaction_status)
    def on_get_transaction_status(
        self, transaction_id: str | None = None, **_: Any
    ) -> call_result.GetTransactionStatus:
        """Whether transaction messages wait in the queue and, for a given transaction,
        whether it is still running (E14)."""
        rows = [m for m in self.station.store.queue_items() if m.kind != Kind.SETTLEMENT]
        if transaction_id is None:
            return call_result.GetTransactionStatus(messages_in_queue=bool(rows))
        running = any(s.local_id == transaction_id for s in self.station.sessions.values())
        return call_result.GetTransactionStatus(
            messages_in_queue=any(m.txn == transaction_id for m in rows),
            ongoing_indicator=running,
        )

    @handles(Action.cost_updated)
    def on_cost_updated(
        self, total_cost: float, transaction_id: str, **_: Any
    ) -> call_result.CostUpdated:
        """The running cost the CSMS computed (I02), shown on the screen."""
        for evse_id, session in self.station.sessions.items():
            if session.local_id == transaction_id:
                self.station.display.show_text(f"EVSE {evse_id}: cost so far {total_cost}")
        return call_result.CostUpdated()

    # --- smart charging (charge_point.smart_charging; the effect is in commands) ---------
    @handles(Action.set_charging_profile)
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        status = commands.set_charging_profile(
            self.ctx, evse_id, charging_profile, version=self.version
        )
        return call_result.SetChargingProfile(status=status)

    @handles(Action.get_charging_profiles)
    def on_get_charging_profiles(
        self, request_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.GetChargingProfiles:
        """Accepted when some installed profile matches; they follow in ReportChargingProfiles
        messages, one per EVSE (K09)."""
        wanted_evse = (
            charging_profile.get("evse_id") if isinstance(charging_profile, dict) else None
        )
        by_evse: dict[int, list[dict[str, Any]]] = {}
        for profile in self.station.profiles:
            if wanted_evse is not None and profile.evse_id != wanted_evse:
                continue
            sent = profile.extra.get("ocpp")
            if isinstance(sent, dict):
                by_evse.setdefault(profile.evse_id, []).append(sent)
        if not by_evse:
            return call_result.GetChargingProfiles(status="NoProfiles")
        self.ctx.follow_up(
            f"ReportChargingProfiles {request_id}",
            functools.partial(self.report_profiles, request_id, by_evse),
        )
        return call_result.GetChargingProfiles(status="Accepted")

    async def report_profiles(
        self, request_id: int, by_evse: dict[int, list[dict[str, Any]]]
    ) -> None:
        items = sorted(by_evse.items())
        for n, (evse_id, profiles) in enumerate(items):
            await self.call(
                call.ReportChargingProfiles(
                    request_id=request_id,
                    charging_limit_source="CSO",
                    evse_id=evse_id,
                    charging_profile=profiles,
                    tbc=n < len(items) - 1,
                )
            )

    @handles(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        criteria = charging_profile_criteria or {}
        status = commands.clear_charging_profile(
            self.ctx,
            profile_id=charging_profile_id,
            evse_id=criteria.get("evse_id"),
            purpose=criteria.get("charging_profile_purpose"),
            stack_level=criteria.get("stack_level"),
        )
        return call_result.ClearChargingProfile(status=status)

    @handles(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        found = commands.composite_schedule(self.ctx, evse_id, duration, charging_rate_unit)
        if found is None:
            return call_result.GetCompositeSchedule(status="Rejected")
        start, unit, periods = found
        return call_result.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": duration,
                "schedule_start": ocpp_timestamp(start),
                "charging_rate_unit": unit,
                "charging_schedule_period": commands.periods_ocpp(periods),
            },
        )

    # --- firmware, logs (charge_point.firmware, .diagnostics) ------------------------------
    @handles(Action.update_firmware)
    def on_update_firmware(
        self,
        request_id: int,
        firmware: dict[str, Any],
        retries: int | None = None,
        retry_interval: int | None = None,
        **_: Any,
    ) -> call_result.UpdateFirmware:
        status = commands.update_firmware(
            self.ctx,
            version=self.version,
            location=firmware["location"],
            retrieve_at=firmware["retrieve_date_time"],
            request_id=request_id,
            retries=retries,
            retry_interval=retry_interval,
            signature=firmware.get("signature"),
        )
        return call_result.UpdateFirmware(status=status)

    @handles(Action.get_log)
    def on_get_log(
        self,
        log: dict[str, Any],
        log_type: str,
        request_id: int,
        retries: int | None = None,
        retry_interval: int | None = None,
        **_: Any,
    ) -> call_result.GetLog:
        status, name = commands.upload_log(
            self.ctx,
            version=self.version,
            location=log["remote_location"],
            request_id=request_id,
            log_type=log_type,
            retries=retries,
            retry_interval=retry_interval,
            window={"oldest": log.get("oldest_timestamp"), "latest": log.get("latest_timestamp")},
        )
        return call_result.GetLog(status=status, filename=name)
