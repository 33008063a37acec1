"""What the load generator's chargers say: OCPP-J frames and schema-valid payloads, no I/O.

A :class:`ChargerScript` is one simulated charger's repeating message cycle (status, a
transaction with meter values, heartbeats) for OCPP 1.6 or 2.0.1. A transaction is started
with the charger's registered RFID tag, or, while the charger holds orders placed for it, with
the next order's id; such a session ends with the charger's signed ``Settlement`` and a
``Synced`` DataTransfer, sent in place of the cycle's two heartbeats. The script only builds
payloads and reads answers, so it is tested against the official JSON schemas without
sockets; every session it starts is kept in :attr:`ChargerScript.log` for the end-of-run
count. The same module holds the answers of the stand-in server and the charger's answers to
CSMS calls.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from qr_extension.keys import SigningKey
from qr_extension.settlement import build_settlement, sign_settlement
from qr_extension.start import StartAuthorization, read_start_token
from qr_extension.usage import UsageBucket, bucket_index_at
from qr_extension.wire import (
    MSG_SETTLEMENT,
    MSG_SETTLEMENT_KEY,
    MSG_SYNCED,
    SUBPROTOCOL_16,
    SUBPROTOCOL_201,
    VENDOR_ID,
    ocpp_timestamp,
)

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
ORDER_MARGIN_S: Final = 120  # an order this close to its expiry is not started any more
RFID, ORDER = "rfid", "order"


@dataclass(slots=True)
class SessionLog:
    """One transaction the charger started, and what the CSMS answered along the way.

    ``key`` finds its row in the database: the 2.0.1 ``transactionId``, or for 1.6 (whose id
    the CSMS assigns) the meter start, which only grows on one charger."""

    charger_id: str
    version: Version
    kind: str  # RFID or ORDER
    id_tag: str
    key: str
    start_status: str = ""  # the idTagInfo / idTokenInfo status; "" while unanswered
    ended: bool = False
    settlement: str = ""  # the DataTransfer status of its Settlement ("" none or unanswered)
    synced: str = ""


@dataclass(slots=True)
class PaidPlan:
    """A charger's orders (id, start token) and its settlement key: while orders are left,
    its sessions are paid ones."""

    orders: deque[tuple[str, str]]
    key: SigningKey
    audience: str  # the CSMS issuer id, the settlements' ``aud``
    seq: int = 0  # the charger's settlement counter

    def next_order(self, now: float) -> tuple[str, StartAuthorization] | None:
        while self.orders:
            order_id, token = self.orders.popleft()
            auth = read_start_token(token)
            if isinstance(auth, StartAuthorization) and auth.expires_at > now + ORDER_MARGIN_S:
                return order_id, auth
        return None

    def key_call(self) -> tuple[str, Payload]:
        """The boot-time DataTransfer that pins the charger's key (the same key again later)."""
        return data_transfer(MSG_SETTLEMENT_KEY, json.dumps(self.key.public.to_jwk()))


def data_transfer(message_id: str, data: str) -> tuple[str, Payload]:
    return "DataTransfer", {"vendorId": VENDOR_ID, "messageId": message_id, "data": data}


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
    tag: str = "BENCH"  # the charger's RFID tag (registered by the benchmark)
    run: str = ""  # the run's nonce, in 2.0.1 transaction ids (a kept database sees many runs)
    paid: PaidPlan | None = None
    log: list[SessionLog] = field(default_factory=list)
    _order: tuple[str, StartAuthorization] | None = None  # the running session's order
    _started_s: int = 0  # the running session's start (epoch s) and meter start
    _meter_start: int = 0
    _outbox: deque[tuple[str, Payload]] = field(default_factory=deque)  # in place of heartbeats

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

    def on_result(self, action: str, payload: Payload, sent: Payload | None = None) -> None:
        """Reads an answer to ``sent`` (the CALL's payload) into the session log."""
        session = self.log[-1] if self.log else None
        if action == "StartTransaction" and self.version == "1.6":
            tid = payload.get("transactionId")
            self.transaction_id = tid if isinstance(tid, int) else 0
            if session is not None:
                session.start_status = str(payload.get("idTagInfo", {}).get("status", "?"))
        elif session is None or sent is None:
            return
        elif action == "StopTransaction":
            session.ended = True
        elif action == "TransactionEvent":
            if sent.get("eventType") == "Started":
                session.start_status = str(payload.get("idTokenInfo", {}).get("status", "?"))
            elif sent.get("eventType") == "Ended":
                session.ended = True
        elif action == "DataTransfer" and sent.get("messageId") in (MSG_SETTLEMENT, MSG_SYNCED):
            paid = next((s for s in reversed(self.log) if s.kind == ORDER), None)
            if paid is not None:
                status = str(payload.get("status", "?"))
                if sent["messageId"] == MSG_SETTLEMENT:
                    paid.settlement = status
                else:
                    paid.synced = status

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
        if self._outbox:  # a paid session's Settlement, then its Synced
            return self._outbox.popleft()
        return "Heartbeat", {}

    def _id_tag(self) -> str:
        return self._order[0] if self._order is not None else self.tag

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
        self.meter_wh += 1  # the plug-in: no two sessions of a charger start at one reading
        now = self.now()
        self._order = self.paid.next_order(now) if self.paid is not None else None
        self._started_s, self._meter_start = int(now), self.meter_wh
        kind = ORDER if self._order is not None else RFID
        if self.version == "1.6":
            self.transaction_id = None
            key = str(self.meter_wh)
            payload: Payload = {
                "connectorId": 1,
                "idTag": self._id_tag(),
                "meterStart": self.meter_wh,
                "timestamp": self.clock(),
            }
            self.log.append(SessionLog(self.charger_id, self.version, kind, self._id_tag(), key))
            return "StartTransaction", payload
        run = f"{self.run}-" if self.run else ""
        self.transaction_id = f"{self.charger_id[:20]}-{run}{self.sessions}"
        self.seq_no = 0
        self.log.append(
            SessionLog(self.charger_id, self.version, kind, self._id_tag(), self.transaction_id)
        )
        return "TransactionEvent", self._event("Started", "Authorized", "Transaction.Begin")

    def _settle(self) -> None:
        """Queues the signed Settlement of the paid session just stopped, then Synced."""
        if self._order is None or self.paid is None:
            return
        _, auth = self._order
        stopped = max(self._started_s, int(self.now()))
        energy = self.meter_wh - self._meter_start
        self.paid.seq += 1
        settlement = build_settlement(
            auth,
            audience=self.paid.audience,
            transaction_id=str(
                self.log[-1].key
                if self.version == "2.0.1"
                else f"{self.charger_id[:24]}-{self.sessions}"
            ),
            started_at=self._started_s,
            stopped_at=stopped,
            meter_start_wh=self._meter_start,
            meter_stop_wh=self.meter_wh,
            usage=[
                UsageBucket(
                    bucket_index_at(auth.tariff, self._started_s),
                    energy,
                    stopped - self._started_s,
                    0,
                )
            ],
            reason="EVDisconnected",
            seq=self.paid.seq,
            offline=False,
            issued_at=stopped,
        )
        token = sign_settlement(settlement, self.paid.key)
        self._outbox.append(data_transfer(MSG_SETTLEMENT, token))
        self._outbox.append(data_transfer(MSG_SYNCED, json.dumps({"seq": self.paid.seq})))
        self._order = None

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
            self._settle()
            return "StopTransaction", payload
        event = self._event("Ended", "EVCommunicationLost", "Transaction.End")
        self._settle()
        return "TransactionEvent", event


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
