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

*Writes later* (:meth:`Fast.later`, on an engine given to :func:`pipeline_writes`: psycopg
with libpq's pipeline mode). On a database server every statement is a round trip, and the
database thread waits for each one (and then for the GIL, and for the server's process to be
scheduled on a busy machine). A write whose row count nobody reads is therefore kept on the
connection and sent in one pipeline with the connection's next statement, or with the
COMMIT: a group of a hundred operations then costs a round trip per *read*, not per
statement. Same transaction, same order, same statements; what changes is only where a
failing write raises: at the next statement or at the commit, still inside the same
transaction (which is then rolled back, as for any error; a caller that catches the error
does not commit it: the commit raises it again, see :func:`_send`). Any other statement on the
connection (through SQLAlchemy too) sends the kept writes first; a rollback drops them.
On SQLite (no round trips) and any other driver, :meth:`Fast.later` runs at once.

A kept write can carry a *check* of its row count (a conditional update that must have
matched): it is called once the write's result is back, at the next round trip, and raises
there, failing the unit, which is then rolled back as for any error. A commit sends kept
writes with a check in a round trip of their own before the COMMIT, never with it: the COMMIT
must not go out before the check passed.

*Reads ahead* (:meth:`Fast.ahead`, same engines). A unit that knows it will read a row a
little later (after another read whose answer it needs first) queues that read with the
connection's next round trip; the later :meth:`Fast.first` / :meth:`Fast.all` of the same
statement and parameters takes the rows already received instead of waiting for a round
trip of its own. Any write on the connection (kept or not, through SQLAlchemy too), a commit
or a rollback forgets every read queued ahead, so a read ahead is only ever served where
nothing was written since it was sent: the rows are those a read at that moment would give.
A *stable* statement's read ahead (``Fast(..., stable=True)``) is the exception: nothing the
unit writes can change its answer, so only the commit or rollback forgets it.

*Reads at the commit* (:meth:`Fast.at_commit`): a unit's last read whose answer is needed
only by the caller (whether the order is flagged, for the driver's answer) is kept like a
write and goes with the COMMIT; its rows are handed out once the transaction committed.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Delete, Insert, Select, Update
from sqlalchemy.sql.elements import BindParameter

Processor = Callable[[Any], Any]
Params = Mapping[str, Any]
_CURSOR = "qrcharge.fast_cursor"  # the DBAPI connection's cursor, kept in its pool info
_LATER = "qrcharge.fast_later"  # writes kept for the next round trip: [(sql, args), ...]
_AHEAD = "qrcharge.fast_ahead"  # reads queued ahead: {(statement id, arguments): _Ahead}
_FAILED = "qrcharge.fast_failed"  # the error of a pipeline that failed the transaction (_send)
_PIPELINED: weakref.WeakSet[Engine] = weakref.WeakSet()  # engines of pipeline_writes


class _Ahead:
    """A read queued ahead: its own cursor once sent, its rows once received; ``stable``
    when its statement reads what no write changes (it survives the unit's writes)."""

    __slots__ = ("cursor", "rows", "stable")

    def __init__(self, stable: bool = False) -> None:
        self.cursor: Any = None
        self.rows: list[Any] | None = None
        self.stable = stable

    def received(self) -> None:
        self.rows = self.cursor.fetchall()
        self.cursor.close()


class _Checked:
    """A kept write whose row count is checked: its own cursor once sent, and the check,
    called with the row count once received (it raises to fail the unit)."""

    __slots__ = ("check", "count", "cursor")

    def __init__(self, check: Callable[[int], None]) -> None:
        self.check = check
        self.cursor: Any = None
        self.count = -1

    def received(self) -> None:
        self.count = self.cursor.rowcount
        self.cursor.close()


Kept = list[tuple[str, Any] | tuple[str, Any, _Ahead | _Checked]]


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    positional: tuple[str, ...] | None  # parameter names in order (qmark), else by name
    fixed: tuple[tuple[str, Any], ...]  # values bound in the statement itself
    binds: tuple[tuple[str, Processor], ...]  # parameters that the driver cannot take as is
    results: tuple[Processor | None, ...]  # per result column
    converts: bool  # any result processor at all
    writes: bool  # an INSERT, UPDATE or DELETE (with RETURNING too: it has rows and writes)


class Fast:
    """A prebuilt Core statement run on the DBAPI cursor (see the module's docstring).

    ``stable``: a read whose answer no write of the unit can change (columns never changed
    once their row is written, of rows such a unit never inserts or deletes: an order's
    charger, in the store writer's units): read ahead, its rows stay valid across the unit's
    writes (they are forgotten at the commit or rollback only)."""

    __slots__ = ("_plans", "stable", "statement")

    def __init__(
        self, statement: Select[Any] | Insert | Update | Delete, *, stable: bool = False
    ) -> None:
        if stable and not isinstance(statement, Select):
            raise ValueError("only a read can be stable")
        self.statement = statement
        self.stable = stable
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

    def later(
        self, conn: Connection, params: Params, *, check: Callable[[int], None] | None = None
    ) -> None:
        """Runs a statement without rows: sent with the connection's next statement or its
        commit where the engine pipelines writes (see the module's docstring), else at once.

        ``check`` is called with its row count once it was sent (and may raise, which fails
        the caller's unit there, at its next round trip): a conditional update that must
        have matched. A commit sends kept writes with a check in a round trip of their own
        first, so that a failing check is raised before the COMMIT goes out."""
        if conn.engine not in _PIPELINED:
            count = self._run(conn, params, fetch=False)
            if check is not None:
                check(count)
            return
        plan = self._plan_for(conn.dialect)
        args = _arguments(plan, params)
        if not conn.in_transaction():
            conn.begin()
        info = conn.connection.info
        _forget_ahead(info)  # a write: what was read ahead may be stale after it
        kept: Kept | None = info.get(_LATER)
        if kept is None:
            kept = info[_LATER] = []
        kept.append((plan.sql, args) if check is None else (plan.sql, args, _Checked(check)))

    def ahead(self, conn: Connection, params: Params) -> None:
        """Queues this read with the connection's next round trip where the engine pipelines
        writes (see the module's docstring); the next :meth:`first` or :meth:`all` of the
        same ``params`` then takes its rows, unless something was written in between.
        Elsewhere, nothing: that call reads as usual."""
        if conn.engine not in _PIPELINED:
            return
        plan = self._plan_for(conn.dialect)
        args = _arguments(plan, params)
        key = _ahead_key(self, args)
        if key is None or _refused(args):
            return
        if not conn.in_transaction():
            conn.begin()
        info = conn.connection.info
        slot = _Ahead(self.stable)
        info.setdefault(_AHEAD, {})[key] = slot
        kept: Kept | None = info.get(_LATER)
        if kept is None:
            kept = info[_LATER] = []
        kept.append((plan.sql, args, slot))

    def at_commit(self, conn: Connection, params: Params) -> Callable[[], list[tuple[Any, ...]]]:
        """This read as the transaction's last statement: sent with its COMMIT where the
        engine pipelines writes (no round trip of its own; it sees everything the
        transaction wrote, so nothing may be written after it), elsewhere read now. Returns
        how to get its rows once the transaction committed."""
        if conn.engine not in _PIPELINED:
            read = self.all(conn, params)
            return lambda: read
        plan = self._plan_for(conn.dialect)
        args = _arguments(plan, params)
        if not conn.in_transaction():
            conn.begin()
        info = conn.connection.info
        slot = _Ahead()
        kept: Kept | None = info.get(_LATER)
        if kept is None:
            kept = info[_LATER] = []
        kept.append((plan.sql, args, slot))

        def rows() -> list[tuple[Any, ...]]:
            if slot.rows is None:
                raise RuntimeError("read before its transaction was committed")
            return self._converted(plan, slot.rows)

        return rows

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
        plan = self._plan_for(dialect)
        args = _arguments(plan, params)
        if not conn.in_transaction():
            conn.begin()  # what SQLAlchemy's autobegin does before a statement
        pooled = conn.connection
        ahead: dict[Any, _Ahead] | None = pooled.info.get(_AHEAD)
        if ahead:
            if plan.writes:  # what was read ahead may be stale after it
                _forget_ahead(pooled.info)
            else:
                slot = ahead.pop(_ahead_key(self, args), None)
                if slot is not None:
                    if slot.rows is None:  # still kept: sent now, with the other kept ones
                        flush_later(conn)
                    if slot.rows is not None:
                        return self._converted(plan, slot.rows)
        kept: Kept = pooled.info.get(_LATER) or []
        if kept or (conn.engine in _PIPELINED and _idle(pooled.driver_connection)):
            # the writes kept for this round trip go first, in one pipeline (with the BEGIN
            # that the driver sends before a transaction's first statement, a round trip of
            # its own outside a pipeline)
            pooled.info[_LATER] = []
            _send(conn, [*kept, (plan.sql, args)], own=True)
            cursor = _cursor(conn)
            try:
                if not fetch:
                    return cursor.rowcount
                rows = cursor.fetchall()
            except dialect.loaded_dbapi.Error as exc:
                raise _wrapped(conn, dialect, cursor, plan.sql, args, exc) from exc
        else:
            cursor = _cursor(conn)
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
        return self._converted(plan, rows)

    @staticmethod
    def _converted(plan: _Plan, rows: list[Any]) -> list[tuple[Any, ...]]:
        if not plan.converts:
            return [tuple(row) for row in rows]
        processors = plan.results
        return [
            tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True))
            for row in rows
        ]

    def _plan_for(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _plan(self.statement, dialect)
        return plan


def _arguments(plan: _Plan, params: Params) -> Any:
    values = dict(plan.fixed)
    values.update(params)
    for name, process in plan.binds:
        values[name] = process(values[name])
    return values if plan.positional is None else [values[n] for n in plan.positional]


def _forget_ahead(info: dict[Any, Any]) -> None:
    """A write on the connection: the reads queued ahead are forgotten, but the stable ones."""
    ahead: dict[Any, _Ahead] | None = info.get(_AHEAD)
    if not ahead:
        return
    kept = {key: slot for key, slot in ahead.items() if slot.stable}
    if kept:
        info[_AHEAD] = kept
    else:
        del info[_AHEAD]


def _ahead_key(fast: Fast, args: Any) -> tuple[int, Any] | None:
    """What a read ahead is found again by: the statement and its arguments (None when an
    argument cannot be compared so: such a read is simply not kept ahead)."""
    try:
        key = (id(fast), tuple(args.items()) if isinstance(args, dict) else tuple(args))
        hash(key)
    except TypeError:
        return None
    return key


def _refused(args: Any) -> bool:
    """Whether the driver refuses ``args`` before sending (text holding NUL, which PostgreSQL
    text cannot): such a read is not kept ahead but read when asked for, so that its error is
    its reader's alone. Sent ahead, it stops the pipeline there: the statements queued after
    it are not sent, and the error is raised to whichever read sent it."""
    values = args.values() if isinstance(args, dict) else args
    return any(isinstance(value, str) and "\x00" in value for value in values)


_IN_TRANSACTION = 2  # psycopg's TransactionStatus.INTRANS: in a transaction that did not fail


def _idle(driver_connection: Any) -> bool:
    """Whether the driver's connection is outside a transaction (its next statement is
    preceded by a BEGIN)."""
    return bool(driver_connection.info.transaction_status == 0)  # psycopg's IDLE


def _cursor(conn: Connection) -> Any:
    """The DBAPI connection's cursor that Fast statements run on (one per connection)."""
    pooled = conn.connection
    cursor = pooled.info.get(_CURSOR)
    if cursor is None:
        cursor = pooled.info[_CURSOR] = pooled.driver_connection.cursor()  # type: ignore[union-attr]
    return cursor


def _send(conn: Connection, statements: Kept, *, own: bool = False) -> None:
    """Runs ``statements`` in one pipeline (one round trip); the cursor keeps the last one's
    result. The first failing statement's error is raised as SQLAlchemy's.

    A failing pipeline fails the transaction: its error is raised again by the commit (see
    :func:`_before_commit`), even if the caller took it as an answer (a policy that answers
    Invalid on any error). A statement the driver refuses before sending it (PostgreSQL text
    cannot hold NUL) leaves the transaction open on the server but stops the pipeline there:
    the kept writes after it, often other units' in a store writer's group, are never sent,
    and without this the transaction committed without them. Only the caller's own statement
    (``own``: the last one) refused so, with everything before it sent and the transaction
    fine, is the caller's error alone, as when it runs by itself."""
    dialect = conn.dialect
    cursor = _cursor(conn)
    events = conn.dispatch
    driver = conn.connection.driver_connection
    sent: list[tuple[str, Any]] = []
    slots: list[_Ahead | _Checked] = []
    queued = False
    try:
        with driver.pipeline():  # type: ignore[union-attr]
            for sql, args, *slot in statements:
                for listener in events.before_cursor_execute:
                    sql, args = listener(conn, cursor, sql, args, None, False)
                if slot:  # a read ahead or a checked write: a cursor of its own keeps its result
                    slot[0].cursor = driver.cursor()  # type: ignore[union-attr]
                    slot[0].cursor.execute(sql, args)
                    slots.append(slot[0])
                else:
                    cursor.execute(sql, args)
                sent.append((sql, args))
            queued = True
        for each in slots:
            each.received()
    except Exception as exc:
        refused = not queued and getattr(exc, "sqlstate", None) is None  # by the driver
        own_alone = (
            own
            and refused
            and len(sent) == len(statements) - 1
            and not any(isinstance(each, _Checked) for each in slots)  # no check left unrun
            and driver.info.transaction_status == _IN_TRANSACTION  # type: ignore[union-attr]
        )
        error: Exception = exc
        if isinstance(exc, dialect.loaded_dbapi.Error):
            sql, args = (
                statements[len(sent)][:2] if refused else sent[-1] if sent else statements[0][:2]
            )
            error = _wrapped(conn, dialect, cursor, sql, args, exc)
        if not own_alone and not conn.closed and not conn.invalidated:
            conn.connection.info[_FAILED] = error
        if error is exc:
            raise
        raise error from exc
    if events.after_cursor_execute:
        for sql, args in sent:
            events.after_cursor_execute(conn, cursor, sql, args, None, False)
    for each in slots:  # every result taken first: a check that raises leaves none unread
        if isinstance(each, _Checked):
            each.check(each.count)


def pipelined(conn: Connection) -> bool:
    """Whether :meth:`Fast.later` keeps writes on ``conn`` (see :func:`pipeline_writes`)."""
    return conn.engine in _PIPELINED


def flush_later(conn: Connection) -> None:
    """Sends the writes kept on ``conn`` now (one round trip; nothing when none are kept)."""
    if conn.closed or conn.invalidated:
        return
    info = conn.connection.info
    kept: Kept | None = info.get(_LATER)
    if kept:
        info[_LATER] = []
        _send(conn, kept)


def pipeline_writes(engine: Engine) -> bool:
    """Lets :meth:`Fast.later` keep writes on ``engine``'s connections when its driver has a
    pipeline mode (psycopg 3 on libpq 14 or later); whether it does. Any other statement on
    the connection sends the kept writes first, a commit sends them with its COMMIT, and a
    rollback drops them."""
    if engine.dialect.driver != "psycopg" or engine.dialect.is_async:
        return False
    import psycopg

    if not psycopg.Pipeline.is_supported():
        return False
    if engine not in _PIPELINED:
        event.listen(engine, "before_cursor_execute", _before_other)
        event.listen(engine, "commit", _before_commit)
        event.listen(engine, "rollback", _before_rollback)
        _PIPELINED.add(engine)
    return True


def _before_other(
    conn: Connection, _cursor: Any, _sql: str, _args: Any, _context: Any, _many: bool
) -> None:
    """SQLAlchemy is about to run a statement of its own: the kept writes go first (and,
    as it may write, what was read ahead is forgotten). Fast's own statements call the
    listeners too, without an execution context: they forget nothing here."""
    flush_later(conn)
    if _context is not None and not conn.closed and not conn.invalidated:  # not a Fast one
        _forget_ahead(conn.connection.info)


def _before_commit(conn: Connection) -> None:
    """The kept writes and the COMMIT in one round trip (the driver's own commit then finds
    the transaction ended and sends nothing)."""
    if conn.closed or conn.invalidated:
        return
    info = conn.connection.info
    info.pop(_AHEAD, None)
    failed: Exception | None = info.pop(_FAILED, None)
    kept: Kept | None = info.get(_LATER)
    if failed is not None:  # a pipeline of the transaction failed (see _send): not committed
        info[_LATER] = []
        with contextlib.suppress(Exception):
            conn.connection.driver_connection.rollback()  # type: ignore[union-attr]
        raise failed
    if kept:
        info[_LATER] = []
        try:
            if any(len(item) == 3 and isinstance(item[2], _Checked) for item in kept):
                _send(conn, kept)  # the checks pass before the COMMIT is sent
                kept = []
            _send(conn, [*kept, ("COMMIT", None)])
        except Exception:
            # SQLAlchemy takes a failed commit for the transaction's end and rolls nothing
            # back: the aborted transaction is ended here, or the connection's next one fails
            info.pop(_FAILED, None)
            with contextlib.suppress(Exception):
                conn.connection.driver_connection.rollback()  # type: ignore[union-attr]
            raise


def _before_rollback(conn: Connection) -> None:
    if not conn.invalidated and not conn.closed:
        conn.connection.info.pop(_LATER, None)
        conn.connection.info.pop(_AHEAD, None)
        conn.connection.info.pop(_FAILED, None)


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
        not isinstance(statement, Select),
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
