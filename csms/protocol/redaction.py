"""Secrets taken out of OCPP frames before they are kept where operators read them.

The message log (``GET /api/v1/admin/chargers/{id}/messages``, every operator role) keeps the
frames of each charger. Three things in them are secrets: the identification secret the
CSMS installs (1.6 ``ChangeConfiguration`` / 2.0.1 ``SetVariables`` of
``IdentificationSecret``, and a charger's answer that reads it back), the token of an upload
URL of ours (it lets anyone upload as the charger), and credentials in any URL
(``ftp://user:password@host``). :func:`redact_frame` replaces them with ``[redacted]``; a
frame without any of them is returned as it is, after three substring checks.
"""

from __future__ import annotations

import json
import re
from typing import Any

from csms.protocol.commands import SECRET_KEY

REDACTED = "[redacted]"
UPLOADS = "/api/v1/uploads/"
_UPLOAD_TOKEN = re.compile(r"(/api/v1/uploads/[^/\"\s?#]+/)[^\"\s?#]+")
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\"\s]+@")


def redact_url(text: str) -> str:
    """``text`` without upload tokens of ours and URL credentials."""
    if UPLOADS in text:
        text = _UPLOAD_TOKEN.sub(rf"\1{REDACTED}", text)
    if "@" in text:
        text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    return text


def redact_frame(frame: str) -> str:
    """``frame`` (OCPP-J text) with the secrets above replaced."""
    if SECRET_KEY in frame:
        frame = _without_secret_values(frame)
    return redact_url(frame)


def _without_secret_values(frame: str) -> str:
    try:
        message = json.loads(frame)
    except ValueError:
        return REDACTED  # unreadable and names the secret: keep nothing of it
    return json.dumps(_walk(message), separators=(",", ":"), ensure_ascii=False)


def _walk(node: Any) -> Any:
    if isinstance(node, list):
        return [_walk(item) for item in node]
    if not isinstance(node, dict):
        return node
    names_secret = node.get("key") == SECRET_KEY or (
        isinstance(node.get("variable"), dict) and node["variable"].get("name") == SECRET_KEY
    )
    out: dict[str, Any] = {}
    for key, value in node.items():
        if names_secret and key in ("value", "attributeValue"):
            out[key] = REDACTED
        elif names_secret and key == "variableAttribute" and isinstance(value, list):
            out[key] = [
                {**a, "value": REDACTED} if isinstance(a, dict) and "value" in a else a
                for a in value
            ]
        else:
            out[key] = _walk(value)
    return out
