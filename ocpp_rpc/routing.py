"""Which method of a connection class handles which CALL: our ``@on``, read once per class.

The ``ocpp`` library keeps one module-level list of decorated method names for every class
in the process, and looks each one up on every connection it builds. Here a class's table
is built from its own methods (inherited and mixed-in ones included) the first time a
connection of it asks, and kept: ``{action: Route}``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

Handler = TypeVar("Handler", bound=Callable[..., Any])
_ACTION = "_on_action"  # the attribute ``on`` sets on a handler function
_SKIP_SCHEMA = "_skip_schema_validation"


@dataclass(frozen=True, slots=True)
class Route:
    """A handler: ``function(connection, **snake_case_payload)``, sync or async."""

    action: str
    function: Callable[..., Any]
    validated: bool  # whether the CALL and its answer are checked against their schemas
    wants_unique_id: bool  # whether it takes ``call_unique_id``


def on(action: str, *, skip_schema_validation: bool = False) -> Callable[[Handler], Handler]:
    """Marks a method as the handler of CALL ``action`` (its signature kept as it is)."""

    def mark(function: Handler) -> Handler:
        setattr(function, _ACTION, str(action))
        setattr(function, _SKIP_SCHEMA, skip_schema_validation)
        return function

    return mark


_TABLES: dict[type, Mapping[str, Route]] = {}


def routes(cls: type) -> Mapping[str, Route]:
    """The handlers of ``cls`` by action (a subclass's method overrides its base's)."""
    try:
        return _TABLES[cls]
    except KeyError:
        pass
    table: dict[str, Route] = {}
    for name in dir(cls):
        function = inspect.getattr_static(cls, name, None)
        action = getattr(function, _ACTION, None)
        if action is None or not callable(function):
            continue
        wants_unique_id = "call_unique_id" in inspect.signature(function).parameters
        validated = not getattr(function, _SKIP_SCHEMA, False)
        table[action] = Route(action, function, validated, wants_unique_id)
    _TABLES[cls] = table
    return table
