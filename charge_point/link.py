"""The charger's connection to the CSMS: connect, boot, deliver, heartbeat, reconnect.

One :class:`Link` per charger. It connects to ``{csms_url}/{id}`` with the version's
subprotocol (and HTTP Basic auth when a password is set; over ``wss://`` with the CA and client
certificate of :mod:`charge_point.tls`), boots, announces its settlement key,
reports every connector status, delivers the durable queue, says ``Synced``, then keeps the
connection alive with heartbeats while delivering whatever the station queues. When the
connection drops it reconnects with exponential backoff and jitter ("equal jitter": half the
delay fixed, half random), so a fleet does not stampede a recovering CSMS; a handshake refused
with ``Retry-After`` (a busy CSMS's appointment, a password throttle's hold) waits that long.

A CALLERROR is never a reason to drop the connection: the CSMS is there and answering. A
refused StatusNotification, Heartbeat, trigger answer or report is logged (a warning the first
time per action and error code on a connection) and the charger carries on; a CSMS without our
vendor extension gets no more vendor messages on that connection
(:mod:`charge_point.protocol.vendor`); queued transaction messages follow the queue's bounded
retry policy (:mod:`charge_point.queue`). Only a refused BootNotification, a timeout or a
closed socket end the connection.

``set_up(False)`` cuts the link (as a network failure would: the socket is aborted, no close
handshake) and keeps it cut until ``set_up(True)``; tests use it through the control API.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from charge_point import queue
from charge_point.events import Kind
from charge_point.evse import Status
from charge_point.jobs import RemoteJobs
from charge_point.protocol.callerrors import CALL_REFUSED, error_code
from charge_point.protocol.commands import CommandContext
from charge_point.protocol.v16 import Adapter16
from charge_point.protocol.v201 import Adapter201
from charge_point.station import Station
from charge_point.tls import client_context
from qr_extension.wire import MSG_SETTLEMENT_KEY, MSG_SYNCED, SUBPROTOCOL_16, SUBPROTOCOL_201

log = logging.getLogger(__name__)

RESET_DELAY_S = 0.2  # real seconds between answering a Reset and "rebooting"
MAX_RETRY_AFTER_S = 3600
ACCEPTED, PENDING, BOOT = "Accepted", "Pending", "BootNotification"
_TRIGGERABLE = {BOOT, "Heartbeat", "StatusNotification", "MeterValues"}
_TRIGGERABLE_WHILE_PENDING = {"Heartbeat", "StatusNotification"}  # besides a boot
T = TypeVar("T")
FollowUp = Callable[[], Awaitable[None]]
Boot = tuple[str, float | None, int]  # a boot's answer: registration, CSMS time, interval


def backoff_delay(attempt: int, *, low: float, high: float, rng: random.Random) -> float:
    """Delay before reconnect attempt ``attempt`` (0-based): ``min(high, low * 2**attempt)``,
    of which the upper half is random."""
    cap = min(high, low * (2**attempt))
    return float(cap / 2 + rng.uniform(0, cap / 2))


def retry_after_s(exc: BaseException) -> float | None:
    """The ``Retry-After`` seconds of a refused handshake (a busy CSMS gives an appointment, a
    throttle a hold), bounded to an hour; None when it named none."""
    response = getattr(exc, "response", None)
    value = None if response is None else response.headers.get("Retry-After")
    if value is None or not value.strip().isdigit():
        return None
    return float(min(int(value), MAX_RETRY_AFTER_S))


async def _read(ws: Any, adapter: Adapter16 | Adapter201) -> None:
    """Hands every frame the CSMS sends to the adapter, each handled (and answered) before
    the next is read, until the socket closes (``ConnectionClosed``)."""
    while True:
        await adapter.route_message(await ws.recv())


class Link:
    """The WebSocket connection loop of one charger; also the station's :class:`Listener`."""

    def __init__(self, station: Station, *, rng: random.Random | None = None) -> None:
        self.station = station
        self.settings = station.settings
        self._rng = rng or random.Random()
        self._tls = client_context(self.settings)  # None for ws://
        self._want_up = asyncio.Event()
        self._want_up.set()
        self._wake = asyncio.Event()
        self._ws: Any = None
        self._adapter: Adapter16 | Adapter201 | None = None
        self._statuses: list[tuple[int, Status, bool]] = []  # (evse, status, even if sent)
        self._triggers: list[tuple[str, int | None]] = []
        self._follow_ups: list[tuple[str, FollowUp]] = []  # CALLs a command handler asked for
        self._refused: set[tuple[str, str]] = set()  # (action, error code) warned about
        self.connects = 0  # accepted boots, for tests and /state
        self._booted = False  # the current connection got past BootNotification
        self._boot_reason = "PowerUp"  # 2.0.1 BootReason of the next boot
        station.listener = self
        # firmware updates and log uploads: their status notifications go out in _work
        self.remote = RemoteJobs(station, reboot=self.reconnect, wake=self._wake.set)

    # --- Listener ------------------------------------------------------------------------
    def status_changed(self, evse_id: int, status: Status) -> None:
        if self.station.online:
            self._statuses.append((evse_id, status, False))
            self._wake.set()

    def queued(self) -> None:
        self._wake.set()

    def reservation_ended(self, reservation_id: int, status: str) -> None:
        """2.0.1: tells the CSMS (ReservationStatusUpdate) if online; 1.6 has no message."""
        adapter = self._adapter
        if isinstance(adapter, Adapter201) and self.station.online:
            send = functools.partial(adapter.send_reservation_update, reservation_id, status)
            self.follow_up(f"ReservationStatusUpdate {reservation_id}", send)

    # --- control -------------------------------------------------------------------------
    @property
    def is_up(self) -> bool:
        return self._want_up.is_set()

    def set_up(self, up: bool) -> None:
        """Restores or cuts the network link."""
        if up:
            self._want_up.set()
        else:
            self._want_up.clear()
            self._abort()

    def reconnect(self, reason: str = "RemoteReset") -> None:
        """Drops the connection soon (the answer to the Reset goes out first); the loop then
        connects and boots again, with 2.0.1 boot reason ``reason``."""
        self._boot_reason = reason
        asyncio.get_running_loop().call_later(RESET_DELAY_S, self._abort)

    def trigger(self, what: str, evse_id: int | None) -> bool:
        if what not in _TRIGGERABLE:
            return False
        self._triggers.append((what, evse_id))
        self._wake.set()
        return True

    def follow_up(self, what: str, send: FollowUp) -> None:
        """A CALL that a command handler wants sent after its answer (e.g. NotifyReport after
        GetBaseReport): handlers must not await a CALL themselves (the connection would wait
        for itself). ``send`` belongs to the current connection; it is forgotten if that
        connection drops first."""
        self._follow_ups.append((what, send))
        self._wake.set()

    async def authorize(self, id_tag: str, token_type: str) -> tuple[str, float | None] | None:
        """Asks the CSMS about an id tag; None when offline or the CSMS did not answer."""
        if self._adapter is None or not self.station.online:
            return None
        try:
            return await self._adapter.authorize(id_tag, token_type)
        except (*CALL_REFUSED, TimeoutError, ConnectionClosed) as exc:
            log.warning("Authorize %s failed: %s", id_tag, exc)
            return None

    def _abort(self) -> None:
        ws = self._ws
        if ws is not None:
            ws.transport.abort()

    # --- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        attempt = 0
        while True:
            await self._want_up.wait()
            appointment = None
            try:
                booted = await self._connect_once()
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                log.info("%s: link lost: %r", self.station.id, exc)
                booted = False
                appointment = retry_after_s(exc)
            except CALL_REFUSED as exc:  # only BootNotification's CALLERROR gets here
                log.warning("%s: the CSMS refused BootNotification: %r", self.station.id, exc)
                booted = False
            except Exception:  # a bug or a CSMS answer we cannot use: log it, reconnect
                log.exception("%s: connection failed unexpectedly", self.station.id)
                booted = False
            finally:
                self.station.online = False
                self._ws = self._adapter = None
            attempt = 0 if booted else attempt + 1
            delay = backoff_delay(
                attempt,
                low=self.settings.reconnect_min_s,
                high=self.settings.reconnect_max_s,
                rng=self._rng,
            )
            if appointment is not None:  # the CSMS said when (a 503 or a 429): come back then
                delay = appointment
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):  # not wait_for: see ``_work``
                    await self._reconnect_signal()

    async def _reconnect_signal(self) -> None:
        """Returns early from the backoff when the link is switched back up."""
        if not self._want_up.is_set():
            await self._want_up.wait()
        else:
            await asyncio.Future()  # wait for the timeout

    async def _connect_once(self) -> bool:
        version = self.settings.ocpp_version
        subprotocol = SUBPROTOCOL_16 if version == "1.6" else SUBPROTOCOL_201
        headers = {}
        if self.settings.password:
            basic = f"{self.station.id}:{self.settings.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(basic).decode()
        url = f"{self.settings.csms_url.rstrip('/')}/{self.station.id}"
        async with websockets.connect(
            url,
            subprotocols=[Subprotocol(subprotocol)],
            additional_headers=headers,
            ssl=self._tls,
            open_timeout=10,
        ) as ws:
            if ws.subprotocol != subprotocol:
                raise InvalidHandshake(f"CSMS did not agree to {subprotocol}")
            self._ws = ws
            self._booted = False
            if not self._want_up.is_set():
                return False
            self._follow_ups.clear()
            self._refused.clear()
            ctx = CommandContext(
                self.station, self.reconnect, self.trigger, self.follow_up, self.remote
            )
            cls = Adapter16 if version == "1.6" else Adapter201
            adapter = cls(ctx, ws, timeout=self.settings.call_timeout_s)
            self._adapter = adapter
            reader = asyncio.create_task(_read(ws, adapter), name=f"{self.station.id}-reader")
            talker = asyncio.create_task(self._converse(adapter), name=f"{self.station.id}-talk")
            try:
                done, _ = await asyncio.wait({reader, talker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reader, talker):
                    task.cancel()
                await asyncio.gather(reader, talker, return_exceptions=True)
            for task in done:
                exc = task.exception()
                if isinstance(exc, TimeoutError):  # the link is presumed dead: no close
                    ws.transport.abort()  # handshake over it, reconnect at once
                if exc is not None and not isinstance(exc, ConnectionClosed):
                    raise exc
            return self._booted

    async def _converse(self, adapter: Adapter16 | Adapter201) -> None:
        """Boots until accepted, then works; a later boot answered otherwise (one the CSMS
        asked for with TriggerMessage) sends the charger back to waiting for acceptance."""
        answer = await adapter.boot(self._boot_reason)
        while True:
            answer = await self._until_accepted(adapter, answer)
            self._accepted(adapter, answer)
            answer = await self._work(adapter)
            self.station.online = False
            log.warning(
                "%s: a boot was answered %s: waiting to be accepted again",
                self.station.id,
                answer[0],
            )

    async def _until_accepted(self, adapter: Adapter16 | Adapter201, answer: Boot) -> Boot:
        """Boots again after each interval, or at once when the CSMS asks for it, until a boot
        is answered Accepted."""
        while answer[0] != ACCEPTED:
            asked = await self._until_next_boot(adapter, answer[0], answer[2] or 10)
            answer = await adapter.boot("Triggered" if asked else self._boot_reason)
        return answer

    def _adopt(self, answer: Boot) -> None:
        """The CSMS's time and heartbeat interval from an accepted boot."""
        _, current, interval = answer
        if current is not None:
            self.station.set_time(current)
        if interval > 0:
            self.station.config.set("HeartbeatInterval", str(interval))

    def _accepted(self, adapter: Adapter16 | Adapter201, answer: Boot) -> None:
        station = self.station
        self._adopt(answer)
        # every connector after an accepted boot (B01.FR.05), even one reported while pending
        self._statuses = [(i, c.status, True) for i, c in station.connectors.items()]
        self._triggers = [t for t in self._triggers if t[0] != BOOT]  # answered by this boot
        station.online = True
        self._booted = True
        self._boot_reason = "PowerUp"
        self.connects += 1
        self.remote.booted()
        log.info("%s: booted (OCPP %s)", station.id, adapter.version)

    async def _work(self, adapter: Adapter16 | Adapter201) -> Boot:
        """Announces the settlement key, then reports statuses, answers triggers, delivers
        the queue, says ``Synced`` and heartbeats; returns the answer of a later boot that
        was not Accepted."""
        station, config = self.station, self.station.config
        jwk = json.dumps(station.key.public.to_jwk())
        answer = await self._optional(
            "DataTransfer SettlementKey", adapter.vendor.send(MSG_SETTLEMENT_KEY, jwk)
        )
        if answer not in (None, "Accepted"):  # e.g. another key is pinned: the operator acts
            log.warning("%s: SettlementKey %s answered %s", station.id, station.key.kid, answer)
        synced_due = True
        next_heartbeat = self._next_heartbeat()
        while True:
            self._wake.clear()
            if station.reset_when_idle and not station.sessions:
                station.reset_when_idle = False
                self.reconnect()
            while self._statuses:
                evse_id, status, force = self._statuses.pop(0)
                sending = adapter.send_status(evse_id, status, force=force)
                await self._optional("StatusNotification", sending)
            while self._triggers:
                refused = await self._answer_trigger(adapter, *self._triggers.pop(0))
                if refused is not None:
                    return refused
            await self._send_follow_ups()
            await self._send_notices(adapter)
            delivered = await queue.drain(station.store, config, adapter, station.now())
            # Synced after the queue is drained on reconnect, and after each later settlement
            if station.store.queue_len() == 0 and (synced_due or Kind.SETTLEMENT in delivered):
                seq = int(station.store.get("settlement_seq", 0))
                synced = adapter.vendor.send(MSG_SYNCED, json.dumps({"seq": seq}))
                await self._optional("DataTransfer Synced", synced)
                synced_due = False
            now = station.now()
            if now >= next_heartbeat:
                await self._heartbeat(adapter)
                next_heartbeat = self._next_heartbeat()
            wait = next_heartbeat - station.now()
            retry_at = queue.next_retry_at(station.store)
            if retry_at is not None:
                wait = min(wait, retry_at - station.now())
            timeout = None if math.isinf(wait) else max(0.0, wait)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the task's
            # cancellation when the event is set at the same moment, and the link runs on
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _until_next_boot(
        self, adapter: Adapter16 | Adapter201, status: str, wait_s: float
    ) -> bool:
        """Boot not accepted: waits until the next BootNotification is due. While Pending it
        sends only what the CSMS asked for (the report of a GetBaseReport, a triggered status
        or heartbeat: B02), and returns True at once when asked for a boot; while Rejected it
        sends nothing at all (B03)."""
        due = asyncio.ensure_future(self.station.clock.sleep(wait_s))
        try:
            while not due.done():
                self._wake.clear()
                if status == PENDING:
                    if await self._asked_while_pending(adapter):
                        return True
                elif self._follow_ups:
                    what = ", ".join(w for w, _ in self._follow_ups)
                    log.warning("%s: %s, not sending %s", self.station.id, status, what)
                    self._follow_ups.clear()
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({due, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
        finally:
            due.cancel()
        return False

    async def _asked_while_pending(self, adapter: Adapter16 | Adapter201) -> bool:
        """Sends what a pending charger was asked for; True when that includes a boot.
        Triggered meter values wait for acceptance (no transaction data before it)."""
        await self._send_follow_ups()
        boot, later = False, []
        while self._triggers:
            what, evse_id = self._triggers.pop(0)
            if what == BOOT:
                boot = True
            elif what in _TRIGGERABLE_WHILE_PENDING:
                await self._answer_trigger(adapter, what, evse_id)
            else:
                later.append((what, evse_id))
        self._triggers[:0] = later
        return boot

    async def _send_follow_ups(self) -> None:
        while self._follow_ups:
            what, send = self._follow_ups.pop(0)
            await self._optional(what, send())

    async def _send_notices(self, adapter: Adapter16 | Adapter201) -> None:
        """The status notifications of firmware and log jobs, in order; one that the
        connection loses before its answer stays first for the next connection."""
        while (notice := self.remote.next_notice()) is not None:
            await self._optional(notice[0], adapter.send_notice(*notice))
            self.remote.delivered()

    async def _optional(self, what: str, sending: Awaitable[T]) -> T | None:
        """Awaits a CALL the charger can do without: a CALLERROR (or an invalid CALLRESULT) is
        logged, as a warning the first time per action and error code on this connection, and
        gives None. A timeout or a closed connection still propagates."""
        try:
            return await sending
        except CALL_REFUSED as exc:
            key = (what, error_code(exc))
            level = logging.DEBUG if key in self._refused else logging.WARNING
            self._refused.add(key)
            log.log(level, "%s: the CSMS refused %s: %r; carrying on", self.station.id, what, exc)
            return None

    async def _heartbeat(self, adapter: Adapter16 | Adapter201) -> None:
        current = await self._optional("Heartbeat", adapter.heartbeat())
        if current is not None:
            self.station.set_time(current)

    def _next_heartbeat(self) -> float:
        """When the next Heartbeat is due (never, with HeartbeatInterval 0)."""
        interval = self.station.config["HeartbeatInterval"]
        return self.station.now() + interval if interval > 0 else math.inf

    async def _answer_trigger(
        self, adapter: Adapter16 | Adapter201, what: str, evse_id: int | None
    ) -> Boot | None:
        """Sends what a TriggerMessage asked for; a boot's answer when it was not Accepted."""
        station = self.station
        ids = [evse_id] if evse_id else list(station.connectors)
        if what == BOOT:
            answer = await self._optional(what, adapter.boot("Triggered"))
            if answer is not None and answer[0] != ACCEPTED:
                return answer
            if answer is not None:
                self._adopt(answer)
        elif what == "Heartbeat":
            await self._heartbeat(adapter)
        elif what == "StatusNotification":
            for i in ids:
                status = station.connectors[i].status
                await self._optional(what, adapter.send_status(i, status, force=True))
        elif what == "MeterValues":
            for i in ids:
                await self._optional(what, adapter.send_meter_values(i))
        return None
