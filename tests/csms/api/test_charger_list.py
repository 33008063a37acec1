"""The operator's charger list filtered by live connection: the filter is part of the query,
so every page is full and paging visits each matching charger once (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from ocpp.v16 import call as call16

from ..clients import Client16, connect
from ..conftest import LiveCsms, basic_auth

IDS = [f"L{n}" for n in range(9)]
CONNECTED = ["L1", "L2", "L4", "L7", "L8"]  # not the first ids: a filter after paging shows


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live(request: pytest.FixtureRequest) -> LiveCsms:
    name = "csms" if request.param == "sqlite" else "pg_csms"
    csms: LiveCsms = request.getfixturevalue(name)
    return csms


async def _pages(csms: LiveCsms, limit: int, **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    while True:
        r = await csms.http.get(
            "/api/v1/admin/chargers",
            params={**params, "offset": len(pages) * limit, "limit": limit},
        )
        assert r.status_code == 200, r.text
        page = [c["id"] for c in r.json()]
        if not page:
            return pages
        pages.append(page)


async def test_connected_filter_pages_over_the_query(live: LiveCsms) -> None:
    for charger_id in IDS:
        await live.add_charger(charger_id, evses=1)
    async with contextlib.AsyncExitStack() as stack:
        for charger_id in CONNECTED:
            cp = await stack.enter_async_context(
                connect(live.ws_url(charger_id), Client16, "ocpp1.6", basic_auth(charger_id))
            )
            await cp.call(call16.Heartbeat(), suppress=False)  # answered: registered
        assert await _pages(live, 2, connected="true") == [["L1", "L2"], ["L4", "L7"], ["L8"]]
        assert await _pages(live, 2, connected="false") == [["L0", "L3"], ["L5", "L6"]]
        assert await _pages(live, 4) == [IDS[0:4], IDS[4:8], IDS[8:]]
        first = (await live.http.get("/api/v1/admin/chargers?connected=true&limit=2")).json()
        assert [c["connected"] for c in first] == [True, True]
    for _ in range(250):  # let the server notice the closed sockets
        if not len(live.ctx.registry):
            break
        await asyncio.sleep(0.02)
    assert await _pages(live, 2, connected="true") == []
    assert sum(len(p) for p in await _pages(live, 2, connected="false")) == len(IDS)
