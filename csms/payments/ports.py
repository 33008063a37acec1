"""What the order side needs from the money side, as protocols.

The async callers (the operator's refunds and releases, the reaper's expiry, the session form
of :func:`csms.payments.orders.create_order`) are given a :class:`WalletOps` (the module
``csms.payments.wallet`` satisfies it) and a :class:`TariffResolver` (``csms.billing.resolve.
billing_model_for``). Every wallet call takes the caller's session, posts one balanced
transfer, is idempotent by ``key`` and never commits. The hot paths' synchronous units call
:mod:`csms.payments.postings` and :mod:`csms.payments.tariffs` directly (decision D14).
"""

from __future__ import annotations

from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings
from qr_extension.tariff import Tariff


class WalletOps(Protocol):
    async def place_hold(
        self, session: AsyncSession, *, user_id: int, order_id: str, amount: int, key: str
    ) -> object: ...

    async def capture(
        self, session: AsyncSession, *, user_id: int, order_id: str, amount: int, key: str
    ) -> object: ...

    async def capture_and_release(
        self,
        session: AsyncSession,
        *,
        user_id: int,
        order_id: str,
        amount: int,
        capture_key: str,
        release_key: str,
    ) -> object: ...

    async def release(
        self, session: AsyncSession, *, user_id: int, order_id: str, amount: int, key: str
    ) -> object: ...

    async def charge_debt(
        self, session: AsyncSession, *, user_id: int, order_id: str, amount: int, key: str
    ) -> object: ...

    async def refund(
        self, session: AsyncSession, *, user_id: int, order_id: str, amount: int, key: str
    ) -> object: ...

    async def hold_remaining(self, session: AsyncSession, *, order_id: str) -> int: ...

    async def refundable_amount(
        self, session: AsyncSession, *, user_id: int, order_id: str
    ) -> int: ...


class TariffResolver(Protocol):
    async def __call__(
        self, session: AsyncSession, *, user_id: int | None, charger_id: str, settings: Settings
    ) -> Tariff: ...
