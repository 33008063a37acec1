"""Tables of the remote-control commands the operator sends: firmware and log progress,
the charging profiles the CSMS set, and the index of the files chargers uploaded.

The uploaded files themselves live on disk under the data directory (one folder per
charger); the database keeps only what describes them (name, size, SHA-256, when).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from csms.store.models import ID_MAX, _time
from csms.store.types import BigInt, UtcDateTime, utcnow


class ChargerStatusReport(SQLModel, table=True):
    """One step of a firmware update or a log upload: the operator's request (``action``
    ``UpdateFirmware``, ``GetDiagnostics`` or ``GetLog``, ``status`` the charger's answer) or
    a status the charger reported (``FirmwareStatusNotification``, ...).

    ``kind`` is ``firmware`` or ``log``. ``request_id`` is the charger's in 2.0.1; 1.6
    notifications carry none and get the id of the newest request of their kind."""

    __tablename__ = "charger_status_reports"
    __table_args__ = (
        Index("ix_charger_status_reports_charger_kind_id", "charger_id", "kind", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(foreign_key="chargers.id", ondelete="CASCADE", max_length=ID_MAX)
    kind: str = Field(max_length=12)
    action: str = Field(max_length=48)
    status: str = Field(max_length=50)
    request_id: int | None = None
    detail: str | None = Field(default=None, max_length=500)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ChargerStatusReportPublic(SQLModel):
    id: int
    kind: str
    action: str
    status: str
    request_id: int | None
    detail: str | None
    received_at: datetime


class ChargingProfileRecord(SQLModel, table=True):
    """A charging profile the charger accepted from the CSMS, as sent (camelCase JSON of the
    charger's version); ``cleared_at`` set once a ClearChargingProfile removed it or a newer
    profile replaced it (``cleared_by``)."""

    __tablename__ = "charger_charging_profiles"
    __table_args__ = (Index("ix_charger_charging_profiles_charger_id_id", "charger_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(foreign_key="chargers.id", ondelete="CASCADE", max_length=ID_MAX)
    evse_id: int
    profile_id: int
    stack_level: int
    purpose: str = Field(max_length=48)
    profile: str = Field(sa_column=Column(Text, nullable=False))
    set_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    cleared_at: datetime | None = _time()
    cleared_by: str | None = Field(default=None, max_length=24)


class ChargingProfilePublic(SQLModel):
    id: int
    evse_id: int
    profile_id: int
    stack_level: int
    purpose: str
    profile: dict[str, Any]
    set_at: datetime
    cleared_at: datetime | None
    cleared_by: str | None


class ChargerUpload(SQLModel, table=True):
    """An upload the CSMS offered a charger (a GetDiagnostics / GetLog it sent with its own
    URL), and once the file came, its index entry. ``token_hash`` is the SHA-256 of the
    one-time token in the URL: the token itself is never stored."""

    __tablename__ = "charger_uploads"
    __table_args__ = (Index("ix_charger_uploads_charger_id_id", "charger_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(foreign_key="chargers.id", ondelete="CASCADE", max_length=ID_MAX)
    token_hash: str = Field(max_length=64, unique=True)
    action: str = Field(max_length=24)
    request_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    name: str | None = Field(default=None, max_length=255)
    size: int | None = Field(default=None, sa_type=BigInt)
    sha256: str | None = Field(default=None, max_length=64)
    received_at: datetime | None = _time()


class ChargerUploadPublic(SQLModel):
    """A file a charger uploaded (diagnostics or log)."""

    id: int
    action: str
    request_id: int | None
    name: str
    size: int
    sha256: str
    received_at: datetime
