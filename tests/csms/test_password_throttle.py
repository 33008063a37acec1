"""Wrong charger passwords: an address that guesses is held back (429 + Retry-After, no argon2)
while the real charger, from an address of its own, always gets in; the counts are bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from csms.password_throttle import PasswordThrottle, PasswordThrottled

from .conftest import LiveCsms, basic_auth, make_settings, serve

HEARTBEAT = '[2,"hb","Heartbeat",{}]'


def _throttle(now: list[float], **kw: Any) -> PasswordThrottle:
    return PasswordThrottle(max_failures=3, lockout_s=60, window_s=600, clock=lambda: now[0], **kw)


def _held(throttle: PasswordThrottle, charger_id: str, client: str) -> int:
    """0 when the handshake may go on, else its Retry-After."""
    try:
        throttle.check(charger_id, client)
    except PasswordThrottled as held:
        return held.retry_after_s
    return 0


def test_a_pair_is_held_after_its_failures_and_longer_each_time() -> None:
    now = [0.0]
    throttle = _throttle(now)
    for _ in range(3):
        assert _held(throttle, "CP1", "10.0.0.1") == 0
        throttle.failed("CP1", "10.0.0.1")
    assert _held(throttle, "CP1", "10.0.0.1") == 60
    assert _held(throttle, "CP1", "10.0.0.2") == 0  # the charger from elsewhere: not held
    assert _held(throttle, "CP2", "10.0.0.1") == 0  # the address at another charger: neither
    now[0] = 60
    for _ in range(3):
        throttle.failed("CP1", "10.0.0.1")
    assert _held(throttle, "CP1", "10.0.0.1") == 120  # the second hold doubles
    for _ in range(6):
        now[0] += 10_000
        for _ in range(3):
            throttle.failed("CP1", "10.0.0.1")
        assert _held(throttle, "CP1", "10.0.0.1") == 60  # quiet for a window: back to one
    now[0] += 60
    throttle.succeeded("CP1", "10.0.0.1")
    throttle.failed("CP1", "10.0.0.1")
    assert _held(throttle, "CP1", "10.0.0.1") == 0  # the right password cleared the count


def test_the_hold_is_capped() -> None:
    now = [0.0]
    throttle = _throttle(now)
    for _ in range(12):
        for _ in range(3):
            throttle.failed("CP1", "10.0.0.1")
        now[0] += _held(throttle, "CP1", "10.0.0.1")
    for _ in range(3):
        throttle.failed("CP1", "10.0.0.1")
    assert _held(throttle, "CP1", "10.0.0.1") == 16 * 60


def test_guessing_spread_over_addresses_never_holds_an_address_that_did_not_fail() -> None:
    now = [0.0]
    throttle = _throttle(now)  # the charger-wide count: 4 x 3 = 12
    for n in range(12):
        throttle.failed("VICTIM", f"203.0.113.{n}")
    assert _held(throttle, "VICTIM", "198.51.100.7") == 0  # the real charger's address
    throttle.failed("VICTIM", "203.0.113.50")  # a new guesser: one wrong guess, then held
    assert _held(throttle, "VICTIM", "203.0.113.50") == 60
    assert _held(throttle, "VICTIM", "198.51.100.7") == 0


def test_an_address_walking_through_chargers_is_held_but_not_one_retrying() -> None:
    now = [0.0]
    throttle = _throttle(now)  # the client: 10 x 3 = 30 distinct charger ids
    for _ in range(2):  # two misconfigured chargers retrying behind one address
        for n in range(40):
            throttle.failed(f"MIS{n % 2}", "192.0.2.1")
            now[0] += 1
            throttle.succeeded(f"MIS{n % 2}", "192.0.2.1")  # (or their pairs would hold)
    assert _held(throttle, "GOOD", "192.0.2.1") == 0
    for n in range(30):
        throttle.failed(f"CP{n}", "192.0.2.9")
    assert _held(throttle, "ANY", "192.0.2.9") == 60
    assert _held(throttle, "ANY", "192.0.2.10") == 0


def test_memory_is_bounded_and_zero_turns_it_off() -> None:
    now = [0.0]
    throttle = _throttle(now, max_entries=50)
    for n in range(1000):
        throttle.failed(f"CP{n}", f"10.1.{n // 250}.{n % 250}")
    assert len(throttle) <= 50
    off = PasswordThrottle(max_failures=0, lockout_s=60)
    for _ in range(100):
        off.failed("CP1", "10.0.0.1")
    assert _held(off, "CP1", "10.0.0.1") == 0 and len(off) == 0


# --- over real sockets -------------------------------------------------------------------------


async def _handshake(
    csms: LiveCsms, charger_id: str, password: str, address: str
) -> websockets.ClientConnection | InvalidStatus:
    """A handshake from ``address`` (a loopback address of its own): the open connection,
    or the refusal."""
    try:
        return await websockets.connect(
            csms.ws_url(charger_id),
            subprotocols=[Subprotocol("ocpp1.6")],
            additional_headers=basic_auth(charger_id, password),
            local_addr=(address, 0),
            open_timeout=10,
        )
    except InvalidStatus as refused:
        return refused


class _Clock:
    """The app's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def throttled_csms(tmp_path: Path) -> AsyncIterator[LiveCsms]:
    settings = make_settings(tmp_path, charger_auth_max_failures=5, charger_auth_lockout_s=60)
    async with serve(settings, clock=_Clock()) as csms:
        await csms.add_charger("VICTIM")
        yield csms


