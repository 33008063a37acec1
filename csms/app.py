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
from redis.asyncio import Redis
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import configure_mappers

from config.settings import Settings
from csms import metrics
from csms.api.audit import AuditLog
from csms.api.docs import mount_docs
from csms.api.node_header import NodeHeader
from csms.api.request_ids import RequestIds
from csms.api.routers import ROUTERS
from csms.api.routes import metrics as metrics_route
from csms.api.routes import money
from csms.api.routes.admin_operators import operator_error
from csms.api.uploads import PHOTO_REQUEST_BYTES, UPLOAD_FRAMING_BYTES, BodyLimit, BodyTooLarge
from csms.charger_ca import configured_ca
from csms.cluster.client import redis_client
from csms.cluster.leader import Leadership
from csms.cluster.node import ClusterDispatcher, ClusterNode
from csms.commands import CommandDispatcher, ConnectionRegistry, LocalDispatcher
from csms.context import CsmsContext
from csms.decodes import DecodeGate
from csms.drivers.throttle import LocalLogins, LoginThrottle, SharedLoginThrottle
from csms.drivers.tokens import DriverTokens, load_or_create_secret
from csms.errors import (
    ChargerBusy,
    ClusterUnavailable,
    CommandRejected,
    CommandTimeout,
    CsmsError,
    IllegalTransition,
    NotConnected,
    StoreError,
)
from csms.http_linger import LingeringHttpProtocol
from csms.id_tags import LocalTagPolicy
from csms.keys import KeyManager
from csms.operators.errors import OperatorError
from csms.password_throttle import (
    LocalPasswordGuard,
    PasswordGuard,
    PasswordThrottle,
    SharedPasswordThrottle,
)
from csms.passwords import PasswordVerifier, SharedVerifications, cache_secret
from csms.payments.order_policy import OrderAuthorizationPolicy
from csms.payments.provider import SandboxProvider
from csms.payments.reaper import Reaper
from csms.payments.settlement_service import SettlementService
from csms.ports import AuthorizationPolicy, LoginGuard, PaymentProvider, SettlementSink
from csms.production import check_production
from csms.protocol import commands as ocpp_commands
from csms.protocol.endpoint import WS_HARD_LIMIT_FACTOR
from csms.protocol.remote import UPLOAD_PATH
from csms.store.chargers import mark_all_offline
from csms.store.db import Database, migrate
from csms.store.leader_lock import LeaderLock
from csms.store.message_log import MessageLogWriter
from csms.store.types import utcnow
from csms.store.writer import StoreWriter
from csms.tls import uvicorn_tls_options
from csms.upload_rate import LocalUploadRate, SharedUploadRate, UploadGate, UploadRate
from csms.web import mount_web
from csms.ws_link import OcppWebSocketProtocol

LOG = logging.getLogger("csms")

Clock = Callable[[], datetime]
PolicyFactory = Callable[[Database, Clock], AuthorizationPolicy]


