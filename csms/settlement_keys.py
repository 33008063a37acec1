"""Charger settlement keys: pinned on first receipt, replaced only with proof.

A ``SettlementKey`` DataTransfer carries either a public JWK (JSON, with ``kid``) or a compact
JWS of the new JWK signed by the currently pinned key. The first key of a charger is pinned;
a different key later is accepted only as such a JWS, or from the operator API. Replaced keys
are retired, not deleted, so settlements signed earlier still verify by (iss, kid).

Each key change reads the pinned key, decides and writes in one retried unit of work: when
two changes race, the database keeps one pinned key per charger, the loser runs again and
decides on what the winner pinned (a charger's replacement signed by the key just replaced
is then refused).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import jwt
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.errors import SettlementKeyError
from csms.store.chargers import pin_key, pinned_key
from csms.store.db import Database
from csms.store.models import ChargerKey
from csms.store.units_of_work import in_transaction
from qr_extension.errors import KeyFormatError
from qr_extension.keys import PublicKey


def parse_jwk(data: str | dict[str, Any]) -> PublicKey:
    """A public P-256 JWK (JSON text or object) that names its ``kid``."""
    try:
        obj = json.loads(data) if isinstance(data, str) else data
        if not isinstance(obj, dict) or "kid" not in obj:
            raise SettlementKeyError("a settlement key is a public JWK with a kid")
        return PublicKey.from_jwk(obj)
    except (ValueError, KeyFormatError) as exc:
        raise SettlementKeyError(f"not a usable public JWK: {exc}") from exc


def verify_replacement(token: str, pinned: PublicKey) -> PublicKey:
    """The new key carried by a JWS that the pinned key signed (ES256 only)."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("kid") != pinned.kid:
            raise SettlementKeyError("the replacement must be signed by the pinned key")
        payload = jwt.PyJWS().decode(token, key=pinned.key, algorithms=["ES256"])
    except jwt.PyJWTError as exc:
        raise SettlementKeyError(f"replacement signature does not verify: {exc}") from exc
    return parse_jwk(payload.decode("utf-8", errors="replace"))


async def _pin(
    session: AsyncSession, charger_id: str, key: PublicKey, now: datetime, old: ChargerKey | None
) -> None:
    """Pins ``key`` (a retired key the operator brings back is un-retired), retiring ``old``."""
    jwk = json.dumps(key.to_jwk(), sort_keys=True)
    await pin_key(session, charger_id=charger_id, kid=key.kid, jwk=jwk, now=now, old=old)


async def receive_settlement_key(
    db: Database, *, charger_id: str, data: str, now: datetime
) -> PublicKey:
    """Handles a charger's ``SettlementKey`` data; raises SettlementKeyError when refused."""

    async def work(session: AsyncSession) -> PublicKey:
        return await _receive(session, charger_id, data, now)

    return await in_transaction(db, work)


async def _receive(session: AsyncSession, charger_id: str, data: str, now: datetime) -> PublicKey:
    current = await pinned_key(session, charger_id)
    pinned = PublicKey.from_jwk(json.loads(current.jwk)) if current else None
    if data.lstrip().startswith("{"):
        key = parse_jwk(data)
        if pinned is not None and pinned.kid != key.kid:
            raise SettlementKeyError(
                f"key {pinned.kid} is pinned: a new key must be signed by it or set by the operator"
            )
        if pinned is None:
            await _pin(session, charger_id, key, now, None)
        return key
    if pinned is None:
        raise SettlementKeyError("no key is pinned yet: send the JWK itself")
    key = verify_replacement(data.strip(), pinned)
    if key.kid != pinned.kid:
        await _pin(session, charger_id, key, now, current)
    return key


async def set_settlement_key(
    db: Database, *, charger_id: str, jwk: dict[str, Any], now: datetime
) -> PublicKey:
    """The operator's replacement: pins ``jwk`` whatever was pinned before."""
    key = parse_jwk(jwk)

    async def work(session: AsyncSession) -> None:
        current = await pinned_key(session, charger_id)
        if current is None or current.kid != key.kid:
            await _pin(session, charger_id, key, now, current)

    await in_transaction(db, work)
    return key
