"""The money tables: drivers, wallets, billing models and assignments, the ledger, PSP calls.

The ledger is double-entry: a :class:`LedgerTransfer` (one per business operation, unique by
its idempotency key) owns two or more :class:`LedgerEntry` rows whose signed amounts sum to
zero. A balance is always a sum of entries; no money column is ever updated in place. The
:class:`Wallet` row carries no money: it is the per-driver lock that serialises postings.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Index, Text
from sqlmodel import Field, SQLModel

from csms.store.models import ID_MAX
from csms.store.types import UtcDateTime, utcnow

EMAIL_MAX = 254
KEY_MAX = 200  # idempotency keys
TARIFF_ID_MAX = 36  # qr_extension.tariff.MAX_TARIFF_ID


# --- drivers ------------------------------------------------------------------------------


class User(SQLModel, table=True):
    """A driver account; ``email`` is stored lower-cased and is unique."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=EMAIL_MAX, unique=True)
    password_hash: str = Field(sa_column=Column(Text, nullable=False))
    disabled: bool = False
    # access tokens carry the generation they were issued in; signing out everywhere bumps it
    token_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Wallet(SQLModel, table=True):
    """One per driver. ``version`` is bumped by every posting: the row is the lock."""

    __tablename__ = "wallets"

    user_id: int = Field(primary_key=True, foreign_key="users.id", ondelete="CASCADE")
    currency: str = Field(max_length=3)
    version: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


# --- billing models -----------------------------------------------------------------------


class BillingModel(SQLModel, table=True):
    """An operator's tariff; ``id`` is the tariff id signed into start tokens (``tid``).

    ``tou`` is the JSON list ``[[from_minute, to_minute, e, t], ...]``. Orders snapshot what
    they signed, so editing a model never changes the price of an existing order.
    """

    __tablename__ = "billing_models"

    id: str = Field(primary_key=True, max_length=TARIFF_ID_MAX)
    name: str = Field(default="", max_length=100)
    currency: str = Field(max_length=3)
    fixed_fee: int = 0
    energy_price: int = 0
    time_price: int = 0
    idle_price: int | None = None
    idle_grace_min: int = 0
    tou: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    tz_offset_min: int = 0
    cap: int | None = None
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class BillingAssignment(SQLModel, table=True):
    """Which billing model applies where. ``scope`` is the unique, canonical key of the
    assignment's target: ``user:5/charger:CP1``, ``user:5``, ``charger:CP1`` or ``site:NAME``
    (a site is a charger ``location``). NULL-safe uniqueness on both backends."""

    __tablename__ = "billing_assignments"

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=300, unique=True)
    billing_model_id: str = Field(
        foreign_key="billing_models.id", ondelete="RESTRICT", max_length=TARIFF_ID_MAX, index=True
    )
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="CASCADE")
    charger_id: str | None = Field(
        default=None, foreign_key="chargers.id", ondelete="CASCADE", max_length=ID_MAX
    )
    site: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PresenceSecret(SQLModel, table=True):
    """A charger's secret for the dynamic identification code (``t``), hex."""

    __tablename__ = "presence_secrets"

    charger_id: str = Field(
        primary_key=True, foreign_key="chargers.id", ondelete="CASCADE", max_length=ID_MAX
    )
    secret_hex: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


# --- ledger -------------------------------------------------------------------------------


class LedgerTransfer(SQLModel, table=True):
    """One balanced posting; ``amount`` is the positive amount moved (for reading)."""

    __tablename__ = "ledger_transfers"
    __table_args__ = (CheckConstraint("amount >= 0", name="ck_ledger_transfers_amount"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=KEY_MAX, unique=True)
    kind: str = Field(max_length=16)  # top_up | hold | capture | release | debt | refund
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    order_id: str | None = Field(default=None, max_length=40, index=True)
    amount: int
    currency: str = Field(max_length=3)
    psp_operation_id: int | None = Field(default=None, foreign_key="psp_operations.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class LedgerEntry(SQLModel, table=True):
    """One leg of a transfer: ``amount`` signed (credit to the account > 0)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        # amount is in both indexes so that balances are summed from the index alone
        Index("ix_ledger_entries_account", "account", "amount"),
        Index("ix_ledger_entries_user_kind", "user_id", "account_kind", "amount"),
    )

    id: int | None = Field(default=None, primary_key=True)
    transfer_id: int = Field(foreign_key="ledger_transfers.id", index=True)
    account: str = Field(max_length=80)
    account_kind: str = Field(max_length=16)  # available | hold | revenue | psp
    user_id: int | None = Field(default=None)
    amount: int


class PspOperation(SQLModel, table=True):
    """A call to the payment provider, recorded once per idempotency key."""

    __tablename__ = "psp_operations"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=32)
    kind: str = Field(max_length=16)  # authorize | capture | void | refund
    idempotency_key: str = Field(max_length=KEY_MAX, unique=True)
    status: str = Field(max_length=16)  # succeeded | declined | failed
    amount: int
    currency: str = Field(max_length=3)
    reference: str = Field(max_length=100)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PspAttempt(SQLModel, table=True):
    """One attempt at a money operation through the payment provider (a wallet top-up).

    It is recorded (``intent``) before the provider is called, outside any transaction, and
    moves once to ``succeeded`` (with the ledger transfer it posted), ``failed`` (the
    provider refused; nothing moved) or, when the answer was lost, ``unknown`` until the
    sweeper asks the provider. ``idempotency_key`` is unique: the provider calls of the
    attempt use it (with a suffix per call), and so does the ledger transfer.
    """

    __tablename__ = "psp_attempts"
    __table_args__ = (
        Index("ix_psp_attempts_state_updated", "state", "updated_at"),
        CheckConstraint("amount > 0", name="ck_psp_attempts_amount"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=KEY_MAX, unique=True)
    kind: str = Field(max_length=16)  # top_up
    provider: str = Field(max_length=32)
    user_id: int = Field(foreign_key="users.id", index=True)
    amount: int
    currency: str = Field(max_length=3)
    method: str = Field(max_length=64)
    state: str = Field(max_length=16)  # intent | succeeded | failed | unknown
    reference: str | None = Field(default=None, max_length=100)  # the provider's capture
    detail: str = Field(default="", max_length=200)  # why it failed or is unknown
    transfer_id: int | None = Field(default=None, foreign_key="ledger_transfers.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
