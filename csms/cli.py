"""``qrcharge csms``: runs the central system (HTTP + OCPP WebSocket on one port)."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from pathlib import Path
from typing import Any

import uvicorn

from config.logs import configure as configure_logs
from config.settings import load_settings
from csms.errors import UnsafeForProduction
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
