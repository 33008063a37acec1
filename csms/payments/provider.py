"""The payment-provider seam: the sandbox behind the :class:`~csms.ports.PaymentProvider` port.

A real PSP adapter implements the same calls, each idempotent by ``key`` (PSPs take an
``Idempotency-Key`` header): a repeat with the same key returns the first result and moves no
money; the same key with different arguments is an :class:`IdempotencyConflict`. The contract
of every call that moves money:

* it returns a :class:`PspResult`: ``succeeded``, or ``declined`` (a definite no);
* it raises :class:`ProviderError` when the provider definitely refused (nothing moved);
* it raises :class:`ProviderUnavailable` (or anything else, or times out) when the outcome is
  unknown: the request may or may not have reached the provider.

:meth:`PaymentProvider.lookup` answers, for a key, what the call made with it did (or None if
the provider never received one): the sweeper resolves unknown outcomes with it. The calls
are made with no database transaction open (:mod:`csms.payments.top_ups`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from csms.payments.errors import IdempotencyConflict, InvalidAmount, ProviderError
from csms.ports import PspResult, PspStatus

SANDBOX_DECLINE = "sandbox-decline"  # the payment method that the sandbox always declines


@dataclass
class _Authorization:
    amount: int
    currency: str
    captured: int = 0
    voided: bool = False


@dataclass
class _Capture:
    amount: int
    currency: str
    refunded: int = 0


@dataclass
class SandboxProvider:
    """A provider that moves no real money: everything succeeds except the payment method
    ``sandbox-decline``. It keeps its state in the instance (one per CSMS or per call)."""

    name: str = "sandbox"
    _by_key: dict[str, tuple[tuple[object, ...], PspResult]] = field(default_factory=dict)
    _auths: dict[str, _Authorization] = field(default_factory=dict)
    _captures: dict[str, _Capture] = field(default_factory=dict)

    def _reference(self, kind: str, key: str) -> str:
        return "sbx_" + hashlib.sha256(f"{kind}\x00{key}".encode()).hexdigest()[:24]

    def _repeat(self, key: str, call: tuple[object, ...]) -> PspResult | None:
        seen = self._by_key.get(key)
        if seen is None:
            return None
        if seen[0] != call:
            raise IdempotencyConflict(key, f"another provider call {seen[0][0]}")
        return seen[1]

    def _remember(self, key: str, call: tuple[object, ...], result: PspResult) -> PspResult:
        self._by_key[key] = (call, result)
        return result

    async def authorize(self, *, amount: int, currency: str, method: str, key: str) -> PspResult:
        call = ("authorize", amount, currency, method)
        if (seen := self._repeat(key, call)) is not None:
            return seen
        if type(amount) is not int or amount <= 0:
            raise InvalidAmount(f"an authorization needs a positive amount, got {amount!r}")
        ref = self._reference("authorize", key)
        status: PspStatus = "declined" if method == SANDBOX_DECLINE else "succeeded"
        if status == "succeeded":
            self._auths[ref] = _Authorization(amount, currency)
        return self._remember(key, call, PspResult("authorize", ref, status, amount, currency))

    async def capture(self, *, authorization: str, amount: int, key: str) -> PspResult:
        call = ("capture", authorization, amount)
        if (seen := self._repeat(key, call)) is not None:
            return seen
        auth = self._auths.get(authorization)
        if auth is None or auth.voided:
            raise ProviderError(f"no open authorization {authorization!r}")
        if type(amount) is not int or not 0 < amount <= auth.amount - auth.captured:
            raise ProviderError(f"capture of {amount!r} exceeds authorization {authorization}")
        auth.captured += amount
        ref = self._reference("capture", key)
        self._captures[ref] = _Capture(amount, auth.currency)
        result = PspResult("capture", ref, "succeeded", amount, auth.currency)
        return self._remember(key, call, result)

    async def void(self, *, authorization: str, key: str) -> PspResult:
        call = ("void", authorization)
        if (seen := self._repeat(key, call)) is not None:
            return seen
        auth = self._auths.get(authorization)
        if auth is None or auth.voided or auth.captured:
            raise ProviderError(f"authorization {authorization!r} cannot be voided")
        auth.voided = True
        result = PspResult("void", self._reference("void", key), "succeeded", 0, auth.currency)
        return self._remember(key, call, result)

    async def refund(self, *, capture: str, amount: int, key: str) -> PspResult:
        call = ("refund", capture, amount)
        if (seen := self._repeat(key, call)) is not None:
            return seen
        cap = self._captures.get(capture)
        if cap is None:
            raise ProviderError(f"no capture {capture!r}")
        if type(amount) is not int or not 0 < amount <= cap.amount - cap.refunded:
            raise ProviderError(f"refund of {amount!r} exceeds what capture {capture} left")
        cap.refunded += amount
        ref = self._reference("refund", key)
        result = PspResult("refund", ref, "succeeded", amount, cap.currency)
        return self._remember(key, call, result)

    async def lookup(self, key: str) -> PspResult | None:
        seen = self._by_key.get(key)
        return None if seen is None else seen[1]
