"""The reconciliation report: how each order was settled, and what needs the operator.

One row per order (within an optional creation window) with how its billed session is known
(``qr``: signed settlement only, ``ocpp``: OCPP transaction only, ``both``, or ``none``), its
payment, its flags, and whether its hold is stuck (still placed after the token expired with
leeway). The counts summarise the rows; :func:`to_csv` gives the same rows as CSV.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from csms.payments.lifecycle import OrderState
from csms.store import reconciliation as store_reconciliation
from csms.store.models_orders import Payment, SettlementRecord

OPEN_STATES = (OrderState.CREATED, OrderState.STARTED, OrderState.CANCELLING)


@dataclass(frozen=True, slots=True)
class ReconciliationRow:
    order_id: str
    user_id: int
    charger_id: str
    status: str
    created_at: str
    expires_at: str
    hold_amount: int
    settled_by: str  # qr | ocpp | both | none
    sessions: int
    signed_amount: int | None
    ocpp_amount: int | None
    charged_amount: int | None
    payment_status: str | None
    payment_method: str | None
    refunded_amount: int
    disagreement: bool
    stuck_hold: bool
    flags: str


@dataclass
class ReconciliationReport:
    generated_at: str
    counts: dict[str, int] = field(default_factory=dict)
    rows: list[ReconciliationRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "generated_at": self.generated_at,
            "counts": self.counts,
            "rows": [asdict(r) for r in self.rows],
        }


def _settled_by(record: SettlementRecord | None) -> str:
    if record is None:
        return "none"
    signed, ocpp = record.txn is not None, record.ocpp_transaction_pk is not None
    return "both" if signed and ocpp else "qr" if signed else "ocpp" if ocpp else "none"


async def build_report(
    session: AsyncSession,
    *,
    now: datetime,
    leeway_s: int,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 10_000,
) -> ReconciliationReport:
    orders = await store_reconciliation.orders_created(
        session, since=since, until=until, limit=limit
    )
    ids = [o.id for o in orders]
    records: dict[str, list[SettlementRecord]] = {}
    payments: dict[str, Payment] = {}
    flags: dict[str, list[str]] = {}
    if ids:
        for r in await store_reconciliation.records_of_orders(session, order_ids=ids):
            records.setdefault(r.order_id, []).append(r)
        for p in await store_reconciliation.payments_of_orders(session, order_ids=ids):
            payments[p.order_id] = p
        for f in await store_reconciliation.flags_of_orders(session, order_ids=ids):
            flags.setdefault(f.order_id, []).append(f.kind)
    leeway = timedelta(seconds=leeway_s)
    report = ReconciliationReport(generated_at=now.isoformat())
    for order in orders:
        sessions = sorted(records.get(order.id, []), key=lambda r: r.session_no)
        first = sessions[0] if sessions else None
        payment = payments.get(order.id)
        stuck = order.status in OPEN_STATES and now > order.expires_at + leeway
        row = ReconciliationRow(
            order_id=order.id,
            user_id=order.user_id,
            charger_id=order.charger_id,
            status=order.status,
            created_at=order.created_at.isoformat(),
            expires_at=order.expires_at.isoformat(),
            hold_amount=order.hold_amount,
            settled_by=_settled_by(first),
            sessions=len(sessions),
            signed_amount=first.signed_amount if first else None,
            ocpp_amount=first.ocpp_amount if first else None,
            charged_amount=payment.amount if payment else None,
            payment_status=payment.status if payment else None,
            payment_method=payment.method if payment else None,
            refunded_amount=payment.refunded_amount if payment else 0,
            disagreement=bool(first and first.disagreement),
            stuck_hold=stuck,
            flags=",".join(sorted(flags.get(order.id, []))),
        )
        report.rows.append(row)
    report.counts = {
        "orders": len(report.rows),
        "settled_by_qr_only": sum(r.settled_by == "qr" for r in report.rows),
        "settled_by_ocpp_only": sum(r.settled_by == "ocpp" for r in report.rows),
        "settled_by_both": sum(r.settled_by == "both" for r in report.rows),
        "disagreements": sum(r.disagreement for r in report.rows),
        "stuck_holds": sum(r.stuck_hold for r in report.rows),
        "flagged": sum(bool(r.flags) for r in report.rows),
        "pending_payments": sum(r.payment_status == "pending" for r in report.rows),
    }
    return report


def to_csv(report: ReconciliationReport) -> str:
    out = io.StringIO()
    names = list(ReconciliationRow.__dataclass_fields__)
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow(asdict(row))
    return out.getvalue()
