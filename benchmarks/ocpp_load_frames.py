"""What the load generator's chargers say: OCPP-J frames and schema-valid payloads, no I/O.

A :class:`ChargerScript` is one simulated charger's repeating message cycle (status, a
transaction with meter values, heartbeats) for OCPP 1.6 or 2.0.1. It only builds payloads and
reads answers, so it is tested against the official JSON schemas without sockets. The same
module holds the answers of the stand-in server and the charger's answers to CSMS calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from qr_extension.wire import SUBPROTOCOL_16, SUBPROTOCOL_201, ocpp_timestamp

Version = Literal["1.6", "2.0.1"]
Payload = dict[str, Any]

CALL: Final = 2
CALLRESULT: Final = 3
CALLERROR: Final = 4

SUBPROTOCOLS: Final[dict[Version, str]] = {"1.6": SUBPROTOCOL_16, "2.0.1": SUBPROTOCOL_201}
VERSION_OF_SUBPROTOCOL: Final[dict[str, Version]] = {v: k for k, v in SUBPROTOCOLS.items()}

# One cycle: 2 status, 2 transaction, 4 meter values, 2 heartbeats (= 10 messages).
CYCLE: Final = (
    "status_occupied",
    "start",
    "meter",
    "meter",
    "meter",
    "meter",
    "stop",
    "status_available",
    "heartbeat",
    "heartbeat",
)
HEARTBEATS_ONLY: Final = ("heartbeat",)  # the floor: framing, routing, one tiny write
ENERGY_PER_METER_WH: Final = 250


class FrameError(ValueError):
    """A text frame that is not OCPP-J (the peer's fault)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded OCPP-J message: a CALL, a CALLRESULT or a CALLERROR."""

    kind: int
    message_id: str
    action: str = ""
    payload: Payload = field(default_factory=dict)
    error_code: str = ""


def encode_call(message_id: str, action: str, payload: Payload) -> str:
    return json.dumps([CALL, message_id, action, payload], separators=(",", ":"))


def encode_result(message_id: str, payload: Payload) -> str:
    return json.dumps([CALLRESULT, message_id, payload], separators=(",", ":"))


def encode_error(message_id: str, code: str, description: str = "") -> str:
    return json.dumps([CALLERROR, message_id, code, description, {}], separators=(",", ":"))


def decode(text: str | bytes) -> Frame:
    """Parses one frame; raises :class:`FrameError` on anything that is not OCPP-J."""
    try:
        msg = json.loads(text)
    except ValueError as exc:
        raise FrameError(f"not JSON: {exc}") from exc
    if not isinstance(msg, list) or len(msg) < 3 or not isinstance(msg[1], str):
        raise FrameError(f"not an OCPP-J array: {str(msg)[:80]}")
    kind = msg[0]
    if kind == CALL and len(msg) == 4 and isinstance(msg[3], dict):
        return Frame(CALL, msg[1], action=str(msg[2]), payload=msg[3])
    if kind == CALLRESULT and len(msg) == 3 and isinstance(msg[2], dict):
        return Frame(CALLRESULT, msg[1], payload=msg[2])
    if kind == CALLERROR and len(msg) >= 4:
        return Frame(CALLERROR, msg[1], error_code=str(msg[2]))
    raise FrameError(f"bad OCPP-J frame of type {kind!r}")


@dataclass(slots=True)
class ChargerScript:
    """The message cycle of one simulated charger with one EVSE/connector.

    ``next_call`` returns the next (action, payload) and advances; ``on_result`` reads what the
    generator needs from an answer (the 1.6 transactionId). The meter only goes up, 2.0.1
    transaction ids are unique for the charger's lifetime and ``seqNo`` counts per transaction.
    """

    charger_id: str
    version: Version
    now: Callable[[], float] = time.time  # injected so tests can fix the clock
    cycle: tuple[str, ...] = CYCLE
    step: int = 0
    meter_wh: int = 1000
    sessions: int = 0
    transaction_id: int | str | None = None
    seq_no: int = 0
    pending_start: bool = False  # begun mid-transaction: start one first

    def begin_at(self, step: int) -> None:
        """Begins the cycle at ``step`` (a fleet is not in step with itself). A step inside a
        transaction (a meter value or the stop) is preceded by that transaction's start."""
        self.step = step
        kinds = self.cycle
        if "start" in kinds and "stop" in kinds:
            first, last = kinds.index("start"), kinds.index("stop")
            self.pending_start = first < step % len(kinds) <= last

    def clock(self) -> str:
        return ocpp_timestamp(self.now())

    def boot(self) -> tuple[str, Payload]:
        if self.version == "1.6":
            return "BootNotification", {
                "chargePointVendor": "qrcharge-bench",
                "chargePointModel": "load-1",
                "chargePointSerialNumber": self.charger_id[-25:],
                "firmwareVersion": "0.1.0",
            }
        return "BootNotification", {
            "reason": "PowerUp",
            "chargingStation": {
                "model": "load-1",
                "vendorName": "qrcharge-bench",
                "serialNumber": self.charger_id[-25:],
                "firmwareVersion": "0.1.0",
            },
        }

    def next_call(self) -> tuple[str, Payload]:
        if self.pending_start:
            self.pending_start = False
            return self._start()
        kind = self.cycle[self.step % len(self.cycle)]
        self.step += 1
        builder = getattr(self, f"_{kind}")
        result: tuple[str, Payload] = builder()
        return result

    def on_result(self, action: str, payload: Payload) -> None:
        if action == "StartTransaction" and self.version == "1.6":
            tid = payload.get("transactionId")
            self.transaction_id = tid if isinstance(tid, int) else 0

    def status(self, available: bool) -> tuple[str, Payload]:
        if self.version == "1.6":
            return "StatusNotification", {
                "connectorId": 1,
                "errorCode": "NoError",
                "status": "Available" if available else "Preparing",
                "timestamp": self.clock(),
            }
        return "StatusNotification", {
            "timestamp": self.clock(),
            "connectorStatus": "Available" if available else "Occupied",
            "evseId": 1,
            "connectorId": 1,
        }

    def _status_occupied(self) -> tuple[str, Payload]:
        return self.status(available=False)

    def _status_available(self) -> tuple[str, Payload]:
        return self.status(available=True)

    def _heartbeat(self) -> tuple[str, Payload]:
        return "Heartbeat", {}

    def _id_tag(self) -> str:
        return f"BENCH{self.sessions:06d}"

    def _sampled(self, context: str) -> list[Payload]:
        value: Payload = {
            "value": self.meter_wh if self.version == "2.0.1" else str(self.meter_wh),
            "context": context,
            "measurand": "Energy.Active.Import.Register",
        }
        if self.version == "1.6":
            value["unit"] = "Wh"
        else:
            value["unitOfMeasure"] = {"unit": "Wh"}
        return [{"timestamp": self.clock(), "sampledValue": [value]}]

    def _start(self) -> tuple[str, Payload]:
        self.sessions += 1
        if self.version == "1.6":
            self.transaction_id = None
            return "StartTransaction", {
                "connectorId": 1,
                "idTag": self._id_tag(),
                "meterStart": self.meter_wh,
                "timestamp": self.clock(),
            }
        self.transaction_id = f"{self.charger_id[:24]}-{self.sessions}"
        self.seq_no = 0
        return "TransactionEvent", self._event("Started", "Authorized", "Transaction.Begin")

    def _event(self, event_type: str, trigger: str, context: str) -> Payload:
        info: Payload = {"transactionId": str(self.transaction_id)}
        if event_type == "Ended":
            info["stoppedReason"] = "EVDisconnected"
        elif event_type == "Updated":
            info["chargingState"] = "Charging"
        event: Payload = {
            "eventType": event_type,
            "timestamp": self.clock(),
            "triggerReason": trigger,
            "seqNo": self.seq_no,
            "transactionInfo": info,
            "meterValue": self._sampled(context),
        }
        if event_type == "Started":
            event["idToken"] = {"idToken": self._id_tag(), "type": "Central"}
            event["evse"] = {"id": 1, "connectorId": 1}
        self.seq_no += 1
        return event

    def _meter(self) -> tuple[str, Payload]:
        self.meter_wh += ENERGY_PER_METER_WH
        if self.version == "1.6":
            payload: Payload = {"connectorId": 1, "meterValue": self._sampled("Sample.Periodic")}
            if self.transaction_id is not None:
                payload["transactionId"] = self.transaction_id
            return "MeterValues", payload
        if self.step % 2 == 0:  # half in the transaction's events, half as plain MeterValues
            return "TransactionEvent", self._event(
                "Updated", "MeterValuePeriodic", "Sample.Periodic"
            )
        return "MeterValues", {"evseId": 1, "meterValue": self._sampled("Sample.Periodic")}

    def _stop(self) -> tuple[str, Payload]:
        if self.version == "1.6":
            payload: Payload = {
                "transactionId": self.transaction_id if self.transaction_id is not None else 0,
                "idTag": self._id_tag(),
                "meterStop": self.meter_wh,
                "timestamp": self.clock(),
                "reason": "EVDisconnected",
            }
            self.transaction_id = None
            return "StopTransaction", payload
        return "TransactionEvent", self._event("Ended", "EVCommunicationLost", "Transaction.End")


def answer_to_csms_call(version: Version, action: str, payload: Payload) -> Payload | None:
    """What a load charger answers to a CALL from the CSMS; ``None`` means NotImplemented.

    The load charger has no qrcharge extension, so a DataTransfer gets ``UnknownVendorId``
    (as a charger without the extension would answer) instead of pretending to keep keys.
    """
    del payload
    if action == "DataTransfer":
        return {"status": "UnknownVendorId"}
    if action in {"ChangeConfiguration", "ChangeAvailability", "Reset", "ClearCache"}:
        return {"status": "Accepted"}
    if action == "TriggerMessage":
        return {"status": "Rejected"}
    if action == "GetConfiguration" and version == "1.6":
        return {"configurationKey": [], "unknownKey": []}
    return None


def stand_in_answer(version: Version, action: str, payload: Payload, counter: int) -> Payload:
    """The stand-in server's minimal schema-valid CALLRESULT for a charger's CALL."""
    now = ocpp_timestamp(time.time())
    if action == "BootNotification":
        return {"currentTime": now, "interval": 300, "status": "Accepted"}
    if action == "Heartbeat":
        return {"currentTime": now}
    if action == "StartTransaction":
        return {"transactionId": counter, "idTagInfo": {"status": "Accepted"}}
    if action == "Authorize":
        return (
            {"idTagInfo": {"status": "Accepted"}}
            if version == "1.6"
            else {"idTokenInfo": {"status": "Accepted"}}
        )
    if action == "TransactionEvent" and payload.get("eventType") == "Started":
        return {"idTokenInfo": {"status": "Accepted"}}
    if action == "DataTransfer":
        return {"status": "Accepted"}
    return {}  # StatusNotification, MeterValues, StopTransaction, TransactionEvent
