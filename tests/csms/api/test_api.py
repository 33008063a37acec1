"""The operator API: auth, charger lifecycle, transaction filters, OpenAPI, CLI wiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ocpp.v16 import call as call16

from qr_extension.wire import ocpp_timestamp
from qrcharge_cli import build_parser

from ..clients import Client16, connect
from ..conftest import LiveCsms, basic_auth


async def test_admin_key_is_required(csms: LiveCsms) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
        r = await csms.http.get("/api/v1/admin/chargers", headers=headers)
        assert r.status_code == 401
    assert (await csms.http.get("/.well-known/jwks.json", headers={"Authorization": ""})).is_success


async def test_charger_lifecycle(csms: LiveCsms) -> None:
    body = {"id": "LIFE", "password": "long-enough", "location": "Hall 3", "evses": 3}
    created = await csms.http.post("/api/v1/admin/chargers", json=body)
    assert created.status_code == 201
    assert "password" not in created.text and "hash" not in created.text
    assert [e["evse_id"] for e in created.json()["evses"]] == [1, 2, 3]
    assert (await csms.http.post("/api/v1/admin/chargers", json=body)).status_code == 409
    short = {"id": "X", "password": "short"}
    assert (await csms.http.post("/api/v1/admin/chargers", json=short)).status_code == 422
    bad_id = {"id": "has space", "password": "long-enough"}
    assert (await csms.http.post("/api/v1/admin/chargers", json=bad_id)).status_code == 422
    await csms.add_charger("OTHER")
    async with connect(csms.ws_url("OTHER"), Client16, "ocpp1.6", basic_auth("OTHER")):
        live = (await csms.http.get("/api/v1/admin/chargers?connected=true")).json()
        assert [c["id"] for c in live] == ["OTHER"]
    listed = (await csms.http.get("/api/v1/admin/chargers")).json()
    assert [(c["id"], c["location"]) for c in listed] == [("LIFE", "Hall 3"), ("OTHER", None)]
    patched = await csms.http.patch(
        "/api/v1/admin/chargers/LIFE", json={"location": "Hall 4", "password": "new-password"}
    )
    assert patched.json()["location"] == "Hall 4"
    async with connect(
        csms.ws_url("LIFE"), Client16, "ocpp1.6", basic_auth("LIFE", "new-password")
    ):
        assert (await csms.http.delete("/api/v1/admin/chargers/LIFE")).status_code == 204
    assert (await csms.http.get("/api/v1/admin/chargers/LIFE")).status_code == 404
    assert (await csms.http.delete("/api/v1/admin/chargers/LIFE")).status_code == 404


async def test_transaction_filters(csms: LiveCsms) -> None:
    await csms.add_charger("F1")
    await csms.add_charger("F2")
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    for charger, days in (("F1", 0), ("F1", 1), ("F2", 1)):
        async with connect(csms.ws_url(charger), Client16, "ocpp1.6", basic_auth(charger)) as cp:
            await cp.call(
                call16.StartTransaction(
                    connector_id=1,
                    id_tag="T",
                    meter_start=days,
                    timestamp=ocpp_timestamp(base + timedelta(days=days)),
                ),
                suppress=False,
            )
    url = "/api/v1/admin/transactions"
    assert len((await csms.http.get(url)).json()) == 3
    f1 = (await csms.http.get(url, params={"charger_id": "F1"})).json()
    assert [t["meter_start_wh"] for t in f1] == [1, 0]  # newest first
    since = ocpp_timestamp(base + timedelta(hours=12))
    recent = (await csms.http.get(url, params={"since": since})).json()
    assert sorted(t["charger_id"] for t in recent) == ["F1", "F2"]
    older = (await csms.http.get(url, params={"until": since})).json()
    assert [t["charger_id"] for t in older] == ["F1"]
    assert (await csms.http.get(f"{url}/999999")).status_code == 404


async def test_openapi_documents_the_operator_api(csms: LiveCsms) -> None:
    paths = (await csms.http.get("/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/admin/chargers",
        "/api/v1/admin/chargers/{charger_id}",
        "/api/v1/admin/chargers/{charger_id}/settlement-key",
        "/api/v1/admin/chargers/{charger_id}/commands/{action}",
        "/api/v1/admin/transactions",
        "/api/v1/admin/transactions/{transaction_pk}",
        "/api/v1/admin/keys/rotate",
        "/.well-known/jwks.json",
    ):
        assert path in paths, path
    assert (await csms.http.get("/docs")).status_code == 200


def test_cli_flags_reach_the_settings() -> None:
    args = build_parser().parse_args(
        ["csms", "--port", "9999", "--host", "0.0.0.0", "--database-url", "sqlite+aiosqlite://"]
    )
    assert (args.command, args.port, args.host) == ("csms", 9999, "0.0.0.0")
    assert args.database_url == "sqlite+aiosqlite://" and callable(args.func)
