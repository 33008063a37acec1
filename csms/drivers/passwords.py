"""Driver passwords: argon2id (memory-hard), hashed and verified in a thread so the event
loop never blocks on the tens of milliseconds of CPU each costs. The parameters are the CSMS's
(:mod:`csms.passwords`: OWASP's argon2id minimum)."""

from __future__ import annotations

import asyncio

from csms.passwords import check_password, hash_password

# Verified against when the email is unknown, so both failures cost the same time.
_DUMMY_HASH = hash_password("not the password of anyone")


async def hash_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_async(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no hash (unknown user) it costs the same and fails."""
    ok = await asyncio.to_thread(check_password, stored_hash or _DUMMY_HASH, password)
    return ok and stored_hash is not None
