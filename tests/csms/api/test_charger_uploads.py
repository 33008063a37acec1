"""The upload endpoint the CSMS offers chargers (diagnostics, logs): its one-time token, the
size limit (413 without holding the body), files kept per charger on disk, the operator's
listing and download, and bad ids."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from csms.protocol import remote
from csms.store import remote_control as store
from csms.store.models_remote import ChargerUpload
from csms.upload_files import UPLOADS_DIR

from ..conftest import LiveCsms, make_settings, serve

LIMIT = 64 * 1024


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveCsms]:
    async with serve(make_settings(tmp_path, upload_max_bytes=LIMIT)) as csms:
        await csms.add_charger("UP1")
        await csms.add_charger("UP2")
        yield csms


async def offered(csms: LiveCsms, charger_id: str = "UP1") -> tuple[int, str]:
    """An upload the CSMS offered ``charger_id``: (its id, the path of its URL)."""
    upload_id, url = await remote.offer_upload(csms.ctx, charger_id, "GetLog", 42)
    return upload_id, url.split("://", 1)[1].split("/", 1)[1]


async def test_a_charger_uploads_once_and_the_operator_downloads(live: LiveCsms) -> None:
    upload_id, path = await offered(live)
    body = b"log line\n" * 1000
    r = await live.http.put(
        f"/{path}",
        content=body,
        headers={
            "Authorization": "",
            "Content-Disposition": 'attachment; filename="../../etc/cp.log"',
        },
    )
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt == {
        "id": upload_id,
        "name": "cp.log",  # no path comes from the charger
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    kept = live.ctx.settings.data_dir / UPLOADS_DIR / "UP1" / str(upload_id)
    assert kept.read_bytes() == body
    # the token is one-time
    again = await live.http.put(f"/{path}", content=b"other")
    assert again.status_code == 409

    listing = await live.http.get("/api/v1/admin/chargers/UP1/uploads")
    assert [(f["id"], f["name"], f["request_id"]) for f in listing.json()] == [
        (upload_id, "cp.log", 42)
    ]
    assert (await live.http.get("/api/v1/admin/chargers/UP2/uploads")).json() == []
    r = await live.http.get(f"/api/v1/admin/chargers/UP1/uploads/{upload_id}")
    assert r.status_code == 200 and r.content == body
    assert 'filename="cp.log"' in r.headers["content-disposition"]
    # bad ids: another charger's file, a file that does not exist, a charger that does not
    for url in (
        f"/api/v1/admin/chargers/UP2/uploads/{upload_id}",
        f"/api/v1/admin/chargers/UP1/uploads/{upload_id + 100}",
        "/api/v1/admin/chargers/NOPE/uploads",
    ):
        assert (await live.http.get(url)).status_code == 404, url
    assert (await live.http.get("/api/v1/admin/chargers/UP1/uploads/0")).status_code == 422
    # the operator's listing needs the operator's key
    r = await live.http.get("/api/v1/admin/chargers/UP1/uploads", headers={"Authorization": ""})
    assert r.status_code == 401


async def test_a_multipart_form_is_taken_by_its_file_part(live: LiveCsms) -> None:
    _, path = await offered(live)
    files = {"file": ("diag.json", b'{"ok": true}\n', "application/json")}
    r = await live.http.post(f"/{path}", data={"note": "x"}, files=files)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "diag.json" and r.json()["size"] == 13


async def test_the_token_is_the_credential(live: LiveCsms) -> None:
    _, path = await offered(live)
    token = path.rsplit("/", 1)[1]
    assert (await live.http.put(f"/api/v1/uploads/UP1/{'x' * 43}", content=b"a")).status_code == 404
    # bound to its charger
    assert (await live.http.put(f"/api/v1/uploads/UP2/{token}", content=b"a")).status_code == 404
    assert (await live.http.put("/api/v1/uploads/UP1/short", content=b"a")).status_code == 422
    # expired
    async with live.ctx.db.session() as session:
        expired = await store.add_upload_slot(
            session,
            ChargerUpload(
                charger_id="UP1",
                token_hash=remote.token_hash("e" * 43),
                action="GetDiagnostics",
                expires_at=live.ctx.clock() - timedelta(seconds=1),
            ),
        )
    assert expired
    assert (await live.http.put(f"/api/v1/uploads/UP1/{'e' * 43}", content=b"a")).status_code == 410
    assert (await live.http.get("/api/v1/admin/chargers/UP1/uploads")).json() == []


async def test_a_file_over_the_limit_is_refused_and_not_kept(live: LiveCsms) -> None:
    _, path = await offered(live)
    # declared too large: refused before a byte of the body is read
    r = await live.http.put(f"/{path}", content=b"x" * (LIMIT + 70_000))
    assert r.status_code == 413
    # streamed without a length: cut off while it streams, the partial file removed
    reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
    writer.write(f"PUT /{path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    chunk = b"y" * 8192
    try:
        for _ in range(4 * LIMIT // len(chunk)):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
    except ConnectionError:
        pass  # the server answered and closed while we were still sending
    head = await asyncio.wait_for(reader.read(200), 5)
    assert head.startswith(b"HTTP/1.1 413"), head
    writer.close()
    # just over the limit inside the limit's multipart slack: refused by the file's own count
    r = await live.http.put(f"/{path}", content=b"z" * (LIMIT + 1))
    assert r.status_code == 413
    folder = live.ctx.settings.data_dir / UPLOADS_DIR / "UP1"
    assert [p.name for p in folder.iterdir()] == []
    # the token is still good for a file within the limit
    r = await live.http.put(f"/{path}", content=b"z" * LIMIT)
    assert r.status_code == 201


async def test_deleting_a_charger_removes_its_files(live: LiveCsms) -> None:
    """The database forgets a deleted charger's uploads with it; their files go too (they
    were left on disk under its folder, which nothing listed or served any more)."""
    uploads = live.ctx.settings.data_dir / UPLOADS_DIR
    for charger_id in ("UP1", "UP2"):
        upload_id, path = await offered(live, charger_id)
        assert (await live.http.put(f"/{path}", content=b"x" * 100)).status_code == 201
        assert (uploads / charger_id / str(upload_id)).is_file()
    assert (await live.http.delete("/api/v1/admin/chargers/UP1")).status_code == 204
    assert not (uploads / "UP1").exists()
    assert [p.name for p in (uploads / "UP2").iterdir()] != []  # another charger's are kept
    # a charger that never received a file: nothing to remove, still deleted
    await live.add_charger("UP3")
    assert (await live.http.delete("/api/v1/admin/chargers/UP3")).status_code == 204


async def test_a_charger_deleted_while_its_file_streams_in_gets_404_not_500(
    live: LiveCsms, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator deletes the charger between the upload's claim and the file's final name:
    the folder (with the partial file) is gone, and the upload is answered 404 as for any
    upload the CSMS no longer knows, not 500."""
    _, path = await offered(live)
    claim = store.claim_upload

    async def claim_then_deleted(*args: Any, **kwargs: Any) -> bool:
        claimed = await claim(*args, **kwargs)
        assert (await live.http.delete("/api/v1/admin/chargers/UP1")).status_code == 204
        return claimed

    monkeypatch.setattr(store, "claim_upload", claim_then_deleted)
    r = await live.http.put(f"/{path}", content=b"x" * 100)
    assert r.status_code == 404, r.text
    assert not (live.ctx.settings.data_dir / UPLOADS_DIR / "UP1").exists()