def create_app(
    settings: Settings,
    *,
    sink: SettlementSink | None = None,
    authorization: PolicyFactory | None = None,
    clock: Clock = utcnow,
    payment_provider: PaymentProvider | None = None,
    mark_offline: bool = True,
) -> FastAPI:
    """The CSMS as an ASGI app.

    ``sink`` replaces the settlement service as the receiver of what chargers report, and
    ``authorization`` the order-id policy (with the local RFID tags behind it); ``clock`` is
    every service's clock (tests move it). ``payment_provider`` takes wallet top-ups (a PSP
    adapter); the sandbox by default. ``mark_offline`` marks every charger offline on start
    (no socket is open yet); a worker of ``--workers`` leaves that to its supervisor, which
    does it once before any worker serves: a restarted worker must not mark the others'
    chargers offline.
    """
    check_production(settings)
    # every ORM mapper configured now, in one thread: configured lazily by the first query, two
    # threads at once (the loop and a database thread, a fresh worker's first burst) can see a
    # half-configured attribute (AttributeError on ``supports_population``)
    configure_mappers()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database.connect(
            settings.resolved_database_url,
            writer_connections=settings.db_writer_connections,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        await migrate(db.engine)
        if mark_offline:
            async with db.session() as session:
                await mark_all_offline(session)
        ctx = await build_context(
            settings,
            db,
            sink=sink,
            authorization=authorization,
            clock=clock,
            payment_provider=payment_provider,
        )
        app.state.ctx = ctx
        tasks = [
            asyncio.create_task(ctx.message_log.run(), name="message-log"),
            asyncio.create_task(ctx.writer.run(), name="store-writer"),
            asyncio.create_task(db.run_checkpoints(), name="wal-checkpoints"),
            asyncio.create_task(metrics_route.refresh_forever(ctx), name="metrics"),
        ]
        # the once-per-cluster jobs (the reaper) run while this node leads
        assert ctx.leadership is not None
        metrics.set_node(ctx.leadership.node_id)
        leadership = asyncio.create_task(ctx.leadership.run(), name="leadership")
        listener = _metrics_listener(settings.metrics_bind)
        try:
            yield
        finally:
            links = [ctx.registry.get(charger_id) for charger_id in ctx.registry.connected()]
            await asyncio.gather(
                *(link.close("CSMS shutting down") for link in links if link is not None),
                return_exceptions=True,
            )
            leadership.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await leadership
            if listener is not None:
                listener.shutdown()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ctx.message_log.flush()
            if ctx.cluster is not None:
                await ctx.cluster.stop()
            await db.dispose()
            ctx.decodes.close()
            ctx.passwords.close()

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
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(CsmsError, _csms_error)  # type: ignore[arg-type]
    app.add_exception_handler(BodyTooLarge, _body_too_large)  # type: ignore[arg-type]
    for root in money.ROOTS:  # more specific than CsmsError: FastAPI picks by the MRO
        app.add_exception_handler(root, money.money_error)
    app.add_exception_handler(OperatorError, operator_error)
    app.add_exception_handler(DBAPIError, _database_error)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, _database_error)  # type: ignore[arg-type]
    app.add_middleware(
        BodyLimit,
        per_prefix={
            "/api/v1/settlements": PHOTO_REQUEST_BYTES,
            UPLOAD_PATH: settings.upload_max_bytes + UPLOAD_FRAMING_BYTES,  # a charger's file
        },
    )
    app.add_middleware(AuditLog)  # around BodyLimit: its 413s are recorded too
    app.add_middleware(RequestIds)  # added last: outermost, so the 413s carry an id too
    app.add_middleware(NodeHeader, node_id=settings.resolved_node_id)
    if docs:
        mount_docs(app)
    mount_web(app, settings)
    return app


