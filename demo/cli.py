"""``qrcharge demo``: the CSMS, a fleet of simulated chargers and a demo driver, in one command.

Prints the driver page and operator page URLs and runs until Ctrl-C. ``--info-file`` writes
the same facts as JSON (for scripts and the browser tests).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.logs import configure as configure_logs
from config.settings import load_settings
from demo.errors import DemoError

if TYPE_CHECKING:
    from demo.runner import DemoInfo


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run the CSMS, simulated chargers and a demo driver; print the page URLs",
        description="Starts the whole system on this machine and prints where to open it.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=8000, help="CSMS port (0: any free port)")
    parser.add_argument(
        "--data-dir", type=Path, help="keep the database and keys here (default: a temp dir)"
    )
    parser.add_argument("--chargers", type=int, default=4, help="how many simulated chargers")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="the simulated EVs draw X times the power, so a session's energy and cost (and "
        "its energy and cost limits) come X times sooner; the chargers' clocks, timestamps, "
        "start-code validity and duration limits stay in real time",
    )
    parser.add_argument("--config", type=Path, help="a TOML file of settings")
    parser.add_argument("--info-file", type=Path, help="write the URLs and ids as JSON here")
    parser.add_argument("--log-level", default="warning", help="log level")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="text (default) or json: one JSON object per line with the charger, order, "
        "transaction and request ids (setting log_format)",
    )
    parser.set_defaults(func=run)


def describe(info: DemoInfo) -> str:
    """What the terminal shows once everything runs."""
    lines = [
        "qrcharge demo is running (Ctrl-C stops it)",
        "",
        f"  Driver page:    {info.page_url}",
        f"                  sign in as {info.driver_email} / {info.driver_password}",
        f"  Operator page:  {info.operator_url}   (operator key: {info.admin_api_key})",
        f"  Data:           {info.data_dir}",
        "",
        "  Simulated chargers (identification QR links):",
    ]
    for c in info.chargers:
        lines.append(
            f"    {c.id}  OCPP {c.ocpp_version:<5}  {c.evses} EVSE  {c.page_url}"
            f"   control API {c.control_url}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    # Imported here: the runner pulls in the CSMS and the charger, which every other
    # `qrcharge` subcommand (a charger starting up, say) would otherwise pay for.
    from demo.fleet import default_fleet
    from demo.runner import DemoOptions, run_until_stopped

    log_format = args.log_format or load_settings(args.config).log_format
    configure_logs(args.log_level, log_format)
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    temp = None if args.data_dir else Path(tempfile.mkdtemp(prefix="qrcharge-demo-"))
    data_dir: Path = args.data_dir if temp is None else temp
    options = DemoOptions(
        host=args.host,
        port=args.port,
        data_dir=data_dir,
        fleet=tuple(default_fleet(args.chargers)),
        time_scale=args.time_scale,
        config=args.config,
        log_level=args.log_level.lower(),
        log_format=log_format,
    )

    def ready(info: DemoInfo) -> None:
        if args.info_file:
            args.info_file.write_text(info.to_json())
        print(describe(info), flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_until_stopped(options, on_ready=ready, stop=stop)

    try:
        asyncio.run(main())
    except (DemoError, ValueError) as exc:
        print(f"qrcharge demo: {exc}", file=sys.stderr)
        return 1
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    print("qrcharge demo stopped", flush=True)
    return 0
