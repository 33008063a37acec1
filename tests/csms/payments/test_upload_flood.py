"""A flood of refused settlement uploads from one driver: the CSMS answers 429 with
``Retry-After`` beyond the driver's rate, and the database grows by a bounded amount (rows and
bytes) however many arrive. Repeats of one refused token are counted on one row."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from ..conftest import LiveCsms, make_settings, serve
from .conftest import Clock

FLOOD = 1000
LONG = 7900  # near the upload's 8,000-character cap: refused unread (above 4,096)
SHAPED = 3000  # a token that is read: its charger, order and key id are evidence


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(chars: int = LONG) -> str:
    """A settlement-shaped token nobody signed, unique, of about ``chars`` characters."""
    header = _b64(json.dumps({"alg": "ES256", "typ": "settle+jwt", "kid": "forged01"}).encode())
    junk = secrets.token_urlsafe((chars - 300) * 9 // 16)
    payload = _b64(json.dumps({"iss": "CP1", "jti": "ORDER1", "pad": junk}).encode())
    token = f"{header}.{payload}.{_b64(secrets.token_bytes(64))}"
    assert chars - 100 < len(token) < chars + 100, len(token)
    return token


async def _stored(csms: LiveCsms) -> dict[str, int]:
    """Rows and bytes of the refusal evidence and the inbox, and the database file's size."""
    async with csms.ctx.db.engine.begin() as conn:
        await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        pages = (await conn.execute(text("PRAGMA page_count"))).scalar_one()
        page = (await conn.execute(text("PRAGMA page_size"))).scalar_one()
        rejections = (await conn.execute(text("SELECT COUNT(*) FROM settlement_rejections"))).one()
        inbox = (
            await conn.execute(
                text("SELECT COUNT(*), COALESCE(SUM(LENGTH(token)), 0) FROM settlement_inbox")
            )
        ).one()
    return {
        "rejections": rejections[0],
        "inbox_rows": inbox[0],
        "inbox_bytes": inbox[1],
        "file_bytes": pages * page,
    }


async def test_a_flood_of_refused_uploads_is_throttled_and_stores_a_bounded_amount(
    tmp_path: Path,
) -> None:
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    settings = make_settings(tmp_path, upload_rate_per_driver=20, upload_rate_per_client=1000)
    async with serve(settings, clock=clock) as csms:
        mallory = await csms.driver("mallory@example.org")
        before = await _stored(csms)
        codes: dict[int, int] = {}
        retry_after: set[str] = set()
        for _ in range(FLOOD):
            r = await csms.http.post(
                "/api/v1/settlements", json={"token": _forged()}, headers=mallory
            )
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code == 429:
                retry_after.add(r.headers["Retry-After"])
                assert r.json()["detail"]["reason"] == "too_many_uploads"
        after = await _stored(csms)
        # the first 20 are judged (and refused), the other 980 are turned away unread
        assert codes == {422: 20, 429: FLOOD - 20}
        assert retry_after == {"3"}  # one token every 60/20 s
        assert after["rejections"] - before["rejections"] == 20
        assert after["inbox_rows"] == before["inbox_rows"]  # no refused token in the inbox
        # each of the 20 keeps the 4 kB head of its 7.9 kB token, and its row
        assert after["file_bytes"] - before["file_bytes"] <= 20 * 8192 + 64 * 1024
        # another driver is not held by mallory's rate; mallory again after the wait
        trent = await csms.driver("trent@example.org")
        r = await csms.http.post("/api/v1/settlements", json={"token": _forged()}, headers=trent)
        assert r.status_code == 422
        clock.advance(3)
        r = await csms.http.post("/api/v1/settlements", json={"token": _forged()}, headers=mallory)
        assert r.status_code == 422


async def test_one_address_is_held_whatever_account_it_uses(tmp_path: Path) -> None:
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    settings = make_settings(tmp_path, upload_rate_per_driver=1000, upload_rate_per_client=5)
    async with serve(settings, clock=clock) as csms:
        answers = []
        for n in range(4):
            auth = await csms.driver(f"sock{n}@example.org")
            for _ in range(2):
                r = await csms.http.post(
                    "/api/v1/settlements", json={"token": _forged()}, headers=auth
                )
                answers.append(r.status_code)
        assert answers == [422] * 5 + [429] * 3
        r = await csms.http.post(
            "/api/v1/settlements",
            files={"image": ("x.png", b"not an image", "image/png")},
            headers=auth,
        )
        assert r.status_code == 429 and r.headers["Retry-After"] == "12"  # 60/5 s


async def test_repeats_of_a_refused_token_are_counted_on_one_row(tmp_path: Path) -> None:
    """With no rate limit at all, 300 copies of one refused token and 50 distinct long ones:
    one row for the copies (count 300, the token whole), one per distinct token (cut to its
    first 4,096 characters, beyond which no token is even read)."""
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    settings = make_settings(tmp_path, upload_rate_per_driver=0, upload_rate_per_client=0)
    async with serve(settings, clock=clock) as csms:
        auth = await csms.driver("replay@example.org")
        again = _forged(SHAPED)
        for _ in range(300):
            r = await csms.http.post("/api/v1/settlements", json={"token": again}, headers=auth)
            assert r.status_code == 422
            clock.advance(1)
        for _ in range(50):
            r = await csms.http.post("/api/v1/settlements", json={"token": _forged()}, headers=auth)
            assert r.status_code == 422
        stored = await _stored(csms)
        assert stored["rejections"] == 51 and stored["inbox_rows"] == 0
        rows: list[dict[str, Any]] = (
            await csms.http.get("/api/v1/admin/settlement-rejections", params={"limit": 200})
        ).json()
        long = [row for row in rows if row["token_chars"] > 4096]
        assert len(long) == 50 and {len(row["token_head"]) for row in long} == {4096}
        counted = [row for row in rows if row["count"] > 1]
        assert len(counted) == 1 and counted[0]["count"] == 300
        first = counted[0]
        assert (first["token_head"], first["token_chars"]) == (again, len(again))
        assert (first["reason"], first["source"], first["charger_id"]) == (
            "unknown_key",
            "upload",
            "CP1",
        )
        assert (first["order_id"], first["kid"]) == ("ORDER1", "forged01")
        assert first["user_id"] is not None
        seconds = datetime.fromisoformat(first["last_at"]) - datetime.fromisoformat(
            first["created_at"]
        )
        assert seconds.total_seconds() == 299
        assert rows[0]["count"] == 1  # the newest refusal first
