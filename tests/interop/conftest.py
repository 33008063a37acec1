"""Fixtures of the interop tests: the charge point tests' keys and start tokens, and a running
charger pointed at one of the minimal central systems of :mod:`tests.interop.centrals`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from charge_point.charger import Charger
from tests.charge_point.central import until
from tests.charge_point.conftest import csms_key, jwks_file, make_station, station_settings, token
from tests.interop.centrals import Seen, serve

__all__ = ["csms_key", "jwks_file", "make_station", "token"]

Run = Callable[..., AbstractAsyncContextManager[tuple[Charger, Seen]]]


@pytest.fixture
def run_against(tmp_path: Path, jwks_file: Path) -> Run:
    """``async with run_against(cls16, cls201, version, **settings) as (charger, seen)``: a
    charger (trusting the test CSMS key from ``--trusted-keys``) booted against a central
    system that serves ``cls16`` / ``cls201``. Failed transaction messages are retried at once
    (``message_retry_s=0``) so that a bounded retry policy shows within a test."""

    @asynccontextmanager
    async def run(
        cls16: type | None, cls201: type | None, version: str, **kw: Any
    ) -> AsyncIterator[tuple[Charger, Seen]]:
        seen = Seen()
        server = await serve(seen, cls16, cls201)
        base: dict[str, Any] = {"message_attempts": 3, "message_retry_s": 0}
        settings = station_settings(
            tmp_path,
            csms_url=seen.url,
            ocpp_version=version,
            trusted_keys_file=jwks_file,
            **{**base, **kw},
        )
        charger = Charger(settings)
        task = asyncio.create_task(charger.run())
        try:
            await until(lambda: charger.link.connects >= 1, what="boot")
            yield charger, seen
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            charger.store.close()
            server.close()
            await server.wait_closed()

    return run
