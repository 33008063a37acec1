"""The upload endpoint the CSMS offers chargers for diagnostics (1.6 GetDiagnostics) and logs
(2.0.1 GetLog): ``PUT`` or ``POST /api/v1/uploads/{charger_id}/{token}``.

The URL is the credential: the CSMS puts it in the request it sends (``location`` /
``log.remoteLocation``), with a one-time token bound to that charger and that request, valid
for a day. A token rather than the charger's HTTP Basic password because chargers upload with
whatever their firmware's HTTP or FTP client does, often without credentials of their own or
only credentials written into the URL; a token scoped to one file leaks nothing reusable when
it ends up in a log, and a charger on security profile 3 has no password at all.

The body is the file (``PUT``, or ``POST`` with a raw body), or a ``multipart/form-data`` form
whose first file part is taken (``POST``, what most charger HTTP clients send). It is streamed
to disk, never held in memory; past ``upload_max_bytes`` the answer is 413 and the partial file
is gone. 404 for an unknown token, 410 for an expired one, 409 for a token already used.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from csms.api.deps import CtxDep
from csms.api.responses import errors
from csms.protocol.remote import UPLOAD_PATH, token_hash
from csms.store import remote_control as store
from csms.upload_files import FileWriter, UploadTooLarge, charger_dir, file_path, safe_name

router = APIRouter(prefix=UPLOAD_PATH, tags=["chargers: uploads"])

TokenPath = Annotated[str, Path(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
ChargerPath = Annotated[str, Path(min_length=1, max_length=48)]


class UploadReceipt(BaseModel):
    id: int
    name: str
    size: int
    sha256: str


_UPLOAD_ROUTE: dict[str, Any] = {
    "status_code": status.HTTP_201_CREATED,
    "response_model": UploadReceipt,
    "responses": errors(
        404,
        409,
        410,
        413,
        notes={
            404: "no upload with this token for this charger",
            409: "this token was already used",
            410: "the token has expired",
            413: "the file is larger than upload_max_bytes",
        },
    ),
}


# a charger's HTTP client PUTs the file or POSTs a form: one handler, an operation id for each
@router.put("/{charger_id}/{token}", operation_id="upload_file_put", **_UPLOAD_ROUTE)
@router.post("/{charger_id}/{token}", operation_id="upload_file_post", **_UPLOAD_ROUTE)
async def upload(
    charger_id: ChargerPath,
    token: TokenPath,
    request: Request,
    ctx: CtxDep,
    name: Annotated[str | None, Query(max_length=255, description="the file's name")] = None,
) -> UploadReceipt:
    """Receives one file from a charger, into its folder under the data directory."""
    async with ctx.db.session() as session:
        slot = await store.upload_slot(session, charger_id=charger_id, token_hash=token_hash(token))
    if slot is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no upload with this token")
    if slot.received_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "this upload token was already used")
    if slot.expires_at <= ctx.clock():
        raise HTTPException(status.HTTP_410_GONE, "this upload token has expired")
    assert slot.id is not None
    data_dir = ctx.settings.data_dir
    writer = FileWriter(charger_dir(data_dir, charger_id), limit=ctx.settings.upload_max_bytes)
    await writer.open()
    try:
        given = await _receive(request, writer)
        filename = safe_name(given or name, f"{slot.action.lower()}-{slot.id}.log")
        claimed = False
        async with ctx.db.session() as session:
            claimed = await store.claim_upload(
                session,
                slot_id=slot.id,
                name=filename,
                size=writer.size,
                sha256=writer.sha256,
                at=ctx.clock(),
            )
        if not claimed:
            raise HTTPException(status.HTTP_409_CONFLICT, "this upload token was already used")
        try:
            await writer.keep_as(file_path(data_dir, charger_id, slot.id))
        except FileNotFoundError:  # the charger was deleted meanwhile, its folder with it
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no upload with this token") from None
    except UploadTooLarge as exc:
        await writer.discard()
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from exc
    except BaseException:
        await writer.discard()
        raise
    return UploadReceipt(id=slot.id, name=filename, size=writer.size, sha256=writer.sha256)


async def _receive(request: Request, writer: FileWriter) -> str | None:
    """Streams the body into ``writer``; the file name the client gave, if any."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if request.method == "POST" and content_type == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "multipart body without boundary")
        return await _receive_form(request, writer, boundary)
    async for chunk in request.stream():
        await writer.write(chunk)
    disposition = request.headers.get("content-disposition")
    if disposition:
        _, params = parse_options_header(disposition)
        raw = params.get(b"filename")
        return raw.decode(errors="replace") if raw else None
    return None


class _FirstFile:
    """Callbacks for :class:`MultipartParser` that keep the data of the first part with a
    file name; what they collect is written out after each chunk is parsed."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []
        self.filename: str | None = None
        self._header_field = b""
        self._header_value = b""
        self._disposition = b""
        self._in_file = False
        self._done = False

    def callbacks(self) -> Any:  # python-multipart's MultipartCallbacks (a TypedDict)
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._field,
            "on_header_value": self._value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._disposition = b""

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        name = params.get(b"filename")
        if name is not None and not self._done:
            self._in_file = True
            self.filename = name.decode(errors="replace")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.pending.append(data[start:end])

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self._done = True


async def _receive_form(request: Request, writer: FileWriter, boundary: bytes) -> str | None:
    collector = _FirstFile()
    parser = MultipartParser(boundary, collector.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            for piece in collector.pending:
                await writer.write(piece)
            collector.pending.clear()
        parser.finalize()
    except MultipartParseError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unreadable form: {exc}") from exc
    if not collector._done:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "no complete file part in the form")
    return collector.filename
