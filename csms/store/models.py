"""The CSMS tables (SQLModel), with the API's read/create models beside them.

Ladders follow the FastAPI template: ``ChargerBase -> ChargerCreate -> Charger(table) ->
ChargerPublic``. Every datetime column is aware UTC (:class:`UtcDateTime`). Changing a table
means a new Alembic revision in ``csms/store/migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import model_validator
from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from csms.store.types import BigInt, UtcDateTime, utcnow

ID_MAX = 48  # OCPP 2.0.1 identity is up to 48 characters; 1.6 ChargeBoxIdentity up to 36
CHARGER_ID_PATTERN = r"^[A-Za-z0-9._:*+|@-]{1,48}$"  # OCPP 2.0.1 identifierString


def _time(*, index: bool = False, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UtcDateTime, index=index, nullable=nullable)


# --- chargers -----------------------------------------------------------------------------


class ChargerBase(SQLModel):
    id: str = Field(
        primary_key=True, max_length=ID_MAX, schema_extra={"pattern": CHARGER_ID_PATTERN}
    )
    location: str | None = Field(default=None, max_length=200)


class ChargerCreate(ChargerBase):
    password: str | None = Field(
        default=None, min_length=8, max_length=40, description="HTTP Basic password (profiles 1, 2)"
    )
    evses: int = Field(default=1, ge=0, le=64)
    security_profile: int | None = Field(
        default=None,
        ge=1,
        le=3,
        description="1: HTTP Basic; 2: HTTP Basic over TLS; 3: TLS client certificate (CN = id), "
        "no password. Default: 2 when the CSMS serves TLS itself (tls_cert_file), else 1",
    )

    @model_validator(mode="after")
    def _password_unless_certificate(self) -> ChargerCreate:
        if self.password is None and self.security_profile != 3:
            raise ValueError("a password is required unless security_profile is 3")
        return self


class Charger(ChargerBase, table=True):
    __tablename__ = "chargers"

    password_hash: str | None = Field(default=None)
    security_profile: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    registration: str = Field(default="Accepted", max_length=16)  # Accepted | Pending | Rejected
    ocpp_version: str | None = Field(default=None, max_length=8)
    status: str | None = Field(default=None, max_length=32)  # 1.6 connector 0 status
    vendor: str | None = Field(default=None, max_length=50)
    model: str | None = Field(default=None, max_length=50)
    serial_number: str | None = Field(default=None, max_length=50)
    firmware_version: str | None = Field(default=None, max_length=50)
    firmware_status: str | None = Field(default=None, max_length=40)
    diagnostics_status: str | None = Field(default=None, max_length=40)
    online: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_seen: datetime | None = _time()
    last_boot_at: datetime | None = _time()


class EvseStatus(SQLModel):
    evse_id: int
    connector_id: int
    status: str
    error_code: str | None = None
    updated_at: datetime | None = None


class ChargerPublic(ChargerBase):
    registration: str
    security_profile: int
    ocpp_version: str | None
    status: str | None
    vendor: str | None
    model: str | None
    firmware_version: str | None
    online: bool
    connected: bool = False
    created_at: datetime
    last_seen: datetime | None
    evses: list[EvseStatus] = []
    settlement_kid: str | None = None


class Evse(SQLModel, table=True):
    """One connector of one EVSE (1.6: ``evse_id`` = connectorId, ``connector_id`` = 1)."""

    __tablename__ = "evses"
    __table_args__ = (UniqueConstraint("charger_id", "evse_id", "connector_id"),)

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(foreign_key="chargers.id", ondelete="CASCADE", max_length=ID_MAX)
    evse_id: int
    connector_id: int = 1
    status: str = Field(default="Unknown", max_length=32)
    error_code: str | None = Field(default=None, max_length=50)
    updated_at: datetime | None = _time()


class ChargerKey(SQLModel, table=True):
    """A charger's settlement public key; the one with ``retired_at`` unset is pinned."""

    __tablename__ = "charger_keys"
    __table_args__ = (
        UniqueConstraint("charger_id", "kid"),
        # at most one pinned key per charger: a racing second key change fails and runs again
        Index(
            "ux_charger_keys_one_pinned",
            "charger_id",
            unique=True,
            sqlite_where=text("retired_at IS NULL"),
            postgresql_where=text("retired_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(foreign_key="chargers.id", ondelete="CASCADE", max_length=ID_MAX)
    kid: str = Field(max_length=16)
    jwk: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    retired_at: datetime | None = _time()


class IdTag(SQLModel, table=True):
    """A locally known RFID tag and its authorisation status."""

    __tablename__ = "id_tags"

    id_tag: str = Field(primary_key=True, max_length=36)
    status: str = Field(default="Accepted", max_length=16)
    expiry: datetime | None = _time()
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


# --- transactions -------------------------------------------------------------------------


class Transaction(SQLModel, table=True):
    """One charging session of one charger; ``transaction_id`` is unique per charger.

    For 1.6 the CSMS assigns the integer id (the row's primary key); ``start_key`` is the
    fingerprint of the StartTransaction so that a repeated one finds this row again.
    """

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("charger_id", "transaction_id"),
        UniqueConstraint("charger_id", "start_key"),
        Index("ix_transactions_charger_started", "charger_id", "started_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(foreign_key="chargers.id", ondelete="CASCADE", max_length=ID_MAX)
    transaction_id: str = Field(max_length=40)
    ocpp_version: str = Field(max_length=8)
    evse_id: int | None = None
    connector_id: int | None = None
    id_tag: str | None = Field(default=None, max_length=36, index=True)
    id_tag_status: str | None = Field(default=None, max_length=16)
    start_key: str | None = Field(default=None, max_length=64)
    started_at: datetime | None = _time()
    stopped_at: datetime | None = _time()
    meter_start_wh: int | None = Field(default=None, sa_type=BigInt)
    meter_stop_wh: int | None = Field(default=None, sa_type=BigInt)
    stop_reason: str | None = Field(default=None, max_length=40)
    state: str = Field(default="Started", max_length=16)  # Started | Ended
    offline: bool = False
    flags: str = Field(default="", max_length=200)  # comma-separated, for the operator
    last_seq_no: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class TransactionEventRecord(SQLModel, table=True):
    """A 2.0.1 TransactionEvent as received, with the answer it was given.

    A retransmission is the same event under the same (charger, transaction, seqNo): same
    ``digest`` (csms/protocol/retransmission.py), unique, so it is stored once and answered
    from here. A different event under a used seqNo is stored beside the first (some chargers
    reuse a seqNo). Rows stored before digests were kept have ``digest`` "".
    """

    __tablename__ = "transaction_events"
    __table_args__ = (
        UniqueConstraint(
            "charger_id", "transaction_id", "seq_no", "digest", name="uq_transaction_events_event"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(foreign_key="chargers.id", ondelete="CASCADE", max_length=ID_MAX)
    transaction_id: str = Field(max_length=40)
    seq_no: int
    event_type: str = Field(max_length=16)
    trigger_reason: str = Field(max_length=40)
    timestamp: datetime = Field(sa_type=UtcDateTime)
    offline: bool = False
    response: str = Field(sa_column=Column(Text, nullable=False))  # the JSON answer given
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    digest: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})


class MeterValue(SQLModel, table=True):
    """One sampled value; read back ordered by ``timestamp`` whatever the arrival order."""

    __tablename__ = "meter_values"
    __table_args__ = (Index("ix_meter_values_txn_time", "transaction_pk", "timestamp"),)

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(foreign_key="chargers.id", ondelete="CASCADE", max_length=ID_MAX)
    transaction_pk: int | None = Field(
        default=None, foreign_key="transactions.id", ondelete="CASCADE"
    )
    evse_id: int | None = None
    timestamp: datetime = Field(sa_type=UtcDateTime)
    measurand: str = Field(default="Energy.Active.Import.Register", max_length=60)
    phase: str | None = Field(default=None, max_length=10)
    unit: str | None = Field(default=None, max_length=16)
    context: str | None = Field(default=None, max_length=30)
    location: str | None = Field(default=None, max_length=10)
    value: float


class MeterValuePublic(SQLModel):
    timestamp: datetime
    measurand: str
    phase: str | None
    unit: str | None
    context: str | None
    value: float


class TransactionPublic(SQLModel):
    id: int
    charger_id: str
    transaction_id: str
    ocpp_version: str
    evse_id: int | None
    connector_id: int | None
    id_tag: str | None
    id_tag_status: str | None
    started_at: datetime | None
    stopped_at: datetime | None
    meter_start_wh: int | None
    meter_stop_wh: int | None
    stop_reason: str | None
    state: str
    offline: bool
    flags: str


class TransactionEventPublic(SQLModel):
    """A 2.0.1 TransactionEvent as the CSMS received it (1.6 has none: its start and stop
    are the transaction's own times)."""

    seq_no: int
    event_type: str
    trigger_reason: str
    timestamp: datetime
    offline: bool
    received_at: datetime


class TransactionDetail(TransactionPublic):
    meter_values: list[MeterValuePublic] = []
    events: list[TransactionEventPublic] = []
    order_id: str | None = None  # the QR order this transaction charged, if any


# --- support and the settlement hand-off --------------------------------------------------


class MessageLog(SQLModel, table=True):
    """OCPP frames in and out, bounded per charger by ``message_log_limit``."""

    __tablename__ = "message_log"
    __table_args__ = (Index("ix_message_log_charger_id_id", "charger_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(max_length=ID_MAX)
    direction: str = Field(max_length=3)  # in | out
    frame: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class SettlementInbox(SQLModel, table=True):
    """A signed settlement as received (DataTransfer or upload), stored once per token."""

    __tablename__ = "settlement_inbox"

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(max_length=ID_MAX, index=True)
    token: str = Field(sa_column=Column(Text, nullable=False))
    token_sha256: str = Field(max_length=64, unique=True)
    source: str = Field(max_length=16)  # ocpp | upload
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ChargerSync(SQLModel, table=True):
    """The last ``Synced`` seq a charger reported after draining its queue."""

    __tablename__ = "charger_sync"

    charger_id: str = Field(primary_key=True, max_length=ID_MAX)
    last_seq: int
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


# --- what chargers report unasked (notifications, events, certificate requests) ------------


class ChargerNotification(SQLModel, table=True):
    """One message a charger sent on its own (SecurityEventNotification, NotifyEvent,
    SignCertificate, ...): its payload as sent (camelCase JSON), with the few fields an
    operator filters by, and what the CSMS answered when the answer says something.
    Bounded per charger by ``notification_limit``."""

    __tablename__ = "charger_notifications"
    __table_args__ = (Index("ix_charger_notifications_charger_id_id", "charger_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(foreign_key="chargers.id", ondelete="CASCADE", max_length=ID_MAX)
    action: str = Field(max_length=48)
    status: str | None = Field(default=None, max_length=50)  # status, type, or trigger
    request_id: int | None = None
    answer: str | None = Field(default=None, max_length=20)  # Accepted | Rejected | Failed
    occurred_at: datetime | None = _time()  # the charger's own time stamp, if it gave one
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    payload: str = Field(sa_column=Column(Text, nullable=False))


class ChargerNotificationPublic(SQLModel):
    """A notification for the operator, the payload as the charger sent it."""

    id: int
    action: str
    status: str | None
    request_id: int | None
    answer: str | None
    occurred_at: datetime | None
    received_at: datetime
    payload: dict[str, Any]


# --- device model (OCPP 2.0.1 NotifyReport) -------------------------------------------------


class DeviceVariable(SQLModel, table=True):
    """One attribute of one variable of one component, as a 2.0.1 charger last reported it.

    A NotifyReport upserts by the unique key, so a later report replaces the value. Absent
    parts of the key are stored as ``""`` (instances) and ``0`` (EVSE, connector; OCPP ids
    are > 0), never NULL: both databases treat NULLs as distinct in a unique constraint.
    """

    __tablename__ = "device_variables"
    __table_args__ = (
        UniqueConstraint(
            "charger_id",
            "component",
            "component_instance",
            "evse_id",
            "connector_id",
            "variable",
            "variable_instance",
            "attribute_type",
            name="uq_device_variables_key",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(foreign_key="chargers.id", ondelete="CASCADE", max_length=ID_MAX)
    component: str = Field(max_length=50)
    component_instance: str = Field(default="", max_length=50)
    evse_id: int = 0
    connector_id: int = 0
    variable: str = Field(max_length=50)
    variable_instance: str = Field(default="", max_length=50)
    attribute_type: str = Field(default="Actual", max_length=8)  # Actual|Target|MinSet|MaxSet
    value: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    mutability: str = Field(default="ReadWrite", max_length=10)
    persistent: bool = False
    constant: bool = False
    data_type: str | None = Field(default=None, max_length=16)
    unit: str | None = Field(default=None, max_length=16)
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    supports_monitoring: bool | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class DeviceVariablePublic(SQLModel):
    """A device-model entry for the operator: absent key parts are ``null``."""

    component: str
    component_instance: str | None
    evse_id: int | None
    connector_id: int | None
    variable: str
    variable_instance: str | None
    attribute_type: str
    value: str | None
    mutability: str
    persistent: bool
    constant: bool
    data_type: str | None
    unit: str | None
    min_limit: float | None
    max_limit: float | None
    values_list: str | None
    supports_monitoring: bool | None
    updated_at: datetime

    @classmethod
    def of(cls, row: DeviceVariable) -> DeviceVariablePublic:
        return cls(
            **row.model_dump(
                exclude={
                    "id",
                    "charger_id",
                    "component_instance",
                    "evse_id",
                    "connector_id",
                    "variable_instance",
                }
            ),
            component_instance=row.component_instance or None,
            evse_id=row.evse_id or None,
            connector_id=row.connector_id or None,
            variable_instance=row.variable_instance or None,
        )


# --- reservations (ReserveNow / CancelReservation) --------------------------------------------


class Reservation(SQLModel, table=True):
    """One reservation the operator sent a charger, and what became of it.

    ``reservation_id`` is the OCPP id (unique per charger: a ReserveNow with an id the charger
    holds replaces that reservation, so the row is replaced too). ``state``: ``requested``
    (sent, no answer), ``active`` (answered Accepted), ``refused`` (any other answer, or a
    CALLERROR: ``answer`` says which), then ``cancelled``, ``used`` (a transaction started
    with it: ``transaction_id``), ``expired`` or ``removed`` (the charger dropped it).
    """

    __tablename__ = "reservations"
    __table_args__ = (
        UniqueConstraint("charger_id", "reservation_id", name="uq_reservations_charger_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(foreign_key="chargers.id", ondelete="CASCADE", max_length=ID_MAX)
    reservation_id: int
    evse_id: int | None = None  # None: any EVSE (1.6 connector 0, 2.0.1 without evseId)
    id_token: str = Field(max_length=36)
    id_token_type: str | None = Field(default=None, max_length=20)  # 2.0.1 only
    group_id_token: str | None = Field(default=None, max_length=36)  # parentIdTag / group
    expires_at: datetime = Field(sa_type=UtcDateTime)
    state: str = Field(max_length=16)
    answer: str | None = Field(default=None, max_length=32)
    transaction_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ReservationPublic(SQLModel):
    """A reservation for the operator; ``state`` is ``expired`` once an active reservation's
    expiry has passed, whether or not the charger said so (OCPP 1.6 does not)."""

    reservation_id: int
    evse_id: int | None
    id_token: str
    id_token_type: str | None
    group_id_token: str | None
    expires_at: datetime
    state: str
    answer: str | None
    transaction_id: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Reservation, *, now: datetime) -> ReservationPublic:
        state = "expired" if row.state == "active" and row.expires_at <= now else row.state
        return cls(**row.model_dump(exclude={"id", "charger_id", "state"}), state=state)
