"""Wallet top-ups through the payment provider, in two phases around the provider call.

A top-up is an *attempt* (``psp_attempts``), unique by its idempotency key:

1. one unit of work records the intent (or finds the attempt a first request made);
2. the provider authorizes and captures, each call under the attempt's key with a suffix,
   with no database transaction open and within ``timeout_s``;
3. one unit of work records the outcome: on success the attempt moves to ``succeeded`` and the
   ``top_up`` transfer is posted, exactly once (the move is a conditional update, the
   transfer's key is unique); a definite refusal moves it to ``failed``; a lost answer (a
   timeout, a connection error) to ``unknown``.

An attempt left ``intent`` (the process died between the phases) or ``unknown`` is resolved
by :func:`sweep` once nobody worked on it for a while: it asks the provider what the keys did
(:meth:`~csms.payments.provider.PaymentProvider.lookup`) and finishes it the same way; an
authorization that was never captured is voided. A repeat of the request with the same key
drives an open attempt again (every provider call is idempotent by key), so a driver's retry
resolves it too.

Phases 1 and 3 are synchronous units of work (:func:`~csms.store.units_of_work.in_worker`:
in the database thread on SQLite), like every other caller of the postings; phase 2 is the
only one that awaits the provider.

The attempt lifecycle is the table :data:`ATTEMPT_TRANSITIONS`::

    intent  --succeed--> succeeded      unknown --succeed--> succeeded
    intent  --fail-----> failed         unknown --fail-----> failed
    intent  --lose-----> unknown        unknown --lose-----> unknown
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.errors import IllegalTransition
from csms.payments import ledger, postings
from csms.payments.errors import (
    IdempotencyConflict,
    InvalidKey,
    PaymentDeclined,
    ProviderError,
    ProviderUnavailable,
)
from csms.payments.ledger import Leg, wallet_account
from csms.ports import PaymentProvider, PspResult
from csms.store import psp_attempts as store
from csms.store.db import Database
from csms.store.models_money import KEY_MAX, PspAttempt
from csms.store.units_of_work import in_worker, run_sync

__all__ = [
    "ATTEMPT_TRANSITIONS",
    "AttemptEvent",
    "AttemptState",
    "TopUp",
    "attempt_of",
    "sweep",
    "top_up",
]

LOG = logging.getLogger("csms.payments.top_ups")
KIND = "top_up"
SUFFIX_MAX = len(":authorize")
SWEEP_BATCH = 100


class AttemptState(StrEnum):
    INTENT = "intent"  # recorded; the provider is being (or was about to be) called
    SUCCEEDED = "succeeded"  # captured and posted to the ledger
    FAILED = "failed"  # the provider refused: nothing moved
    UNKNOWN = "unknown"  # the answer was lost: the sweeper asks the provider


class AttemptEvent(StrEnum):
    SUCCEED = "succeed"
    FAIL = "fail"
    LOSE = "lose"  # no answer, or one that could not be trusted


A, AE = AttemptState, AttemptEvent
ATTEMPT_TRANSITIONS: Final[dict[AttemptState, dict[AttemptEvent, AttemptState]]] = {
    A.INTENT: {AE.SUCCEED: A.SUCCEEDED, AE.FAIL: A.FAILED, AE.LOSE: A.UNKNOWN},
    A.UNKNOWN: {AE.SUCCEED: A.SUCCEEDED, AE.FAIL: A.FAILED, AE.LOSE: A.UNKNOWN},
    A.SUCCEEDED: {},
    A.FAILED: {},
}
OPEN: Final = frozenset(s for s, events in ATTEMPT_TRANSITIONS.items() if events)


def next_attempt_state(state: AttemptState, event: AttemptEvent) -> AttemptState:
    """The state after ``event``; IllegalTransition if ``state`` does not take it."""
    try:
        return ATTEMPT_TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition("psp attempt", state, event) from None


def _accepting(event: AttemptEvent) -> frozenset[str]:
    return frozenset(s.value for s, events in ATTEMPT_TRANSITIONS.items() if event in events)


@dataclass(frozen=True, slots=True)
class TopUp:
    """Where a top-up attempt stands."""

    attempt_id: int
    state: AttemptState
    amount: int
    transfer_id: int | None
    detail: str

    @classmethod
    def of(cls, row: PspAttempt) -> TopUp:
        assert row.id is not None
        return cls(row.id, AttemptState(row.state), row.amount, row.transfer_id, row.detail)


@dataclass(frozen=True, slots=True)
class _Answer:
    """What phase 2 (or the sweeper) learnt: the event and the provider results, by key."""

    event: AttemptEvent
    results: tuple[tuple[str, PspResult], ...] = ()
    detail: str = ""


def _capture_of(results: tuple[tuple[str, PspResult], ...]) -> PspResult | None:
    return next((r for _, r in results if r.kind == "capture"), None)


def _keys(key: str) -> tuple[str, str, str]:
    return f"{key}:authorize", f"{key}:capture", f"{key}:void"


async def top_up(
    db: Database,
    *,
    user_id: int,
    amount: int,
    key: str,
    provider: PaymentProvider,
    now: datetime,
    method: str = "sandbox",
    timeout_s: float = 30.0,
) -> TopUp:
    """Adds ``amount`` to the wallet through ``provider``, in the three phases above.

    Returns the attempt: ``succeeded`` (with its transfer) or still open (``intent`` or
    ``unknown``: the sweeper or a repeat finishes it). A refusal raises PaymentDeclined, now
    and for every repeat of ``key``; the same key for another amount or driver raises
    IdempotencyConflict.
    """
    ledger.check_amount(amount, positive=True)
    if not isinstance(key, str) or not 1 <= len(key) <= KEY_MAX - SUFFIX_MAX:
        raise InvalidKey(f"a top-up's key is a string of 1..{KEY_MAX - SUFFIX_MAX} characters")

    def intent(session: Session) -> PspAttempt:
        return _intent(
            session, user_id=user_id, amount=amount, key=key, provider=provider.name,
            method=method, now=now,
        )  # fmt: skip

    attempt = await in_worker(db, intent)
    if attempt.state in OPEN:
        answer = await _call(provider, attempt, timeout_s)
        attempt = await _finish(db, provider.name, attempt, answer, now)
    if attempt.state == AttemptState.FAILED:
        raise PaymentDeclined(f"top-up {attempt.id} was refused: {attempt.detail}")
    return TopUp.of(attempt)


def _intent(
    session: Session,
    *,
    user_id: int,
    amount: int,
    key: str,
    provider: str,
    method: str,
    now: datetime,
) -> PspAttempt:
    """Phase 1: the attempt of ``key``, new or found (then checked to be the same top-up and,
    if still open, marked as being worked on now).

    The key is looked up in the ledger under the wallet lock, as the posting will
    (:func:`~csms.payments.postings.begin`): UnknownWallet without a wallet,
    IdempotencyConflict if the key posted another operation."""
    begun = postings.begin(
        session, key=key, kind="top_up", user_id=user_id, order_id=None, amount=amount
    )
    attempt = store.create(
        session, key=key, kind=KIND, provider=provider, user_id=user_id, amount=amount,
        currency=begun.currency, method=method,
        # a top-up posted before attempts were recorded: its attempt is born succeeded
        state=(AttemptState.SUCCEEDED if begun.done is not None else AttemptState.INTENT).value,
        transfer_id=begun.done, now=now,
    )  # fmt: skip
    if (attempt.kind, attempt.user_id, attempt.amount) != (KIND, user_id, amount):
        raise IdempotencyConflict(
            key, f"{attempt.kind} of {attempt.amount} (user {attempt.user_id})"
        )
    if attempt.state in OPEN:  # new, or a repeat that drives it again: not the sweeper's yet
        assert attempt.id is not None
        store.touch(session, attempt_id=attempt.id, states=OPEN, now=now)
    return attempt


async def _call(provider: PaymentProvider, attempt: PspAttempt, timeout_s: float) -> _Answer:
    """Phase 2: authorize and capture, no transaction open; a lost answer is ``LOSE``.

    A capture refused or declined after the authorization succeeded voids the authorization
    at once, so the driver's card is not left held; if the void's answer is lost the attempt
    is ``LOSE`` and the sweeper voids it."""
    auth_key, capture_key, void_key = _keys(attempt.idempotency_key)
    results: list[tuple[str, PspResult]] = []
    try:
        async with asyncio.timeout(timeout_s):
            auth = await provider.authorize(
                amount=attempt.amount, currency=attempt.currency, method=attempt.method,
                key=auth_key,
            )  # fmt: skip
            results.append((auth_key, auth))
            if auth.status != "succeeded":
                return _Answer(AttemptEvent.FAIL, tuple(results), "declined by the provider")
            refusal = None
            try:
                captured = await provider.capture(
                    authorization=auth.reference, amount=attempt.amount, key=capture_key
                )
                results.append((capture_key, captured))
                if captured.status != "succeeded":
                    refusal = "capture declined by the provider"
            except ProviderUnavailable:
                raise
            except ProviderError as exc:
                refusal = _reason(exc, "capture refused")
            if refusal is not None:
                void = await provider.void(authorization=auth.reference, key=void_key)
                results.append((void_key, void))
                return _Answer(AttemptEvent.FAIL, tuple(results), f"{refusal}: voided")
    except (ProviderUnavailable, TimeoutError) as exc:
        return _Answer(AttemptEvent.LOSE, tuple(results), _reason(exc, "no answer"))
    except ProviderError as exc:
        return _Answer(AttemptEvent.FAIL, tuple(results), _reason(exc, "refused"))
    except Exception as exc:  # an adapter's bug or an unexpected error: the outcome is unknown
        LOG.exception("provider call of top-up attempt %s failed", attempt.id)
        return _Answer(AttemptEvent.LOSE, tuple(results), _reason(exc, "provider error"))
    return _judge(attempt, tuple(results))


def _judge(attempt: PspAttempt, results: tuple[tuple[str, PspResult], ...]) -> _Answer:
    """SUCCEED if the capture matches the attempt; FAIL if declined; LOSE (for the operator
    and the sweeper) if the provider answered for another amount or currency."""
    captured = _capture_of(results)
    assert captured is not None
    if captured.status != "succeeded":
        return _Answer(AttemptEvent.FAIL, results, "capture declined by the provider")
    if (captured.amount, captured.currency) != (attempt.amount, attempt.currency):
        LOG.error(
            "top-up attempt %s: the provider captured %s %s, not %s %s",
            attempt.id, captured.amount, captured.currency, attempt.amount, attempt.currency,
        )  # fmt: skip
        return _Answer(AttemptEvent.LOSE, (), "the provider captured another amount")
    return _Answer(AttemptEvent.SUCCEED, results)


def _reason(exc: BaseException, fallback: str) -> str:
    return f"{type(exc).__name__}: {exc}"[:200] if str(exc) else fallback


async def _finish(
    db: Database, provider: str, attempt: PspAttempt, answer: _Answer, now: datetime
) -> PspAttempt:
    """Phase 3: records the outcome in one unit of work; the attempt as it then stands."""

    def work(session: Session) -> PspAttempt:
        _record_outcome(session, provider, attempt, answer, now)
        assert attempt.id is not None
        found = store.get(session, attempt.id)
        assert found is not None
        return found

    return await in_worker(db, work)


def _record_outcome(
    session: Session, provider: str, attempt: PspAttempt, answer: _Answer, now: datetime
) -> bool:
    """Moves the attempt by ``answer``'s event if it is still open, records the provider's
    results and, on success, posts the top-up; whether this call was the one that moved it."""
    assert attempt.id is not None
    captured = _capture_of(answer.results)
    moved = store.move(
        session,
        attempt_id=attempt.id,
        from_states=_accepting(answer.event),
        to_state=next_attempt_state(AttemptState(attempt.state), answer.event).value,
        now=now,
        reference=captured.reference if captured is not None else None,
        detail=answer.detail,
    )
    if not moved or answer.event == AttemptEvent.LOSE:
        return moved  # finished by another request or sweeper; or nothing to record yet
    ops: dict[str, int] = {}
    for k, r in answer.results:
        ops[k] = store.record_operation(
            session, provider=provider, kind=r.kind, key=k, status=r.status, amount=r.amount,
            currency=r.currency, reference=r.reference, user_id=attempt.user_id, now=now,
        )  # fmt: skip
    if answer.event == AttemptEvent.SUCCEED:
        op_id = ops[_keys(attempt.idempotency_key)[1]]
        transfer_id = _post(session, attempt, provider, op_id)
        store.set_transfer(session, attempt_id=attempt.id, transfer_id=transfer_id)
    return True


def _post(session: Session, attempt: PspAttempt, provider: str, operation_id: int) -> int:
    """Posts ``psp:{provider} -> wallet:{user}`` under the wallet lock, once per key."""
    begun = postings.begin(
        session, key=attempt.idempotency_key, kind="top_up", user_id=attempt.user_id,
        order_id=None, amount=attempt.amount,
    )  # fmt: skip
    if begun.done is not None:
        return begun.done
    return ledger.post(
        session,
        key=attempt.idempotency_key,
        kind="top_up",
        legs=(
            Leg(ledger.psp_account(provider), "psp", -attempt.amount),
            Leg(wallet_account(attempt.user_id), "available", attempt.amount, attempt.user_id),
        ),
        currency=begun.currency,
        user_id=attempt.user_id,
        psp_operation_id=operation_id,
    )


async def attempt_of(session: AsyncSession, *, attempt_id: int, user_id: int) -> TopUp | None:
    """The driver's own top-up attempt (None for another driver's or an unknown id); a read
    on the route's session."""
    row = await run_sync(session, lambda s: store.get(s, attempt_id))
    if row is None or row.user_id != user_id or row.kind != KIND:
        return None
    return TopUp.of(row)


