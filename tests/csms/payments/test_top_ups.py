"""Top-ups in two phases around the payment provider: a provider that refuses, goes silent,
times out after taking the money, answers twice, or outlives a crash of the CSMS; the
sweeper resolves what was left open. Nothing is lost or doubled (the ledger invariants run
after every test), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from config.settings import Settings
from csms.drivers.accounts import create_user
from csms.payments import ledger, top_ups
from csms.payments.errors import (
    IdempotencyConflict,
    InvalidKey,
    PaymentDeclined,
    ProviderError,
    ProviderUnavailable,
)
from csms.payments.provider import SANDBOX_DECLINE, SandboxProvider
from csms.payments.top_ups import AttemptState, sweep, top_up
from csms.ports import PspResult
from csms.store import ledger as store_ledger
from csms.store import psp_attempts
from csms.store.db import Database
from csms.store.models_money import LedgerTransfer, PspAttempt, PspOperation
from csms.store.units_of_work import run_sync

from ..conftest import T0, Clock, make_settings, open_api
from ..ledger_invariants import assert_ledger_consistent

AFTER_S = 600
LATER = T0 + timedelta(seconds=AFTER_S + 1)
TIMEOUT_S = 0.2


class Crash(BaseException):
    """The CSMS process dies at this point (nothing after it runs)."""


@dataclass
class FakePsp:
    """A payment provider whose books are a sandbox (what the PSP really did) and whose wire
    misbehaves on our side, one scripted fault per call:

    * ``refuse``: the provider refuses (ProviderError), nothing moves;
    * ``decline``: the provider answers ``declined``, nothing moves;
    * ``drop``: the request never reaches the provider (ProviderUnavailable);
    * ``hang``: the provider does it, the answer never comes (our timeout fires);
    * ``crash``: the provider does it and answers, the CSMS dies before recording it;
    * ``slow``: the provider does it and answers late, but within the timeout;
    * ``down`` (lookups): the provider cannot be asked now.
    """

    books: SandboxProvider = field(default_factory=lambda: SandboxProvider(name="fake-psp"))
    faults: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    calls: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.books.name

    def script(self, call: str, *faults: str) -> None:
        self.faults[call].extend(faults)

    async def _wire(self, call: str, done: Callable[[], Awaitable[PspResult]]) -> PspResult:
        self.calls.append(call)
        fault = self.faults[call].pop(0) if self.faults[call] else None
        if fault == "refuse":
            raise ProviderError(f"{call} refused")
        if fault == "drop":
            raise ProviderUnavailable(f"{call}: connection reset")
        if fault == "decline":
            return PspResult(call, f"declined-{len(self.calls)}", "declined", 0, "CNY")
        result = await done()
        if fault == "hang":
            await asyncio.sleep(60)
        if fault == "crash":
            raise Crash(call)
        if fault == "slow":
            await asyncio.sleep(TIMEOUT_S / 4)
        return result

    async def authorize(self, *, amount: int, currency: str, method: str, key: str) -> PspResult:
        return await self._wire(
            "authorize",
            lambda: self.books.authorize(amount=amount, currency=currency, method=method, key=key),
        )

    async def capture(self, *, authorization: str, amount: int, key: str) -> PspResult:
        return await self._wire(
            "capture",
            lambda: self.books.capture(authorization=authorization, amount=amount, key=key),
        )

    async def void(self, *, authorization: str, key: str) -> PspResult:
        return await self._wire(
            "void", lambda: self.books.void(authorization=authorization, key=key)
        )

    async def refund(self, *, capture: str, amount: int, key: str) -> PspResult:
        return await self._wire(
            "refund", lambda: self.books.refund(capture=capture, amount=amount, key=key)
        )

    async def lookup(self, key: str) -> PspResult | None:
        self.calls.append("lookup")
        if self.faults["lookup"] and self.faults["lookup"].pop(0) == "down":
            raise ProviderUnavailable("lookup: 503")
        return await self.books.lookup(key)

    def captured(self) -> int:
        """What the provider took from the driver's card, in all."""
        return sum(r.amount for _, r in self.books._by_key.values() if r.kind == "capture")


async def new_driver(db: Database, email: str = "d@example.org") -> int:
    async with db.session() as session:
        user = await create_user(session, email=email, password_hash="x", currency="CNY")
        await session.commit()
        assert user.id is not None
        return user.id


