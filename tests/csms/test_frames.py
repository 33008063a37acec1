"""Frame parsing without sockets, and the password verifier's cache."""

from __future__ import annotations

import asyncio

import pytest
from ocpp.messages import Call, CallError, CallResult

from csms.passwords import PasswordVerifier, VerifierOverloaded, hash_password
from csms.protocol.frames import FrameError, error_code_for, parse_frame, sniff_unique_id


def test_valid_frames() -> None:
    call = parse_frame('[2,"a","Heartbeat",{}]')
    assert isinstance(call, Call) and call.action == "Heartbeat"
    assert isinstance(parse_frame('[3,"a",{"x":1}]'), CallResult)
    assert isinstance(parse_frame('[4,"a","GenericError","",{}]'), CallError)


@pytest.mark.parametrize(
    ("frame", "uid", "code", "reply"),
    [
        ("nope", None, "RpcFrameworkError", True),
        ('[2,"x"', "x", "RpcFrameworkError", True),
        ("[]", None, "RpcFrameworkError", True),
        ('[2,17,"Heartbeat",{}]', None, "RpcFrameworkError", True),
        ('[2,"' + "u" * 37 + '","Heartbeat",{}]', None, "RpcFrameworkError", True),
        ('[9,"a"]', "a", "MessageTypeNotSupported", True),
        ('[true,"a","Heartbeat",{}]', "a", "MessageTypeNotSupported", True),
        ('[2,"a",5,{}]', "a", "FormatViolation", True),
        ('[3,"a"]', "a", "FormatViolation", False),
        ('[4,"a","X"]', "a", "FormatViolation", False),
    ],
)
def test_malformed_frames(frame: str, uid: str | None, code: str, reply: bool) -> None:
    error = parse_frame(frame)
    assert error == FrameError(error.unique_id, code, error.description, reply)
    assert isinstance(error, FrameError) and error.unique_id == uid


def test_error_codes_per_version() -> None:
    assert error_code_for("1.6", "FormatViolation") == "FormationViolation"
    assert error_code_for("2.0.1", "FormationViolation") == "FormatViolation"
    assert error_code_for("1.6", "OccurrenceConstraintViolation") == "OccurenceConstraintViolation"
    assert sniff_unique_id('[2, "abc", "DataTransfer", {"data": "...') == "abc"
    assert parse_frame(b"\xff").code == "RpcFrameworkError"


async def test_password_verifier_caches_successes_only() -> None:
    now = [0.0]
    verifier = PasswordVerifier(parallel=1, ttl_s=60, clock=lambda: now[0])
    stored = hash_password("s3cret-password")
    assert await verifier.verify("CP", "s3cret-password", stored)
    assert await verifier.verify("CP", "s3cret-password", stored)
    assert verifier.verifications == 1
    assert not await verifier.verify("CP", "wrong", stored)
    assert not await verifier.verify("CP", "wrong", stored)
    assert verifier.verifications == 3  # failures are never cached
    now[0] = 61
    assert await verifier.verify("CP", "s3cret-password", stored)
    assert verifier.verifications == 4  # expired entry
    assert not await verifier.verify("OTHER", "s3cret-password", stored + "x")


async def test_password_verifier_refuses_beyond_its_queue() -> None:
    verifier = PasswordVerifier(parallel=1, max_waiting=2)
    stored = hash_password("s3cret-password")
    results = await asyncio.gather(
        *(verifier.verify(f"CP{n}", "s3cret-password", stored) for n in range(3)),
        return_exceptions=True,
    )
    assert results[:2] == [True, True]
    assert isinstance(results[2], VerifierOverloaded)
    assert (verifier.verifications, verifier.overloads) == (2, 1)
    assert await verifier.verify("CP0", "s3cret-password", stored)  # cached: no queue needed


async def test_password_verifier_gives_refused_chargers_spread_appointments() -> None:
    now = [100.0]
    verifier = PasswordVerifier(parallel=1, max_waiting=1, clock=lambda: now[0])
    stored = hash_password("s3cret-password")
    first = asyncio.ensure_future(verifier.verify("CP0", "s3cret-password", stored))
    await asyncio.sleep(0)  # CP0 occupies the only place in the queue (its check is running)
    appointments = []  # the refusals below never yield to the loop: the queue stays full
    for n in range(1, 200):
        with pytest.raises(VerifierOverloaded) as refused:
            await verifier.verify(f"CP{n}", "s3cret-password", stored)
        appointments.append(refused.value.retry_after_s)
    assert await first
    # booked one after another at the measured speed (~20 ms each, headroom 1.1): later
    # refusals come back later, never before the minimum, never after the maximum
    assert appointments == sorted(appointments)
    assert appointments[0] == 3 and 3 < appointments[-1] <= 300
    assert len(set(appointments)) > 2

    # the queue is full again; CP150 comes back at its appointment and is let in anyway,
    # while a charger without one is refused
    blocker = asyncio.ensure_future(verifier.verify("CPX", "s3cret-password", stored))
    await asyncio.sleep(0)
    now[0] += appointments[149]
    booked = asyncio.ensure_future(verifier.verify("CP150", "s3cret-password", stored))
    await asyncio.sleep(0)
    with pytest.raises(VerifierOverloaded):
        await verifier.verify("CPY", "s3cret-password", stored)
    assert await blocker and await booked
    assert verifier.overloads == 200