async def sweep(
    db: Database,
    *,
    provider: PaymentProvider,
    now: datetime,
    after_s: float,
    timeout_s: float = 30.0,
) -> list[int]:
    """Resolves the top-ups left open (``intent`` or ``unknown``) and untouched for
    ``after_s``: asks ``provider`` what their keys did and finishes them; returns the ids of
    the attempts this call finished. An attempt the provider cannot answer for stays open,
    asked again once it was left alone for ``after_s`` more."""
    before = now - timedelta(seconds=after_s)

    def candidates(session: Session) -> list[PspAttempt]:
        return store.stale(
            session, provider=provider.name, states=OPEN, before=before, limit=SWEEP_BATCH
        )

    finished: list[int] = []
    for attempt in await in_worker(db, candidates):
        answer = await _ask(provider, attempt, timeout_s)
        # LOSE (the provider could not say, or said what the operator must see) records it
        # as unknown from now: asked again after another after_s, behind the others
        moved = await in_worker(db, _recorder(provider.name, attempt, answer, now))
        if moved and answer.event != AttemptEvent.LOSE:
            assert attempt.id is not None
            finished.append(attempt.id)
            LOG.info("top-up attempt %s resolved: %s", attempt.id, answer.event.value)
    return finished


def _recorder(
    provider: str, attempt: PspAttempt, answer: _Answer, now: datetime
) -> Callable[[Session], bool]:
    return lambda session: _record_outcome(session, provider, attempt, answer, now)


