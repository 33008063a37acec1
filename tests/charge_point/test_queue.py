"""Delivery of the durable queue: order, retries with backoff, drop after the attempts,
and the reconnect backoff with jitter."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from ocpp.exceptions import InternalError, NotImplementedError, UnknownCallErrorCodeError
from websockets.exceptions import ConnectionClosedError

from charge_point.configuration import Configuration
from charge_point.link import backoff_delay
from charge_point.queue import DeliveryRefused, drain
from charge_point.settings import StationSettings
from charge_point.store import QueuedMessage, Store


class Flaky:
    """Fails the first ``failures`` deliveries with ``error``; records the rest."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or InternalError("CSMS broke")
        self.sent: list[int] = []

    async def deliver(self, message: QueuedMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise self.error
        self.sent.append(message.payload["n"])


def setup(tmp_path: Path, rows: int) -> tuple[Store, Configuration]:
    store = Store.in_dir(tmp_path)
    config = Configuration(
        store, StationSettings("CP", message_attempts=3, message_retry_s=10).ocpp_defaults()
    )
    for n in range(rows):
        store.enqueue("updated", {"n": n}, txn="T1")
    return store, config


async def test_rows_go_out_in_order_and_leave_the_queue(tmp_path: Path) -> None:
    store, config = setup(tmp_path, 5)
    peer = Flaky()
    assert await drain(store, config, peer, now=0) == ["updated"] * 5
    assert peer.sent == [0, 1, 2, 3, 4] and store.queue_len() == 0


async def test_a_failed_row_waits_with_growing_backoff_then_is_dropped(tmp_path: Path) -> None:
    store, config = setup(tmp_path, 2)
    peer = Flaky(failures=3)
    assert await drain(store, config, peer, now=100) == []
    head = store.queue_head()
    assert head is not None and head.attempts == 1 and head.not_before == 110
    assert await drain(store, config, peer, now=105) == []  # not yet
    assert await drain(store, config, peer, now=110) == []
    head = store.queue_head()
    assert head is not None and head.attempts == 2 and head.not_before == 130  # 10 x 2
    assert await drain(store, config, peer, now=130) == ["updated", "updated"]
    assert peer.sent == [1]  # row 0 was dropped after 3 attempts, row 1 went out


@pytest.mark.parametrize(
    "error",
    [
        NotImplementedError(details={"cause": "No handler for StartTransaction registered."}),
        DeliveryRefused("no transactionId", final=True),
    ],
)
async def test_a_row_no_retry_can_deliver_is_dropped_at_once(
    tmp_path: Path, error: Exception
) -> None:
    store, config = setup(tmp_path, 2)
    peer = Flaky(failures=1, error=error)
    assert await drain(store, config, peer, now=0) == ["updated", "updated"]
    assert peer.sent == [1]  # row 0 was tried once and dropped; the queue went on


async def test_a_callerror_code_outside_the_16_list_is_an_attempt(tmp_path: Path) -> None:
    """2.0.1 codes such as RpcFrameworkError reach the charger as the library's
    UnknownCallErrorCodeError: a failed attempt like any other CALLERROR, not a crash."""
    store, config = setup(tmp_path, 1)
    error = UnknownCallErrorCodeError("Error code 'RpcFrameworkError' is not defined")
    peer = Flaky(failures=1, error=error)
    assert await drain(store, config, peer, now=0) == []
    head = store.queue_head()
    assert head is not None and head.attempts == 1


@pytest.mark.parametrize("error", [ConnectionClosedError(None, None), TimeoutError()])
async def test_a_lost_connection_or_a_timeout_is_not_an_attempt(
    tmp_path: Path, error: Exception
) -> None:
    """No answer is the link's failure, not the CSMS's: the row is not counted (a stall
    longer than the retry schedule would drop it otherwise) and waits for the next
    connection."""
    store, config = setup(tmp_path, 1)
    peer = Flaky(failures=1, error=error)
    with pytest.raises(type(error)):
        await drain(store, config, peer, now=0)
    head = store.queue_head()
    assert head is not None and head.attempts == 0


async def test_the_queue_survives_a_reopen(tmp_path: Path) -> None:
    store, _ = setup(tmp_path, 3)
    store.close()
    again = Store.in_dir(tmp_path)
    assert [m.payload["n"] for m in again.queue_items()] == [0, 1, 2]


def test_reconnect_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, low=1, high=60, rng=rng) for a in range(10)]
    for attempt, delay in enumerate(delays):
        cap = min(60, 2**attempt)
        assert cap / 2 <= delay <= cap
    assert max(delays) <= 60
    fleet = {round(backoff_delay(5, low=1, high=60, rng=rng), 3) for _ in range(50)}
    assert len(fleet) > 40  # a fleet does not reconnect in lockstep


def test_the_16_rewrite_uses_the_id_from_the_start_answer(tmp_path: Path) -> None:
    from charge_point.queue import DeliveryRefused, rewritten_transaction_id

    store = Store.in_dir(tmp_path)
    with pytest.raises(DeliveryRefused):
        rewritten_transaction_id(store, "000001-abcdef")  # start not answered (yet)
    store.set_csms_id("000001-abcdef", "4711")
    assert rewritten_transaction_id(store, "000001-abcdef") == 4711
