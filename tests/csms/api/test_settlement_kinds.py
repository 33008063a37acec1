"""A settlement upload that is not a settlement names what it is (``kind``), so the driver's
page can say "that is a start code", "that is the charger's own QR" or "no QR at all"."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from csms.api.routes.settlements import qr_kind
from qr_extension import identification_url, render_png

from ..conftest import LiveCsms


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jws(typ: str) -> str:
    header = _b64(json.dumps({"alg": "ES256", "typ": typ, "kid": "k1"}).encode())
    return f"{header}.{_b64(b'{}')}.{_b64(b'sig')}"


START = _jws("start+jwt")
CHARGER_URL = identification_url("https://charge.example.org", "CP-1", 1, code="123456")


@pytest.mark.parametrize(
    ("text", "kind"),
    [(START, "start"), (CHARGER_URL, "identification"), ("hello", "other"),
     (_jws("keys+jwt"), "other"), ("https://example.org/x", "other")],
)  # fmt: skip
def test_kinds(text: str, kind: str) -> None:
    assert qr_kind(text) == kind


def _blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (64, 64), 255).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("png", "kind"),
    [(render_png(START), "start"), (render_png(CHARGER_URL), "identification"),
     (render_png("hello"), "other"), (_blank_png(), "none")],
)  # fmt: skip
async def test_a_photo_of_the_wrong_thing_is_named(csms: LiveCsms, png: bytes, kind: str) -> None:
    auth = await csms.driver()
    r = await csms.http.post(
        "/api/v1/settlements", files={"image": ("x.png", png, "image/png")}, headers=auth
    )
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail["kind"] == kind
    assert detail["reason"] == "unreadable"


async def test_a_start_token_sent_as_text_is_named(csms: LiveCsms) -> None:
    auth = await csms.driver()
    r = await csms.http.post("/api/v1/settlements", json={"token": START}, headers=auth)
    assert r.status_code == 422
    assert r.json()["detail"] == {
        "reason": "wrong_type", "kind": "start", "message": r.json()["detail"]["message"],
    }  # fmt: skip
