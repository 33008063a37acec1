"""Every router of the CSMS, in one list: the app registers them in this order (where two
routers could match one path, the first wins). A request is matched against the routes one
after another, so the drivers' routes (the busiest HTTP paths: orders, settlement uploads,
payment confirmations) come before the operator API's many routes; no two of these routers
share a path.

The OCPP WebSocket endpoint is here too (its adapter is :mod:`csms.protocol.endpoint`), so
that one module shows every path the CSMS serves.
"""

from __future__ import annotations

from fastapi import APIRouter

from csms.api.routes import (
    admin_billing,
    admin_chargers,
    admin_commands,
    admin_id_tags,
    admin_ledger,
    admin_notifications,
    admin_operators,
    admin_orders,
    admin_presence,
    admin_remote,
    admin_reservations,
    admin_transactions,
    admin_users,
    chargers_public,
    drivers,
    health,
    keys,
    metrics,
    orders,
    payments,
    settlements,
    uploads,
)
from csms.protocol.endpoint import router as ocpp

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    metrics.router,
    ocpp,
    keys.router,
    orders.router,
    settlements.router,
    payments.router,
    drivers.router,
    chargers_public.router,
    admin_chargers.router,
    admin_transactions.router,
    admin_commands.router,
    admin_id_tags.router,
    admin_notifications.router,
    admin_billing.router,
    admin_presence.router,
    admin_ledger.router,
    admin_users.router,
    admin_orders.router,
    admin_operators.router,
    admin_reservations.router,
    # remote control: firmware / log history, charging profiles, uploaded files
    admin_remote.router,
    uploads.router,
)
