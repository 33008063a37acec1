"""``qrcharge cp``: run one charger, or ``--fleet N`` chargers in one process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from charge_point.errors import ChargePointError
from charge_point.settings import OCPP_VERSIONS, StationSettings
from config.logs import configure as configure_logs
from config.settings import load_settings

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("cp", help="run a charge point (OCPP 1.6J or 2.0.1)")
    p.add_argument("--id", required=True, dest="charge_point_id", help="charge point identity")
    p.add_argument("--csms", dest="csms_url", help="CSMS WebSocket base URL (…/ocpp)")
    p.add_argument("--ocpp", dest="ocpp_version", choices=OCPP_VERSIONS, default="1.6")
    p.add_argument(
        "--password",
        help="HTTP Basic password (security profile 1/2); shown in the process list: prefer "
        "--password-file or QRCHARGE_CP_PASSWORD",
    )
    p.add_argument("--password-file", type=Path, help="read the HTTP Basic password from this file")
    p.add_argument(
        "--ca-file",
        type=Path,
        help="wss:// only: PEM CA that signed the CSMS's certificate (default: the system's CAs)",
    )
    p.add_argument(
        "--client-cert",
        type=Path,
        dest="client_cert_file",
        help="wss:// only: PEM client certificate, subject CN = the charger id (security profile "
        "3: no password needed)",
    )
    p.add_argument(
        "--client-key",
        type=Path,
        dest="client_key_file",
        help="the client certificate's PEM private key (default: in the --client-cert file)",
    )
    p.add_argument("--evses", type=int, help="number of EVSEs (default 1)")
    p.add_argument("--state-dir", type=Path, help="SQLite file, key and camera folder")
    p.add_argument(
        "--control-port",
        type=int,
        help="enable the control API on 127.0.0.1:PORT (0: any free port)",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        metavar="X",
        help="the simulated EV draws X times the power, so energy, cost and the energy and cost "
        "limits come X times sooner; clocks, timestamps, token validity, heartbeats, meter "
        "sample intervals and duration limits stay in real time (default 1)",
    )
    p.add_argument(
        "--trusted-keys",
        type=Path,
        dest="trusted_keys_file",
        help="JWKS file with the trusted CSMS keys (installation config)",
    )
    p.add_argument(
        "--trust-first-keys",
        action="store_true",
        help="with no trusted keys, take the first TrustedKeys the CSMS sends",
    )
    p.add_argument(
        "--camera",
        type=Path,
        help="image file, folder to watch, or /dev/videoN (default: STATE_DIR/camera/ is watched)",
    )
    p.add_argument("--fleet", type=int, default=0, help="run N chargers ID-001..ID-N")
    p.add_argument("--config", help="settings TOML file (else QRCHARGE_CONFIG)")
    p.add_argument(
        "--quiet-terminal",
        action="store_true",
        help="do not print the settlement QR on the terminal",
    )
    p.add_argument("--log-level", default="INFO")
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="text (default) or json: one JSON object per line with the charger, order, "
        "transaction and request ids (setting log_format)",
    )
    p.set_defaults(func=run_command)


def settings_from_args(args: argparse.Namespace) -> StationSettings:
    settings = load_settings(args.config)
    station = StationSettings.from_settings(
        settings,
        charge_point_id=args.charge_point_id,
        csms_url=args.csms_url,
        ocpp_version=args.ocpp_version,
        password=args.password or _password_from(args.password_file),
        evses=args.evses,
        state_dir=args.state_dir,
        control_port=args.control_port,
        time_scale=args.time_scale,
        trusted_keys_file=args.trusted_keys_file,
        trust_first_keys=args.trust_first_keys,
        camera=args.camera,
        ca_file=args.ca_file,
        client_cert_file=args.client_cert_file,
        client_key_file=args.client_key_file,
    )
    if args.fleet > 0 and station.client_cert_file is not None:
        raise ValueError("a client certificate names one charger: --fleet cannot share one")
    return station


def _password_from(path: Path | None) -> str | None:
    """The first line of ``path`` (an editor's trailing newline is not part of the password)."""
    if path is None:
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the password file {path}: {exc}") from exc
    if not lines or not lines[0]:
        raise ValueError(f"the password file {path} is empty")
    return lines[0]


def run_command(args: argparse.Namespace) -> int:
    configure_logs(args.log_level, args.log_format or load_settings(args.config).log_format)
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    try:
        base = settings_from_args(args)
    except ValueError as exc:  # also pydantic's ValidationError
        print(f"qrcharge cp: {exc}", file=sys.stderr)
        return 2
    members = (
        [base] if args.fleet <= 0 else [base.for_fleet_member(i) for i in range(1, args.fleet + 1)]
    )
    try:
        asyncio.run(run_chargers(members, terminal=not args.quiet_terminal and args.fleet <= 0))
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, ChargePointError) as exc:  # state dir, key file, JWKS file
        print(f"qrcharge cp: {exc}", file=sys.stderr)
        return 1
    return 0


async def run_chargers(members: list[StationSettings], *, terminal: bool) -> None:
    from charge_point.charger import Charger

    chargers = [Charger(s, terminal=terminal) for s in members]
    async with asyncio.TaskGroup() as tasks:
        for charger in chargers:
            tasks.create_task(charger.run(), name=charger.station.id)
