"""Reservations (OCPP 1.6 Reservation profile, 2.0.1 block H): what the CSMS keeps of them.

The operator sends ``ReserveNow`` / ``CancelReservation`` through the commands endpoint with
the payload of the charger's version; :func:`reserve_now` and :func:`cancel_reservation` send
it and keep the reservation (``csms/store/reservations``): stored before it is sent, its answer
recorded, whatever it was. Afterwards the charger says what became of it: a transaction that
starts with it (1.6 StartTransaction ``reservationId``, 2.0.1 TransactionEvent
``reservationId``) uses it, a 2.0.1 ReservationStatusUpdate expires or removes it. A 1.6
charger never says that a reservation expired: its expiry time does
(:class:`~csms.store.models.ReservationPublic`).

=====================  ==========================  =========================================
field                  1.6                         2.0.1
=====================  ==========================  =========================================
reservation id         ``reservationId``           ``id``
EVSE (None: any)       ``connectorId`` (0: any)    ``evseId`` (absent: any)
token                  ``idTag``                   ``idToken.idToken`` (with ``type``)
group                  ``parentIdTag``             ``groupIdToken.idToken``
expiry                 ``expiryDate``              ``expiryDateTime``
=====================  ==========================  =========================================
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.messages import Call

from csms.commands import JsonObject
from csms.context import CsmsContext
from csms.errors import CommandError, CommandRejected, CommandTimeout, NotConnected
from csms.protocol import fast_schema
from csms.store import reservations as store
from csms.store.models import Reservation
from qr_extension.wire import parse_ocpp_timestamp

LOG = logging.getLogger("csms.reservations")
V16 = "1.6"
MAX_RESERVATION_ID = 2**31 - 1  # OCPP integers are 32-bit signed on most chargers
NO_ANSWER = "NoAnswer"  # the answer column of a reservation whose answer never came
NOT_SENT = "NotSent"  # ... of one that could not be sent (the charger left, its queue full)
# ReservationStatusUpdate's reservationUpdateStatus -> the reservation's state
UPDATE_STATES = {"Expired": "expired", "Removed": "removed"}


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    """A ReserveNow payload, read into version-neutral values."""

    reservation_id: int
    evse_id: int | None
    id_token: str
    id_token_type: str | None
    group_id_token: str | None
    expires_at: datetime


def id_key(version: str) -> str:
    """The name of ReserveNow's reservation id in ``version``."""
    return "reservationId" if version == V16 else "id"


def with_reservation_id(version: str, payload: JsonObject) -> JsonObject:
    """``payload`` with a generated reservation id when the operator left it out (random:
    distinct across restarts and CSMS nodes without shared state)."""
    key = id_key(version)
    if key in payload:
        return payload
    return {**payload, key: secrets.randbelow(MAX_RESERVATION_ID) + 1}


def read_request(version: str, payload: JsonObject) -> ReservationRequest:
    """Reads a ReserveNow payload that passed its version's schema. Raises
    :class:`CommandRejected` (an invalid request: HTTP 422) for an unreadable expiry."""
    try:
        if version == V16:
            connector = int(payload["connectorId"])
            expiry = parse_ocpp_timestamp(str(payload["expiryDate"]))
            return ReservationRequest(
                reservation_id=int(payload["reservationId"]),
                evse_id=connector or None,
                id_token=str(payload["idTag"]),
                id_token_type=None,
                group_id_token=_text(payload.get("parentIdTag")),
                expires_at=expiry,
            )
        token, group = payload["idToken"], payload.get("groupIdToken") or {}
        expiry = parse_ocpp_timestamp(str(payload["expiryDateTime"]))
        evse = payload.get("evseId")
        return ReservationRequest(
            reservation_id=int(payload["id"]),
            evse_id=int(evse) if evse else None,
            id_token=str(token["idToken"]),
            id_token_type=_text(token.get("type")),
            group_id_token=_text(group.get("idToken")),
            expires_at=expiry,
        )
    except ValueError as exc:
        raise CommandRejected(
            "FormatViolation", f"invalid ReserveNow request: {exc}", {"action": "ReserveNow"}
        ) from exc


