"""What a receipt says beyond the money moved: who sold, where, at which tariff, and the tax.

A receipt is a document: it keeps what was true when it was issued. The operator's name,
address and tax id, the charger's location, the tariff of the order's snapshot and the tax
rate are copied into the receipt's row, so that a later change of settings, of the charger
or of a billing model never changes a receipt already given.

Prices are tax-inclusive: the amount charged is the price the charger showed and the driver
authorised (bounded by the hold), so the tax is the part of it that the rate makes up, never
an amount on top. With a rate ``r`` and an amount ``A`` in minor units the tax is
``A * r / (1 + r)`` computed exactly with :class:`~decimal.Decimal` and rounded once,
half-up, to a minor unit; the net amount is ``A - tax``, so net and tax always add up to
what was paid.

Receipt numbers: ``{prefix}{seq:06d}``, ``seq`` counted per prefix (the operator's series) by
a counter row incremented in the same transaction as the receipt's insert (see
:mod:`csms.store.receipts`): unique, in the order receipts were issued, and with no gaps,
since a transaction that rolls back takes its increment with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from config.settings import Settings

SEQ_DIGITS = 6


@dataclass(frozen=True)
class ReceiptTerms:
    """The operator's side of every receipt, read from the settings."""

    operator_name: str
    operator_address: str = ""
    operator_tax_id: str = ""
    tax_rate: Decimal = Decimal(0)
    prefix: str = "QRC-"

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.tax_rate < Decimal(1):
            raise ValueError(f"a tax rate is a fraction in [0, 1), not {self.tax_rate}")

    @classmethod
    def from_settings(cls, settings: Settings) -> ReceiptTerms:
        return cls(
            operator_name=settings.operator_name,
            operator_address=settings.operator_address,
            operator_tax_id=settings.operator_tax_id,
            tax_rate=settings.tax_rate,
            prefix=settings.receipt_prefix,
        )

    def number(self, seq: int) -> str:
        """The printed receipt number of the ``seq``-th receipt of this series."""
        return f"{self.prefix}{seq:0{SEQ_DIGITS}d}"


def included_tax(amount: int, rate: Decimal) -> int:
    """The tax included in ``amount`` (minor units) at ``rate``: exact, rounded once, half-up."""
    if type(amount) is not int:
        raise TypeError("an amount is an integer of minor units")
    if rate == 0 or amount == 0:
        return 0
    exact = Decimal(amount) * rate / (Decimal(1) + rate)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def rate_text(rate: Decimal) -> str:
    """The rate as stored and sent: a plain decimal fraction, no exponent ("0.13", "0")."""
    return format(rate.normalize(), "f")