async def pay(
    db: Database, psp: FakePsp | SandboxProvider, uid: int, key: str, amount: int = 1000
) -> top_ups.TopUp:
    return await top_up(
        db, user_id=uid, amount=amount, key=key, provider=psp, now=T0, timeout_s=TIMEOUT_S
    )


async def books(db: Database, uid: int) -> tuple[int, list[tuple[str, int]], dict[str, str]]:
    """The wallet balance, its top-up transfers (key, amount) and each attempt's state."""
    async with db.session() as session:
        transfers = await session.exec(
            select(LedgerTransfer).where(col(LedgerTransfer.kind) == "top_up")
        )
        attempts = await session.exec(select(PspAttempt))
        await assert_ledger_consistent(session)
        return (
            await ledger.available(session, uid),
            sorted((t.idempotency_key, t.amount) for t in transfers.all()),
            {a.idempotency_key: a.state for a in attempts.all()},
        )


async def test_a_top_up_goes_through_the_provider_once_per_key(db: Database) -> None:
    uid, psp = await new_driver(db), SandboxProvider()
    first = await pay(db, psp, uid, "k1", 1500)
    again = await pay(db, psp, uid, "k1", 1500)
    assert first.state == again.state == AttemptState.SUCCEEDED
    assert first.transfer_id == again.transfer_id is not None
    async with db.session() as session:
        ops = (await session.exec(select(PspOperation).order_by(col(PspOperation.id)))).all()
    assert [(o.kind, o.status, o.amount, o.idempotency_key) for o in ops] == [
        ("authorize", "succeeded", 1500, "k1:authorize"),
        ("capture", "succeeded", 1500, "k1:capture"),
    ]
    with pytest.raises(IdempotencyConflict):
        await pay(db, psp, uid, "k1", 999)
    with pytest.raises(InvalidKey):
        await pay(db, psp, uid, "k" * 200)
    assert await books(db, uid) == (1500, [("k1", 1500)], {"k1": "succeeded"})


@dataclass
class Probing(SandboxProvider):
    """A provider that, while it captures, writes the wallet lock and the attempt row from
    another connection: it would wait (and time out) if the top-up held a transaction."""

    db: Database | None = None
    probed: int = 0

    async def capture(self, *, authorization: str, amount: int, key: str) -> PspResult:
        assert self.db is not None
        async with asyncio.timeout(2), self.db.session() as session:
            # the pooled async connection, not the database thread: another writer
            await run_sync(session, lambda s: self._probe(s, key.removesuffix(":capture")))
            await session.commit()
        self.probed += 1
        return await super().capture(authorization=authorization, amount=amount, key=key)

    @staticmethod
    def _probe(session: Session, key: str) -> None:
        attempt = psp_attempts.by_key(session, key)
        assert attempt is not None and attempt.id is not None
        psp_attempts.touch(session, attempt_id=attempt.id, states=["intent"], now=T0)
        assert store_ledger.lock_wallet(session, user_id=attempt.user_id) is not None


async def test_the_provider_is_called_with_no_transaction_open(db: Database) -> None:
    uid = await new_driver(db)
    psp = Probing(db=db)
    assert (await pay(db, psp, uid, "p")).state == AttemptState.SUCCEEDED
    assert psp.probed == 1
    assert await books(db, uid) == (1000, [("p", 1000)], {"p": "succeeded"})


async def test_a_refusal_moves_nothing_and_stays_refused(db: Database) -> None:
    uid, psp = await new_driver(db), FakePsp()
    with pytest.raises(PaymentDeclined):
        await top_up(
            db, user_id=uid, amount=500, key="d", provider=psp, now=T0, method=SANDBOX_DECLINE
        )
    psp.script("capture", "refuse")
    with pytest.raises(PaymentDeclined):
        await pay(db, psp, uid, "r")
    calls = len(psp.calls)
    with pytest.raises(PaymentDeclined):  # the recorded refusal answers the repeat
        await pay(db, psp, uid, "d", 500)
    assert len(psp.calls) == calls
    assert await books(db, uid) == (0, [], {"d": "failed", "r": "failed"})
    async with db.session() as session:
        ops = (await session.exec(select(PspOperation.idempotency_key, PspOperation.status))).all()
    assert sorted(ops) == [
        ("d:authorize", "declined"),
        ("r:authorize", "succeeded"),
        ("r:void", "succeeded"),  # the capture was refused: the card is not left held
    ]
    assert not _held(psp)


def _held(psp: FakePsp) -> list[str]:
    """The provider's authorizations still holding the driver's money (neither captured nor
    voided)."""
    return [ref for ref, a in psp.books._auths.items() if not (a.captured or a.voided)]


