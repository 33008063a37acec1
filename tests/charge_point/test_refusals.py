"""Every refusal path of the start QR, shown to the camera as an image through the control API
(``POST /camera``), and the reason on the display (``GET /display``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from charge_point.charger import Charger
from charge_point.control import create_app
from qr_extension.keys import generate_key
from qr_extension.qr import decode_qr, render_png
from qr_extension.settlement import peek_settlement
from tests.charge_point.conftest import TokenFactory, station_settings

Client = Callable[..., Any]


@pytest.fixture
async def control(tmp_path: Path, jwks_file: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await control(**settings)`` -> (charger, client) for a charger that is not running."""
    opened: list[tuple[Charger, httpx.AsyncClient]] = []

    async def make(synced: bool = True, **kw: Any) -> tuple[Charger, httpx.AsyncClient]:
        charger = Charger(station_settings(tmp_path, trusted_keys_file=jwks_file, **kw))
        if synced:
            charger.station.set_time(time.time())
        transport = httpx.ASGITransport(app=create_app(charger))
        client = httpx.AsyncClient(transport=transport, base_url="http://cp")
        opened.append((charger, client))
        return charger, client

    yield make
    for charger, client in opened:
        await client.aclose()
        charger.store.close()


async def show(client: httpx.AsyncClient, text: str) -> dict[str, Any]:
    response = await client.post("/camera", content=render_png(text))
    assert response.status_code == 200
    return response.json()


async def assert_refused(client: httpx.AsyncClient, text: str, reason: str) -> None:
    answer = await show(client, text)
    assert answer["accepted"] is False and answer["reason"] == reason, answer
    display = (await client.get("/display")).json()
    assert display["reasons"][-1]["reason"] == reason
    assert reason in display["text"]
    state = (await client.get("/state")).json()
    assert not state["transactions"]


async def test_accepted_image_starts_a_session(control: Any, token: TokenFactory) -> None:
    _charger, client = await control()
    assert (await client.post("/evses/1/plug", json={"capacity_wh": 40000, "soc": 0.5})).is_success
    answer = await show(client, token("IMG1", time.time()))
    assert answer == {"accepted": True, "order_id": "IMG1", "evse_id": 1}
    state = (await client.get("/state")).json()
    assert state["transactions"][0]["order_id"] == "IMG1"
    assert state["evses"][0]["status"] == "Charging"


async def test_wrong_charger(control: Any, token: TokenFactory) -> None:
    _, client = await control()
    await client.post("/evses/1/plug")
    await assert_refused(client, token("IMG2", time.time(), cp="CP-OTHER"), "wrong_charger")


async def test_wrong_evse(control: Any, token: TokenFactory) -> None:
    _, client = await control()
    await client.post("/evses/1/plug")
    await assert_refused(client, token("IMG3", time.time(), evse=7), "wrong_evse")


async def test_expired(control: Any, token: TokenFactory) -> None:
    _, client = await control()
    await client.post("/evses/1/plug")
    old = time.time() - 900 - 301 - 60
    await assert_refused(client, token("IMG4", old), "expired")


async def test_not_yet_valid(control: Any, token: TokenFactory) -> None:
    _, client = await control()
    await client.post("/evses/1/plug")
    await assert_refused(client, token("IMG5", time.time() + 3600), "not_yet_valid")


async def test_forged(control: Any, token: TokenFactory) -> None:
    _, client = await control()
    await client.post("/evses/1/plug")
    header, _payload, signature = token("IMG6", time.time()).split(".")
    other = token("IMG7", time.time(), amount=99_999).split(".")[1]  # a bigger hold
    await assert_refused(client, f"{header}.{other}.{signature}", "bad_signature")


async def test_unknown_key(control: Any, token: TokenFactory) -> None:
    _, client = await control()
    await client.post("/evses/1/plug")
    await assert_refused(client, token("IMG8", time.time(), key=generate_key()), "unknown_key")


async def test_settlement_shown_as_start_token(
    control: Any, token: TokenFactory, tmp_path: Path
) -> None:
    charger, client = await control()
    await client.post("/evses/1/plug")
    await show(client, token("IMG9", time.time()))
    await client.post("/evses/1/unplug")
    display = (await client.get("/display")).json()
    assert display["qr_kind"] == "settlement"
    png = (await client.get("/display/qr.png")).content
    (settlement,) = decode_qr(png)  # what the screen shows is the signed settlement
    assert peek_settlement(settlement) == (charger.station.id, charger.station.key.kid)
    await client.post("/evses/1/plug")
    await assert_refused(client, settlement, "wrong_type")


async def test_replayed_after_a_restart(control: Any, token: TokenFactory) -> None:
    charger, client = await control()
    text = token("IMG10", time.time())
    await client.post("/evses/1/plug")
    assert (await show(client, text))["accepted"]
    await client.post("/evses/1/stop")
    await client.post("/evses/1/unplug")
    charger.store.close()  # power off
    _, client = await control()  # same state dir
    await client.post("/evses/1/plug")
    await assert_refused(client, text, "replayed")


async def test_unsynced_clock(control: Any, token: TokenFactory) -> None:
    _, client = await control(synced=False)
    await client.post("/evses/1/plug")
    await assert_refused(client, token("IMG11", time.time()), "clock_unsynced")


async def test_no_evse_waiting(control: Any, token: TokenFactory) -> None:
    _, client = await control()
    await assert_refused(client, token("IMG12", time.time(), evse=None), "no_evse_waiting")


async def test_an_image_without_a_code(control: Any, tmp_path: Path) -> None:
    from PIL import Image

    _, client = await control()
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    answer = (await client.post("/camera", content=blank.read_bytes())).json()
    assert answer["accepted"] is False and answer["reason"] == "malformed"
    answer = (await client.post("/camera", content=b"not an image")).json()
    assert answer["reason"] == "malformed"


async def test_control_api_surface(control: Any) -> None:
    _, client = await control()
    paths = set((await client.get("/openapi.json")).json()["paths"])
    assert {
        "/evses/{n}/plug",
        "/evses/{n}/unplug",
        "/evses/{n}/stop",
        "/camera",
        "/link/down",
        "/link/up",
        "/display",
        "/display/qr.png",
        "/state",
    } <= paths
    assert (await client.post("/evses/9/plug")).status_code == 404
    assert (await client.post("/evses/1/plug", json={"soc": 2})).status_code == 422
    (url,) = decode_qr((await client.get("/display/qr.png")).content)
    assert "/c/CP-1?evse=1" in url and "&t=" in url
    assert (await client.post("/link/down")).json() == {"up": False}
    assert (await client.get("/state")).json()["link_up"] is False


async def test_a_card_too_long_for_ocpp_16_is_refused(control: Any) -> None:
    _, client = await control()
    await client.post("/evses/1/plug")
    answer = (await client.post("/evses/1/rfid", json={"id_tag": "C" * 21})).json()
    assert answer["accepted"] is False
    assert not (await client.get("/state")).json()["transactions"]
