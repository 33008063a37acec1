"""The charger password verifier's threads: argon2 runs in a pool of its own, bounded, and the
memory of a burst of checks is handed back once no check waits."""

from __future__ import annotations

import asyncio
import threading

import pytest

from csms import heap, passwords
from csms.passwords import PasswordVerifier, hash_password


async def test_checks_run_on_at_most_parallel_threads_of_their_own_and_trim_after_a_burst(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: set[str] = set()
    trims: list[int] = []
    real = passwords.check_password

    def spy(stored: str, password: str) -> bool:
        threads.add(threading.current_thread().name)
        return real(stored, password)

    monkeypatch.setattr(passwords, "check_password", spy)
    monkeypatch.setattr(heap, "trim", lambda: trims.append(1))
    verifier = PasswordVerifier(parallel=2)
    try:
        stored = hash_password("right")
        results = await asyncio.gather(
            *(verifier.verify(f"CP{n}", "right" if n % 2 else "wrong", stored) for n in range(6))
        )
        assert results == [n % 2 == 1 for n in range(6)]
        assert verifier.verifications == 6
        assert 1 <= len(threads) <= 2 and all(t.startswith("argon2") for t in threads)
        for _ in range(100):  # the trim runs in the pool, not in the handshake's way
            if trims:
                break
            await asyncio.sleep(0.01)
        assert len(trims) == 1  # once, when the last waiting check was done
        assert await verifier.verify("CP1", "right", stored)  # remembered: no argon2, no trim
        assert verifier.verifications == 6 and len(trims) == 1
    finally:
        verifier.close()
