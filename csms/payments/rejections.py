"""Evidence of refused settlements, bounded: one row per distinct refusal, its repeats counted.

What the operator needs of a refusal is why (``reason``, ``detail``), whose (the charger the
token names or that sent it, the order it claims, the key id it names, the driver who uploaded
it), when (first and last time) and how often. A refused token itself may be anything up to
the upload's size limit and may come again and again: so a refusal is keyed by the token's
sha256, its source, the reason and the uploader, a repeat only counts (``count``,
``last_at``), and the token is kept up to :data:`TOKEN_HEAD_CHARS` characters with its full
length: every token that could verify is kept whole (the operator can still check it); a
longer one was refused unread, and its head is enough to recognise it.

Refusals of a charger's own ``Settlement`` DataTransfer are stored the same way (``user_id``
0): the whole token of those is also in ``settlement_inbox``, once per token, because it
comes signed from a charger the operator registered. The row is written by
:func:`csms.store.rejections.store_rejection`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from csms.store.models import ID_MAX
from csms.store.models_orders import ORDER_ID_MAX
from qr_extension import jws
from qr_extension.refusal import Refusal
from qr_extension.settlement import SETTLE_TYP

TOKEN_HEAD_CHARS = jws.MAX_TOKEN_LENGTH  # a longer token is refused unread, as malformed
DETAIL_CHARS = 500
KID_CHARS = 64
NO_DRIVER = 0  # user_id of a refusal that no driver uploaded (a charger's DataTransfer)


def rejection_values(
    token: str,
    *,
    source: str,
    refusal: Refusal,
    charger_id: str | None,
    user_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The row of one refusal: what the (unverified) token names, its digest and head."""
    iss, kid, order_id = _named(token)
    charger = charger_id or iss
    return {
        "charger_id": charger[:ID_MAX] if charger else None,
        "order_id": order_id,
        "kid": kid[:KID_CHARS] if kid else None,
        "source": source,
        "reason": refusal.reason.value,
        "detail": refusal.detail[:DETAIL_CHARS],
        "user_id": user_id or NO_DRIVER,
        "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
        "token_head": token[:TOKEN_HEAD_CHARS],
        "token_chars": len(token),
        "count": 1,
        "created_at": now,
        "last_at": now,
    }


def _named(token: str) -> tuple[str | None, str | None, str | None]:
    """``iss``, ``kid`` and ``jti`` as the token states them, NOT verified (evidence only;
    ``iss`` only when it has the shape of a charger id)."""
    read = jws.read_header(token, typ=SETTLE_TYP)
    if isinstance(read, Refusal):
        return None, None, None
    text, header = read
    claims = jws.unverified_claims(text)
    if isinstance(claims, Refusal):
        return None, header["kid"], None
    iss, jti = claims.get("iss"), claims.get("jti")
    return (
        iss if isinstance(iss, str) and jws.IDENTITY_PATTERN.fullmatch(iss) else None,
        header["kid"],
        jti[:ORDER_ID_MAX] if isinstance(jti, str) else None,
    )