async def reserve_now(
    ctx: CsmsContext, charger_id: str, version: str, payload: JsonObject
) -> JsonObject:
    """Sends ReserveNow (``payload`` with its reservation id) and keeps the reservation with
    the charger's answer; errors as :meth:`~csms.commands.CommandDispatcher.call`."""
    _validate("ReserveNow", version, payload)
    request = read_request(version, payload)
    if charger_id not in await ctx.dispatcher.online([charger_id]):
        raise NotConnected(f"charger {charger_id!r} is not connected")
    now = ctx.clock()
    row = Reservation(
        charger_id=charger_id,
        reservation_id=request.reservation_id,
        evse_id=request.evse_id,
        id_token=request.id_token[:36],
        id_token_type=request.id_token_type,
        group_id_token=request.group_id_token,
        expires_at=request.expires_at,
        state="requested",
        created_at=now,
        updated_at=now,
    )
    async with ctx.db.session() as session:
        await store.record_request(session, row)
    try:
        answer = await ctx.dispatcher.call(charger_id, "ReserveNow", payload)
    except CommandTimeout:
        await _answered(ctx, charger_id, request.reservation_id, NO_ANSWER, accepted=None)
        raise
    except CommandRejected as exc:
        await _answered(ctx, charger_id, request.reservation_id, exc.code, accepted=False)
        raise
    except CommandError:
        await _answered(ctx, charger_id, request.reservation_id, NOT_SENT, accepted=False)
        raise
    status = str(answer.get("status"))
    await _answered(ctx, charger_id, request.reservation_id, status, accepted=status == "Accepted")
    return answer


async def cancel_reservation(
    ctx: CsmsContext, charger_id: str, version: str, payload: JsonObject
) -> JsonObject:
    """Sends CancelReservation; an ``Accepted`` answer cancels the kept reservation."""
    answer = await ctx.dispatcher.call(charger_id, "CancelReservation", payload)
    if answer.get("status") == "Accepted":
        await _end(ctx, charger_id, int(payload["reservationId"]), "cancelled")
    return answer


async def status_update(
    ctx: CsmsContext, charger_id: str, reservation_id: int, update: str
) -> None:
    """A 2.0.1 ReservationStatusUpdate: the charger expired or removed a reservation."""
    state = UPDATE_STATES.get(update)
    if state is not None:
        await _end(ctx, charger_id, reservation_id, state)


async def used(ctx: CsmsContext, charger_id: str, reservation_id: Any, transaction_id: str) -> None:
    """A transaction started with reservation ``reservation_id`` (from the charger's
    message: anything but an integer is ignored)."""
    if isinstance(reservation_id, int) and not isinstance(reservation_id, bool):
        await _end(ctx, charger_id, reservation_id, "used", transaction_id=transaction_id)


async def _answered(
    ctx: CsmsContext, charger_id: str, reservation_id: int, answer: str, *, accepted: bool | None
) -> None:
    async with ctx.db.session() as session:
        await store.record_answer(
            session,
            charger_id=charger_id,
            reservation_id=reservation_id,
            answer=answer,
            accepted=accepted,
            now=ctx.clock(),
        )


async def _end(
    ctx: CsmsContext,
    charger_id: str,
    reservation_id: int,
    state: str,
    *,
    transaction_id: str | None = None,
) -> None:
    async with ctx.db.session() as session:
        ended = await store.end(
            session,
            charger_id=charger_id,
            reservation_id=reservation_id,
            state=state,
            now=ctx.clock(),
            transaction_id=transaction_id,
        )
    LOG.info(
        "%s: reservation %s %s%s",
        charger_id,
        reservation_id,
        state,
        "" if ended else " (no open reservation of that id)",
    )


def _validate(action: str, version: str, payload: JsonObject) -> None:
    """The payload checked before anything is stored, as the connection would check it."""
    try:
        fast_schema.validate(Call("", action, payload), version)
    except OCPPError as exc:
        raise CommandRejected(
            exc.code, f"invalid {action} request: {exc.description}", exc.details
        ) from exc


def _text(value: object) -> str | None:
    return value[:36] if isinstance(value, str) else None


__all__ = [
    "ReservationRequest",
    "cancel_reservation",
    "read_request",
    "reserve_now",
    "status_update",
    "used",
    "with_reservation_id",
]
