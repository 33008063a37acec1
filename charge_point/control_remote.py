"""Control API routes for the remote-control side of the charger: failures on request for
firmware updates and log uploads, and what smart charging and the firmware look like now.

``POST /faults/{name}`` arms a one-shot failure (the next job that reaches that step fails,
with the status a real charger would send); ``DELETE`` disarms it; ``GET /faults`` lists the
armed ones and what each name does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException

from charge_point.firmware import installed_version
from charge_point.jobs import FAULTS

if TYPE_CHECKING:
    from charge_point.charger import Charger


def remote_routes(charger: Charger) -> APIRouter:
    """The routes of one charger."""
    router = APIRouter()
    station = charger.station
    jobs = charger.link.remote

    @router.get("/faults", tags=["faults"])
    async def faults() -> dict[str, Any]:
        return {"armed": jobs.faults.armed, "available": FAULTS}

    @router.post("/faults/{name}", tags=["faults"])
    async def arm(name: str) -> dict[str, Any]:
        """Arms a one-shot failure: ``firmware-download``, ``firmware-signature``,
        ``firmware-install`` or ``log-upload``."""
        if name not in FAULTS:
            raise HTTPException(404, f"no fault {name!r}; known: {', '.join(sorted(FAULTS))}")
        jobs.faults.arm(name)
        return {"armed": jobs.faults.armed}

    @router.delete("/faults/{name}", tags=["faults"])
    async def disarm(name: str) -> dict[str, Any]:
        if name not in FAULTS:
            raise HTTPException(404, f"no fault {name!r}")
        jobs.faults.disarm(name)
        return {"armed": jobs.faults.armed}

    @router.get("/smart-charging", tags=["smart charging"])
    async def smart_charging() -> dict[str, Any]:
        """The installed charging profiles and the limit each EVSE is under now (W)."""
        station.tick()
        now = station.now()
        limits = {}
        for evse_id in station.connectors:
            limit = station.power_limit(evse_id, now)
            limits[str(evse_id)] = None if limit is None else round(limit.watts, 1)
        return {
            "profiles": [p.to_json() for p in station.profiles],
            "limit_w": limits,
            "hardware_w": station.hardware_w(),
        }

    @router.get("/firmware", tags=["firmware"])
    async def firmware() -> dict[str, Any]:
        """The installed firmware version and the status notifications sent lately."""
        return {
            "version": installed_version(station.store),
            "sent": [{"action": a, **p} for a, p in jobs.sent],
            "waiting": [{"action": a, **p} for a, p in jobs.outbox + jobs.after_boot],
        }

    return router
