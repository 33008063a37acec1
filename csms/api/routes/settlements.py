"""Driver API: ``POST /api/v1/settlements`` and the driver's settlements.

The body is either JSON ``{"token": "<settlement JWT>"}`` or a multipart form with an ``image``
file (a photo or screenshot of the settlement QR), decoded on the server with zxing-cpp in a
worker thread, a few at a time (:class:`~csms.api.uploads.DecodeGate`; the body is capped while
it is read by :class:`~csms.api.uploads.BodyLimit`). The token is read once
(:func:`~csms.payments.settlement_service.read_received`: of a photo's QR texts, the first that
reads as a settlement), and the settlement service verifies that reading and settles its
order; the answer is the payment information. An uploader who does not own the order settles
the owner's order and is told only that it was accepted (202).
Refusals are 422 with the stable reason code (``{"detail": {"reason", "message"}}``); a copy of
an already paid order is 409. When what was sent is not a settlement at all, the refusal also
names what it is (``kind``: ``none`` for a photo with no QR code, ``start`` for a start code,
``identification`` for the charger's own QR, ``other`` for any other text), so the page can
tell the driver what was photographed. A driver or a client address uploading faster than its rate
(:class:`~csms.upload_rate.UploadGate`, counted across the nodes when Redis is configured) gets
429 with ``Retry-After``, before the body is read.
``GET /api/v1/settlements[/{id}]`` shows the settlements of the driver's own orders.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from csms.api.deps import CtxDep, CurrentUser, SessionDep, SettlementsDep
from csms.api.params import Offset, RowIdPath
from csms.api.responses import RefusalProblem, errors
from csms.api.uploads import MAX_PHOTO_BYTES
from csms.decodes import DecodeGate, GateFull
from csms.payments.order_errors import SettlementRefused
from csms.payments.orders import get_order
from csms.payments.schemas import (
    SettlementAccepted,
    SettlementPublic,
    SettlementUpload,
    settlement_public,
)
from csms.payments.settlement_service import Received, read_received
from csms.store import settlements as store_settlements
from csms.upload_rate import UploadsTooFrequent
from qr_extension import START_TYP, jws, parse_identification_url
from qr_extension.errors import IdentificationError, QrDecodeError
from qr_extension.qr import decode_qr
from qr_extension.refusal import Reason, Refusal

router = APIRouter(prefix="/api/v1/settlements", tags=["settlements"], responses=errors(401))
_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": SettlementUpload.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"image": {"type": "string", "format": "binary"}},
                    "required": ["image"],
                }
            },
        },
    }
}


QrKind = Literal["none", "start", "identification", "other"]


def qr_kind(text: str) -> QrKind:
    """What a QR text that is not a settlement is: a start code, the charger's identification
    URL, or something else (read unverified: only to name it to the driver)."""
    if not isinstance(jws.read_header(text, typ=START_TYP), Refusal):
        return "start"
    try:
        parse_identification_url(text)
    except IdentificationError:
        return "other"
    return "identification"


def _unprocessable(
    message: str, reason: str = "unreadable", kind: QrKind | None = None
) -> HTTPException:
    detail: dict[str, str] = {"reason": reason, "message": message}
    if kind is not None:
        detail["kind"] = kind
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


async def _read_image(upload: UploadFile, decodes: DecodeGate) -> Received:
    data = await upload.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise _unprocessable(f"the image is larger than {MAX_PHOTO_BYTES} bytes")
    try:
        texts = await decodes.run(decode_qr, data)
    except GateFull as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            {"reason": "busy", "message": "too many photos are being read; send it again"},
            headers={"Retry-After": "2"},
        ) from exc
    except QrDecodeError as exc:
        raise _unprocessable(
            f"no QR code could be read from the image: {exc}", kind="none"
        ) from exc
    finally:
        del data
    # each QR text read once: the first that reads as a settlement is the one submitted
    for text in texts:
        received = read_received(text, source="upload")
        if received.parsed is not None:
            return received
    kind: QrKind = qr_kind(texts[0]) if texts else "none"
    raise _unprocessable(f"the image holds a QR code, but not a settlement ({kind})", kind=kind)


async def _received_of(request: Request, decodes: DecodeGate) -> Received:
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=4)
        try:
            image = form.get("image")
            if not isinstance(image, UploadFile):
                raise _unprocessable("send the photo as the multipart field 'image'")
            return await _read_image(image, decodes)
        finally:
            await form.close()
    try:
        token = SettlementUpload.model_validate_json(await request.body()).token
    except ValidationError as exc:
        raise _unprocessable('send {"token": "<settlement>"} or a multipart image') from exc
    return read_received(token, source="upload")


@router.post(
    "",
    response_model=SettlementPublic,
    responses={
        202: {"model": SettlementAccepted, "description": "accepted for another driver's order"},
        **errors(
            400,
            409,
            413,
            422,
            429,
            503,
            notes={
                409: "a copy of a settlement already paid",
                422: "refused: no readable settlement, or one that does not verify",
                429: "uploaded too often: send it again after Retry-After seconds",
                503: "too many photos are being read: send it again",
            },
            models={
                409: RefusalProblem,
                422: RefusalProblem,
                429: RefusalProblem,
                503: RefusalProblem,
            },
        ),
    },
    openapi_extra=_BODY_DOC,
)
async def post_settlement(
    request: Request, user: CurrentUser, service: SettlementsDep, ctx: CtxDep
) -> Any:
    """Verifies the settlement, settles its order, and returns the payment information."""
    assert user.id is not None
    try:
        await ctx.upload_rate.admit(user.id, request.client.host if request.client else None)
    except UploadsTooFrequent as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            {"reason": "too_many_uploads", "message": str(exc)},
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from exc
    received = await _received_of(request, ctx.decodes)
    # the service runs its own transactions; the answer below reads nothing more for a new
    # payment (the settling unit read the order's flags; a pending payment has no receipt),
    # so the request holds no session of its own
    try:
        outcome = await service.receive(received, user_id=user.id)
    except SettlementRefused as exc:
        code = (
            status.HTTP_409_CONFLICT
            if exc.refusal.reason == Reason.REPLAYED
            else status.HTTP_422_UNPROCESSABLE_CONTENT
        )
        detail: dict[str, str] = {"reason": exc.refusal.reason.value, "message": str(exc)}
        if received.parsed is None and exc.refusal.reason in (Reason.MALFORMED, Reason.WRONG_TYPE):
            detail["kind"] = qr_kind(received.text)
        raise HTTPException(code, detail) from exc
    if outcome.order.user_id != user.id:
        return JSONResponse(SettlementAccepted().model_dump(), status.HTTP_202_ACCEPTED)
    async with ctx.db.session() as session:  # opens a connection only if it must read
        return await settlement_public(
            session, outcome.order, outcome.record, payment=outcome.payment, flagged=outcome.flagged
        )


@router.get("", response_model=list[SettlementPublic])
async def list_settlements(
    user: CurrentUser,
    session: SessionDep,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[SettlementPublic]:
    """The settlements of the driver's own orders, newest first."""
    rows = await store_settlements.records_of_user(
        session, user_id=user.id, offset=offset, limit=limit
    )
    return [await settlement_public(session, order, record) for record, order in rows]


@router.get("/{settlement_id}", response_model=SettlementPublic, responses=errors(404))
async def get_settlement(
    settlement_id: RowIdPath, user: CurrentUser, session: SessionDep
) -> SettlementPublic:
    record = await store_settlements.get_record(session, record_id=settlement_id)
    order = None
    if record is not None:
        order = await get_order(session, record.order_id, user_id=None)
    if record is None or order is None or order.user_id != user.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no settlement {settlement_id}")
    return await settlement_public(session, order, record)
