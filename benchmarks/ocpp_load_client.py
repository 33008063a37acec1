"""The load generator's chargers: raw ``websockets`` OCPP-J clients run by a worker process.

One :class:`Link` per WebSocket (one outgoing CALL at a time, as OCPP-J requires; a reader task
answers the CSMS's own CALLs). One worker process runs its share of the chargers in two phases
that the parent synchronises through a pipe: connect + boot (ramp or storm), then the timed load
phase, which starts at the same wall-clock instant in every worker.

Like a real charger, a load charger whose connection is lost during the load phase connects
again (a random first delay, then a growing backoff or the server's ``Retry-After``), boots,
and sends again the transaction message or settlement it had no answer for (the CSMS
deduplicates them); a status, meter value or heartbeat without an answer is dropped.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import random
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from benchmarks.ocpp_load_frames import (
    CALL,
    CALLRESULT,
    CYCLE,
    SUBPROTOCOLS,
    ChargerScript,
    FrameError,
    PaidPlan,
    Payload,
    Version,
    answer_to_csms_call,
    decode,
    encode_call,
    encode_error,
    encode_result,
)
from benchmarks.ocpp_load_stats import WorkerReport
from qr_extension.keys import SigningKey, generate_key
from qr_extension.wire import MSG_SETTLEMENT, MSG_SYNCED

HOST = "127.0.0.1"  # the generator only ever targets this machine
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    charger_id: str
    password: str
    version: Version
    tag: str = "BENCH"  # its RFID tag
    orders: tuple[tuple[str, str], ...] = ()  # (order id, start token) placed for it


def must_deliver(action: str, payload: Payload) -> bool:
    """What a charger queues and sends again until answered: transaction messages and its
    settlement reports (OCPP's rule for transaction messages; the extension's for these)."""
    if action in ("StartTransaction", "StopTransaction", "TransactionEvent"):
        return True
    return action == "DataTransfer" and payload.get("messageId") in (MSG_SETTLEMENT, MSG_SYNCED)


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """Everything one worker needs; sent pickled to the worker process."""

    port: int
    chargers: tuple[ChargerSpec, ...]
    storm: bool
    connects_per_s: float  # this worker's share of the ramp (ignored in a storm)
    interval_s: float  # per-charger gap between two CALLs in the load phase
    duration_s: float
    call_timeout_s: float
    connect_timeout_s: float
    connect_retries: int
    seed: int
    retry_backoff_s: float = 1.0  # attempt k waits k x [1, 3) x this
    cycle: tuple[str, ...] = CYCLE
    aligned: bool = False  # every charger begins the cycle at its first step (a burst test)
    audience: str = "qrcharge"  # the CSMS issuer id (settlements' aud)
    drain_s: float = 30.0  # after the window: time to deliver a message still owed
    run: str = ""  # the run's nonce (in 2.0.1 transaction ids)
    key_seed: str = ""  # settlement keys derived from it per charger id; empty: fresh keys


def settlement_key(seed: str, charger_id: str) -> SigningKey:
    """The charger's settlement key: derived from ``seed`` and its id (the same key in every
    run that shares a database, where the CSMS has pinned it), or a fresh one without a seed."""
    if not seed:
        return generate_key()
    digest = hmac.new(seed.encode(), charger_id.encode(), hashlib.sha512).digest()
    scalar = int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1
    return SigningKey.from_crypto(ec.derive_private_key(scalar, ec.SECP256R1()))


class CallFailed(Exception):
    """A CALL that got no CALLRESULT (CALLERROR, timeout or closed link); ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Link:
    """One charger's open WebSocket: sends CALLs, matches answers, answers CSMS CALLs."""

    def __init__(self, ws: ClientConnection, version: Version, report: WorkerReport) -> None:
        self._ws = ws
        self._version = version
        self._report = report
        self._pending: dict[str, asyncio.Future[Payload]] = {}
        self._next_id = 0
        self.closed_by_peer = False
        self._closing = False
        self._reader = asyncio.create_task(self._read())

    @property
    def is_open(self) -> bool:
        return not self.closed_by_peer and not self._reader.done()

    async def call(self, action: str, payload: Payload, timeout_s: float) -> Payload:
        """Sends one CALL and waits for its CALLRESULT; raises :class:`CallFailed`."""
        self._next_id += 1
        message_id = str(self._next_id)
        future: asyncio.Future[Payload] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        try:
            async with asyncio.timeout(timeout_s):  # the send too: a CSMS that stops reading
                await self._ws.send(encode_call(message_id, action, payload))
                return await future
        except TimeoutError as exc:
            raise CallFailed("timeout") from exc
        except ConnectionClosed as exc:
            raise CallFailed("lost") from exc
        finally:
            self._pending.pop(message_id, None)
            _settle(future)

    async def close(self) -> None:
        self._closing = True
        await self._ws.close()
        await self._reader

    async def _read(self) -> None:
        try:
            async for text in self._ws:
                await self._handle(text)
        except ConnectionClosed:
            pass
        finally:
            if not self._closing:
                self.closed_by_peer = True
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CallFailed("lost"))

    async def _handle(self, text: str | bytes) -> None:
        try:
            frame = decode(text)
        except FrameError:
            self._report.callerrors["bad frame from CSMS"] += 1
            return
        if frame.kind == CALL:
            self._report.incoming_calls[frame.action] += 1
            answer = answer_to_csms_call(self._version, frame.action, frame.payload)
            if answer is None:
                await self._ws.send(encode_error(frame.message_id, "NotImplemented"))
            else:
                await self._ws.send(encode_result(frame.message_id, answer))
            return
        future = self._pending.get(frame.message_id)
        if future is None or future.done():
            return
        if frame.kind == CALLRESULT:
            future.set_result(frame.payload)
        else:
            future.set_exception(CallFailed(f"CALLERROR {frame.error_code}"))


