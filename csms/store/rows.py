"""Model objects from Core rows, and the rows of a multi-table select.

The hot paths read plain Core rows and turn the few they return into model objects with
:func:`loaded` (what the ORM's loader does, without a session: an ORM entity select costs
several times the Core one, and a validating ``SQLModel.__init__`` is slow per object).
Insert values are completed with :func:`with_defaults` so that one cached ``INSERT`` serves
every row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from pydantic_core import PydanticUndefined
from sqlalchemy import Table, bindparam
from sqlalchemy.engine import Row
from sqlalchemy.orm import configure_mappers, instrumentation

from csms.store.fast import Fast
from csms.store.writer import table_of

M = TypeVar("M")

__all__ = ["columns", "insert_returning_id", "loaded", "split", "with_defaults"]


_NEW_INSTANCE: dict[type[Any], Callable[[], Any]] = {}  # the class manager's, per model


def loaded(model: type[M], values: Mapping[str, Any]) -> M:
    """A model object holding ``values`` (column name -> value, one per column), made as the
    ORM's loader makes one (the class manager's new instance, the values in its dict): no
    validation, no session. Meant for rows just read or written, handed out as results."""
    new = _NEW_INSTANCE.get(model)
    if new is None:
        # the attributes read the object's dict only once the mappers are configured, which
        # the ORM does lazily at its first query: a process whose first rows come from here
        # (a fresh worker's first driver request) would otherwise hand out unreadable objects
        configure_mappers()
        new = _NEW_INSTANCE[model] = instrumentation.manager_of_class(model).new_instance
    obj: Any = new()
    obj.__dict__.update(values)
    # pydantic's own slot, set as its model_construct does (SQLModel's __setattr__ would
    # treat it as an attribute of the row)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    return cast(M, obj)


_DEFAULTS: dict[type[Any], dict[str, Any]] = {}
_COLUMN_NAMES: dict[type[Any], frozenset[str]] = {}


def _column_names(model: type[Any]) -> frozenset[str]:
    found = _COLUMN_NAMES.get(model)
    if found is None:
        found = _COLUMN_NAMES[model] = frozenset(table_of(model).columns.keys())
    return found


def _defaults(model: type[Any]) -> dict[str, Any]:
    found = _DEFAULTS.get(model)
    if found is None:
        found = _DEFAULTS[model] = {
            name: field.default
            for name, field in model.model_fields.items()
            if field.default_factory is None and field.default is not PydanticUndefined
        }
    return found


def with_defaults(model: type[Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` completed with the model's plain defaults: a value for every column (a
    column whose default is a factory, or that has none, must be given)."""
    full = {**_defaults(model), **values}
    names = _column_names(model)
    if full.keys() != names:
        wrong = sorted(names - full.keys()) or sorted(full.keys() - names)
        raise TypeError(f"{model.__name__}: missing or unknown columns {wrong}")
    return full


def columns(*tables: Table) -> list[Any]:
    """Every column of ``tables``, in order (one select of several tables: see :func:`split`)."""
    return [column for t in tables for column in t.columns]


def split(row: Row[Any] | Sequence[Any], *tables: Table) -> list[dict[str, Any]]:
    """A row of :func:`columns` of ``tables`` as one ``{column: value}`` per table."""
    parts, start = [], 0
    for t in tables:
        names = t.columns.keys()
        parts.append(dict(zip(names, row[start : start + len(names)], strict=True)))
        start += len(names)
    return parts


def insert_returning_id(table: Table) -> Fast:
    """``INSERT`` of every column but ``id`` (each bound by its name and with its column's
    type), ``RETURNING id``: for a row completed by :func:`with_defaults`, run as a
    :class:`~csms.store.fast.Fast` statement (so that writes kept before it go in its round
    trip)."""
    values = {c.name: bindparam(c.name, type_=c.type) for c in table.columns if c.name != "id"}
    return Fast(table.insert().values(values).returning(table.c.id))
