"""The audit log of the operator API, written in one place: an ASGI middleware around every
state-changing request (POST, PUT, PATCH, DELETE) under ``/api/v1/admin``.

The role dependency that authenticates the request (:mod:`csms.api.deps`) notes who it is in
the request's :class:`AuditNote`; when the answer starts, the middleware writes one record:
who, when (the app's clock, UTC), the method and route template, the ids in the path, the
HTTP status and a short detail (the route's name, what the route added with
:func:`add_detail`, and for a failure the error's message). A request body is never read:
passwords and keys cannot reach the log. A validation error (422) is summarised by the
fields at fault, without the values it would echo.

The values of a change (a refund's amount, a billing model's cap, a charger's new status)
are what the route itself chose to name with :func:`add_details`: a small dict of scalars,
kept as JSON beside the detail. Its names are checked once more here: one that looks like a
credential (password, secret, token, key) is dropped whatever its value, so a route's
mistake cannot put a secret in the log.

A ``POST`` that only computes (a cost preview) is a read: its route carries
:data:`READ_ONLY` (``openapi_extra``), the middleware leaves it out, and the role walk of the
tests treats it as a read.

Refusals for lack of a role (403) are recorded, and so are failures after authentication; a
request that authenticates as nobody (401) is not: it would let anyone fill the log.
The record is written before the answer is passed on, so a client that has its answer finds
the record in the log.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from csms.store import audit as store
from csms.store.models_operators import (
    AUDIT_ACTION_MAX,
    AUDIT_DETAIL_MAX,
    AUDIT_TARGET_MAX,
    OPERATOR_NAME_MAX,
)

PREFIX = "/api/v1/admin/"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SCOPE_KEY = "qrcharge.audit"
_ERROR_TEXT_MAX = 160
_FIELDS_MAX = 5
DETAILS_MAX = 12  # values per record
DETAIL_VALUE_MAX = 80  # characters of one text value
DETAILS_JSON_MAX = 1000
_SECRET_NAME = re.compile(r"pass|secret|token|key|hash|jwk|signature", re.IGNORECASE)
LOG = logging.getLogger("csms.audit")
READ_ONLY_KEY = "x-read-only"
READ_ONLY: dict[str, Any] = {READ_ONLY_KEY: True}
"""``openapi_extra`` of a non-GET operator route that changes nothing (not audited); it shows
in the OpenAPI document, so clients can see it too."""


@dataclass(slots=True)
class AuditNote:
    """What the request learns about itself for its record: who (set by the role dependency)
    and what the route adds to the detail."""

    actor: str | None = None
    actor_kind: str = ""
    detail: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def note_actor(scope: Scope, actor: str, kind: str) -> None:
    """Names who is making this request (no-op outside an audited request)."""
    note = scope.get(_SCOPE_KEY)
    if isinstance(note, AuditNote):
        note.actor, note.actor_kind = actor, kind


def add_detail(request: Request, text: str) -> None:
    """Adds a short, secret-free summary of what the route did to its audit record."""
    note = request.scope.get(_SCOPE_KEY)
    if isinstance(note, AuditNote):
        note.detail = f"{note.detail}; {text}" if note.detail else text


# path parameters that are credentials at a charger: the target keeps their masked form
MASKED_PATH_PARAMS = frozenset({"id_tag"})


def masked(value: str) -> str:
    """``04A1B2C3D4`` -> ``…C3D4``: at most the last four characters, never more than half of
    the value, so the log tells RFID cards apart without holding one that works."""
    keep = min(4, len(value) // 2)
    return "…" + (value[-keep:] if keep else "")


Scalar = str | int | float | bool | None


def add_details(request: Request, **values: Scalar) -> None:
    """Names the values of this change in its audit record (``amount=500``,
    ``status="Blocked"``): scalars only, text cut to :data:`DETAIL_VALUE_MAX` characters, at
    most :data:`DETAILS_MAX` names; a None is left out (nothing changed there). A name that
    looks like a credential is dropped (a route says "new password" with :func:`add_detail`
    instead)."""
    note = request.scope.get(_SCOPE_KEY)
    if not isinstance(note, AuditNote):
        return
    for name, value in values.items():
        if value is None or _SECRET_NAME.search(name) or len(note.details) >= DETAILS_MAX:
            continue
        if isinstance(value, str):
            value = value[:DETAIL_VALUE_MAX]
        elif not isinstance(value, int | float | bool):
            continue
        note.details[name] = value


def details_json(details: dict[str, Any]) -> str | None:
    """The details as stored: compact JSON, or None when there are none (or too many
    characters: the record keeps its detail sentence and drops them rather than cut JSON)."""
    if not details:
        return None
    text = json.dumps(details, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= DETAILS_JSON_MAX else None


def read_only(route: object) -> bool:
    """Whether ``route`` is marked :data:`READ_ONLY`."""
    extra = getattr(route, "openapi_extra", None)
    return isinstance(extra, dict) and extra.get(READ_ONLY_KEY) is True


def audited(scope: Scope) -> bool:
    return (
        scope["type"] == "http"
        and scope.get("method") in WRITES
        and str(scope.get("path", "")).startswith(PREFIX)
    )


class AuditLog:
    """ASGI middleware: one audit record per state-changing operator request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not audited(scope):
            await self.app(scope, receive, send)
            return
        note = AuditNote()
        scope[_SCOPE_KEY] = note
        held: Message | None = None  # the start of an error answer, until its body is seen
        recorded = False

        async def record_then_send(message: Message) -> None:
            nonlocal held, recorded
            if message["type"] == "http.response.start" and not recorded:
                if message["status"] < 400:
                    recorded = True
                    await _record(scope, note, message["status"], b"")
                else:
                    held = message
                    return
            elif message["type"] == "http.response.body" and held is not None:
                start, held = held, None
                recorded = True
                await _record(scope, note, start["status"], message.get("body", b""))
                await send(start)
            await send(message)

        try:
            await self.app(scope, receive, record_then_send)
        except Exception:
            if not recorded:
                await _record(scope, note, 500, b"")
            raise


