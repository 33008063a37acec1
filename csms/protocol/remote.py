"""Remote-control block: firmware updates, diagnostics / log uploads and smart charging as the
operator sends them (raw OCPP payloads through the commands endpoint), in both versions.

Before a command goes out, :func:`prepare` fills in what the operator may leave out: a
``requestId`` (2.0.1 ``UpdateFirmware`` and ``GetLog``), and the CSMS's own upload URL as 1.6
``location`` / 2.0.1 ``log.remoteLocation`` (a one-time token bound to the charger and the
request, see :mod:`csms.api.routes.uploads`). After the charger answered, :func:`record` keeps
what the operator needs later: the request in the firmware / log status history, and the
charging profiles the charger accepted or cleared. :func:`status_reported` adds the charger's
own FirmwareStatusNotification / DiagnosticsStatusNotification / LogStatusNotification.

The version-specific field names of these messages live here and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.messages import Call

from csms.context import CsmsContext
from csms.errors import CommandError, CommandRejected
from csms.protocol import fast_schema
from csms.protocol.redaction import redact_url
from csms.store import remote_control as store
from csms.store.models_remote import ChargerStatusReport, ChargerUpload, ChargingProfileRecord

FIRMWARE, LOG = "firmware", "log"
KIND = {"UpdateFirmware": FIRMWARE, "GetDiagnostics": LOG, "GetLog": LOG}
ACTIONS = frozenset({*KIND, "SetChargingProfile", "ClearChargingProfile", "GetCompositeSchedule"})
MAX_REQUEST_ID = 2**31 - 1
UPLOAD_VALIDITY = timedelta(hours=24)  # a charger retries an upload for a while, not forever
UPLOAD_PATH = "/api/v1/uploads"  # the CSMS's upload endpoint (:mod:`csms.api.routes.uploads`)
STATUS_KEEP = 500  # firmware / log steps kept per charger
SENT = "Sent"  # a request's step until the charger's answer replaces it (none: never answered)


@dataclass(frozen=True, slots=True)
class Prepared:
    """The payload to send, the request id that ties the answer and statuses to it, and the
    id of the upload the CSMS offered (None when the operator gave a location of their own)."""

    payload: dict[str, Any]
    request_id: int | None = None
    upload_id: int | None = None


def token_hash(token: str) -> str:
    """What the database keeps of an upload token."""
    return hashlib.sha256(token.encode()).hexdigest()


def upload_url(ctx: CsmsContext, charger_id: str, token: str) -> str:
    return f"{ctx.settings.public_base_url.rstrip('/')}{UPLOAD_PATH}/{charger_id}/{token}"


def _new_request_id() -> int:
    """Random rather than a counter: distinct across restarts and CSMS nodes."""
    return secrets.randbelow(MAX_REQUEST_ID) + 1


async def prepare(
    ctx: CsmsContext, charger_id: str, version: str, action: str, payload: dict[str, Any]
) -> Prepared:
    """``payload`` completed for ``action`` (see the module docstring) and checked against the
    OCPP schema before anything is stored: an invalid one raises :class:`CommandRejected`
    ("invalid ...", a 422) and leaves no step and no upload slot behind."""
    if action not in KIND:
        return Prepared(payload)
    payload = dict(payload)
    if version == "2.0.1":
        payload.setdefault("requestId", _new_request_id())
        request_id = payload["requestId"]
    else:  # 1.6 carries no request id: the CSMS keeps its own for its records
        request_id = _new_request_id()
    token = None
    if action == "GetDiagnostics" and "location" not in payload:
        token = secrets.token_urlsafe(32)
        payload["location"] = upload_url(ctx, charger_id, token)
    elif action == "GetLog":
        log = payload.get("log")
        if log is None or (isinstance(log, dict) and "remoteLocation" not in log):
            token = secrets.token_urlsafe(32)
            payload["log"] = {**(log or {}), "remoteLocation": upload_url(ctx, charger_id, token)}
    _check(action, version, payload)
    if isinstance(request_id, bool) or not isinstance(request_id, int):
        request_id = None
    elif not 0 <= request_id <= MAX_REQUEST_ID:  # OCPP integers are 32-bit on chargers
        raise CommandRejected(
            "PropertyConstraintViolation", f"invalid {action} request: requestId out of range"
        )
    upload_id = None
    if token is not None:
        upload_id = await _add_upload_slot(ctx, charger_id, action, request_id, token)
    # stored before it is sent: a 1.6 status notification (no request id) that overtakes the
    # answer is filed under this request, not under an older one or none
    location = payload.get("location") or payload.get("log", {}).get("remoteLocation")
    async with ctx.db.session() as session:
        await store.add_status_report(
            session,
            ChargerStatusReport(
                charger_id=charger_id,
                kind=KIND[action],
                action=action,
                status=SENT,
                request_id=request_id,
                detail=_shown(str(location))[:500] if location else None,
                received_at=ctx.clock(),
            ),
            keep=STATUS_KEEP,
        )
    return Prepared(payload, request_id, upload_id)


def _check(action: str, version: str, payload: dict[str, Any]) -> None:
    try:
        fast_schema.validate(Call("-", action, payload), version)
    except OCPPError as exc:
        raise CommandRejected(
            exc.code, f"invalid {action} request: {exc.description}", exc.details
        ) from exc


async def offer_upload(
    ctx: CsmsContext, charger_id: str, action: str, request_id: int | None
) -> tuple[int, str]:
    """A one-time upload slot for ``charger_id``: (its id, the URL to give the charger)."""
    token = secrets.token_urlsafe(32)
    slot_id = await _add_upload_slot(ctx, charger_id, action, request_id, token)
    return slot_id, upload_url(ctx, charger_id, token)


async def _add_upload_slot(
    ctx: CsmsContext, charger_id: str, action: str, request_id: int | None, token: str
) -> int:
    now = ctx.clock()
    slot = ChargerUpload(
        charger_id=charger_id,
        token_hash=token_hash(token),
        action=action,
        request_id=request_id,
        created_at=now,
        expires_at=now + UPLOAD_VALIDITY,
    )
    async with ctx.db.session() as session:
        return await store.add_upload_slot(session, slot)


async def record(
    ctx: CsmsContext,
    charger_id: str,
    version: str,
    action: str,
    sent: Mapping[str, Any],
    answer: Mapping[str, Any],
    request_id: int | None,
) -> None:
    """Keeps what the charger's ``answer`` to ``sent`` means for the operator."""
    now = ctx.clock()
    async with ctx.db.session() as session:
        if action in KIND:  # the request's step, stored when it was sent, gets the answer
            await store.answer_request(
                session,
                charger_id=charger_id,
                kind=KIND[action],
                action=action,
                request_id=request_id,
                sent_status=SENT,
                status=_answer_status(action, answer),
            )
        elif action == "SetChargingProfile" and answer.get("status") == "Accepted":
            evse_id, profile_id, profile = _profile(version, sent)
            await store.add_profile(
                session,
                ChargingProfileRecord(
                    charger_id=charger_id,
                    evse_id=evse_id,
                    profile_id=profile_id,
                    stack_level=int(profile["stackLevel"]),
                    purpose=str(profile["chargingProfilePurpose"]),
                    profile=json.dumps(profile, ensure_ascii=False),
                    set_at=now,
                ),
            )
        elif action == "ClearChargingProfile" and answer.get("status") == "Accepted":
            await store.clear_profiles(
                session, charger_id=charger_id, at=now, **_criteria(version, sent)
            )