async def build_context(
    settings: Settings,
    db: Database,
    *,
    sink: SettlementSink | None,
    authorization: PolicyFactory | None,
    clock: Clock,
    payment_provider: PaymentProvider | None = None,
) -> CsmsContext:
    """Every service of one CSMS on an open, migrated database: the one place they are made.

    ``authorization`` builds the policy for id tags; by default order ids are decided by the
    payment side, with the CSMS's local RFID tags behind them. The charger CA, the keys and the
    drivers' token secret are read (or created) off the event loop."""
    charger_ca = await asyncio.to_thread(  # configured but unusable: the start stops here
        configured_ca,
        settings.ca_cert_file,
        settings.ca_key_file,
        validity_days=settings.charger_cert_validity_days,
    )
    keys = await asyncio.to_thread(
        KeyManager.open,
        settings.resolved_key_dir,
        now=int(clock().timestamp()),
        prepublish_s=settings.key_prepublish_s,
        token_lifetime_s=settings.start_token_validity_s + settings.token_leeway_s,
    )
    driver_secret = await asyncio.to_thread(load_or_create_secret, settings.resolved_key_dir)
    registry = ConnectionRegistry()
    local = LocalDispatcher(registry, timeout_s=settings.ocpp_call_timeout_s, codec=ocpp_commands)
    dispatcher: CommandDispatcher = local
    cluster = redis = None
    if settings.redis_url:  # a node of a cluster: presence, routing, throttles in Redis
        # a bounded pool whose callers wait for a socket (a burst must not fail), and bounded
        # waits (a Redis that hangs must fail a command, 503, not hold it forever)
        redis = redis_client(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            wait_s=settings.redis_pool_wait_s,
        )
        cluster = ClusterNode(
            redis,
            prefix=settings.redis_prefix,
            node_id=settings.resolved_node_id,
            presence_ttl_s=settings.presence_ttl_s,
            registry=registry,
            local=local,
            call_timeout_s=settings.ocpp_call_timeout_s,
        )
        dispatcher = ClusterDispatcher(cluster, local)
        cluster.on_invalidate("keys", lambda _: asyncio.to_thread(keys.reload))
        await cluster.start()
    settlements = SettlementService(db, settings=settings, clock=clock)
    provider = payment_provider or SandboxProvider()
    reaper = Reaper(db, settings=settings, clock=clock, dispatcher=dispatcher, provider=provider)

    def seconds() -> float:  # the app's clock in epoch seconds (tests move it)
        return clock().timestamp()

    if authorization is None:
        policy: AuthorizationPolicy = OrderAuthorizationPolicy(
            db,
            clock=clock,
            leeway_s=settings.token_leeway_s,
            fallback=LocalTagPolicy(db, clock=clock),
        )
    else:
        policy = authorization(db, clock)
    return CsmsContext(
        settings=settings,
        db=db,
        keys=keys,
        registry=registry,
        dispatcher=dispatcher,
        passwords=PasswordVerifier(
            shared=None
            if redis is None
            else SharedVerifications(
                redis, prefix=settings.redis_prefix, secret=cache_secret(driver_secret)
            )
        ),
        authorization=policy,
        sink=sink or settlements,
        message_log=MessageLogWriter(db, limit=settings.message_log_limit, clock=clock),
        writer=StoreWriter(db),
        clock=clock,
        decodes=DecodeGate(slots=2, waiting=8),
        charger_ca=charger_ca,
        password_throttle=_password_guard(settings, redis, seconds),
        settlements=settlements,
        reaper=reaper,
        leadership=_leadership(settings, reaper),
        payment_provider=provider,
        driver_tokens=DriverTokens(
            secret=driver_secret, issuer=settings.issuer, ttl_s=settings.driver_token_ttl_s
        ),
        login_throttle=_login_guard(settings, redis, "logins", seconds),
        operator_throttle=_login_guard(settings, redis, "operator-logins", seconds),
        upload_rate=_upload_gate(settings, redis, seconds),
        cluster=cluster,
    )


def _login_guard(
    settings: Settings, redis: Redis | None, name: str, seconds: Callable[[], float]
) -> LoginGuard:
    """Wrong log-in passwords counted in this process, or in Redis for a cluster."""
    if redis is None:
        return LocalLogins(
            LoginThrottle(
                max_failures=settings.login_max_failures,
                lockout_s=settings.login_lockout_s,
                clock=seconds,
            )
        )
    return SharedLoginThrottle(
        redis,
        prefix=f"{settings.redis_prefix}:{name}",
        max_failures=settings.login_max_failures,
        lockout_s=settings.login_lockout_s,
        clock=seconds,
    )


def _password_guard(
    settings: Settings, redis: Redis | None, seconds: Callable[[], float]
) -> PasswordGuard:
    """Wrong charger passwords counted in this process, or in Redis for a cluster."""
    if redis is None:
        return LocalPasswordGuard(
            PasswordThrottle(
                max_failures=settings.charger_auth_max_failures,
                lockout_s=settings.charger_auth_lockout_s,
                clock=seconds,
            )
        )
    return SharedPasswordThrottle(
        redis,
        prefix=settings.redis_prefix,
        max_failures=settings.charger_auth_max_failures,
        lockout_s=settings.charger_auth_lockout_s,
        clock=seconds,
    )


