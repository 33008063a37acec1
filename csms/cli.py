"""``qrcharge csms``: runs the central system (HTTP + OCPP WebSocket on one port);
``qrcharge operator add|list``: operator accounts on the configured database (the first admin
is made here, before anyone can sign in)."""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import getpass
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn

from config.logs import configure as configure_logs
from config.settings import Settings, load_settings
from csms import heap
from csms.errors import UnsafeForProduction
from csms.operators import accounts
from csms.operators.errors import OperatorNameTaken
from csms.operators.roles import ROLES, Role
from csms.production import check_production


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "csms",
        help="run the central system (operator API, JWKS, OCPP 1.6J/2.0.1 WebSocket)",
        description=(
            "Serves the OCPP endpoint /ocpp/{id}, the driver and operator APIs under /api/v1,"
            " /.well-known/jwks.json, the driver page (/, /c/{id}) and the operator page"
            " (/operator) on one port."
        ),
    )
    parser.add_argument("--host", help="interface to bind (setting host)")
    parser.add_argument("--port", type=int, help="port (setting port)")
    parser.add_argument("--data-dir", type=Path, help="SQLite file and key directory live here")
    parser.add_argument("--database-url", help="e.g. postgresql+asyncpg://user@host/db")
    parser.add_argument("--config", type=Path, help="a TOML file of settings")
    parser.add_argument("--log-level", default="info", help="uvicorn log level")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="text (default) or json: one JSON object per line with the charger, order, "
        "transaction and request ids (setting log_format)",
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes serving the port (SO_REUSEPORT), kept running by this one; more than "
        "one needs PostgreSQL (docs/operator-guide.md, 'Running in production')",
    )
    parser.add_argument(
        "--node-id",
        help="this node's name in logs, metrics and /healthz (setting node_id; default: host "
        "name and process id); with --workers each worker gets -w1, -w2, ... appended",
    )
    # a worker of --workers: binds the port with SO_REUSEPORT, leaves the start-up to its
    # supervisor; the number is its index (not for operators)
    parser.add_argument("--worker-index", type=_positive, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)
    _register_operator(subparsers)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="the SQLite file lives here")
    parser.add_argument("--database-url", help="e.g. postgresql+asyncpg://user@host/db")
    parser.add_argument("--config", type=Path, help="a TOML file of settings")


def _register_operator(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "operator",
        help="operator accounts (add the first admin here)",
        description="Adds and lists operator accounts on the configured database (migrated "
        "first). Signing in, roles and the audit log: docs/operator-guide.md.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add an account (asks for its password)")
    add.add_argument("name", help="the account's name (a-z 0-9 . _ @ -, lower-cased)")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument(
        "--password-file",
        type=Path,
        help="read the password from this file (its first line) instead of asking",
    )
    _database_options(add)
    add.set_defaults(func=operator_add)
    listing = actions.add_parser("list", help="list the accounts")
    _database_options(listing)
    listing.set_defaults(func=operator_list)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, data_dir=args.data_dir, database_url=args.database_url)