async def _record(scope: Scope, note: AuditNote, status_code: int, body: bytes) -> None:
    """Writes the record of this request, if someone was authenticated and the route changes
    something (not :data:`READ_ONLY`). A database that
    refuses is logged: the answer still goes out (the action itself already happened)."""
    route = scope.get("route")
    if note.actor is None or read_only(route):
        return
    template = getattr(route, "path_format", None) or str(scope.get("path", ""))
    params: dict[str, Any] = scope.get("path_params") or {}
    parts = [_route_words(route), note.detail]
    if status_code >= 400:
        parts.append(_error_text(body))
    detail = "; ".join(p for p in parts if p)
    try:
        ctx = scope["app"].state.ctx
        async with ctx.db.session() as session:
            await store.add_record(
                session,
                at=ctx.clock(),
                actor=note.actor[:OPERATOR_NAME_MAX],
                actor_kind=note.actor_kind,
                action=f"{scope['method']} {template}"[:AUDIT_ACTION_MAX],
                target=_target(params)[:AUDIT_TARGET_MAX],
                status_code=status_code,
                detail=detail[:AUDIT_DETAIL_MAX],
                details=details_json(note.details),
            )
    except Exception:
        LOG.exception(
            "audit record lost: %s %s by %s -> %s",
            scope.get("method"),
            template,
            note.actor,
            status_code,
        )


def _target(params: dict[str, Any]) -> str:
    """The path's ids as ``name=value, ...``, a credential among them masked."""
    return ", ".join(
        f"{k}={masked(str(v)) if k in MASKED_PATH_PARAMS else v}" for k, v in params.items()
    )


def _route_words(route: object) -> str:
    """``cancel_order`` -> ``cancel order``: what the route does, from its function's name."""
    name = getattr(route, "name", "") or ""
    return str(name).replace("_", " ")


def _error_text(body: bytes) -> str:
    """The message of an error answer; for a validation error only the fields at fault (its
    messages may quote the values sent, a password among them)."""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return ""
    if isinstance(detail, str):
        return detail[:_ERROR_TEXT_MAX]
    if isinstance(detail, list):
        fields = [
            ".".join(str(part) for part in item.get("loc", ()))
            for item in detail[:_FIELDS_MAX]
            if isinstance(item, dict)
        ]
        return "invalid request: " + ", ".join(fields)
    return ""
