"""Hot statements executed on the driver's cursor, compiled once.

SQLAlchemy's execution of a prebuilt Core statement costs more Python per statement than the
driver's own work (the execution context, cache lookup, parameter construction, the result
object); the hot paths run a dozen statements per OCPP message or settlement, so that was a
large share of the database threads' CPU. :class:`Fast` keeps what SQLAlchemy would do and
drops the rest: the statement is compiled once per dialect (SQL text, parameter order, the
types' bind and result processors, so ``UtcDateTime`` and SQLite's date strings behave exactly
as through SQLAlchemy), and each call is one ``cursor.execute`` on the connection's own DBAPI
connection, inside the transaction the :class:`~sqlalchemy.engine.Connection` began. Driver
errors are raised as SQLAlchemy's (``IntegrityError`` and the rest), a lost connection
invalidates the Connection as SQLAlchemy would, and ``before_cursor_execute`` /
``after_cursor_execute`` listeners are called as SQLAlchemy calls them (with no execution
context).

Only for statements whose every parameter is given by the caller or fixed in the statement
(no Python-side column defaults, no ``IN`` lists); on an async driver (the ``run_sync``
fallback of :class:`~csms.store.db_worker.DbWorker`) the statement runs through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Delete, Insert, Select, Update
from sqlalchemy.sql.elements import BindParameter

Processor = Callable[[Any], Any]
Params = Mapping[str, Any]
_CURSOR = "qrcharge.fast_cursor"  # the DBAPI connection's cursor, kept in its pool info


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    positional: tuple[str, ...] | None  # parameter names in order (qmark), else by name
    fixed: tuple[tuple[str, Any], ...]  # values bound in the statement itself
    binds: tuple[tuple[str, Processor], ...]  # parameters that the driver cannot take as is
    results: tuple[Processor | None, ...]  # per result column
    converts: bool  # any result processor at all


class Fast:
    """A prebuilt Core statement run on the DBAPI cursor (see the module's docstring)."""

    __slots__ = ("_plans", "statement")

    def __init__(self, statement: Select[Any] | Insert | Update | Delete) -> None:
        self.statement = statement
        self._plans: dict[str, _Plan] = {}

    # --- calls ------------------------------------------------------------------------------

    def first(self, conn: Connection, params: Params) -> tuple[Any, ...] | None:
        """The first row (a tuple in the statement's column order), or None."""
        rows = self._run(conn, params, fetch=True)
        return rows[0] if rows else None

    def scalar(self, conn: Connection, params: Params) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def all(self, conn: Connection, params: Params) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._run(conn, params, fetch=True)
        return rows

    def execute(self, conn: Connection, params: Params) -> int:
        """Runs a statement without rows; returns the driver's row count."""
        count: int = self._run(conn, params, fetch=False)
        return count

    @property
    def columns(self) -> tuple[str, ...]:
        """The names of the result columns, in order."""
        return tuple(str(c.key) for c in self.statement.exported_columns)

    # --- the work ---------------------------------------------------------------------------

    def _run(self, conn: Connection, params: Params, *, fetch: bool) -> Any:
        dialect = conn.dialect
        if dialect.is_async:  # no sync cursor to borrow: through SQLAlchemy
            result = conn.execute(self.statement, dict(params))
            return [tuple(row) for row in result] if fetch else result.rowcount
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _plan(self.statement, dialect)
        values = dict(plan.fixed)
        values.update(params)
        for name, process in plan.binds:
            values[name] = process(values[name])
        args: Any = values if plan.positional is None else [values[n] for n in plan.positional]
        if not conn.in_transaction():
            conn.begin()  # what SQLAlchemy's autobegin does before a statement
        pooled = conn.connection
        cursor = pooled.info.get(_CURSOR)
        if cursor is None:
            cursor = pooled.info[_CURSOR] = pooled.driver_connection.cursor()  # type: ignore[union-attr]
        sql = plan.sql
        events = conn.dispatch
        if events.before_cursor_execute:  # listeners (tracing, statement counts) see it too
            for listener in events.before_cursor_execute:
                sql, args = listener(conn, cursor, sql, args, None, False)
        try:
            cursor.execute(sql, args)
            if events.after_cursor_execute:
                events.after_cursor_execute(conn, cursor, sql, args, None, False)
            if not fetch:
                return cursor.rowcount
            rows = cursor.fetchall()
        except dialect.loaded_dbapi.Error as exc:
            raise _wrapped(conn, dialect, cursor, sql, args, exc) from exc
        if not plan.converts:
            return [tuple(row) for row in rows]
        processors = plan.results
        return [
            tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True))
            for row in rows
        ]


def _plan(statement: Any, dialect: Dialect) -> _Plan:
    compiled = statement.compile(dialect=dialect)
    fixed: list[tuple[str, Any]] = []
    binds: list[tuple[str, Processor]] = []
    seen: set[str] = set()
    for bind, name in compiled.bind_names.items():
        if name in seen:  # one name bound twice ("now" for two columns): one value
            continue
        seen.add(name)
        if not isinstance(bind, BindParameter) or bind.expanding or bind.callable is not None:
            raise ValueError(f"Fast cannot run {statement}: parameter {name} is computed")
        if not bind.required:
            fixed.append((name, bind.value))
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            binds.append((name, process))
    for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
        default = column.onupdate if column in compiled.update_prefetch else column.default
        if default is None or not default.is_scalar:  # utcnow() and the like: not here
            raise ValueError(f"Fast cannot run {statement}: {column.key} has a computed default")
        fixed.append((column.key, default.arg))  # what SQLAlchemy would fill in
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in statement.exported_columns
    )
    positional = tuple(compiled.positiontup) if dialect.positional else None
    return _Plan(
        compiled.string,
        positional,
        tuple(fixed),
        tuple(binds),
        results,
        any(p is not None for p in results),
    )


def _wrapped(
    conn: Connection, dialect: Dialect, cursor: Any, sql: str, args: Any, exc: Any
) -> Exception:
    """The driver's error as SQLAlchemy raises it; a lost connection is invalidated."""
    if dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor):
        conn.invalidate(exc)
    wrapped: Exception = DBAPIError.instance(
        sql, args, exc, dialect.loaded_dbapi.Error, dialect=dialect
    )
    return wrapped
