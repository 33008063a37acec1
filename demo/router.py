"""The operator page's bridge to the simulated chargers (only in ``qrcharge demo``).

A browser page cannot call the chargers' control APIs itself (other ports, no CORS), so the
demo adds ``/api/v1/demo/chargers/...`` to the CSMS app: operator-key protected routes that
forward to each charger's control API on 127.0.0.1 (``POST /link/down`` cuts its network,
``/link/up`` restores it; plug, unplug, stop, camera and the screen likewise). Nothing here
touches the CSMS's own state: it is the "hardware" side of the demo.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import httpx
from fastapi import APIRouter, HTTPException, Request, Response

from csms.api.deps import OperatorDep, ViewerDep

PREFIX = "/api/v1/demo/chargers"
TIMEOUT_S = 5.0
MAX_IMAGE_BYTES = 8 * 1024 * 1024


def create_router(control_urls: Mapping[str, str], versions: Mapping[str, str]) -> APIRouter:
    """Routes for the chargers in ``control_urls`` (charger id -> control API base URL)."""
    router = APIRouter(prefix=PREFIX, tags=["demo: simulated chargers"])

    def base(charger_id: str) -> str:
        url = control_urls.get(charger_id)
        if not url:
            raise HTTPException(404, f"{charger_id!r} is not a simulated charger of this demo")
        return url

    async def forward(
        method: str, charger_id: str, path: str, *, content: bytes | None = None
    ) -> httpx.Response:
        try:
            async with httpx.AsyncClient(base_url=base(charger_id), timeout=TIMEOUT_S) as client:
                return await client.request(method, path, content=content)
        except httpx.HTTPError as exc:
            raise HTTPException(502, f"charger {charger_id} control API: {exc}") from exc

    async def json_of(method: str, charger_id: str, path: str, **kw: Any) -> Any:
        answer = await forward(method, charger_id, path, **kw)
        if answer.status_code >= 400:
            raise HTTPException(answer.status_code, answer.text[:300])
        return answer.json()

    @router.get("")
    async def list_chargers(_: ViewerDep) -> list[dict[str, Any]]:
        """Every simulated charger: link state, EVSEs and what its screen shows."""
        out = []
        for charger_id in control_urls:
            state = await json_of("GET", charger_id, "/state")
            display = await json_of("GET", charger_id, "/display")
            out.append(
                {
                    "id": charger_id,
                    "ocpp_version": versions.get(charger_id, ""),
                    "link_up": state.get("link_up"),
                    "state": state,
                    "display": display,
                }
            )
        return out

    @router.post("/{charger_id}/link/{direction}")
    async def link(
        charger_id: str, direction: Literal["up", "down"], _: OperatorDep
    ) -> dict[str, Any]:
        """Cuts (``down``) or restores (``up``) the charger's network link."""
        result: dict[str, Any] = await json_of("POST", charger_id, f"/link/{direction}")
        return result

    @router.post("/{charger_id}/evses/{n}/{action}")
    async def evse_action(
        charger_id: str, n: int, action: Literal["plug", "unplug", "stop"], _: OperatorDep
    ) -> dict[str, Any]:
        """Plays the EV (plug, unplug) or presses the charger's stop button."""
        result: dict[str, Any] = await json_of("POST", charger_id, f"/evses/{n}/{action}")
        return result

    @router.post("/{charger_id}/camera")
    async def camera(charger_id: str, request: Request, _: OperatorDep) -> dict[str, Any]:
        """Shows an image (the driver's start QR) to the charger's camera."""
        image = await request.body()
        if not image or len(image) > MAX_IMAGE_BYTES:
            raise HTTPException(413 if image else 422, "send one image of at most 8 MiB")
        result: dict[str, Any] = await json_of("POST", charger_id, "/camera", content=image)
        return result

    @router.get("/{charger_id}/display/qr.png", response_class=Response)
    async def screen_qr(charger_id: str, _: ViewerDep) -> Response:
        """The QR code on the charger's screen now (404 when there is none)."""
        answer = await forward("GET", charger_id, "/display/qr.png")
        if answer.status_code != 200:
            raise HTTPException(404, "no QR code on the charger's screen")
        return Response(answer.content, media_type="image/png")

    return router
