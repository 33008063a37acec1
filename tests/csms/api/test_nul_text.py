"""Text holding NUL (``\\u0000``) from a client: valid JSON and a valid URL, but no text
PostgreSQL can store or be asked about (its driver refuses it before sending). It was a 500
on PostgreSQL; it is the client's 422 there, and on SQLite what any unknown id gets."""

from __future__ import annotations

import pytest

from ..conftest import MoneyApi


async def test_an_id_holding_nul_is_the_clients_error_not_a_500(
    api: MoneyApi, caplog: pytest.LogCaptureFixture
) -> None:
    _, auth = await api.driver("nul@example.org", funds=10_000)
    order = {"charger_id": "CP\u0000", "evse_id": 1, "amount": 3000}
    placed = await api.http.post("/api/v1/orders", json=order, headers=auth)
    looked_up = await api.http.get("/api/v1/chargers/CP%00", headers=auth)
    postgresql = api.ctx.db.engine.dialect.name == "postgresql"
    assert (placed.status_code, looked_up.status_code) == ((422, 422) if postgresql else (422, 404))
    if postgresql:
        assert "NUL" in placed.json()["detail"] and "NUL" in looked_up.json()["detail"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