async def test_a_declined_capture_voids_the_authorization_now_or_by_the_sweeper(
    db: Database,
) -> None:
    uid, psp = await new_driver(db), FakePsp()
    psp.script("capture", "decline", "decline")
    with pytest.raises(PaymentDeclined):
        await pay(db, psp, uid, "now")
    assert psp.calls[-1] == "void" and not _held(psp)

    psp.script("void", "drop")  # declined again, and the void's answer is lost
    later = await pay(db, psp, uid, "later")
    assert later.state == AttemptState.UNKNOWN and len(_held(psp)) == 1
    assert await sweep(db, provider=psp, now=LATER, after_s=AFTER_S) == [later.attempt_id]
    assert not _held(psp) and psp.captured() == 0
    assert await books(db, uid) == (0, [], {"now": "failed", "later": "failed"})


async def test_a_lost_answer_is_pending_until_the_sweeper_asks(db: Database) -> None:
    uid, psp = await new_driver(db), FakePsp()
    psp.script("capture", "hang")  # taken, answer lost
    taken = await pay(db, psp, uid, "taken")
    psp.script("authorize", "drop")  # never reached the provider
    lost = await pay(db, psp, uid, "lost")
    assert taken.state == lost.state == AttemptState.UNKNOWN
    assert taken.transfer_id is None and taken.detail == "no answer"
    assert lost.detail == "ProviderUnavailable: authorize: connection reset"
    assert await books(db, uid) == (0, [], {"taken": "unknown", "lost": "unknown"})

    assert await sweep(db, provider=psp, now=T0, after_s=AFTER_S) == []  # too early
    resolved = await sweep(db, provider=psp, now=LATER, after_s=AFTER_S)
    assert sorted(resolved) == sorted([taken.attempt_id, lost.attempt_id])
    assert await books(db, uid) == (1000, [("taken", 1000)], {"taken": "succeeded",
                                                              "lost": "failed"})  # fmt: skip
    assert psp.captured() == 1000
    assert await sweep(db, provider=psp, now=LATER, after_s=AFTER_S) == []
    assert (await pay(db, psp, uid, "taken")).state == AttemptState.SUCCEEDED


async def test_a_crash_after_the_provider_answered_is_completed_once(db: Database) -> None:
    uid, psp = await new_driver(db), FakePsp()
    psp.script("capture", "crash")
    with pytest.raises(Crash):
        await pay(db, psp, uid, "c")
    psp.script("authorize", "crash")  # authorized, the capture never sent
    with pytest.raises(Crash):
        await pay(db, psp, uid, "a")
    assert await books(db, uid) == (0, [], {"c": "intent", "a": "intent"})
    psp.script("lookup", "down")  # the provider cannot say about the first one now
    assert len(await sweep(db, provider=psp, now=LATER, after_s=AFTER_S)) == 1
    assert await books(db, uid) == (0, [], {"c": "unknown", "a": "failed"})
    assert await sweep(db, provider=psp, now=LATER, after_s=AFTER_S) == []  # asked again later
    even_later = LATER + timedelta(seconds=AFTER_S + 1)
    assert len(await sweep(db, provider=psp, now=even_later, after_s=AFTER_S)) == 1
    assert await books(db, uid) == (1000, [("c", 1000)], {"c": "succeeded", "a": "failed"})
    assert psp.captured() == 1000
    assert psp.calls.count("void") == 1  # the authorization that was never captured


async def test_a_repeat_drives_an_open_attempt_to_its_end(db: Database) -> None:
    uid, psp = await new_driver(db), FakePsp()
    psp.script("capture", "hang")
    assert (await pay(db, psp, uid, "k")).state == AttemptState.UNKNOWN
    again = await pay(db, psp, uid, "k")  # the driver retries: the provider answers the key
    assert again.state == AttemptState.SUCCEEDED
    assert await sweep(db, provider=psp, now=LATER, after_s=AFTER_S) == []
    assert await books(db, uid) == (1000, [("k", 1000)], {"k": "succeeded"})


async def test_two_answers_for_one_key_post_once(db: Database) -> None:
    """Concurrent requests with one key: the provider answers each (the same capture), and
    only one of them posts."""
    uid, psp = await new_driver(db), FakePsp()
    psp.script("capture", "slow", "slow", "slow", "slow")
    results = await asyncio.gather(*(pay(db, psp, uid, "twice") for _ in range(4)))
    assert {r.state for r in results} == {AttemptState.SUCCEEDED}
    assert len({r.transfer_id for r in results}) == 1
    assert psp.captured() == 1000
    assert await books(db, uid) == (1000, [("twice", 1000)], {"twice": "succeeded"})


