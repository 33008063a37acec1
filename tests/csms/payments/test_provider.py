"""The sandbox payment provider: the four calls, each idempotent by key, with refusals."""

from __future__ import annotations

import pytest

from csms.payments.errors import IdempotencyConflict, InvalidAmount, ProviderError
from csms.payments.provider import SANDBOX_DECLINE, SandboxProvider
from csms.ports import PaymentProvider


def test_sandbox_is_a_payment_provider() -> None:
    provider: PaymentProvider = SandboxProvider()
    assert provider.name == "sandbox"


async def test_authorize_capture_refund_each_idempotent() -> None:
    psp = SandboxProvider()
    auth = await psp.authorize(amount=1000, currency="CNY", method="card", key="a")
    assert auth.status == "succeeded" and auth.amount == 1000
    assert await psp.authorize(amount=1000, currency="CNY", method="card", key="a") == auth
    cap = await psp.capture(authorization=auth.reference, amount=600, key="c")
    assert await psp.capture(authorization=auth.reference, amount=600, key="c") == cap
    with pytest.raises(ProviderError):  # 400 left on the authorization
        await psp.capture(authorization=auth.reference, amount=401, key="c2")
    rest = await psp.capture(authorization=auth.reference, amount=400, key="c3")
    assert rest.reference != cap.reference
    refund = await psp.refund(capture=cap.reference, amount=600, key="r")
    assert await psp.refund(capture=cap.reference, amount=600, key="r") == refund
    with pytest.raises(ProviderError):
        await psp.refund(capture=cap.reference, amount=1, key="r2")
    with pytest.raises(IdempotencyConflict):
        await psp.refund(capture=rest.reference, amount=100, key="r")


async def test_void_and_decline() -> None:
    psp = SandboxProvider()
    auth = await psp.authorize(amount=500, currency="CNY", method="card", key="a")
    void = await psp.void(authorization=auth.reference, key="v")
    assert void.status == "succeeded"
    assert await psp.void(authorization=auth.reference, key="v") == void
    with pytest.raises(ProviderError):
        await psp.capture(authorization=auth.reference, amount=100, key="c")
    with pytest.raises(ProviderError):
        await psp.void(authorization=auth.reference, key="v2")
    declined = await psp.authorize(amount=500, currency="CNY", method=SANDBOX_DECLINE, key="d")
    assert declined.status == "declined"
    with pytest.raises(ProviderError):
        await psp.capture(authorization=declined.reference, amount=500, key="c4")
    with pytest.raises(InvalidAmount):
        await psp.authorize(amount=0, currency="CNY", method="card", key="z")
    with pytest.raises(ProviderError):
        await psp.refund(capture="sbx_unknown", amount=1, key="u")


async def test_captured_authorization_cannot_be_voided() -> None:
    psp = SandboxProvider()
    auth = await psp.authorize(amount=500, currency="CNY", method="card", key="a")
    await psp.capture(authorization=auth.reference, amount=500, key="c")
    with pytest.raises(ProviderError):
        await psp.void(authorization=auth.reference, key="v")