class Worker:
    """Runs one :class:`WorkerPlan`: connect phase, wait for ``go``, load phase, report."""

    def __init__(self, plan: WorkerPlan) -> None:
        self.plan = plan
        self.report = WorkerReport()
        self._rng = random.Random(plan.seed)
        self._go = asyncio.Event()
        self._done = asyncio.Event()
        self._load_start = math.inf
        self._load_end = math.inf
        self._last_answer = 0.0
        self._cpu_at_go = 0.0

    async def connect_all(self) -> list[asyncio.Task[None]]:
        """Starts every charger, returns their tasks once each has booted or failed."""
        ready = [asyncio.Event() for _ in self.plan.chargers]
        tasks = []
        for index, (spec, event) in enumerate(zip(self.plan.chargers, ready, strict=True)):
            delay = 0.0 if self.plan.storm else index / self.plan.connects_per_s
            tasks.append(asyncio.create_task(self._charger(spec, delay, event)))
        await asyncio.gather(*(e.wait() for e in ready))
        return tasks

    def go(self, start_epoch: float) -> None:
        loop = asyncio.get_running_loop()
        self._load_start = loop.time() + max(0.0, start_epoch - time.time())
        self._load_end = self._load_start + self.plan.duration_s
        self._cpu_at_go = time.process_time()
        self._go.set()

    async def finish(self, tasks: list[asyncio.Task[None]]) -> WorkerReport:
        """Waits for every load loop, counts held links, then closes them all."""
        await asyncio.sleep(max(0.0, self._load_end - asyncio.get_running_loop().time()))
        self.report.cpu_s = time.process_time() - self._cpu_at_go
        self._done.set()
        _, stuck = await asyncio.wait(tasks, timeout=self.plan.call_timeout_s + 15)
        for task in stuck:  # a call or a close still hanging: give up on it, keep the report
            task.cancel()
        self.report.stuck += len(stuck)
        await asyncio.gather(*tasks, return_exceptions=True)
        end = max(self._last_answer, self._load_end)
        self.report.window_s = end - self._load_start
        return self.report

    async def _charger(self, spec: ChargerSpec, delay: float, ready: asyncio.Event) -> None:
        await asyncio.sleep(delay)
        script = ChargerScript(
            spec.charger_id, spec.version, cycle=self.plan.cycle, tag=spec.tag, run=self.plan.run
        )
        if spec.orders:
            key = settlement_key(self.plan.key_seed, spec.charger_id)
            script.paid = PaidPlan(deque(spec.orders), key, self.plan.audience)
        if not self.plan.aligned:  # each charger at its own point of the cycle, as in a fleet
            script.begin_at(self._rng.randrange(len(self.plan.cycle)))
        link = await self._open(spec, script)
        ready.set()
        if link is None:
            self.report.sessions.extend(script.log)
            return
        try:
            await self._go.wait()
            link = await self._load(spec, link, script)
            if link is not None and link.is_open:
                self.report.held_at_end += 1
            else:
                self.report.disconnects += 1
            await self._done.wait()
        finally:
            self.report.sessions.extend(script.log)
            if link is not None:
                await link.close()

    async def _open(
        self, spec: ChargerSpec, script: ChargerScript, until: float | None = None
    ) -> Link | None:
        """Connects, boots and reports Available, retrying like a charger; None on failure.

        The first connection makes ``connect_retries`` more attempts; a reconnection in the
        load phase (``until``: a loop time) retries until then."""
        loop = asyncio.get_running_loop()
        report, plan = self.report, self.plan
        if until is None:
            report.attempted += 1
            report.first_attempt_at = min(report.first_attempt_at, time.time())
        else:  # a fleet does not come back in step: each charger waits a little first
            await asyncio.sleep(self._rng.uniform(0.0, 1.0))
        t0 = loop.time()
        attempt = 0
        while True:
            outcome, retry_after = await self._attempt(spec, script)
            if isinstance(outcome, Link):
                if until is None:
                    report.booted += 1
                    report.connect_ms.append((loop.time() - t0) * 1000)
                    report.last_booted_at = max(report.last_booted_at, time.time())
                else:
                    report.reconnected += 1
                    report.reconnect_ms.append((loop.time() - t0) * 1000)
                    report.last_rebooted_at = max(report.last_rebooted_at, time.time())
                return outcome
            give_up = attempt >= plan.connect_retries if until is None else loop.time() >= until
            if give_up:
                report.connect_failures[outcome] += 1
                return None
            report.connect_retries[outcome] += 1
            backoff = self._rng.uniform(1.0, 3.0) * min(attempt + 1, 4) * plan.retry_backoff_s
            wait = retry_after if retry_after is not None else backoff
            if until is not None:
                wait = min(wait, max(0.0, until - loop.time()))
            await asyncio.sleep(wait)
            attempt += 1

    async def _attempt(
        self, spec: ChargerSpec, script: ChargerScript
    ) -> tuple[Link | str, float | None]:
        """One connection attempt: the open, booted link or why it failed, and the server's
        ``Retry-After`` (seconds, capped at 60) when it sent one."""
        plan, report = self.plan, self.report
        token = base64.b64encode(f"{spec.charger_id}:{spec.password}".encode()).decode()
        try:
            ws = await connect(
                f"ws://{HOST}:{plan.port}/ocpp/{spec.charger_id}",
                subprotocols=[Subprotocol(SUBPROTOCOLS[spec.version])],
                additional_headers={"Authorization": f"Basic {token}"},
                open_timeout=plan.connect_timeout_s,
                ping_interval=None,
                compression=None,
                close_timeout=2,
            )
        except InvalidStatus as exc:
            return f"HTTP {exc.response.status_code}", _retry_after(exc)
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            return type(exc).__name__, None
        if ws.subprotocol != SUBPROTOCOLS[spec.version]:
            await ws.close()
            return "subprotocol not agreed", None
        report.connected += 1
        link = Link(ws, spec.version, report)
        try:
            answer = await link.call(*script.boot(), timeout_s=plan.connect_timeout_s)
            if answer.get("status") != "Accepted":
                await link.close()
                return f"boot {answer.get('status')}", None
            await link.call(*script.status(available=True), timeout_s=plan.connect_timeout_s)
            if script.paid is not None:  # pins its settlement key (the same one again later)
                answer = await link.call(*script.paid.key_call(), timeout_s=plan.connect_timeout_s)
                report.key_answers[str(answer.get("status"))] += 1
        except CallFailed as exc:
            await link.close()
            return f"boot {exc.reason}", None
        return link, None

    async def _load(self, spec: ChargerSpec, link: Link, script: ChargerScript) -> Link | None:
        """The load phase of one charger; the link it ends with (None: it could not reconnect)."""
        loop = asyncio.get_running_loop()
        plan, report = self.plan, self.report
        next_at = self._load_start + self._rng.uniform(0, plan.interval_s)
        owed: tuple[str, Payload] | None = None  # a message to send again until answered
        while (next_at < self._load_end and loop.time() < self._load_end) or (
            owed is not None and loop.time() < self._load_end + plan.drain_s
        ):
            if not link.is_open:
                report.dropped += 1
                await link.close()
                reopened = await self._open(spec, script, until=self._load_end + plan.drain_s)
                if reopened is None:
                    break
                link = reopened
                next_at = max(next_at, loop.time())
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            action, payload = owed if owed is not None else script.next_call()
            sent = loop.time()
            report.sent += 1
            try:
                answer = await link.call(action, payload, timeout_s=plan.call_timeout_s)
            except CallFailed as exc:
                if exc.reason == "timeout":
                    report.timeouts += 1
                elif exc.reason == "lost":
                    report.lost += 1
                else:
                    report.callerrors[exc.reason.removeprefix("CALLERROR ")] += 1
                if must_deliver(action, payload):
                    report.resent += owed is not None
                    owed = (action, payload)
                else:
                    owed = None
                next_at += plan.interval_s
                continue
            answered = loop.time()
            report.answered += 1
            report.resent += owed is not None
            owed = None
            report.record(action, (answered - sent) * 1000)
            self._last_answer = max(self._last_answer, answered)
            script.on_result(action, answer, payload)
            next_at += plan.interval_s
        if owed is not None:
            report.undelivered += 1
            if not link.is_open:
                return None
        return link if link.is_open else None


def _settle(future: asyncio.Future[Payload]) -> None:
    """Marks a CALL's future as seen once its call is over: when the send failed first, the
    reader may have set "lost" on it with nobody awaiting it (asyncio would report the
    exception as never retrieved)."""
    if not future.done():
        future.cancel()
    elif not future.cancelled():
        future.exception()


def _retry_after(exc: InvalidStatus) -> float | None:
    value = exc.response.headers.get("Retry-After", "")
    try:
        return min(60.0, max(0.0, float(value)))
    except ValueError:
        return None


async def _run(plan: WorkerPlan, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    worker = Worker(plan)
    tasks = await worker.connect_all()
    pipe.send(("ready", worker.report.booted))
    message: tuple[str, Any] = await loop.run_in_executor(None, pipe.recv)
    if message[0] != "go":
        raise RuntimeError(f"worker expected 'go', got {message[0]!r}")
    worker.go(float(message[1]))
    pipe.send(("report", await worker.finish(tasks)))


def run_worker(plan: WorkerPlan, pipe: Connection) -> None:
    """Entry point of a worker process."""
    asyncio.run(_run(plan, pipe))
