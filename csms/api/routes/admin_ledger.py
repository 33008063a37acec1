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
from sqlalchemy import func
from sqlmodel import col, select

from csms.api.deps import AdminDep, SessionDep
from csms.api.params import Offset, RowIdPath, RowIdQuery
from csms.api.responses import errors
from csms.payments import ledger, wallet
from csms.store.models_money import LedgerEntry, LedgerTransfer, User

router = APIRouter(prefix="/api/v1/admin", tags=["admin: ledger"], responses=errors(401))


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
    _: AdminDep,
    account: Annotated[str | None, Query(max_length=80, examples=["wallet:5"])] = None,
    user_id: RowIdQuery = None,
    order_id: str | None = None,
    kind: str | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LedgerPage:
    """Transfers (newest first) filtered by account, user, order or kind, with entries."""
    query = select(LedgerTransfer)
    if account is not None:
        touching = select(LedgerEntry.transfer_id).where(col(LedgerEntry.account) == account)
        query = query.where(col(LedgerTransfer.id).in_(touching))
    if user_id is not None:
        query = query.where(col(LedgerTransfer.user_id) == user_id)
    if order_id is not None:
        query = query.where(col(LedgerTransfer.order_id) == order_id)
    if kind is not None:
        query = query.where(col(LedgerTransfer.kind) == kind)
    rows = await session.exec(
        query.order_by(col(LedgerTransfer.id).desc()).offset(offset).limit(limit)
    )
    transfers = list(rows.all())
    entries: dict[int, list[EntryPublic]] = defaultdict(list)
    if transfers:
        found = await session.exec(
            select(LedgerEntry)
            .where(col(LedgerEntry.transfer_id).in_([t.id for t in transfers]))
            .order_by(col(LedgerEntry.id))
        )
        for e in found.all():
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
async def wallet_of(user_id: RowIdPath, session: SessionDep, _: AdminDep) -> WalletAdmin:
    """A driver's available balance, total held, and each open hold by order."""
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id}")
    total = func.sum(LedgerEntry.amount)
    rows = await session.exec(
        select(col(LedgerEntry.account), total)
        .where(col(LedgerEntry.user_id) == user_id, col(LedgerEntry.account_kind) == "hold")
        .group_by(col(LedgerEntry.account))
        .having(total != 0)
        .order_by(col(LedgerEntry.account))
    )
    holds = [
        HoldPublic(order_id=account.removeprefix("hold:"), amount=int(amount))
        for account, amount in rows.all()
    ]
    return WalletAdmin(
        user_id=user_id,
        email=user.email,
        currency=await wallet.currency_of(session, user_id),
        available=await wallet.available(session, user_id),
        held=sum(h.amount for h in holds),
        holds=holds,
    )
