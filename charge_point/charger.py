"""One running charger: the station, its link, its camera, its clock tick and control API.

This is the composition root; the parts know nothing of each other beyond what is passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from charge_point import authorization, camera
from charge_point.authorization import Decision
from charge_point.clock import Clock, WallClock
from charge_point.display import Display
from charge_point.link import Link
from charge_point.qrstart import decode_frame
from charge_point.settings import StationSettings
from charge_point.station import Station
from charge_point.store import Store, load_charger_key
from config.logs import bind_for_task
from config.private import private_dir
from qr_extension.refusal import Refusal
from qr_extension.wire import ID_TAG_MAX_16, ID_TOKEN_MAX_201

log = logging.getLogger(__name__)

TICK_REAL_S = 0.1  # how often (real seconds) the meters and sessions advance
CAMERA_DIR = "camera"
CONTROL_PORT_FILE = "control.port"


class Charger:
    """Station + link + camera + control API of one charge point."""

    def __init__(
        self, settings: StationSettings, *, clock: Clock | None = None, terminal: bool = False
    ) -> None:
        private_dir(settings.state_dir)
        self.settings = settings
        self.store = Store.in_dir(settings.state_dir)
        self.station = Station(
            settings,
            store=self.store,
            clock=clock or WallClock(),
            key=load_charger_key(settings.state_dir),
            display=Display(settings.state_dir, terminal=terminal),
        )
        if settings.trusted_keys_file is not None:
            self.station.install_trusted_jwks(json.loads(settings.trusted_keys_file.read_text()))
        self.station.restore()
        self.link = Link(self.station)
        self.control_port: int | None = None

    # --- driver actions ----------------------------------------------------------------
    def present_frame(self, image: bytes) -> dict[str, Any]:
        """A camera frame: decode, verify, start or refuse (the reason goes on the screen)."""
        texts = decode_frame(image)
        if isinstance(texts, Refusal):
            self.station.refuse(texts)
            return _refusal(texts)
        result = self.station.scan(texts[0])
        if isinstance(result, Refusal):
            return _refusal(result)
        return {"accepted": True, "order_id": result.order_id, "evse_id": result.evse_id}

    async def present_id_tag(
        self, evse_id: int, id_tag: str, token_type: str | None = None
    ) -> dict[str, Any]:
        """An RFID-style tag: local list / cache, else Authorize with the CSMS when online.
        ``token_type`` (2.0.1 idToken type) defaults to the configured card type; the session
        keeps it, so the CSMS sees the token under one type from Authorize to the end."""
        station = self.station
        token_type = token_type or self.settings.card_token_type
        longest = ID_TAG_MAX_16 if self.settings.ocpp_version == "1.6" else ID_TOKEN_MAX_201
        if len(id_tag) > longest:  # it could never be reported to the CSMS
            station.display.show_text(f"Card {id_tag[:8]}... not usable here")
            return {"accepted": False, "id_tag": id_tag}
        decision = authorization.decide(
            station.store, station.config, id_tag, online=station.online, now=station.now()
        )
        if decision is Decision.ASK_CSMS:
            answer = await self.link.authorize(id_tag, token_type)
            if answer is None:
                decision = authorization.decide(
                    station.store, station.config, id_tag, online=False, now=station.now()
                )
            else:
                status, expiry = answer
                authorization.remember(station.store, station.config, id_tag, status, expiry)
                decision = Decision.ACCEPT if status == "Accepted" else Decision.REFUSE
        if decision is Decision.REFUSE:
            station.display.show_text(f"Card {id_tag} not accepted")
            return {"accepted": False, "id_tag": id_tag}
        accepted = station.authorize_tag(evse_id, id_tag, token_type)
        return {"accepted": accepted, "id_tag": id_tag}

    # --- running -------------------------------------------------------------------------
    async def run(self) -> None:
        bind_for_task(charger_id=self.station.id)  # every line of this charger's tasks
        try:
            await self._run_parts()
        finally:  # a firmware update or log upload in progress ends with the charger
            await self.link.remote.close()

    async def _run_parts(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.link.run(), name=f"{self.station.id}-link")
            tasks.create_task(self._tick_forever(), name=f"{self.station.id}-tick")
            tasks.create_task(
                camera.watch_folder(self.settings.state_dir / CAMERA_DIR, self.present_frame)
            )
            source = self.settings.camera
            if source is not None:
                tasks.create_task(self._watch_camera(source))
            if self.settings.control_port is not None:
                tasks.create_task(self._serve_control(self.settings.control_port))

    async def _watch_camera(self, source: Path) -> None:
        """The ``--camera`` source: a video device, a folder, or one image file."""
        kind = camera.source_kind(source)
        if kind == "video":
            await camera.watch_video(source, self.present_frame)
        elif kind == "folder":
            await camera.watch_folder(source, self.present_frame)
        else:
            log.info("camera: %s", self.present_frame(camera.read_image_file(source)))

    async def _tick_forever(self) -> None:
        while True:
            self.station.tick()
            await asyncio.sleep(TICK_REAL_S)

    async def _serve_control(self, port: int) -> None:
        import uvicorn

        from charge_point.control import create_app

        config = uvicorn.Config(
            create_app(self), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                await serving
                return
            await asyncio.sleep(0.02)
        self.control_port = server.servers[0].sockets[0].getsockname()[1]
        # written whole then renamed: a reader that sees the file never reads it half written
        port_file = self.settings.state_dir / CONTROL_PORT_FILE
        partial = port_file.with_name(f".{CONTROL_PORT_FILE}.{os.getpid()}")
        partial.write_text(str(self.control_port))
        os.replace(partial, port_file)
        log.info("%s: control API on http://127.0.0.1:%d", self.station.id, self.control_port)
        await serving


def _refusal(refusal: Refusal) -> dict[str, Any]:
    return {"accepted": False, "reason": refusal.reason.value, "detail": refusal.detail}