async def _answers_heartbeat(ws: websockets.ClientConnection) -> bool:
    try:
        await ws.send(HEARTBEAT)
        return '"hb"' in str(await asyncio.wait_for(ws.recv(), 5))
    finally:
        await ws.close()


async def test_a_guessing_address_is_held_without_argon2_and_the_charger_still_connects(
    throttled_csms: LiveCsms,
) -> None:
    csms = throttled_csms
    answers: list[int] = []
    retry_after: set[str] = set()
    for n in range(30):
        refused = await _handshake(csms, "VICTIM", f"guess-{n}", "127.0.0.2")
        assert isinstance(refused, InvalidStatus)
        answers.append(refused.response.status_code)
        if refused.response.status_code == 429:
            retry_after.add(refused.response.headers["Retry-After"])
    assert answers == [401] * 5 + [429] * 25
    assert retry_after == {"60"}  # the app's clock stands still here
    assert csms.ctx.passwords.verifications == 5  # argon2 ran for the first five only
    # the charger itself, with its password, from its own address: in at once
    ws = await _handshake(csms, "VICTIM", "correct-horse-battery", "127.0.0.1")
    assert not isinstance(ws, InvalidStatus)
    assert await _answers_heartbeat(ws)
    # and the guesser's right password is refused too while it is held
    held = await _handshake(csms, "VICTIM", "correct-horse-battery", "127.0.0.2")
    assert isinstance(held, InvalidStatus) and held.response.status_code == 429
    # after the hold, five more guesses, then a hold twice as long
    clock: _Clock = csms.app.state.ctx.clock
    clock.now += timedelta(seconds=60)
    again = [await _handshake(csms, "VICTIM", f"again-{n}", "127.0.0.2") for n in range(6)]
    statuses = [a.response.status_code for a in again if isinstance(a, InvalidStatus)]
    assert statuses == [401] * 5 + [429]
    assert isinstance(again[-1], InvalidStatus)
    assert again[-1].response.headers["Retry-After"] == "120"


async def test_guessing_from_many_addresses_leaves_the_real_charger_in(
    throttled_csms: LiveCsms,
) -> None:
    """Forty addresses guess at one charger: after twenty wrong guesses from anywhere, each
    further address gets one; the charger, from an address without failures, connects at
    once."""
    csms = throttled_csms
    answers = []
    for n in range(40):
        for attempt in range(2):
            refused = await _handshake(csms, "VICTIM", f"guess-{n}-{attempt}", f"127.0.1.{n + 1}")
            assert isinstance(refused, InvalidStatus)
            answers.append(refused.response.status_code)
    assert answers[:20] == [401] * 20  # ten addresses, two guesses each: twenty in all
    assert answers[20:] == [401, 429] * 30  # from then on one guess per address
    assert csms.ctx.passwords.verifications == 50
    ws = await _handshake(csms, "VICTIM", "correct-horse-battery", "127.0.0.1")
    assert not isinstance(ws, InvalidStatus)
    assert await _answers_heartbeat(ws)


async def test_a_reconnect_storm_behind_one_address_is_not_held(throttled_csms: LiveCsms) -> None:
    """Forty chargers behind one address reconnect at once, three of them with a wrong
    password that they retry: the three are held, none of the forty is."""
    csms = throttled_csms
    good = [f"FLEET-{n:02d}" for n in range(40)]
    wrong = [f"STALE-{n}" for n in range(3)]
    for charger_id in good + wrong:
        await csms.add_charger(charger_id)

    async def stale(charger_id: str) -> list[int]:
        answers = []
        for _ in range(8):
            refused = await _handshake(csms, charger_id, "an-old-password", "127.0.0.3")
            assert isinstance(refused, InvalidStatus)
            answers.append(refused.response.status_code)
        return answers

    async def fleet(charger_id: str) -> bool:
        ws = await _handshake(csms, charger_id, "correct-horse-battery", "127.0.0.3")
        assert not isinstance(ws, InvalidStatus), ws.response.status_code
        return await _answers_heartbeat(ws)

    stale_answers = asyncio.gather(*(stale(c) for c in wrong))
    assert all(await asyncio.gather(*(fleet(c) for c in good)))
    assert await stale_answers == [[401] * 5 + [429] * 3] * 3
