"""A failed rule of OCPP-J, said as a CALLERROR's ``errorDescription`` and ``errorDetails``.

OCPP-J leaves ``errorDetails`` free (any JSON object; ``{}`` when there is nothing to say) and
2.0.1 limits ``errorDescription`` to 255 characters. A :class:`Violation` names the place (a
``path`` in the payload, or an ``element`` of the frame) and the rule that failed, and says
both ways. Whatever the peer sent is echoed only in part (:func:`short`). Pure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DESCRIPTION_MAX = 255  # OCPP-J 2.0.1: errorDescription is string[255]
DETAIL_MAX = 200
VALUE_MAX = 24
_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def cut(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short(value: Any) -> str:
    """A value as JSON, at most :data:`VALUE_MAX` characters (an echo, never the whole)."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        text = repr(value)
    return cut(text, VALUE_MAX)


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value (``Decimal`` counts as a number)."""
    return _JSON_TYPES.get(type(value), "number")


@dataclass(frozen=True, slots=True)
class Violation:
    """One failed rule: where (``path`` in the payload or ``element`` of the frame), which
    rule (``constraint``) and what was wrong (``detail``)."""

    constraint: str
    detail: str
    path: str | None = None
    element: int | None = None
    action: str | None = None

    def details(self) -> dict[str, Any]:
        """The CALLERROR's ``errorDetails``."""
        found: dict[str, Any] = {
            "action": cut(self.action, 50) if self.action is not None else None,
            "path": self.path,
            "element": self.element,
            "constraint": self.constraint,
            "detail": cut(self.detail, DETAIL_MAX),
        }
        return {key: value for key, value in found.items() if value is not None}

    def description(self) -> str:
        """The CALLERROR's ``errorDescription``: the place, then what is wrong."""
        if self.path is not None:
            where = f"{self.action} {self.path or '(payload)'}" if self.action else self.path
        elif self.element is not None:
            where = f"frame element {self.element}"
        elif self.action is not None:  # the whole CALL, as one
            where = cut(self.action, 50)
        else:
            where = "frame"
        return cut(f"{where}: {self.detail} ({self.constraint})", DESCRIPTION_MAX)
