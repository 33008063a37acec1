"""``qrcharge csms``: runs the central system (HTTP + OCPP WebSocket on one port);
``qrcharge operator add|list``: operator accounts on the configured database (the first admin
is made here, before anyone can sign in)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import sys
from pathlib import Path
from typing import Any

import uvicorn

from config.logs import configure as configure_logs
from config.settings import Settings, load_settings
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
    parser.set_defaults(func=run)
    _register_operator(subparsers)


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
    from csms.app import server_config

    try:
        settings = load_settings(
            args.config,
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            database_url=args.database_url,
        )
        check_production(settings)
    except (ValueError, UnsafeForProduction) as exc:  # also pydantic's ValidationError
        print(f"qrcharge csms: {exc}", file=sys.stderr)
        return 2
    log_format = args.log_format or settings.log_format
    configure_logs(args.log_level, log_format)
    # text: uvicorn's own handlers, as before; json: its loggers reach ours (one format)
    uvicorn_logs: dict[str, Any] = {} if log_format == "text" else {"log_config": None}
    try:
        config = server_config(settings, log_level=args.log_level, **uvicorn_logs)
    except ValueError as exc:  # settings that cannot serve (TLS files, production without TLS)
        print(f"qrcharge csms: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("uvicorn.error").addFilter(_DenialNoise())
    tune_gc()
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after a complete shutdown
        LOG.info("stopped")
    finally:
        # frozen objects are never collected: without this, extension modules (zxing-cpp's
        # nanobind) report them as leaked when the interpreter exits
        gc.unfreeze()
    return 0


LOG = logging.getLogger("csms")


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
