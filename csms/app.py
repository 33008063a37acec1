"""The CSMS application: ``create_app(settings)`` and the uvicorn configuration to serve it.

One process, one port: the operator API (``/api/v1/admin/...``), ``/.well-known/jwks.json``
and the OCPP WebSocket endpoint ``/ocpp/{charge_point_id}``. The lifespan opens the database
and migrates it, loads (or creates) the signing keys, and owns the background tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from wsgiref.simple_server import WSGIServer

import uvicorn
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from prometheus_client import start_http_server
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from config.settings import Settings
from csms.api.docs import mount_docs
from csms.api.request_ids import RequestIds
from csms.api.routes import (
    admin_chargers,
    admin_commands,
    admin_id_tags,
    admin_notifications,
    admin_transactions,
    health,
    keys,
    metrics,
)
from csms.api.uploads import PHOTO_REQUEST_BYTES, BodyLimit, DecodeGate
from csms.charger_ca import configured_ca
from csms.commands import ConnectionRegistry, LocalDispatcher
from csms.context import CsmsContext
from csms.errors import (
    ChargerBusy,
    CommandRejected,
    CommandTimeout,
    CsmsError,
    NotConnected,
    StoreError,
)
from csms.keys import KeyManager
from csms.password_throttle import PasswordThrottle
from csms.passwords import PasswordVerifier
from csms.payments import SettlementSink, StoreOnlySink
from csms.payments.wiring import PaymentSide
from csms.production import check_production
from csms.protocol import commands as ocpp_commands
from csms.protocol.authorization import AuthorizationPolicy, LocalTagPolicy
from csms.protocol.endpoint import WS_HARD_LIMIT_FACTOR
from csms.protocol.endpoint import router as ocpp_router
from csms.store.chargers import mark_all_offline
from csms.store.db import Database, migrate
from csms.store.message_log import MessageLogWriter
from csms.store.types import utcnow
from csms.store.writer import StoreWriter
from csms.tls import TlsWebSocketProtocol, uvicorn_tls_options
from csms.web import mount_web

LOG = logging.getLogger("csms")

PolicyFactory = Callable[[Database, Callable[[], datetime]], AuthorizationPolicy]


def create_app(
    settings: Settings,
    *,
    sink: SettlementSink | None = None,
    authorization: PolicyFactory | None = None,
    clock: Callable[[], datetime] = utcnow,
    payments: bool = True,
) -> FastAPI:
    """The CSMS as an ASGI app; ``sink`` and ``authorization`` are the payment issue's hooks.

    With ``payments`` (the default) the payment side is wired in: drivers, wallets, billing,
    orders, settlements (the default sink and order-id policy) and its background reaper.
    """
    check_production(settings)
    side = PaymentSide(settings, clock=clock) if payments else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        charger_ca = configured_ca(  # a CA that is configured but unusable stops the start
            settings.ca_cert_file,
            settings.ca_key_file,
            validity_days=settings.charger_cert_validity_days,
        )
        db = Database.connect(settings.resolved_database_url)
        await migrate(db.engine)
        async with db.session() as session:
            await mark_all_offline(session)
        payment_sink = side.open(db) if side is not None else None
        key_manager = await asyncio.to_thread(
            KeyManager.open,
            settings.resolved_key_dir,
            now=int(clock().timestamp()),
            prepublish_s=settings.key_prepublish_s,
            token_lifetime_s=settings.start_token_validity_s + settings.token_leeway_s,
        )
        registry = ConnectionRegistry()
        message_log = MessageLogWriter(db, limit=settings.message_log_limit, clock=clock)
        store_writer = StoreWriter(db)
        ctx = CsmsContext(
            settings=settings,
            db=db,
            keys=key_manager,
            registry=registry,
            dispatcher=LocalDispatcher(
                registry, timeout_s=settings.ocpp_call_timeout_s, codec=ocpp_commands
            ),
            passwords=PasswordVerifier(),
            authorization=(authorization or (side.policy if side else _local_tags))(db, clock),
            sink=sink or payment_sink or StoreOnlySink(),
            message_log=message_log,
            writer=store_writer,
            clock=clock,
            decodes=DecodeGate(slots=2, waiting=8),
            charger_ca=charger_ca,
            password_throttle=PasswordThrottle(
                max_failures=settings.charger_auth_max_failures,
                lockout_s=settings.charger_auth_lockout_s,
                clock=lambda: clock().timestamp(),  # the app's clock (tests move it)
            ),
        )
        app.state.ctx = ctx
        writer = asyncio.create_task(message_log.run(), name="message-log")
        store_task = asyncio.create_task(store_writer.run(), name="store-writer")
        checkpoints = asyncio.create_task(db.run_checkpoints(), name="wal-checkpoints")
        gauges = asyncio.create_task(metrics.refresh_forever(ctx), name="metrics")
        listener = _metrics_listener(settings.metrics_bind)
        if side is not None:
            side.start()
        try:
            yield
        finally:
            links = [registry.get(charger_id) for charger_id in registry.connected()]
            await asyncio.gather(
                *(link.close("CSMS shutting down") for link in links if link is not None),
                return_exceptions=True,
            )
            if side is not None:
                await side.close()
            if listener is not None:
                listener.shutdown()
            writer.cancel()
            store_task.cancel()
            checkpoints.cancel()
            gauges.cancel()
            await asyncio.gather(writer, store_task, checkpoints, gauges, return_exceptions=True)
            await message_log.flush()
            await db.dispose()
            ctx.decodes.close()

    docs = settings.api_docs
    app = FastAPI(
        docs_url=None,  # our own pages below: their scripts are served here, not by a CDN
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        title="qrcharge CSMS",
        summary="OCPP 1.6J / 2.0.1 central system with offline scan-to-pay",
        version="0.1.0",
        lifespan=lifespan,
    )
    for router in (
        health.router,
        metrics.router,
        ocpp_router,
        keys.router,
        admin_chargers.router,
        admin_transactions.router,
        admin_commands.router,
        admin_id_tags.router,
        admin_notifications.router,
    ):
        app.include_router(router)
    app.add_exception_handler(CsmsError, _csms_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _database_error)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, _database_error)  # type: ignore[arg-type]
    app.add_middleware(BodyLimit, per_prefix={"/api/v1/settlements": PHOTO_REQUEST_BYTES})
    app.add_middleware(RequestIds)  # added last: outermost, so the 413s carry an id too
    if side is not None:
        side.install(app)
    if docs:
        mount_docs(app)
    mount_web(app, settings)
    return app


def _metrics_listener(bind: str) -> WSGIServer | None:
    """Prometheus's own HTTP listener on ``host:port`` (no key: bind it to a private
    interface), or None when ``metrics_bind`` is empty."""
    if not bind:
        return None
    host, _, port = bind.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host or "127.0.0.1")
    LOG.info("metrics on http://%s:%s/metrics", host or "127.0.0.1", port)
    return server


def _local_tags(db: Database, clock: Callable[[], datetime]) -> AuthorizationPolicy:
    return LocalTagPolicy(db, clock=clock)


_HTTP_STATUS: tuple[tuple[type[CsmsError], int], ...] = (
    (NotConnected, status.HTTP_409_CONFLICT),
    (ChargerBusy, status.HTTP_503_SERVICE_UNAVAILABLE),
    (CommandTimeout, status.HTTP_504_GATEWAY_TIMEOUT),
    (StoreError, status.HTTP_409_CONFLICT),
)


async def _csms_error(request: Request, exc: CsmsError) -> JSONResponse:
    """Converts our errors to HTTP at the boundary."""
    if isinstance(exc, CommandRejected):
        invalid_request = exc.description.startswith("invalid ")
        code = (
            status.HTTP_422_UNPROCESSABLE_CONTENT
            if invalid_request
            else status.HTTP_502_BAD_GATEWAY
        )
        return JSONResponse(
            {"detail": str(exc), "error_code": exc.code, "error_details": exc.details},
            status_code=code,
        )
    for kind, code in _HTTP_STATUS:
        if isinstance(exc, kind):
            return JSONResponse({"detail": str(exc)}, status_code=code)
    LOG.error("unexpected CSMS error on %s", request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=500)


async def _database_error(request: Request, exc: DBAPIError | PoolTimeout) -> JSONResponse:
    """A database that is gone or busy (a lost connection, a restarting server, a full pool)
    is the client's 503 with ``Retry-After``: the service is unavailable for a moment, which
    a client can act on, where a 500 says the server is broken. Any other database error is
    a 500, logged."""
    lost = isinstance(exc, PoolTimeout | OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )
    if lost:
        LOG.warning("the database is unavailable (%s): %s", request.url.path, exc)
        return JSONResponse(
            {"detail": "the database is unavailable, retry shortly"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "1"},
        )
    LOG.error("database error on %s", request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def server_config(
    settings: Settings, app: FastAPI | None = None, **overrides: object
) -> uvicorn.Config:
    """The uvicorn configuration that serves the CSMS as documented (TLS, frame limits).

    ``overrides`` go to :class:`uvicorn.Config` (tests pass ``port=0`` and ``log_level``).
    """
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "ws": TlsWebSocketProtocol,  # websockets-sansio, with the peer's certificate in scope
        "ws_max_size": settings.ocpp_max_frame_bytes * WS_HARD_LIMIT_FACTOR,
        "ws_ping_interval": 60.0,
        "ws_ping_timeout": 60.0,
        "backlog": 4096,
        "timeout_graceful_shutdown": 5,
        "lifespan": "on",
    }
    # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: anything on the
    # machine could then choose the address the log-in throttle counts. Only named proxies.
    options["proxy_headers"] = bool(settings.trusted_proxies)
    if settings.trusted_proxies:
        options["forwarded_allow_ips"] = settings.trusted_proxies
    options.update(uvicorn_tls_options(settings))
    options.update(overrides)
    return uvicorn.Config(app if app is not None else create_app(settings), **options)  # type: ignore[arg-type]
