"""The charger's protocol-independent logic: what happens on plug, unplug, scan, stop, limits.

A :class:`Station` owns its EVSEs (connector status, meter, running session), the durable
store, the clock and the display. Hardware and drivers act on it through plain methods
(``plug``, ``unplug``, ``press_stop``, ``scan``), the CSMS through the adapters
(``remote_start``, ``remote_stop``, ``install_trusted_keys`` ...). It never talks OCPP: status
changes go to the :class:`Listener` (sent at once if online), transaction messages go into the
durable queue as :mod:`charge_point.events` rows and are delivered by the link.

Time: ``now()`` is ``max(clock, durable floor, last now)``; the floor is the
largest time the CSMS told us and the largest verified ``iat``. It is real time whatever the
``time_scale``: the scale only makes the simulated EVs draw that many times the power
(:mod:`charge_point.meter`), so energy, cost, and the energy and cost limits come sooner
while timestamps, token checks, meter sample intervals, the duration limit ``lim.s``, idle
time and screen timeouts keep real seconds.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, NamedTuple, Protocol

from charge_point import authorization, availability, reservations, trusted
from charge_point.availability import Availability
from charge_point.clock import Clock
from charge_point.configuration import Configuration
from charge_point.display import Display
from charge_point.events import ORDER_TOKEN_TYPE, Kind, StopReason, Trigger, transaction_row
from charge_point.evse import Connector, Event, Status
from charge_point.forced_answers import ForcedAnswers
from charge_point.meter import Ev, Meter
from charge_point.qrstart import ScanContext, StartAuthorization, check_start
from charge_point.reservations import ReservationBook
from charge_point.session import Session, sign_session
from charge_point.settings import StationSettings
from charge_point.smart_charging import ChargingProfiles, Limit
from charge_point.store import Store
from charge_point.timefloor import TimeFloor
from qr_extension.identify import identification_url, presence_code
from qr_extension.keys import KeyRing, SigningKey
from qr_extension.refusal import Refusal
from qr_extension.tariff import LimitReason
from qr_extension.wire import parse_ocpp_timestamp

log = logging.getLogger(__name__)

MAX_STEP_S = 10.0  # the charge curve advances in steps of at most this many of its seconds
CHECKPOINT_S = 10.0  # a running session is saved at least this often (seconds)
# a revocation that does not say when its token expires is kept this long (seconds): far longer
# than any start token's validity
REVOKE_KEEP_S = 30 * 86400
_LIMIT_TRIGGER = {
    LimitReason.ENERGY: Trigger.ENERGY_LIMIT_REACHED,
    LimitReason.TIME: Trigger.TIME_LIMIT_REACHED,
    LimitReason.COST: Trigger.CHARGING_STATE_CHANGED,  # 2.0.1 has no cost-limit trigger
}


class PendingStart(NamedTuple):
    """An EVSE authorised before its EV is plugged in (remote start or card)."""

    id_tag: str
    remote_start_id: int | None
    at: float
    token_type: str


class Listener(Protocol):
    """What the station tells the outside world (the link, in practice)."""

    def status_changed(self, evse_id: int, status: Status) -> None: ...

    def queued(self) -> None: ...

    def reservation_ended(self, reservation_id: int, status: str) -> None:
        """A reservation expired or was removed (2.0.1 ReservationStatusUpdate)."""
        ...


class _Quiet:
    def status_changed(self, evse_id: int, status: Status) -> None:
        pass

    def queued(self) -> None:
        pass

    def reservation_ended(self, reservation_id: int, status: str) -> None:
        pass


class Station:
    """One charge point: EVSEs, sessions, durable state."""

    def __init__(
        self,
        settings: StationSettings,
        *,
        store: Store,
        clock: Clock,
        key: SigningKey,
        display: Display,
    ) -> None:
        self.settings = settings
        self.id = settings.charge_point_id
        self.store = store
        self.clock = clock
        self.key = key
        self.display = display
        self.listener: Listener = _Quiet()
        self.online = False
        self.config = Configuration(store, settings.ocpp_defaults())
        evse_ids = range(1, settings.evses + 1)
        # kept across restarts: what the CSMS took out of service, and the reservations
        self.availability = Availability(store)
        self.reservations = ReservationBook(store)
        self.forced = ForcedAnswers()  # answers forced through the control API (tests)
        held = reservations.reserved_for(self)
        self.connectors = {
            i: Connector(
                i,
                Status.RESERVED
                if i in held and not self.availability.inoperative(i)
                else availability.initial_status(self.availability, i),
            )
            for i in evse_ids
        }
        self.meters = {
            i: Meter(
                settings.max_power_w,
                register_wh=int(store.get(f"register.{i}", 0)),
                power_scale=settings.time_scale,
            )
            for i in evse_ids
        }
        self.sessions: dict[int, Session] = {}
        self.profiles = ChargingProfiles(store)  # smart charging: limits on the meters
        self.reset_when_idle = False  # a 2.0.1 Reset OnIdle waits for the sessions to end
        self.pending: dict[int, PendingStart] = {}
        self.time = TimeFloor(store, clock)
        self._last_tick = self.now()
        if store.get("identify_secret") is None:
            store.put("identify_secret", secrets.token_hex(32))
        self._own_secret = bytes.fromhex(store.get("identify_secret"))

    # --- time (kept in charge_point.timefloor) ---------------------------------------------
    @property
    def floor(self) -> float:
        return self.time.floor

    @property
    def clock_synced(self) -> bool:
        return self.time.synced

    def now(self) -> float:
        return self.time.now()

    def set_time(self, epoch_s: float) -> None:
        """The CSMS's time (BootNotification / Heartbeat)."""
        self.time.set_from_csms(epoch_s)
        self.store.prune_used(self.floor, self.settings.leeway_s)
        self.store.prune_revoked(self.floor, self.settings.leeway_s)

    # --- keys (kept in charge_point.trusted) ---------------------------------------------
    @property
    def trusted(self) -> KeyRing:
        return trusted.current(self.store)

    def install_trusted_keys(self, token: str) -> Refusal | None:
        """A ``TrustedKeys`` DataTransfer from the CSMS."""
        return trusted.install(self.store, token, trust_first=self.settings.trust_first_keys)

    def install_trusted_jwks(self, jwks: dict[str, Any]) -> bool:
        """Installation config (``--trusted-keys FILE``); see :func:`trusted.install_jwks`."""
        return trusted.install_jwks(self.store, jwks)

    # --- hardware and driver -------------------------------------------------------------
    def plug(
        self, evse_id: int, *, capacity_wh: int | None = None, soc: float | None = None
    ) -> None:
        self.tick()
        connector = self._connector(evse_id)
        meter = self.meters[evse_id]
        meter.plug(Ev.with_soc(capacity_wh or 60_000, 0.2 if soc is None else soc))
        self._fire(connector, Event.PLUG)
        if evse_id in self.pending:
            waiting = self.pending.pop(evse_id)
            remote_id = waiting.remote_start_id
            trigger = Trigger.REMOTE_START if remote_id is not None else Trigger.AUTHORIZED
            self._start(
                evse_id,
                waiting.id_tag,
                trigger=trigger,
                remote_start_id=remote_id,
                token_type=waiting.token_type,
            )

    def unplug(self, evse_id: int) -> None:
        self.tick()
        connector = self._connector(evse_id)
        if evse_id in self.sessions:
            self._end(evse_id, StopReason.EV_DISCONNECTED, unplugged=True)
        elif connector.can(Event.UNPLUG):
            self._fire(connector, Event.UNPLUG)
        self.pending.pop(evse_id, None)
        self.meters[evse_id].unplug()

    def press_stop(self, evse_id: int) -> bool:
        self.tick()
        if evse_id not in self.sessions:
            return False
        self._end(evse_id, StopReason.LOCAL)
        return True

    def fault(self, evse_id: int) -> None:
        """A hardware fault: the session ends (reason Other) and the EVSE goes Faulted."""
        self.tick()
        if evse_id in self.sessions:
            self._end(evse_id, StopReason.OTHER)
        self.pending.pop(evse_id, None)
        connector = self._connector(evse_id)
        if connector.can(Event.FAULT):
            self._fire(connector, Event.FAULT)

    def clear_fault(self, evse_id: int) -> None:
        connector = self._connector(evse_id)
        if connector.status is Status.FAULTED:
            self._fire(connector, Event.CLEAR)
            self.settle(evse_id)

    def scan(self, token: str) -> StartAuthorization | Refusal:
        """A start QR text from the camera: start a session or show why not."""
        self.tick()
        ctx = ScanContext(
            charge_point_id=self.id,
            evse_ids=tuple(self.connectors),
            waiting_evse_ids=self.waiting_evse_ids(),
            now=int(self.now()),
            clock_synced=self.clock_synced,
            accept_unsynced_clock=self.settings.accept_unsynced_clock,
            leeway_s=self.settings.leeway_s,
            reserved_for=reservations.reserved_for(self),
        )
        result = check_start(
            token, trusted=self.trusted, ctx=ctx, used=self.store, revoked=self.store
        )
        if not isinstance(result, Refusal):
            assert result.evse_id is not None  # resolved by verify_start_token
            result = reservations.refusal(self, result.evse_id, result.order_id) or result
        if isinstance(result, Refusal):
            self.display.show_refusal(result, self.now())
            return result
        assert result.evse_id is not None
        self._start(
            result.evse_id, result.order_id, trigger=Trigger.AUTHORIZED, token=token, auth=result
        )
        return result

    def refuse(self, refusal: Refusal) -> None:
        self.display.show_refusal(refusal, self.now())

    def waiting_evse_ids(self) -> tuple[int, ...]:
        """EVSEs with an EV plugged in, no session and no pending authorisation (a reserved
        one too: whether the code is its reservation's is checked after it verifies)."""
        return tuple(
            i
            for i, c in self.connectors.items()
            if c.status in (Status.PREPARING, Status.RESERVED)
            and self.meters[i].ev is not None
            and i not in self.sessions
            and i not in self.pending
        )

    # --- CSMS commands -------------------------------------------------------------------
    def revoke_token(self, order_id: str, expires_at: int | None) -> bool:
        """The CSMS cancelled the order: its start token must never start a session here.
        True once the revocation is stored durably; False (nothing stored) when the token was
        already used here, or a session for it runs: then the order is not unused and its
        hold must stay. An authorisation waiting for the EV (a remote start) is dropped.
        Without ``expires_at`` the revocation is kept :data:`REVOKE_KEEP_S` past now."""
        running = any(s.id_tag == order_id for s in self.sessions.values())
        if running or self.store.is_used(order_id):
            log.info("%s: revocation of %s refused: the order was used here", self.id, order_id)
            return False
        until = int(self.now()) + REVOKE_KEEP_S if expires_at is None else expires_at
        with self.store.atomic():  # one fsync'd commit before the CSMS hears Accepted
            self.store.revoke(order_id, until)
        for evse_id, waiting in list(self.pending.items()):
            if waiting.id_tag == order_id:
                del self.pending[evse_id]
        log.info("%s: start token of order %s revoked", self.id, order_id)
        return True

    def remote_start(
        self,
        id_tag: str,
        evse_id: int | None,
        remote_start_id: int | None,
        token_type: str = ORDER_TOKEN_TYPE,
    ) -> bool:
        """RemoteStartTransaction / RequestStartTransaction: start now if an EV is plugged
        in, else authorise the EVSE and start when the EV arrives. ``token_type`` is the 2.0.1
        idToken type the token came with (1.6 has none: our CSMS starts order ids)."""
        self.tick()
        if evse_id is None:
            evse_id = reservations.evse_of(self, id_tag)
        if evse_id is None:
            free = [
                i
                for i, c in self.connectors.items()
                if c.status in (Status.AVAILABLE, Status.PREPARING)
                and i not in self.sessions
                and i not in self.pending
            ]
            if len(free) != 1:
                return False
            evse_id = free[0]
        if evse_id not in self.connectors or evse_id in self.sessions or evse_id in self.pending:
            return False
        refused = reservations.refusal(self, evse_id, id_tag)
        if refused is not None:
            self.display.show_refusal(refused, self.now())
            return False
        connector = self.connectors[evse_id]
        trigger = Trigger.REMOTE_START
        plugged = self.meters[evse_id].ev is not None
        if connector.status in (Status.PREPARING, Status.RESERVED) and plugged:
            self._start(
                evse_id,
                id_tag,
                trigger=trigger,
                remote_start_id=remote_start_id,
                token_type=token_type,
            )
            return True
        if connector.status in (Status.AVAILABLE, Status.RESERVED):
            self.pending[evse_id] = PendingStart(id_tag, remote_start_id, self.now(), token_type)
            self._fire(connector, Event.AUTHORIZE)
            return True
        return False

    def authorize_tag(self, evse_id: int, id_tag: str, token_type: str) -> bool:
        """An id tag (of 2.0.1 type ``token_type``) accepted, locally or by the CSMS, on
        ``evse_id``: start or stop there."""
        self.tick()
        session = self.sessions.get(evse_id)
        if session is not None:
            if session.id_tag != id_tag:
                return False
            self._end(evse_id, StopReason.LOCAL)
            return True
        return self.remote_start(id_tag, evse_id, None, token_type)

    def remote_stop(self, transaction_id: str) -> bool:
        self.tick()
        for evse_id, session in list(self.sessions.items()):
            if transaction_id in (session.local_id, self.store.csms_id(session.local_id)):
                self._end(evse_id, StopReason.REMOTE)
                return True
        return False

    def unlock(self, evse_id: int) -> bool:
        self.tick()
        if evse_id not in self.connectors:
            return False
        if evse_id in self.sessions:
            self._end(evse_id, StopReason.UNLOCK_COMMAND)
        return True

    def reset(self, hard: bool) -> None:
        """Ends every session (the adapter then reconnects, as after a reboot)."""
        self.tick()
        reason = StopReason.HARD_RESET if hard else StopReason.SOFT_RESET
        for evse_id in list(self.sessions):
            self._end(evse_id, reason)

    def change_availability(self, evse_id: int | None, operative: bool) -> str:
        """ChangeAvailability of one EVSE or (None) the whole charger: ``Accepted``,
        ``Scheduled`` (made when the running transaction ends) or ``Rejected``
        (:mod:`charge_point.availability`)."""
        self.tick()
        return availability.change(self, evse_id, operative)

    def fire(self, evse_id: int, event: Event) -> None:
        """Changes an EVSE's status (for the availability and reservation rules)."""
        self._fire(self.connectors[evse_id], event)

    def settle(self, evse_id: int) -> None:
        """An EVSE that became Available goes on to what it should be: out of service if the
        CSMS wants it so, else Reserved if it is held, else Preparing if an EV is plugged in."""
        connector = self.connectors[evse_id]
        if connector.status is not Status.AVAILABLE:
            return
        if evse_id in self.sessions or evse_id in self.pending:
            return
        if self.availability.inoperative(evse_id):
            availability.apply(self, evse_id)
        elif self.reservations.for_evse(evse_id) is not None:
            self._fire(connector, Event.RESERVE)
        elif self.meters[evse_id].ev is not None:
            self._fire(connector, Event.PLUG)

    def drop_pending(self, evse_id: int) -> None:
        """Forgets a start waiting for its EV on ``evse_id`` (the EVSE goes out of service)."""
        self.pending.pop(evse_id, None)

    def remember_tag(self, id_tag: str, status: str, expiry: str | None) -> None:
        """Caches the idTagInfo of a transaction answer; an order id's entry expires at the
        token's ``exp``, so the cache drops it."""
        at = None if not expiry else parse_ocpp_timestamp(expiry).timestamp()
        authorization.remember(self.store, self.config, id_tag, status, at)

    def deauthorize(self, local_id: str) -> None:
        """The CSMS refused the id tag of a running transaction (StopTransactionOnInvalidId)."""
        if not self.config["StopTransactionOnInvalidId"]:
            return
        for evse_id, session in list(self.sessions.items()):
            if session.local_id == local_id:
                self.tick()
                self._end(evse_id, StopReason.DEAUTHORIZED)

    # --- time passes -------------------------------------------------------------------
    def tick(self) -> None:
        """Advances every meter and session to now; applies limits; samples meter values."""
        now = self.now()
        t = self._last_tick
        max_step = MAX_STEP_S / self.settings.time_scale  # the same curve at any power scale
        while t < now:
            step_end = min(now, t + max_step)
            for evse_id in self.connectors:
                self._advance(evse_id, t, step_end)
            t = step_end
        self._last_tick = max(self._last_tick, now)
        self._expire_pending(now)
        reservations.expire(self, now)
        self.display.showing_settlement(now)  # drops an expired settlement QR
        self._refresh_identification(now)

    def _expire_pending(self, now: float) -> None:
        """An authorisation without an EV lapses after ``ConnectionTimeOut`` seconds."""
        for evse_id, waiting in list(self.pending.items()):
            if now - waiting.at >= self.config["ConnectionTimeOut"]:
                del self.pending[evse_id]
                log.info(
                    "%s: no EV on EVSE %d for %s, authorisation lapsed",
                    self.id,
                    evse_id,
                    waiting.id_tag,
                )
                self._fire(self.connectors[evse_id], Event.CANCEL)
                self.settle(evse_id)  # back to Reserved if the EVSE is held

    def _advance(self, evse_id: int, t0: float, t1: float) -> None:
        meter, connector = self.meters[evse_id], self.connectors[evse_id]
        session = self.sessions.get(evse_id)
        if session is None:
            meter.step(t1 - t0, offering=False)
            return
        offering = session.limit is None and connector.status in (
            Status.CHARGING,
            Status.SUSPENDED_EV,
        )
        limit = self.power_limit(evse_id, t0)
        wh = meter.step(
            t1 - t0,
            offering=offering,
            max_wh=session.remaining_wh(),
            limit_w=None if limit is None else limit.watts,
        )
        session.book(t1, wh, idle=wh == 0 and connector.status is not Status.CHARGING)
        if connector.status is Status.CHARGING and not meter.ev_wants_power:
            self._transaction_state(session, Event.EV_IDLE, Trigger.CHARGING_STATE_CHANGED)
        elif connector.status is Status.SUSPENDED_EV and meter.ev_wants_power and offering:
            self._transaction_state(session, Event.EV_DRAW, Trigger.CHARGING_STATE_CHANGED)
        if session.limit is None:
            reached = session.check_limit()
            if reached is not None:
                session.limit = reached
                log.info("%s: %s on EVSE %d, energy suspended", self.id, reached, evse_id)
                self.display.show_text(f"EVSE {evse_id}: {reached.value}, unplug to finish")
                self._transaction_state(session, Event.SUSPEND, _LIMIT_TRIGGER[reached])
        if t1 - session.last_sample_at >= self.config["MeterValueSampleInterval"] > 0:
            session.last_sample_at = t1
            self._emit(session, Kind.UPDATED, trigger=Trigger.METER_VALUE_PERIODIC, at=t1)
        elif t1 - session.saved_at >= CHECKPOINT_S:
            self._save(session)  # a power cut loses at most CHECKPOINT_S of metering

    def power_limit(self, evse_id: int, at: float) -> Limit | None:
        """The charging profiles' limit on ``evse_id`` at ``at`` (the station maximum shared
        by the EVSEs with a running transaction)."""
        session = self.sessions.get(evse_id)
        return self.profiles.limit(
            evse_id,
            at,
            None if session is None else session.started_at,
            sharing=max(1, len(self.sessions)),
        )

    def hardware_w(self) -> float:
        """The most one EVSE can deliver (as reported: ``time_scale`` included)."""
        return float(self.settings.max_power_w) * self.settings.time_scale

    def _transaction_state(self, session: Session, event: Event, trigger: Trigger) -> None:
        connector = self.connectors[session.evse_id]
        self._fire(connector, event)
        self._emit(session, Kind.UPDATED, trigger=trigger, at=session.booked_until)

    # --- starting and ending -----------------------------------------------------------
    def _start(
        self,
        evse_id: int,
        id_tag: str,
        *,
        trigger: Trigger,
        token: str | None = None,
        auth: StartAuthorization | None = None,
        remote_start_id: int | None = None,
        token_type: str = ORDER_TOKEN_TYPE,
    ) -> Session:
        now = self.now()
        reservation_id = reservations.consume(self, evse_id, id_tag)
        serial = self.store.next_counter("txn_serial")
        session = Session(
            local_id=f"{serial:06d}-{secrets.token_hex(3)}",
            evse_id=evse_id,
            id_tag=id_tag,
            started_at=now,
            meter_start_wh=self.meters[evse_id].register_wh,
            offline=not self.online,
            token=token,
            remote_start_id=remote_start_id,
            auth=auth,
            token_type=token_type,
            reservation_id=reservation_id,
        )
        self.display.clear_settlement()  # the next session starts
        self._refresh_identification(now)
        if self.connectors[evse_id].status is Status.RESERVED:  # its reservation's own start
            self._fire(self.connectors[evse_id], Event.AUTHORIZE)
        self._fire(self.connectors[evse_id], Event.START)
        with self.store.atomic():  # one fsync'd commit before any energy flows
            if auth is not None:
                self.store.mark_used(auth.order_id, auth.expires_at)
                self.time.raise_floor(auth.issued_at)
            self.sessions[evse_id] = session
            self._emit(session, Kind.STARTED, trigger=trigger, at=now)
        self.display.show_text(f"Charging on EVSE {evse_id}")
        log.info(
            "%s: transaction %s started on EVSE %d for %s (offline=%s)",
            self.id,
            session.local_id,
            evse_id,
            id_tag,
            session.offline,
        )
        return session

    def _end(self, evse_id: int, reason: StopReason, *, unplugged: bool = False) -> None:
        session = self.sessions.pop(evse_id)
        self.profiles.transaction_ended(evse_id)
        self._finish(session, reason, stopped_at=self.now())
        connector = self.connectors[evse_id]
        event = Event.UNPLUG if unplugged else Event.STOP
        if connector.can(event):
            self._fire(connector, event)
        availability.apply(self, evse_id)  # a change scheduled while the session ran

    def _finish(self, session: Session, reason: StopReason, *, stopped_at: float) -> None:
        """Queues the end of a session and signs, queues and shows its settlement."""
        token: str | None = None
        with self.store.atomic():
            self._emit(
                session, Kind.ENDED, trigger=Trigger.STOP_AUTHORIZED, at=stopped_at, reason=reason
            )
            self.store.delete_transaction(session.local_id)
            self.store.put(f"register.{session.evse_id}", session.meter_wh)
            if session.auth is not None:
                seq = self.store.next_counter("settlement_seq")
                token = sign_session(
                    session,
                    key=self.key,
                    audience=self.settings.issuer,
                    reason=reason.value,
                    stopped_at=stopped_at,
                    seq=seq,
                    issued_at=self.now(),
                )
                self.store.enqueue(
                    Kind.SETTLEMENT, {"token": token, "seq": seq}, txn=session.local_id
                )
        self.listener.queued()
        log.info(
            "%s: transaction %s ended (%s), %d Wh",
            self.id,
            session.local_id,
            reason,
            session.energy_wh,
        )
        if token is not None:
            self.display.show_settlement(
                token, now=self.now(), display_s=self.settings.settlement_display_s
            )

    def restore(self) -> None:
        """After a restart: every session that was running when the power went is ended at its
        last durable reading, with reason PowerLoss (OCPP 1.6 / 2.0.1 behaviour for a charger
        that cannot resume), its settlement signed and queued. Nothing is queued twice: the
        messages already in the queue stay, only the end is added."""
        for record in self.store.running_transactions():
            session = Session.from_record(record)
            self.meters[session.evse_id].restore_register(session.meter_wh)
            log.warning("%s: transaction %s interrupted, ending it", self.id, session.local_id)
            self.profiles.transaction_ended(session.evse_id)
            self._finish(session, StopReason.POWER_LOSS, stopped_at=session.booked_until)

    # --- plumbing ------------------------------------------------------------------------
    def _connector(self, evse_id: int) -> Connector:
        try:
            return self.connectors[evse_id]
        except KeyError:
            raise KeyError(f"no EVSE {evse_id}") from None

    def _fire(self, connector: Connector, event: Event) -> None:
        before = connector.status
        after = connector.fire(event)
        if after is not before:
            self.listener.status_changed(connector.evse_id, after)

    def _emit(
        self,
        session: Session,
        kind: Kind,
        *,
        trigger: Trigger,
        at: float,
        reason: StopReason | None = None,
    ) -> None:
        """Queues one transaction message and saves the session, in one commit."""
        payload = transaction_row(
            session,
            kind,
            status=self.connectors[session.evse_id].status,
            power_w=self.meters[session.evse_id].power_w,
            trigger=trigger,
            at=at,
            online=self.online,
            reason=reason,
        )
        with self.store.atomic():
            self.store.enqueue(kind, payload, txn=session.local_id)
            if kind is not Kind.ENDED:
                self._save(session)
        self.listener.queued()

    def _save(self, session: Session) -> None:
        """Saves the running session with its last reading (and the EVSE's register)."""
        session.saved_at = session.booked_until
        with self.store.atomic():
            self.store.save_transaction(session.local_id, session.evse_id, session.to_record())
            self.store.put(f"register.{session.evse_id}", session.meter_wh)

    def _refresh_identification(self, now: float) -> None:
        waiting = [i for i, c in self.connectors.items() if i not in self.sessions]
        evse_id = waiting[0] if waiting else 1
        provisioned = self.config["IdentificationSecret"]
        secret = bytes.fromhex(provisioned) if provisioned else self._own_secret
        code = presence_code(
            secret,
            int(now),
            step_s=self.settings.identification_step_s,
            digits=self.settings.identification_digits,
        )
        status = self.connectors[evse_id].status.value
        url = identification_url(
            self.settings.public_base_url, self.id, evse_id, status=status, code=code
        )
        self.display.show_identification(url)


__all__ = ["Listener", "PendingStart", "Station"]
