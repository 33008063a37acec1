"""A charger written on bare websockets and JSON (none of our charger code, no ``ocpp``
library), for the fault tests: it sends its queue of CALLs in order, one at a time, keeps a
message until it is answered, and when the connection is lost it connects again and sends the
unanswered message again (a new message id, the same content), as OCPP asks of transaction
messages. It answers the CSMS's own CALLs (DataTransfer Accepted, anything else
NotImplemented) and records every answer it got."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from qr_extension.wire import VENDOR_ID

Payload = dict[str, Any]
# builds the payload when the message is (re)sent: a 1.6 message of a transaction names the
# transactionId that the CSMS gave its StartTransaction, known only once that was answered
Build = Callable[["WireCharger"], Payload]


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


@dataclass
class Message:
    action: str
    build: Build
    txn: str | None = None  # the charger's own name of the transaction it belongs to


@dataclass
class Answered:
    """A message the CSMS answered with a CALLRESULT: what was sent and what came back."""

    action: str
    payload: Payload
    answer: Payload
    txn: str | None


@dataclass
class WireCharger:
    url: str  # ws://host:port/ocpp/<id>
    charger_id: str
    password: str
    version: str  # "1.6" | "2.0.1"
    call_timeout_s: float = 10.0
    retry_callerror_s: float = 0.05
    pace_s: float = 0.0  # pause before each queued message (a charger samples over time)
    queue: deque[Message] = field(default_factory=deque)
    answered: list[Answered] = field(default_factory=list)
    callerrors: list[tuple[str, str]] = field(default_factory=list)  # (action, error code)
    connections: int = 0
    transaction_ids: dict[str, int] = field(default_factory=dict)  # 1.6: txn -> CSMS's id
    unanswered: int = 0  # CALLs sent whose answer never came (connection lost, timeout)
    on_answer: Callable[[], None] | None = None  # called after each CALLRESULT to the queue
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    # --- what it sends -------------------------------------------------------------------

    def transaction16(
        self, txn: str, id_tag: str, connector: int, *, meter: int, samples: int, step: int
    ) -> None:
        """StartTransaction, ``samples`` MeterValues, StopTransaction (1.6)."""
        now = datetime.now(UTC)
        self.queue.append(
            Message(
                "StartTransaction",
                lambda _: {
                    "connectorId": connector,
                    "idTag": id_tag,
                    "meterStart": meter,
                    "timestamp": stamp(now),
                },
                txn,
            )
        )
        for n in range(1, samples + 1):
            value = meter + n * step
            self.queue.append(
                Message(
                    "MeterValues",
                    lambda cp, v=value: {
                        "connectorId": connector,
                        "transactionId": cp.transaction_ids[txn],
                        "meterValue": [_sample(now, v, "Sample.Periodic")],
                    },
                    txn,
                )
            )
        end = meter + (samples + 1) * step
        self.queue.append(
            Message(
                "StopTransaction",
                lambda cp: {
                    "transactionId": cp.transaction_ids[txn],
                    "meterStop": end,
                    "timestamp": stamp(now),
                    "reason": "EVDisconnected",
                    "idTag": id_tag,
                },
                txn,
            )
        )

    def transaction201(
        self, txn: str, id_token: str, evse: int, *, meter: int, samples: int, step: int
    ) -> None:
        """TransactionEvent Started, ``samples`` Updated, Ended; seqNo 0, 1, ... (2.0.1)."""
        now = datetime.now(UTC)

        def event(seq: int, kind: str, value: int, context: str) -> Payload:
            payload: Payload = {
                "eventType": kind,
                "timestamp": stamp(now),
                "triggerReason": {"Started": "Authorized", "Ended": "EVDeparted"}.get(
                    kind, "MeterValuePeriodic"
                ),
                "seqNo": seq,
                "transactionInfo": {"transactionId": txn},
                "meterValue": [_sample(now, value, context, v201=True)],
            }
            if kind == "Started":
                payload["idToken"] = {"idToken": id_token, "type": "Central"}
                payload["evse"] = {"id": evse, "connectorId": 1}
            if kind == "Ended":
                payload["transactionInfo"]["stoppedReason"] = "EVDisconnected"
            return payload

        last = samples + 1
        for seq in range(last + 1):
            kind = "Started" if seq == 0 else "Ended" if seq == last else "Updated"
            context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(
                kind, "Sample.Periodic"
            )
            self.queue.append(
                Message(
                    "TransactionEvent",
                    lambda _, s=seq, k=kind, c=context: event(s, k, meter + s * step, c),
                    txn,
                )
            )

    def data_transfer(self, message_id: str, data: str) -> None:
        self.queue.append(
            Message(
                "DataTransfer",
                lambda _: {"vendorId": VENDOR_ID, "messageId": message_id, "data": data},
            )
        )

    # --- running -------------------------------------------------------------------------

    async def run(self, *, reconnect_s: float = 0.05) -> None:
        """Until the queue is empty; reconnects (and boots again) whenever the link drops."""
        while self.queue:
            try:
                await self._connection()
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError):  # link down
                await asyncio.sleep(reconnect_s)

    async def _connection(self) -> None:
        token = base64.b64encode(f"{self.charger_id}:{self.password}".encode()).decode()
        subprotocol = "ocpp1.6" if self.version == "1.6" else "ocpp2.0.1"
        async with websockets.connect(
            self.url,
            subprotocols=[Subprotocol(subprotocol)],
            additional_headers={"Authorization": f"Basic {token}"},
            open_timeout=5,
            compression=None,
        ) as ws:
            self.connections += 1
            answers: dict[str, asyncio.Future[list[Any]]] = {}
            reader = asyncio.create_task(self._read(ws, answers))
            try:
                await self._call(ws, answers, "BootNotification", self._boot())
                while self.queue:
                    await asyncio.sleep(self.pace_s)
                    head = self.queue[0]
                    payload = head.build(self)
                    frame = await self._call(ws, answers, head.action, payload)
                    if frame[0] == 4:
                        self.callerrors.append((head.action, str(frame[2])))
                        await asyncio.sleep(self.retry_callerror_s)
                        continue
                    self._answered(head, payload, frame[2])
                    self.queue.popleft()
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await reader

    def _boot(self) -> Payload:
        if self.version == "1.6":
            return {"chargePointVendor": "wire", "chargePointModel": "wire"}
        return {"chargingStation": {"model": "wire", "vendorName": "wire"}, "reason": "PowerUp"}

    def _answered(self, head: Message, payload: Payload, answer: Payload) -> None:
        if head.action == "StartTransaction" and head.txn is not None:
            self.transaction_ids[head.txn] = int(answer["transactionId"])
        self.answered.append(Answered(head.action, payload, answer, head.txn))
        if self.on_answer is not None:
            self.on_answer()

    async def _call(
        self,
        ws: Any,
        answers: dict[str, asyncio.Future[list[Any]]],
        action: str,
        payload: Payload,
    ) -> list[Any]:
        """One CALL; its CALLRESULT or CALLERROR frame. A lost connection or a timeout
        raises (the message stays at the head of the queue)."""
        unique_id = f"{self.charger_id}-{next(self._ids)}"
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        answers[unique_id] = future
        try:
            await ws.send(json.dumps([2, unique_id, action, payload]))
            return await asyncio.wait_for(future, self.call_timeout_s)
        except BaseException:
            self.unanswered += 1
            raise
        finally:
            answers.pop(unique_id, None)

    async def _read(self, ws: Any, answers: dict[str, asyncio.Future[list[Any]]]) -> None:
        try:
            async for text in ws:
                frame = json.loads(text)
                if frame[0] == 2:
                    await ws.send(json.dumps(_answer_csms_call(frame)))
                    continue
                future = answers.get(frame[1])
                if future is not None and not future.done():
                    future.set_result(frame)
        finally:
            for future in answers.values():
                if not future.done():
                    future.set_exception(ConnectionClosed(None, None))


def _answer_csms_call(frame: list[Any]) -> list[Any]:
    if frame[2] == "DataTransfer":
        return [3, frame[1], {"status": "Accepted"}]
    return [4, frame[1], "NotImplemented", "not in this test charger", {}]


def _sample(at: datetime, wh: int, context: str, *, v201: bool = False) -> Payload:
    value: Payload = {
        "value": wh if v201 else str(wh),
        "measurand": "Energy.Active.Import.Register",
        "context": context,
    }
    if v201:
        value["unitOfMeasure"] = {"unit": "Wh"}
    else:
        value["unit"] = "Wh"
    return {"timestamp": stamp(at), "sampledValue": [value]}
