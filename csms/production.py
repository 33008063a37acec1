"""What ``environment = "production"`` refuses: settings that are fine on a laptop and unsafe
with real chargers, real drivers and real money. Each is named, with the setting to change.
"""

from __future__ import annotations

import stat
from pathlib import Path

from config.settings import Settings
from csms.errors import UnsafeForProduction

MIN_ADMIN_KEY_CHARS = 32
PLACEHOLDER_OPERATOR = "qrcharge operator"  # config/default.toml's operator_name


def production_problems(settings: Settings) -> list[str]:
    """Every reason not to run ``settings`` in production (none outside production)."""
    if settings.environment != "production":
        return []
    problems = []
    if len(settings.admin_api_key) < MIN_ADMIN_KEY_CHARS:
        problems.append(
            f"admin_api_key has {len(settings.admin_api_key)} characters, at least "
            f"{MIN_ADMIN_KEY_CHARS} are needed (QRCHARGE_ADMIN_API_KEY)"
        )
    if not settings.sandbox_payments_not_real_money:
        problems.append(
            "the payment provider is the sandbox, which takes no real money: top-ups and "
            "captures always succeed (set sandbox_payments_not_real_money = true to run it so)"
        )
    if not (settings.tls_cert_file or settings.trusted_proxies):
        problems.append(
            "production needs TLS (charger and driver passwords would cross the network in "
            "clear): set tls_cert_file and tls_key_file, or trusted_proxies naming the "
            "TLS-terminating proxy in front of the CSMS"
        )
    if settings.operator_name == PLACEHOLDER_OPERATOR:
        problems.append(
            f"operator_name is the placeholder {PLACEHOLDER_OPERATOR!r}: every receipt names "
            "the seller, set it (and operator_address, operator_tax_id, tax_rate)"
        )
    for name, folder in (("data_dir", settings.data_dir), ("key_dir", settings.resolved_key_dir)):
        if _open_to_others(folder):
            problems.append(f"{name} {folder} is readable by others (chmod 700 it)")
    return problems


def check_production(settings: Settings) -> None:
    """Raises :class:`UnsafeForProduction` naming every problem."""
    problems = production_problems(settings)
    if problems:
        raise UnsafeForProduction(problems)


def _open_to_others(folder: Path) -> bool:
    try:
        return bool(stat.S_IMODE(folder.stat().st_mode) & 0o077)
    except FileNotFoundError:  # created owner-only at start (config.private)
        return False