async def _ask(provider: PaymentProvider, attempt: PspAttempt, timeout_s: float) -> _Answer:
    """What the provider says the attempt's keys did, as the answer to record (LOSE if it
    could not say: the attempt stays open)."""
    auth_key, capture_key, void_key = _keys(attempt.idempotency_key)
    try:
        async with asyncio.timeout(timeout_s):
            captured = await provider.lookup(capture_key)
            auth = await provider.lookup(auth_key)
            results = tuple((k, r) for k, r in ((auth_key, auth), (capture_key, captured)) if r)
            if captured is not None and captured.status == "succeeded":
                return _judge(attempt, results)
            if auth is None:
                return _Answer(AttemptEvent.FAIL, results, "the provider never received it")
            if auth.status != "succeeded":
                return _Answer(AttemptEvent.FAIL, results, "declined by the provider")
            # authorized, never captured: give the driver's money back, then it failed
            void = await provider.void(authorization=auth.reference, key=void_key)
            return _Answer(
                AttemptEvent.FAIL, (*results, (void_key, void)), "authorized, not captured: voided"
            )
    except Exception as exc:
        LOG.warning("top-up attempt %s: the provider could not say what happened", attempt.id,
                    exc_info=True)  # fmt: skip
        return _Answer(AttemptEvent.LOSE, (), _reason(exc, "the provider could not say"))