async def test_two_sweepers_complete_each_attempt_once(db: Database) -> None:
    uid, psp = await new_driver(db), FakePsp()
    psp.script("capture", *["hang"] * 6)
    for n in range(6):
        assert (await pay(db, psp, uid, f"s{n}", 100 + n)).state == AttemptState.UNKNOWN
    first, second = await asyncio.gather(
        sweep(db, provider=psp, now=LATER, after_s=AFTER_S),
        sweep(db, provider=psp, now=LATER, after_s=AFTER_S),
    )
    assert not set(first) & set(second) and len(first) + len(second) == 6
    balance, transfers, states = await books(db, uid)
    assert balance == psp.captured() == sum(100 + n for n in range(6))
    assert len(transfers) == 6 and set(states.values()) == {"succeeded"}


async def test_the_sweeper_leaves_another_providers_attempts(db: Database) -> None:
    uid, psp = await new_driver(db), FakePsp()
    psp.script("capture", "hang")
    await pay(db, psp, uid, "k")
    other = SandboxProvider(name="other")
    assert await sweep(db, provider=other, now=LATER, after_s=AFTER_S) == []
    assert len(await sweep(db, provider=psp, now=LATER, after_s=AFTER_S)) == 1


async def test_another_providers_open_attempts_do_not_hold_up_the_sweeper(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attempts left by a provider no longer in use fill no batch of the current one's."""
    monkeypatch.setattr(top_ups, "SWEEP_BATCH", 1)
    uid, psp = await new_driver(db), FakePsp()
    old = FakePsp(books=SandboxProvider(name="old-psp"))
    old.script("capture", "hang")
    await pay(db, old, uid, "old")  # the oldest open attempt, made through another provider
    psp.script("capture", "hang")
    await pay(db, psp, uid, "new")
    assert len(await sweep(db, provider=psp, now=LATER, after_s=AFTER_S)) == 1


@pytest.fixture
def money_settings(tmp_path: Path, db_url: str) -> Settings:
    """The app's settings with a provider timeout short enough to wait for."""
    return make_settings(tmp_path, database_url=db_url, psp_timeout_s=TIMEOUT_S)


async def test_over_http_success_refusal_and_pending_then_resolved(
    money_settings: Settings, clock: Clock
) -> None:
    psp = FakePsp()
    async with open_api(money_settings, clock, payment_provider=psp) as api:
        uid, auth = await api.driver("ann@example.org")
        _, other = await api.driver("bob@example.org")
        url = "/api/v1/me/wallet/top-ups"

        ok = await api.http.post(url, json={"amount": 700}, headers=auth)
        assert ok.status_code == 201 and ok.json()["state"] == "succeeded"
        assert ok.json()["balance"] == 700 and ok.json()["transfer_id"] is not None

        psp.script("capture", "refuse")
        refused = await api.http.post(url, json={"amount": 300}, headers=auth)
        assert refused.status_code == 402 and refused.json()["code"] == "payment_declined"

        psp.script("capture", "hang")
        pending = await api.http.post(url, json={"amount": 500}, headers=auth)
        assert pending.status_code == 202, pending.text
        body = pending.json()
        assert (body["state"], body["transfer_id"], body["balance"]) == ("pending", None, 700)
        status_url = f"{url}/{body['attempt_id']}"
        assert (await api.http.get(status_url, headers=auth)).json()["state"] == "pending"
        assert (await api.http.get(status_url, headers=other)).status_code == 404
        assert (await api.http.get(f"{url}/{10**6}", headers=auth)).status_code == 404

        reaper = api.app.state.ctx.reaper
        assert (await reaper.reap_once(api.clock.now)).resolved == []  # not yet the sweeper's
        later = api.clock.now + timedelta(seconds=api.settings.psp_sweep_after_s + 1)
        assert (await reaper.reap_once(later)).resolved == [body["attempt_id"]]
        done = (await api.http.get(status_url, headers=auth)).json()
        assert (done["state"], done["balance"]) == ("succeeded", 1200)
        assert done["transfer_id"] is not None
        assert psp.captured() == 1200
        me = (await api.http.get("/api/v1/me", headers=auth)).json()
        assert me["balance"] == 1200 and uid > 0
