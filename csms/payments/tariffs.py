"""The billing model of an order, read inside the order's unit of work (synchronous).

:func:`csms.billing.resolve.resolve` is async (the driver pages call it); the order's unit of
work runs in the database thread and needs the same answer on its synchronous session. This
is that function on a :class:`~sqlmodel.Session`: the same prebuilt candidate query
(:func:`csms.store.billing.candidates_in`) and the same precedence (user at charger, user,
charger, site, configured default), kept next to the async one by
``tests/csms/billing/test_billing.py``. It belongs in ``csms/billing/resolve.py`` (with the
async one running it through ``run_sync``); it lives here until that module takes it (not
owned by the payment side).
"""

from __future__ import annotations

from sqlmodel import Session

from config.settings import Settings
from csms.billing import resolve
from csms.billing.schemas import tariff_of
from csms.store import billing as store_billing
from qr_extension import Tariff


def _ranked(user_id: int | None, charger_id: str) -> list[str]:
    ranked = []
    if user_id is not None:
        ranked += [resolve.user_charger_scope(user_id, charger_id), resolve.user_scope(user_id)]
    ranked.append(resolve.charger_scope(charger_id))
    return ranked


def resolve_sync(
    session: Session, *, user_id: int | None, charger_id: str, settings: Settings
) -> resolve.Resolved:
    """:func:`csms.billing.resolve.resolve` on a synchronous session."""
    ranked = _ranked(user_id, charger_id)
    found = store_billing.candidates_in(session, ranked=ranked, charger_id=charger_id)
    for scope in ranked:
        if scope in found:
            return resolve.Resolved(tariff_of(found[scope]), scope)
    for scope, model in found.items():  # what is left can only be the site's default
        return resolve.Resolved(tariff_of(model), scope)
    return resolve.Resolved(resolve.default_tariff(settings), resolve.DEFAULT_SCOPE)


def billing_model_ahead(session: Session, *, user_id: int | None, charger_id: str) -> None:
    """Queues :func:`billing_model`'s read with the unit's next round trip (PostgreSQL with
    pipelined writes; elsewhere nothing): a unit that reads something else first gets both
    in one round trip."""
    ranked = _ranked(user_id, charger_id)
    store_billing.candidates_ahead(session, ranked=ranked, charger_id=charger_id)


def billing_model(
    session: Session, *, user_id: int | None, charger_id: str, settings: Settings
) -> Tariff:
    """The tariff to sign into this driver's order at this charger."""
    return resolve_sync(session, user_id=user_id, charger_id=charger_id, settings=settings).tariff
