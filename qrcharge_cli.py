"""The ``qrcharge`` command: one entry point, one subcommand per component.

Each component module exposes ``register(subparsers)``, which adds its subcommand(s) and sets
``func`` on the parsed namespace. A module that is not there yet is simply not offered.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMPONENTS = (
    "qr_extension.cli",  # qrcharge qr ... (qr roundtrip), qrcharge keys ...
    "csms.cli",  # qrcharge csms
    "charge_point.cli",  # qrcharge cp
    "demo.cli",  # qrcharge demo
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qrcharge", description="OCPP central system and charge point with scan-to-pay."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMPONENTS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
