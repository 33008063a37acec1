"""``GET /metrics``: the Prometheus exposition of :mod:`csms.metrics`, for the operator's
scraper (the admin key, or ``metrics_bind`` for a listener of its own without one)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from csms import metrics
from csms.api.deps import CtxDep, ViewerDep
from csms.api.responses import errors
from csms.context import CsmsContext
from csms.store.summaries import order_summary

router = APIRouter(tags=["admin: monitoring"])
LOG = logging.getLogger("csms.metrics")
REFRESH_EVERY_S = 5.0  # the order counts: an aggregate read, not made at every scrape


@router.get("/metrics", response_class=Response, responses=errors(401, 403))
async def scrape(ctx: CtxDep, _: ViewerDep) -> Response:
    """Every metric, with the connection gauges as of now."""
    refresh_live(ctx)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def refresh_live(ctx: CsmsContext) -> None:
    """The gauges that cost nothing to read: connections and the store writer's backlog."""
    connected: dict[str, int] = {}
    for charger_id in ctx.registry.connected():
        link = ctx.registry.get(charger_id)
        if link is not None:
            connected[link.ocpp_version] = connected.get(link.ocpp_version, 0) + 1
    metrics.refresh_live(connected=connected, backlog=ctx.writer.backlog)


async def refresh_stored(ctx: CsmsContext) -> None:
    """The gauges read from the store (one aggregate read on the reader thread)."""
    orders, holds = await ctx.db.reader.run(order_summary)
    metrics.refresh_orders(orders=orders, holds=holds)


async def refresh_forever(ctx: CsmsContext) -> None:
    """Keeps every gauge current for a scraper of ``metrics_bind`` (an owned task)."""
    while True:
        try:
            await refresh_stored(ctx)
            refresh_live(ctx)
        except Exception as exc:  # the store is down: the gauges keep their last values
            LOG.warning("metrics refresh failed: %s", exc)
        await asyncio.sleep(REFRESH_EVERY_S)
