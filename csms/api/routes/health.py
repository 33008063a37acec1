"""Health checks for load balancers and orchestrators: ``/healthz`` and ``/readyz``.

``GET /healthz`` answers 200 whenever the process serves HTTP (liveness: restart it if not),
with the node's id and whether it leads the cluster (``"leader": true``: it runs the reaper).
``GET /readyz`` answers 200 when the CSMS can do its work and 503 (with the failing checks)
when it cannot: the database answers and is migrated to this version's newest revision, a
signing key is loaded, and the store writer is not backed up. Both are cheap enough to poll
every second (one indexed read on the reader thread) and say nothing secret.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from csms.api.deps import CtxDep
from csms.store.db import head_revision, schema_revision

router = APIRouter(tags=["health"])
READY_DB_TIMEOUT_S = 2.0
MAX_STORE_BACKLOG = 5_000  # operations waiting for the store writer (its bound is 20,000)


@router.get("/healthz")
async def healthz(ctx: CtxDep) -> dict[str, Any]:
    """Liveness: the process answers; with this node's id and whether it leads the cluster
    (runs the reaper)."""
    leadership = ctx.leadership
    return {
        "status": "ok",
        "node": ctx.settings.resolved_node_id,
        "leader": leadership is not None and leadership.is_leader,
    }


@router.get("/readyz", responses={503: {"description": "not ready; the failing checks"}})
async def readyz(ctx: CtxDep) -> JSONResponse:
    """Readiness: database reachable and migrated, signing key loaded, store not backed up."""
    checks: dict[str, Any] = {}
    try:
        async with asyncio.timeout(READY_DB_TIMEOUT_S):  # not wait_for (3.11: keeps a cancel)
            revision = await ctx.db.reader.run(schema_revision)
    except Exception as exc:  # any failure to answer is "not ready", named, never a 500
        checks["database"] = f"unreachable: {type(exc).__name__}"
    else:
        head = head_revision()
        checks["database"] = "ok" if revision == head else f"at {revision}, not {head}"
    try:
        ctx.keys.active_signing_key(ctx.now_s())
        checks["signing_key"] = "ok"
    except Exception as exc:
        checks["signing_key"] = f"unusable: {type(exc).__name__}"
    backlog = ctx.writer.backlog
    checks["store_backlog"] = "ok" if backlog <= MAX_STORE_BACKLOG else f"{backlog} waiting"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
    )
