"""Which billing model applies to a driver at a charger.

Precedence, most specific first:

1. an assignment to this driver at this charger (``user:U/charger:C``),
2. an assignment to this driver (a member tier or fleet contract: ``user:U``),
3. the charger's default (``charger:C``),
4. the site's default (``site:L``, L the charger's ``location``),
5. the global default from the settings (``default_tariff_*``, ``default_currency``;
   ``default_tariff_cap = 0`` means no cap).

One query finds every candidate; the most specific wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings
from csms.billing.schemas import tariff_of
from csms.store.billing import candidates
from qr_extension import Tariff

DEFAULT_SCOPE = "default"


def user_charger_scope(user_id: int, charger_id: str) -> str:
    return f"user:{user_id}/charger:{charger_id}"


def user_scope(user_id: int) -> str:
    return f"user:{user_id}"


def charger_scope(charger_id: str) -> str:
    return f"charger:{charger_id}"


def site_scope(site: str) -> str:
    return f"site:{site}"


def default_tariff(settings: Settings) -> Tariff:
    """The configured default billing model (applies wherever none is assigned)."""
    return Tariff(
        id=settings.default_tariff_id,
        currency=settings.default_currency,
        fixed_fee=settings.default_tariff_fixed,
        energy_price=settings.default_tariff_energy,
        time_price=settings.default_tariff_time,
        cap=settings.default_tariff_cap or None,
    )


@dataclass(frozen=True, slots=True)
class Resolved:
    """The billing model that applies and the scope of the assignment that chose it."""

    tariff: Tariff
    scope: str


async def resolve(
    session: AsyncSession, *, user_id: int | None, charger_id: str, settings: Settings
) -> Resolved:
    """The billing model for ``user_id`` (None: an anonymous visitor) at ``charger_id``."""
    ranked = []
    if user_id is not None:
        ranked += [user_charger_scope(user_id, charger_id), user_scope(user_id)]
    ranked.append(charger_scope(charger_id))
    found = await candidates(session, ranked=ranked, charger_id=charger_id)
    for scope in ranked:
        if scope in found:
            return Resolved(tariff_of(found[scope]), scope)
    for scope, model in found.items():  # what is left can only be the site's default
        return Resolved(tariff_of(model), scope)
    return Resolved(default_tariff(settings), DEFAULT_SCOPE)


async def billing_model_for(
    session: AsyncSession, *, user_id: int | None, charger_id: str, settings: Settings
) -> Tariff:
    """The tariff to sign into this driver's order at this charger (see the module doc)."""
    resolved = await resolve(session, user_id=user_id, charger_id=charger_id, settings=settings)
    return resolved.tariff