def _password(args: argparse.Namespace) -> str:
    """The new account's password: the first line of ``--password-file``, else asked twice."""
    if args.password_file is not None:
        lines = args.password_file.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def operator_add(args: argparse.Namespace) -> int:
    name = accounts.normalise_name(args.name)
    try:
        settings = _settings(args)
        problem = accounts.name_problem(name)
        if problem:
            raise ValueError(problem)
        password = _password(args)
        problem = accounts.password_problem(password)
        if problem:
            raise ValueError(problem)
    except (ValueError, OSError) as exc:
        print(f"qrcharge operator add: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_add(settings, name, password, args.role))
    except OperatorNameTaken as exc:
        print(f"qrcharge operator add: {exc}", file=sys.stderr)
        return 1
    print(f"added {name} ({args.role})")
    return 0


def operator_list(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except ValueError as exc:
        print(f"qrcharge operator list: {exc}", file=sys.stderr)
        return 2
    for row in asyncio.run(_list(settings)):
        state = "disabled" if row.disabled else "enabled"
        print(f"{row.name}\t{row.role}\t{state}\t{row.created_at.isoformat()}")
    return 0


async def _add(settings: Settings, name: str, password: str, role: Role) -> None:
    from csms.store.db import Database, migrate
    from csms.store.types import utcnow

    db = Database.connect(settings.resolved_database_url)
    try:
        await migrate(db.engine)
        async with db.session() as session:
            await accounts.create_operator(
                session, name=name, password=password, role=role, now=utcnow()
            )
    finally:
        await db.dispose()


async def _list(settings: Settings) -> list[Any]:
    from csms.store.db import Database, migrate

    db = Database.connect(settings.resolved_database_url)
    try:
        await migrate(db.engine)
        async with db.session() as session:
            return await accounts.list_operators(session)
    finally:
        await db.dispose()


class _DenialNoise(logging.Filter):
    """Drops uvicorn's false "returned without completing handshake" after an HTTP denial.

    uvicorn's websockets-sansio protocol logs it for every handshake the CSMS refuses with an
    HTTP response (400/401/404/503); in a reconnect storm that is thousands of ERROR lines.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing handshake" not in record.getMessage()


def run(args: argparse.Namespace) -> int:
    from csms.app import create_app, server_config

    try:
        settings = load_settings(
            args.config,
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            database_url=args.database_url,
            node_id=args.node_id,
        )
        check_production(settings)
    except (ValueError, UnsafeForProduction) as exc:  # also pydantic's ValidationError
        print(f"qrcharge csms: {exc}", file=sys.stderr)
        return 2
    heap.limit_arenas(settings.malloc_arena_max)  # before any thread allocates
    sqlite = settings.resolved_database_url.startswith("sqlite")
    if args.workers > 1 and sqlite:
        print(
            f"qrcharge csms: --workers {args.workers} needs PostgreSQL (--database-url "
            "postgresql+asyncpg://user@host/db): SQLite has one writer, so it is served by one "
            "process (--workers 1)",
            file=sys.stderr,
        )
        return 2
    log_format = args.log_format or settings.log_format
    clustered = args.workers > 1 or args.worker_index is not None or settings.node_id
    configure_logs(
        args.log_level, log_format, node=settings.resolved_node_id if clustered else None
    )
    if args.workers > 1:
        return _supervise(args, settings)
    # text: uvicorn's own handlers, as before; json: its loggers reach ours (one format)
    uvicorn_logs: dict[str, Any] = {} if log_format == "text" else {"log_config": None}
    worker = args.worker_index is not None
    try:
        # a worker, or a node joining a Redis cluster, leaves the other nodes' chargers online
        app = create_app(settings, mark_offline=not worker and not settings.redis_url)
        config = server_config(settings, app, log_level=args.log_level, **uvicorn_logs)
        sockets = [reuse_port_socket(settings.host, settings.port)] if worker else None
    except (ValueError, OSError) as exc:  # settings that cannot serve (TLS, production, port)
        print(f"qrcharge csms: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("uvicorn.error").addFilter(_DenialNoise())
    tune_gc()
    try:
        uvicorn.Server(config).run(sockets=sockets)
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after a complete shutdown
        LOG.info("stopped")
    finally:
        # frozen objects are never collected: without this, extension modules (zxing-cpp's
        # nanobind) report them as leaked when the interpreter exits
        gc.unfreeze()
    return 0


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """The worker's own listening socket on ``host:port``, shared with its siblings through
    ``SO_REUSEPORT`` (the kernel spreads connections over them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def _supervise(args: argparse.Namespace, settings: Settings) -> int:
    """Prepares the shared state once (the schema, the chargers offline, the keys), checks
    that the port is free, then runs ``args.workers`` workers (:mod:`csms.workers`)."""
    from csms.workers import Supervisor

    try:
        with socket.socket() as probe:  # taken by anything else, even another cluster: stop
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((settings.host, settings.port))
        settings = asyncio.run(_prepare(settings, args.workers))
    except Exception as exc:  # the port, the database or the key directory
        print(f"qrcharge csms: cannot start the workers: {exc}", file=sys.stderr)
        return 1

    if not settings.redis_url:
        LOG.warning(
            "no redis_url: each worker reaches only the chargers connected to it (operator "
            "commands, remote starts and stops to chargers on another worker answer 409); "
            "set QRCHARGE_REDIS_URL to route them (docs/operator-guide.md)"
        )
    LOG.info(
        "serving on %s:%d with %d workers (SO_REUSEPORT)",
        settings.host,
        settings.port,
        args.workers,
    )
    command = functools.partial(worker_command, args, settings)
    return Supervisor(args.workers, command, grace_s=_GRACE_S + 10).run()


def worker_command(
    args: argparse.Namespace, settings: Settings, index: int
) -> tuple[list[str], dict[str, str]]:
    """Worker ``index``'s command line and environment: ``qrcharge csms`` with this one's
    options, its node id (``node_id`` suffixed ``-w<index>`` when one is set) and its own
    metrics port (``metrics_bind``'s port + index - 1)."""
    argv = [sys.executable, "-m", "qrcharge_cli", "csms", "--worker-index", str(index)]
    argv += ["--host", settings.host, "--port", str(settings.port)]
    argv += ["--data-dir", str(settings.data_dir), "--log-level", args.log_level]
    argv += ["--log-format", args.log_format or settings.log_format]
    if args.config is not None:
        argv += ["--config", str(args.config)]
    if settings.node_id:
        argv += ["--node-id", f"{settings.node_id}-w{index}"]
    # the database URL by the environment: a password in it stays out of `ps`
    env = {**os.environ, "QRCHARGE_DATABASE_URL": settings.resolved_database_url}
    env["QRCHARGE_DB_POOL_SIZE"] = str(settings.db_pool_size)  # as the supervisor sized it
    env["QRCHARGE_DB_MAX_OVERFLOW"] = str(settings.db_max_overflow)
    env["QRCHARGE_DB_WRITER_CONNECTIONS"] = str(settings.db_writer_connections)
    if settings.metrics_bind:  # a listener each: worker i on the configured port + i - 1
        host, _, port = settings.metrics_bind.rpartition(":")
        env["QRCHARGE_METRICS_BIND"] = f"{host}:{int(port) + index - 1}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
    return argv, env


async def _prepare(settings: Settings, workers: int) -> Settings:
    """Migrates, marks chargers offline (one node), makes the keys once, shares the writer
    lanes out among the workers and sizes each worker's pool so that ``workers`` of them fit
    the server's ``max_connections``: the settings the workers get."""
    from csms.drivers.tokens import load_or_create_secret
    from csms.keys import KeyManager
    from csms.store.chargers import mark_all_offline
    from csms.store.db import (
        Database,
        fixed_connections,
        migrate,
        server_connection_limits,
        share_connections,
        share_writers,
    )
    from csms.store.types import utcnow

    db = Database.connect(settings.resolved_database_url)
    try:
        limit, reserved = await server_connection_limits(db.engine)
        writers = share_writers(settings.db_writer_connections, workers)
        settings = settings.model_copy(update={"db_writer_connections": writers})
        pool, overflow = share_connections(
            limit, reserved, workers, settings.db_pool_size, settings.db_max_overflow,
            fixed_connections(writers),
        )  # fmt: skip
        if (pool, overflow) != (settings.db_pool_size, settings.db_max_overflow):
            LOG.warning(
                "PostgreSQL's max_connections=%d: each of the %d workers gets a pool of %d + %d "
                "(db_pool_size %d + db_max_overflow %d would not fit)",
                limit,
                workers,
                pool,
                overflow,
                settings.db_pool_size,
                settings.db_max_overflow,
            )
            settings = settings.model_copy(
                update={"db_pool_size": pool, "db_max_overflow": overflow}
            )
        await migrate(db.engine)
        if not settings.redis_url:  # in a Redis cluster other machines' chargers stay online
            async with db.session() as session:
                await mark_all_offline(session)
    finally:
        await db.dispose()
    KeyManager.open(
        settings.resolved_key_dir,
        now=int(utcnow().timestamp()),
        prepublish_s=settings.key_prepublish_s,
        token_lifetime_s=settings.start_token_validity_s + settings.token_leeway_s,
    )
    load_or_create_secret(settings.resolved_key_dir)
    return settings


LOG = logging.getLogger("csms")
_ROOT = str(Path(__file__).resolve().parents[1])  # where qrcharge_cli lives (a source tree)
_GRACE_S = 5  # uvicorn's timeout_graceful_shutdown (csms.app.server_config)


# Thousands of connections keep many long-lived objects: with the default thresholds (700, 10,
# 10) the cyclic collector runs often and walks them all, costing CPU and pausing the loop in
# the middle of a store group (docs/benchmarks.md).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Rarer cyclic collections for a long-running server; what exists at start (modules,
    settings, the app) is frozen out of them."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
