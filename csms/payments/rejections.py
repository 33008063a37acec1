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
comes signed from a charger the operator registered (one it cannot read, or that names another
charger, is answered Rejected instead and not stored). What a token names comes from the one
reading of it (:class:`Named`), never from reading it again. The row is written by
:func:`csms.store.rejections.store_rejection`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from csms.store.models import ID_MAX
from csms.store.models_orders import ORDER_ID_MAX
from qr_extension import jws
from qr_extension.refusal import Refusal

TOKEN_HEAD_CHARS = jws.MAX_TOKEN_LENGTH  # a longer token is refused unread, as malformed
DETAIL_CHARS = 500
KID_CHARS = 64
NO_DRIVER = 0  # user_id of a refusal that no driver uploaded (a charger's DataTransfer)


def rejection_values(
    token: str,
    *,
    token_sha256: str,
    named: Named,
    source: str,
    refusal: Refusal,
    charger_id: str | None,
    user_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The row of one refusal: what the (unverified) token names, its digest and head."""
    charger = charger_id or named.iss
    return {
        "charger_id": charger[:ID_MAX] if charger else None,
        "order_id": named.jti[:ORDER_ID_MAX] if named.jti else None,
        "kid": named.kid[:KID_CHARS] if named.kid else None,
        "source": source,
        "reason": refusal.reason.value,
        "detail": refusal.detail[:DETAIL_CHARS],
        "user_id": user_id or NO_DRIVER,
        "token_sha256": token_sha256,
        "token_head": token[:TOKEN_HEAD_CHARS],
        "token_chars": len(token),
        "count": 1,
        "created_at": now,
        "last_at": now,
    }


@dataclass(frozen=True, slots=True)
class Named:
    """``iss``, ``kid`` and ``jti`` as a token states them, NOT verified (evidence, and what
    picks the key and rows); ``iss`` only when it has the shape of a charger id."""

    iss: str | None = None
    kid: str | None = None
    jti: str | None = None

    @classmethod
    def of(cls, parsed: jws.Parsed) -> Named:
        claims = parsed.claims or {}
        iss, jti = claims.get("iss"), claims.get("jti")
        return cls(
            iss if isinstance(iss, str) and jws.IDENTITY_PATTERN.fullmatch(iss) else None,
            parsed.header["kid"],
            jti if isinstance(jti, str) else None,
        )
