"""The device model of 2.0.1 chargers: what NotifyReport said, stored and read back.

A report (the answer to GetBaseReport / GetReport) comes in parts (``seqNo``, ``tbc``); each
part is stored as it arrives, one row per (component, variable, attribute type), upserted so
that a later report replaces the value. A charger that is not ours may send a schema-valid
but odd report (missing optional parts, the same variable twice): the rows are built from
what is there, with OCPP's defaults for the rest, and an entry without a component or
variable name is skipped, so the report is always answered.

Written through a pooled session, not the store writer: NotifyReport is rare (the operator
asks for it) and its parts can be large.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import UpdateBase
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.models import DeviceVariable

DEVICE_VARIABLES: Table = DeviceVariable.__table__  # type: ignore[attr-defined]
KEY = (
    "charger_id",
    "component",
    "component_instance",
    "evse_id",
    "connector_id",
    "variable",
    "variable_instance",
    "attribute_type",
)
ATTRIBUTE_TYPES = ("Actual", "Target", "MinSet", "MaxSet")
Row = dict[str, Any]


def _text(value: object, size: int) -> str | None:
    return value[:size] if isinstance(value, str) else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def rows_from_report(charger_id: str, report_data: Iterable[object], *, now: datetime) -> list[Row]:
    """Table rows for one report part (the library's snake_case ``report_data``).

    One row per variable attribute, keyed like the table's unique constraint; a key seen twice
    in one part keeps its last value (one upsert statement may not touch a row twice).
    """
    rows: dict[tuple[Any, ...], Row] = {}
    for entry in report_data:
        item = _dict(entry)
        component, variable = _dict(item.get("component")), _dict(item.get("variable"))
        component_name = _text(component.get("name"), 50)
        variable_name = _text(variable.get("name"), 50)
        if not component_name or not variable_name:
            continue
        evse = _dict(component.get("evse"))
        traits = _dict(item.get("variable_characteristics"))
        base: Row = {
            "charger_id": charger_id,
            "component": component_name,
            "component_instance": _text(component.get("instance"), 50) or "",
            "evse_id": _int(evse.get("id")),
            "connector_id": _int(evse.get("connector_id")),
            "variable": variable_name,
            "variable_instance": _text(variable.get("instance"), 50) or "",
            "data_type": _text(traits.get("data_type"), 16),
            "unit": _text(traits.get("unit"), 16),
            "min_limit": _number(traits.get("min_limit")),
            "max_limit": _number(traits.get("max_limit")),
            "values_list": _text(traits.get("values_list"), 1000),
            "supports_monitoring": _bool(traits.get("supports_monitoring")),
            "updated_at": now,
        }
        for attribute in item.get("variable_attribute") or ():
            attribute = _dict(attribute)
            kind = attribute.get("type")
            row = {
                **base,
                "attribute_type": kind if kind in ATTRIBUTE_TYPES else "Actual",
                "value": _text(attribute.get("value"), 2500),
                "mutability": _text(attribute.get("mutability"), 10) or "ReadWrite",
                "persistent": bool(_bool(attribute.get("persistent"))),
                "constant": bool(_bool(attribute.get("constant"))),
            }
            rows[tuple(row[k] for k in KEY)] = row
    return list(rows.values())


def _upsert(dialect: Any) -> UpdateBase:
    """INSERT ... ON CONFLICT (key) DO UPDATE every other column (SQLite and PostgreSQL)."""
    stmt = dialect.insert(DEVICE_VARIABLES)
    changed = {
        c.name: stmt.excluded[c.name] for c in DEVICE_VARIABLES.c if c.name not in (*KEY, "id")
    }
    upsert: UpdateBase = stmt.on_conflict_do_update(index_elements=KEY, set_=changed)
    return upsert


_UPSERT = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}


async def store_report_part(session: AsyncSession, rows: list[Row]) -> bool:
    """Upserts the rows of one report part in one statement and commits; False if the
    charger is gone (deleted by the operator while it reported)."""
    if not rows:
        return True
    try:
        await session.exec(_UPSERT[session.get_bind().dialect.name], params=rows)
        await session.commit()
    except IntegrityError:  # the only constraint left after the upsert: the charger's row
        await session.rollback()
        return False
    return True


async def list_device_variables(
    session: AsyncSession,
    *,
    charger_id: str,
    component: str | None = None,
    variable: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[DeviceVariable]:
    """A charger's device model in key order; names match case-insensitively (as in OCPP)."""
    query = select(DeviceVariable).where(DeviceVariable.charger_id == charger_id)
    if component is not None:
        query = query.where(func.lower(DeviceVariable.component) == component.lower())
    if variable is not None:
        query = query.where(func.lower(DeviceVariable.variable) == variable.lower())
    query = query.order_by(*(col(getattr(DeviceVariable, k)) for k in KEY[1:]))
    rows = await session.exec(query.offset(offset).limit(limit))
    return list(rows.all())
