"""Operator API: the ledger (transfers and their entries) and drivers' wallets.

``GET /api/v1/admin/ledger?account=wallet:5`` lists transfers touching an account (or a user,
an order, a kind), newest first, each with its balanced entries, and the account's balance.
``GET /api/v1/admin/wallets/{user_id}`` shows a driver's balance and open holds.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from csms.api.deps import SessionDep, ViewerDep
from csms.api.params import Offset, RowIdPath, RowIdQuery
from csms.api.responses import errors
from csms.payments import ledger
from csms.store import drivers as store_drivers
from csms.store import ledger as store_ledger

router = APIRouter(prefix="/api/v1/admin", tags=["admin: ledger"], responses=errors(401, 403))


class EntryPublic(BaseModel):
    account: str
    amount: int


class TransferPublic(BaseModel):
    id: int
    idempotency_key: str
    kind: str
    user_id: int | None
    order_id: str | None
    amount: int
    currency: str
    created_at: datetime
    entries: list[EntryPublic]


class LedgerPage(BaseModel):
    account: str | None
    balance: int | None
    transfers: list[TransferPublic]


class HoldPublic(BaseModel):
    order_id: str
    amount: int


class WalletAdmin(BaseModel):
    user_id: int
    email: str
    currency: str
    available: int
    held: int
    holds: list[HoldPublic]


@router.get("/ledger", response_model=LedgerPage)
async def ledger_page(
    session: SessionDep,
    _: ViewerDep,
    account: Annotated[str | None, Query(max_length=80, examples=["wallet:5"])] = None,
    user_id: RowIdQuery = None,
    order_id: str | None = None,
    kind: str | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LedgerPage:
    """Transfers (newest first) filtered by account, user, order or kind, with entries."""
    transfers = await store_ledger.list_transfers(
        session,
        account=account,
        user_id=user_id,
        order_id=order_id,
        kind=kind,
        offset=offset,
        limit=limit,
    )
    entries: dict[int, list[EntryPublic]] = defaultdict(list)
    if transfers:
        found = await store_ledger.entries_of(
            session, transfer_ids=[t.id for t in transfers if t.id is not None]
        )
        for e in found:
            entries[e.transfer_id].append(EntryPublic(account=e.account, amount=e.amount))
    return LedgerPage(
        account=account,
        balance=await ledger.balance(session, account) if account is not None else None,
        transfers=[
            TransferPublic(**t.model_dump(exclude={"psp_operation_id"}), entries=entries[t.id or 0])
            for t in transfers
        ],
    )


@router.get("/wallets/{user_id}", response_model=WalletAdmin, responses=errors(404))
async def wallet_of(user_id: RowIdPath, session: SessionDep, _: ViewerDep) -> WalletAdmin:
    """A driver's available balance, total held, and each open hold by order."""
    user = await store_drivers.get_user(session, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id}")
    holds = [
        HoldPublic(order_id=account.removeprefix("hold:"), amount=amount)
        for account, amount in await store_ledger.open_holds(session, user_id=user_id)
    ]
    return WalletAdmin(
        user_id=user_id,
        email=user.email,
        currency=await ledger.currency_of(session, user_id),
        available=await ledger.available(session, user_id),
        held=sum(h.amount for h in holds),
        holds=holds,
    )