async def unanswered(
    ctx: CsmsContext, charger_id: str, action: str, request_id: int | None, error: CommandError
) -> None:
    """The request's step when the charger answered with a CALLERROR (its code) or not at all
    (``NoAnswer``)."""
    status = error.code if isinstance(error, CommandRejected) else "NoAnswer"
    async with ctx.db.session() as session:
        await store.answer_request(
            session,
            charger_id=charger_id,
            kind=KIND[action],
            action=action,
            request_id=request_id,
            sent_status=SENT,
            status=status,
        )


def _answer_status(action: str, answer: Mapping[str, Any]) -> str:
    """The charger's word for its answer: 2.0.1 has a status; a 1.6 UpdateFirmware answer is
    empty (accepted), a 1.6 GetDiagnostics answer names the file, or nothing to upload."""
    if "status" in answer:
        return str(answer["status"])[:50]
    if action == "GetDiagnostics":
        return "Accepted" if answer.get("fileName") else "NoFile"
    return "Accepted"


def _shown(url: str) -> str:
    """A location as the history shows it: without the token of an upload URL of ours and
    without credentials in the URL (the history is read by every operator role)."""
    return redact_url(url)


def _profile(version: str, sent: Mapping[str, Any]) -> tuple[int, int, dict[str, Any]]:
    """(EVSE id, profile id, the profile as sent) of a SetChargingProfile."""
    if version == "1.6":
        profile = dict(sent["csChargingProfiles"])
        return int(sent["connectorId"]), int(profile["chargingProfileId"]), profile
    profile = dict(sent["chargingProfile"])
    return int(sent["evseId"]), int(profile["id"]), profile


def _criteria(version: str, sent: Mapping[str, Any]) -> dict[str, Any]:
    """The ClearChargingProfile criteria as the store's keywords."""
    if version == "1.6":
        return {
            "profile_id": sent.get("id"),
            "evse_id": sent.get("connectorId"),
            "purpose": sent.get("chargingProfilePurpose"),
            "stack_level": sent.get("stackLevel"),
        }
    criteria = sent.get("chargingProfileCriteria") or {}
    return {
        "profile_id": sent.get("chargingProfileId"),
        "evse_id": criteria.get("evseId"),
        "purpose": criteria.get("chargingProfilePurpose"),
        "stack_level": criteria.get("stackLevel"),
    }


async def status_reported(
    ctx: CsmsContext, charger_id: str, action: str, payload: Mapping[str, Any]
) -> None:
    """A FirmwareStatusNotification, DiagnosticsStatusNotification or LogStatusNotification
    (``payload`` as the handler got it, snake_case) kept in the status history."""
    kind = FIRMWARE if "Firmware" in action else LOG
    request_id = payload.get("request_id")
    async with ctx.db.session() as session:
        if not isinstance(request_id, int):
            request_id = await store.latest_request_id(session, charger_id=charger_id, kind=kind)
        await store.add_status_report(
            session,
            ChargerStatusReport(
                charger_id=charger_id,
                kind=kind,
                action=action,
                status=str(payload.get("status"))[:50],
                request_id=request_id,
                detail=None,
                received_at=ctx.clock(),
            ),
            keep=STATUS_KEEP,
        )
