"""Puts the payment side into a CSMS app: what :func:`csms.app.create_app` wires by default.

:class:`PaymentSide` builds, for one app: the settlement sink (:class:`SettlementService`),
the authorization policy for order ids (falling back to the CSMS's local RFID tags), the
routers and error handlers of both payment halves (drivers/billing/wallet from
:mod:`csms.api.routes.money`, orders/settlements/payments/operator views here), the rate of
settlement uploads (:class:`~csms.api.upload_rate.UploadRate`), and the reaper background
task, which it owns: started after the app's context exists, cancelled at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from config.settings import Settings
from csms.api.routes import admin_orders, money, orders, payments, settlements
from csms.api.upload_rate import UploadRate
from csms.billing.resolve import billing_model_for
from csms.payments import wallet as wallet_module
from csms.payments.order_policy import OrderAuthorizationPolicy
from csms.payments.ports import TariffResolver, WalletOps
from csms.payments.provider import PaymentProvider, SandboxProvider
from csms.payments.reaper import Reaper
from csms.payments.settlement_service import SettlementService
from csms.protocol.authorization import AuthorizationPolicy, LocalTagPolicy
from csms.store.db import Database

ROUTERS = (orders.router, settlements.router, payments.router, admin_orders.router)


class PaymentSide:
    """The payment side of one app (one per :func:`~csms.app.create_app` call)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime],
        wallet: WalletOps = wallet_module,
        resolve_tariff: TariffResolver = billing_model_for,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.wallet = wallet
        self.resolve_tariff = resolve_tariff
        self.provider: PaymentProvider = SandboxProvider()
        self.upload_rate = UploadRate(
            per_driver=settings.upload_rate_per_driver,
            per_client=settings.upload_rate_per_client,
            clock=lambda: clock().timestamp(),  # the app's clock (tests move it)
        )
        self.service: SettlementService | None = None
        self.reaper: Reaper | None = None
        self._task: asyncio.Task[None] | None = None
        self._app: FastAPI | None = None

    def install(self, app: FastAPI) -> None:
        """Adds the routers and error handlers; the app's state points back here."""
        money.install(app)
        for router in ROUTERS:
            app.include_router(router)
        app.state.payments = self
        app.state.payment_provider = self.provider  # a PSP adapter replaces it
        self._app = app

    def open(self, db: Database) -> SettlementService:
        """Builds the services on the app's database; returns the settlement sink."""
        self.service = SettlementService(db, settings=self.settings, clock=self.clock)
        self.reaper = Reaper(
            db,
            settings=self.settings,
            wallet=self.wallet,
            clock=self.clock,
            provider=self._provider,
        )
        return self.service

    def _provider(self) -> PaymentProvider | None:
        """The provider the top-up route uses (``app.state.payment_provider``)."""
        if self._app is None:
            return self.provider
        found: PaymentProvider | None = getattr(self._app.state, "payment_provider", None)
        return found

    def policy(self, db: Database, clock: Callable[[], datetime]) -> AuthorizationPolicy:
        """The order-id policy, with the CSMS's local tag policy behind it."""
        return OrderAuthorizationPolicy(
            db,
            clock=clock,
            leeway_s=self.settings.token_leeway_s,
            fallback=LocalTagPolicy(db, clock=clock),
        )

    def start(self) -> None:
        """Starts the reaper (call from the app's lifespan once its context exists)."""
        ctx = getattr(self._app.state, "ctx", None) if self._app is not None else None
        if self.reaper is not None and ctx is not None:
            self.reaper.dispatcher = ctx.dispatcher
        if self.reaper is not None and self._task is None and self.settings.reaper_interval_s > 0:
            self._task = asyncio.create_task(self.reaper.run(), name="payments-reaper")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
