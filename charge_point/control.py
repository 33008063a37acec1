"""The local control API (HTTP on 127.0.0.1, off unless ``--control-port`` is given).

For tests and integrators: it plays the EV (plug, unplug), the driver (present a QR image,
an RFID tag, press stop), the network (cut and restore the link), forces the charger's answer
to a CSMS command (``/faults/commands``), and reads the screen and the state. FastAPI, so
``/openapi.json`` documents it. Every route acts on the same objects as the
hardware would; nothing here bypasses the station's rules. Every route is ``async def`` so it
runs on the charger's event loop (a plain ``def`` route would run in a worker thread, next to
the loop, and race the station).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, Field

from charge_point.charger import Charger
from charge_point.control_remote import remote_routes
from charge_point.errors import IllegalTransition
from charge_point.forced_answers import ForcedAnswer, problem
from charge_point.state_view import snapshot
from charge_point.station import Station
from config.settings import CardTokenType


class PlugRequest(BaseModel):
    """An EV to plug in; omitted fields take the defaults (60 kWh at 20 %)."""

    capacity_wh: int | None = Field(default=None, gt=0)
    soc: float | None = Field(default=None, ge=0.0, le=1.0)


class ForcedAnswerRequest(BaseModel):
    """An answer to force: the ``status`` of the answer (one the action's schema allows, e.g.
    ReserveNow ``Occupied``) or a CALLERROR ``error`` code (``NotImplemented``,
    ``NotSupported``, ``InternalError``, ``ProtocolError``, ``SecurityError``,
    ``GenericError``), for the next ``times`` requests of ``action`` (default: until
    cleared)."""

    action: str = Field(min_length=1, max_length=64, examples=["ReserveNow"])
    status: str | None = Field(default=None, max_length=64, examples=["Occupied"])
    error: str | None = Field(default=None, max_length=64)
    times: int | None = Field(default=None, ge=1, le=1_000_000)


class TagRequest(BaseModel):
    """A card: its id and, for 2.0.1, its idToken type (default: ``cp_card_token_type``)."""

    id_tag: str = Field(min_length=1, max_length=36)
    type: CardTokenType | None = None


def _evse_state(station: Station, n: int) -> dict[str, Any]:
    evses: list[dict[str, Any]] = snapshot(station)["evses"]
    return evses[n - 1]


def create_app(charger: Charger) -> FastAPI:
    """The control app of one charger."""
    app = FastAPI(title=f"qrcharge charger {charger.station.id} control API", version="1")
    station = charger.station

    def evse(n: int) -> int:
        if n not in station.connectors:
            raise HTTPException(404, f"no EVSE {n}")
        return n

    evses = APIRouter(prefix="/evses", tags=["evses"])

    @evses.post("/{n}/plug")
    async def plug(n: int, body: Annotated[PlugRequest | None, Body()] = None) -> dict[str, Any]:
        """Plugs an EV in (battery size in Wh, state of charge 0..1)."""
        body = body or PlugRequest()
        try:
            station.plug(evse(n), capacity_wh=body.capacity_wh, soc=body.soc)
        except IllegalTransition as exc:
            raise HTTPException(409, str(exc)) from exc
        return _evse_state(station, n)

    @evses.post("/{n}/unplug")
    async def unplug(n: int) -> dict[str, Any]:
        station.unplug(evse(n))
        return _evse_state(station, n)

    @evses.post("/{n}/stop")
    async def stop(n: int) -> dict[str, Any]:
        """The stop button: ends the session on the EVSE (the EV stays plugged)."""
        return {"stopped": station.press_stop(evse(n))}

    @evses.post("/{n}/fault")
    async def fault(n: int) -> dict[str, Any]:
        """A hardware fault: ends the session there (reason Other), status Faulted."""
        station.fault(evse(n))
        return _evse_state(station, n)

    @evses.post("/{n}/clear")
    async def clear(n: int) -> dict[str, Any]:
        """The fault is gone."""
        station.clear_fault(evse(n))
        return _evse_state(station, n)

    @evses.post("/{n}/rfid")
    async def rfid(n: int, body: TagRequest) -> dict[str, Any]:
        """Presents an RFID-style id tag at the EVSE (start, or stop its own session)."""
        return await charger.present_id_tag(evse(n), body.id_tag, body.type)

    app.include_router(evses)

    @app.post("/camera", tags=["camera"])
    async def camera(request: Request) -> dict[str, Any]:
        """Shows an image (PNG/JPEG bytes as the request body) to the camera."""
        return charger.present_frame(await request.body())

    faults = APIRouter(prefix="/faults", tags=["faults"])

    @faults.post("/commands")
    async def force_answer(body: ForcedAnswerRequest) -> list[dict[str, Any]]:
        """Forces the charger's answer to the CSMS's requests of one action (replacing what
        it would do: a forced ``Rejected`` ReserveNow reserves nothing). 422 for an action
        that is not one of the charger's OCPP version, or a status its answer cannot have."""
        answer = ForcedAnswer(body.action, body.status, body.error, body.times)
        wrong = await problem(answer, charger.settings.ocpp_version)
        if wrong is not None:
            raise HTTPException(422, wrong)
        station.forced.force(answer)
        return [asdict(a) for a in station.forced.listed()]

    @faults.get("/commands")
    async def forced_answers() -> list[dict[str, Any]]:
        """The answers forced now, with the requests each has left (null: until cleared)."""
        return [asdict(a) for a in station.forced.listed()]

    @faults.delete("/commands")
    async def clear_forced_answers(action: str | None = None) -> list[dict[str, Any]]:
        """Clears the forced answer of ``action``, or all of them."""
        station.forced.clear(action)
        return [asdict(a) for a in station.forced.listed()]

    app.include_router(faults)

    @app.post("/link/down", tags=["link"])
    async def link_down() -> dict[str, Any]:
        charger.link.set_up(False)
        return {"up": False}

    @app.post("/link/up", tags=["link"])
    async def link_up() -> dict[str, Any]:
        charger.link.set_up(True)
        return {"up": True}

    @app.get("/display", tags=["display"])
    async def display() -> dict[str, Any]:
        """The screen: text, recent refusal reasons, which QR is shown and its text."""
        station.tick()
        return station.display.snapshot()

    @app.get("/display/qr.png", tags=["display"], response_class=Response)
    async def display_qr() -> Response:
        station.tick()
        png = station.display.png()
        if not png:
            raise HTTPException(404, "no QR code on the screen")
        return Response(png, media_type="image/png")

    @app.get("/state", tags=["state"])
    async def state() -> dict[str, Any]:
        """Connection, EVSE statuses, running transactions with their order ids, queue."""
        station.tick()
        return {
            **snapshot(station),
            "link_up": charger.link.is_up,
            "connects": charger.link.connects,
        }

    app.include_router(remote_routes(charger))  # faults, smart charging, firmware
    return app
