"""The error answers of the HTTP API, declared for the OpenAPI document of each route.

Every error body is JSON with a ``detail``: a sentence (:class:`Problem`, with a stable
``code`` on the money side), FastAPI's list of field errors for a request that does not fit
its schema (:class:`ValidationProblem`), or a reason code and a message for a refusal the
client acts on (:class:`RefusalProblem`). A route lists the statuses it can answer with
``responses=errors(404, 409)``; a router whose routes all need the same credentials lists
401 once. What can happen to any body (unreadable, too large, invalid) is ``BODY``.

A client (and the schemathesis fuzz test) may rely on the document: an answer whose status
or shape is not declared here is a bug in the route or in its declaration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

Responses = dict[int | str, dict[str, Any]]


class Problem(BaseModel):
    """What went wrong, in a sentence."""

    detail: str
    code: str | None = Field(default=None, description="a stable code (money errors)")


class FieldError(BaseModel):
    """One field that does not fit the schema (FastAPI's validation error)."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """The request does not fit its schema: every field at fault."""

    detail: list[FieldError]


class Refusal(BaseModel):
    reason: str = Field(description="a stable reason code")
    message: str


class RefusalProblem(BaseModel):
    """A refusal with a reason code the client can act on."""

    detail: Refusal


_DESCRIPTIONS: Mapping[int, str] = {
    400: "the body could not be read (not UTF-8 JSON, or a broken form)",
    401: "no valid credentials (an operator's sign-in token or the admin API key, or a"
    " driver's access token)",
    403: "refused (an operator route: the caller's role is not enough)",
    402: "the wallet or the payment method cannot pay",
    404: "not found",
    409: "conflicts with the current state",
    410: "expired",
    413: "the body is larger than allowed",
    422: "the request does not fit the schema or the rules",
    429: "too many attempts: try again after Retry-After seconds",
    502: "the charger or the payment provider answered with an error",
    503: "busy, or not enabled: try again later",
    504: "the charger did not answer in time",
}
_MODELS: Mapping[int, Any] = {422: ValidationProblem | Problem}


def errors(
    *statuses: int,
    notes: Mapping[int, str] | None = None,
    models: Mapping[int, Any] | None = None,
) -> Responses:
    """The ``responses=`` of a route for ``statuses``; ``notes`` replace the generic
    descriptions and ``models`` the body models (:class:`Problem` unless said otherwise)."""
    notes, models = notes or {}, models or {}
    return {
        status: {
            "model": models.get(status, _MODELS.get(status, Problem)),
            "description": notes.get(status, _DESCRIPTIONS[status]),
        }
        for status in statuses
    }


BODY: Responses = errors(400, 413, 422)
