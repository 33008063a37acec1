"""Log lines that say which charger, order, transaction and HTTP request they belong to.

Work binds its context once (:func:`bind`): a charger's connection binds ``charger_id`` and
every line logged by it and by the tasks it starts carries that id; a payment binds
``order_id`` and ``txn``; an HTTP request binds ``request_id``. :class:`ContextFilter` copies
the bound values onto each record, and :class:`JsonFormatter` writes one JSON object per line
(``--log-format json``) for a log shipper; the text format stays the default for a terminal.

Nothing here decides what is safe to log: callers never pass tokens, passwords or keys.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
FIELDS = ("charger_id", "order_id", "txn", "request_id")
_VARS: dict[str, ContextVar[str | None]] = {name: ContextVar(name, default=None) for name in FIELDS}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def bind(**fields: str | None) -> Iterator[None]:
    """Binds context fields (names from :data:`FIELDS`) for the code inside the block."""
    tokens = [(_VARS[name], _VARS[name].set(value)) for name, value in fields.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind_for_task(**fields: str | None) -> None:
    """Binds context fields for the rest of the current task (and the tasks it creates):
    for a connection's or a request's whole life, where a ``with`` block does not fit."""
    for name, value in fields.items():
        _VARS[name].set(value)


def current(name: str) -> str | None:
    return _VARS[name].get()


class ContextFilter(logging.Filter):
    """Puts the bound context on every record (``None`` where nothing is bound)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _VARS.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, the bound context,
    and the traceback of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in ("node", *FIELDS):
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class NodeFilter(logging.Filter):
    """Puts the process's node id on every record (``node``): one of a cluster's processes."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self.node
        return True


def configure(level: str, log_format: LogFormat = "text", *, node: str | None = None) -> None:
    """The root logger's one handler (stderr) in ``log_format``, with the context filter;
    ``node`` (a cluster's process) is written on every line, after the level."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    text_format = TEXT_FORMAT
    if node is not None:
        handler.addFilter(NodeFilter(node))
        text_format = TEXT_FORMAT.replace("%(levelname)s ", "%(levelname)s [%(node)s] ")
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(text_format)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
