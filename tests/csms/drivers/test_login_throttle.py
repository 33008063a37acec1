"""The log-in throttle: per (email, client), per email and per client, bounded, expiring."""

from __future__ import annotations

from pathlib import Path

import pytest

from csms.drivers.errors import TooManyAttempts
from csms.drivers.throttle import LoginThrottle

from ..conftest import LiveCsms, make_settings, serve


def _throttle(now: list[float], **kw: int) -> LoginThrottle:
    return LoginThrottle(max_failures=3, lockout_s=60, window_s=100, clock=lambda: now[0], **kw)


def test_a_pair_locks_after_its_limit_and_unlocks_after_the_lockout() -> None:
    now = [0.0]
    throttle = _throttle(now)
    for _ in range(2):
        throttle.failed("a@x.org", "10.0.0.1")
    throttle.check("a@x.org", "10.0.0.1")  # two failures: still allowed
    throttle.failed("A@X.org ", "10.0.0.1")  # the same email, however it is typed
    with pytest.raises(TooManyAttempts) as locked:
        throttle.check("a@x.org", "10.0.0.1")
    assert locked.value.retry_after_s == 60
    throttle.check("a@x.org", "10.0.0.2")  # the same driver from elsewhere is not locked out
    now[0] = 61
    throttle.check("a@x.org", "10.0.0.1")


def test_failures_outside_the_window_do_not_add_up_and_success_clears() -> None:
    now = [0.0]
    throttle = _throttle(now)
    throttle.failed("b@x.org", "c")
    throttle.failed("b@x.org", "c")
    now[0] = 101  # the window has passed: counting starts again
    throttle.failed("b@x.org", "c")
    throttle.failed("b@x.org", "c")
    throttle.check("b@x.org", "c")
    throttle.succeeded("b@x.org", "c")
    throttle.failed("b@x.org", "c")
    throttle.failed("b@x.org", "c")
    throttle.check("b@x.org", "c")


def test_an_email_guessed_from_many_addresses_and_an_address_trying_many_emails() -> None:
    now = [0.0]
    throttle = _throttle(now)  # email: 4 x 3 = 12 from anywhere; client: 10 x 3 = 30
    for n in range(12):
        throttle.failed("victim@x.org", f"10.0.1.{n}")
    with pytest.raises(TooManyAttempts):
        throttle.check("victim@x.org", "10.0.9.9")
    for n in range(30):
        throttle.failed(f"user{n}@x.org", "10.0.2.1")
    with pytest.raises(TooManyAttempts):
        throttle.check("someone-else@x.org", "10.0.2.1")
    throttle.check("someone-else@x.org", "10.0.2.2")


def test_memory_is_bounded_and_zero_turns_it_off() -> None:
    now = [0.0]
    throttle = _throttle(now, max_entries=50)
    for n in range(1000):
        throttle.failed(f"u{n}@x.org", None)
    assert len(throttle._counts) <= 50
    off = LoginThrottle(max_failures=0, lockout_s=60)
    for _ in range(100):
        off.failed("c@x.org", "c")
    off.check("c@x.org", "c")


async def _failures_until_locked(csms: LiveCsms, spoofed: bool) -> int:
    """Wrong passwords for one email from this machine, each claiming another address in
    X-Forwarded-For when ``spoofed``; how many are answered before the 429."""
    for attempt in range(1, 12):
        headers = {"X-Forwarded-For": f"203.0.113.{attempt}"} if spoofed else {}
        r = await csms.http.post(
            "/api/v1/token",
            data={"username": "v@example.org", "password": "wrong"},
            headers=headers,
        )
        if r.status_code == 429:
            return attempt - 1
        assert r.status_code == 401, r.text
    return 11


async def test_x_forwarded_for_is_believed_only_from_a_named_proxy(tmp_path: Path) -> None:
    async with serve(make_settings(tmp_path, login_max_failures=5)) as csms:
        # not a proxy of ours: the spoofed addresses are ignored, the socket's peer counts
        assert await _failures_until_locked(csms, spoofed=True) == 5
    async with serve(
        make_settings(tmp_path / "2", login_max_failures=5, trusted_proxies="127.0.0.1")
    ) as csms:
        # behind a named proxy every forwarded address is a client of its own
        assert await _failures_until_locked(csms, spoofed=True) == 11


def test_a_known_device_is_not_held_by_the_accounts_lock() -> None:
    now = [0.0]
    throttle = _throttle(now, email_factor=2)
    for address in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        for _ in range(2):
            throttle.failed("victim@example.org", address)
    with pytest.raises(TooManyAttempts):  # six failures from three places lock the account
        throttle.check("victim@example.org", "192.0.2.9")
    throttle.check("victim@example.org", "192.0.2.9", known_device=True)
    for _ in range(3):  # but a known device that guesses is locked like anyone
        throttle.failed("victim@example.org", "192.0.2.9")
    with pytest.raises(TooManyAttempts):
        throttle.check("victim@example.org", "192.0.2.9", known_device=True)


async def test_an_attack_on_an_account_spares_its_owners_device(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, login_max_failures=2, trusted_proxies="127.0.0.1")
    async with serve(settings) as csms:
        http = csms.http
        owner = {"username": "o@example.org", "password": "owner-pw-1"}
        r = await http.post(
            "/api/v1/users", json={"email": owner["username"], "password": "owner-pw-1"}
        )
        assert r.status_code == 201
        r = await http.post("/api/v1/token", data=owner)
        assert r.status_code == 200 and "qrcharge_device" in r.cookies
        device = {"Cookie": f"qrcharge_device={r.cookies['qrcharge_device']}"}
        http.cookies.clear()  # the others below have no device mark
        # someone guesses from nine addresses: after eight (4 x 2) the account is locked
        for i in range(9):
            r = await http.post(
                "/api/v1/token",
                data={**owner, "password": f"guess-{i}"},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            )
        assert r.status_code == 429
        stranger = await http.post("/api/v1/token", data=owner)
        assert stranger.status_code == 429  # a new device waits, even with the password
        phone = await http.post("/api/v1/token", data=owner, headers=device)
        assert phone.status_code == 200  # the owner's phone still signs in
        http.cookies.clear()
        forged = await http.post(
            "/api/v1/token", data=owner, headers={"Cookie": "qrcharge_device=" + "A" * 43}
        )
        assert forged.status_code == 429
