"""A charger has at most one pinned settlement key, whoever changes it and however they race."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from csms.errors import SettlementKeyError
from csms.settlement_keys import receive_settlement_key, set_settlement_key
from csms.store.chargers import pinned_key, settlement_keys
from csms.store.db import Database, alembic_config, migrate
from csms.store.models import ChargerKey
from qr_extension.keys import SigningKey, generate_key

from ..conftest import migrated

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _signed_by(old: SigningKey, new: SigningKey) -> str:
    """The charger's replacement: the new public JWK signed by the pinned key."""
    return jwt.api_jws.encode(
        json.dumps(new.public.to_jwk()).encode(),
        old.key,
        algorithm="ES256",
        headers={"kid": old.kid},
    )


async def _unretired(db: Database, charger_id: str) -> list[str]:
    async with db.session() as session:
        return [k.kid for k in await settlement_keys(session, charger_id) if k.retired_at is None]


async def test_the_database_refuses_a_second_unretired_key(db_url: str) -> None:
    async with migrated(db_url, ("CP1",), T0) as db, db.session() as session:
        for kid in ("k1", "k2"):
            session.add(ChargerKey(charger_id="CP1", kid=kid, jwk="{}", created_at=T0))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_an_operator_change_racing_a_signed_replacement_leaves_one_pinned_key(
    db_url: str,
) -> None:
    """Each round: the operator pins a new key while the charger sends a replacement signed by
    the key both started from. Whichever runs second decides on what the first pinned, so the
    operator's key always ends pinned (it replaces whatever is pinned) and the charger's is
    either replaced by it or refused; never two pinned keys, never an error but a refusal."""
    async with migrated(db_url, ("CP1",), T0) as db:
        current = generate_key()
        await set_settlement_key(db, charger_id="CP1", jwk=current.public.to_jwk(), now=T0)
        keys = {current.kid: current}
        for n in range(12):
            now = T0 + timedelta(minutes=n + 1)
            by_operator, by_charger = generate_key(), generate_key()
            keys |= {by_operator.kid: by_operator, by_charger.kid: by_charger}
            results = await asyncio.gather(
                set_settlement_key(db, charger_id="CP1", jwk=by_operator.public.to_jwk(), now=now),
                receive_settlement_key(
                    db, charger_id="CP1", data=_signed_by(current, by_charger), now=now
                ),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, SettlementKeyError):
                    raise result
            pinned = await _unretired(db, "CP1")
            assert pinned == [by_operator.kid], n
            async with db.session() as session:
                history = {k.kid for k in await settlement_keys(session, "CP1")}
            assert (by_charger.kid in history) == (not isinstance(results[1], BaseException))
            current = keys[pinned[0]]
        async with db.session() as session:
            assert (await pinned_key(session, "CP1")) is not None


def _to(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def test_the_migration_keeps_the_newest_of_two_pinned_keys(db_url: str) -> None:
    """A database where a race left two unretired keys: the newest stays pinned."""
    db = Database.connect(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to, "0011")
            await conn.execute(
                sa.text(
                    "INSERT INTO chargers (id, registration, online, created_at) "
                    "VALUES ('OLD', 'operator', false, :at)"
                ),
                {"at": T0},
            )
            for kid, minutes in (("old1", 0), ("old2", 5), ("old3", 5)):
                await conn.execute(
                    sa.text(
                        "INSERT INTO charger_keys (charger_id, kid, jwk, created_at) "
                        "VALUES ('OLD', :kid, '{}', :at)"
                    ),
                    {"kid": kid, "at": T0 + timedelta(minutes=minutes)},
                )
        await migrate(db.engine)
        assert await _unretired(db, "OLD") == ["old3"]
    finally:
        await db.dispose()