def _upload_gate(
    settings: Settings, redis: Redis | None, seconds: Callable[[], float]
) -> UploadGate:
    """Settlement uploads counted in this process, or in Redis for a cluster."""
    if redis is None:
        return LocalUploadRate(
            UploadRate(
                per_driver=settings.upload_rate_per_driver,
                per_client=settings.upload_rate_per_client,
                clock=seconds,
            )
        )
    return SharedUploadRate(
        redis,
        prefix=settings.redis_prefix,
        per_driver=settings.upload_rate_per_driver,
        per_client=settings.upload_rate_per_client,
        clock=seconds,
    )


def _leadership(settings: Settings, reaper: Reaper) -> Leadership:
    """The election of the node that runs the once-per-cluster jobs: a PostgreSQL advisory
    lock; on SQLite (one process) this node always leads."""
    url = settings.resolved_database_url
    node_id = settings.resolved_node_id
    lock = (
        None
        if url.startswith("sqlite")
        else LeaderLock(
            url,
            node_id=node_id,
            lease_s=settings.leader_lease_s,
            timeout_s=min(settings.leader_lease_s / 2, 5.0),
        )
    )
    jobs = [("payments-reaper", reaper.run)] if settings.reaper_interval_s > 0 else []
    return Leadership(
        lock,
        node_id=node_id,
        jobs=jobs,
        heartbeat_s=settings.leader_heartbeat_s,
        lease_s=settings.leader_lease_s,
        retry_s=settings.leader_retry_s,
    )


def _metrics_listener(bind: str) -> WSGIServer | None:
    """Prometheus's own HTTP listener on ``host:port`` (no key: bind it to a private
    interface), or None when ``metrics_bind`` is empty."""
    if not bind:
        return None
    host, _, port = bind.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host or "127.0.0.1")
    LOG.info("metrics on http://%s:%s/metrics", host or "127.0.0.1", port)
    return server


_HTTP_STATUS: tuple[tuple[type[CsmsError], int], ...] = (
    (NotConnected, status.HTTP_409_CONFLICT),
    (ChargerBusy, status.HTTP_503_SERVICE_UNAVAILABLE),
    (CommandTimeout, status.HTTP_504_GATEWAY_TIMEOUT),
    (ClusterUnavailable, status.HTTP_503_SERVICE_UNAVAILABLE),  # Redis down: retry later
    (StoreError, status.HTTP_409_CONFLICT),
    (IllegalTransition, status.HTTP_409_CONFLICT),  # the thing changed state meanwhile
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


async def _body_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
    """Lets a body over its limit through to :class:`BodyLimit`, the middleware around the app
    that raised it: it answers 413 and closes the connection, so the client stops sending."""
    raise exc


# PostgreSQL's classes of "not now": a connection problem, insufficient resources (too many
# clients: another process of the cluster holds the connections), the server shutting down
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")
# text the server cannot hold: a character not in its encoding (NUL sent by asyncpg), and one
# it cannot translate (NUL in JSON text)
_NOT_TEXT_SQLSTATES = ("22021", "22P05")


async def _database_error(request: Request, exc: DBAPIError | PoolTimeout) -> JSONResponse:
    """A database that is gone or busy (a lost connection, a restarting server, a full pool)
    is the client's 503 with ``Retry-After``: the service is unavailable for a moment, which
    a client can act on, where a 500 says the server is broken. Text PostgreSQL cannot hold
    (NUL, ``\\u0000``, in an id or a field: valid JSON and URL, refused by the driver before
    it is sent) is the client's 422. Any other database error is a 500, logged."""
    state = str(getattr(exc.orig, "sqlstate", None) or "") if isinstance(exc, DBAPIError) else ""
    if state in _NOT_TEXT_SQLSTATES or (
        isinstance(exc, DataError) and "NUL (0x00)" in str(exc.orig)
    ):
        return JSONResponse(
            {"detail": "text holding NUL (\\u0000) is not accepted"},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    lost = (
        isinstance(exc, PoolTimeout | OperationalError | InterfaceError)
        or (isinstance(exc, DBAPIError) and exc.connection_invalidated)
        or state.startswith(_UNAVAILABLE_SQLSTATES)
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
        "http": LingeringHttpProtocol,  # httptools; a close with a body still arriving lingers
        "ws": OcppWebSocketProtocol,  # websockets-sansio: the peer's certificate, direct frames
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
