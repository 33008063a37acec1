"""Data transfer block: our vendor messages (``org.qrcharge``) and the TrustedKeys push.

Charger to CSMS: ``SettlementKey`` (pin or replace the charger's key), ``Settlement`` (handed
unread to the settlement sink, which reads it once and keeps it) and ``Synced`` (``{"seq": n}``,
stored in ``charger_sync``). The answer is ``Accepted`` once stored (a ``Settlement``: once the
settlement sink has taken it, else a CALLERROR so that the charger sends it again),
``Rejected`` with the reason in ``data`` for bad input (a ``Settlement`` the sink would not
take: unreadable, or another charger's; logged for keys and ``Synced``), ``UnknownMessageId``
/ ``UnknownVendorId`` otherwise. CSMS to charger: ``TrustedKeys``, the published key ring as a
compact JWS signed by the active key, after every accepted boot and after a rotation.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from csms.commands import SendVendorData
from csms.context import CsmsContext
from csms.errors import SettlementKeyError
from csms.protocol import commands
from csms.settlement_keys import receive_settlement_key
from csms.store import chargers as store
from csms.store.writer import Batch
from qr_extension.wire import (
    MSG_SETTLEMENT,
    MSG_SETTLEMENT_KEY,
    MSG_SYNCED,
    MSG_TRUSTED_KEYS,
    VENDOR_ID,
)

LOG = logging.getLogger("csms.data_transfer")
ACCEPTED, REJECTED = "Accepted", "Rejected"
UNKNOWN_MESSAGE, UNKNOWN_VENDOR = "UnknownMessageId", "UnknownVendorId"
DATA_MAX_CHARS = 8000
SEQ_MAX = 2**31 - 1  # a Synced seq, like every OCPP integer: 32-bit (its column is)


@dataclass(frozen=True, slots=True)
class DataTransferAnswer:
    status: str
    data: str | None = None


def trusted_keys_call(ctx: CsmsContext, version: str) -> tuple[str, dict[str, Any]]:
    """The CALL that pushes our keys, spelled by :mod:`csms.protocol.commands` like the
    key-rotation broadcast."""
    token = ctx.keys.trusted_keys_token(ctx.now_s())
    return commands.request(SendVendorData(MSG_TRUSTED_KEYS, token), version)


async def data_transfer(
    ctx: CsmsContext, charger_id: str, *, vendor_id: str, message_id: str | None, data: Any
) -> DataTransferAnswer:
    if vendor_id != VENDOR_ID:
        return DataTransferAnswer(UNKNOWN_VENDOR)
    if not isinstance(data, str) or len(data) > DATA_MAX_CHARS:
        return DataTransferAnswer(REJECTED, f"data must be a string of at most {DATA_MAX_CHARS}")
    if message_id == MSG_SETTLEMENT_KEY:
        return await _settlement_key(ctx, charger_id, data)
    if message_id == MSG_SETTLEMENT:
        return await _settlement(ctx, charger_id, data)
    if message_id == MSG_SYNCED:
        return await _synced(ctx, charger_id, data)
    return DataTransferAnswer(UNKNOWN_MESSAGE)


async def _settlement_key(ctx: CsmsContext, charger_id: str, data: str) -> DataTransferAnswer:
    try:
        key = await receive_settlement_key(
            ctx.db, charger_id=charger_id, data=data, now=ctx.clock()
        )
    except SettlementKeyError as exc:
        LOG.warning("%s: settlement key refused: %s", charger_id, exc)
        return DataTransferAnswer(REJECTED, str(exc))
    return DataTransferAnswer(ACCEPTED, json.dumps({"kid": key.kid}))


async def _settlement(ctx: CsmsContext, charger_id: str, token: str) -> DataTransferAnswer:
    # Accepted only once the sink has it: its failure (not a refusal, which it keeps as
    # evidence) is a CALLERROR, and the charger sends the token again
    refusal = await ctx.sink.on_settlement(charger_id, token, "ocpp")
    if refusal is not None:
        return DataTransferAnswer(REJECTED, str(refusal))
    return DataTransferAnswer(ACCEPTED)


def synced_seq(data: str) -> int | str:
    """The seq of a ``Synced`` (``{"seq": n}``, 0 <= n <= :data:`SEQ_MAX`), or why not."""
    try:
        seq = json.loads(data, parse_constant=float)["seq"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return 'malformed: data must be {"seq": n}'
    if not isinstance(seq, int) or isinstance(seq, bool):
        return "malformed: seq must be an integer"
    if not 0 <= seq <= SEQ_MAX:
        return f"out of range: seq must be 0-{SEQ_MAX}"
    return seq


async def _synced(ctx: CsmsContext, charger_id: str, data: str) -> DataTransferAnswer:
    seq = synced_seq(data)
    if isinstance(seq, str):
        LOG.warning("%s: Synced refused: %s", charger_id, seq)
        return DataTransferAnswer(REJECTED, seq)
    now = ctx.clock()

    def op(batch: Batch) -> None:
        store.record_synced(batch, charger_id=charger_id, seq=seq, now=now)

    await ctx.writer.execute(op, charger_id)
    try:
        await ctx.sink.on_synced(charger_id, seq)
    except Exception:
        LOG.exception("%s: settlement sink failed on Synced", charger_id)
    return DataTransferAnswer(ACCEPTED)
