"""Token buckets per key, and the upload rate built on them: bursts, refill, bounded memory."""

from __future__ import annotations

import pytest

from csms.rate_limit import RateLimiter
from csms.upload_rate import UploadRate, UploadsTooFrequent


def test_a_burst_passes_then_one_token_per_interval() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=6, clock=lambda: now[0])  # one every 10 s
    for _ in range(6):
        assert limiter.retry_after("k") == 0
        limiter.spend("k")
    assert limiter.retry_after("k") == 10
    assert limiter.retry_after("other") == 0  # keys do not share a bucket
    now[0] = 4
    assert limiter.retry_after("k") == 6
    now[0] = 10
    assert limiter.retry_after("k") == 0
    limiter.spend("k")
    assert limiter.retry_after("k") == 10
    now[0] = 1000  # a long pause fills the bucket, never beyond its size
    for _ in range(6):
        limiter.spend("k")
    assert limiter.retry_after("k") == 10


def test_memory_is_bounded_and_zero_turns_it_off() -> None:
    limiter = RateLimiter(per_minute=1, max_entries=50)
    for n in range(1000):
        limiter.spend(f"client-{n}")
    assert len(limiter) == 50
    off = RateLimiter(per_minute=0)
    for _ in range(100):
        off.spend("k")
    assert off.retry_after("k") == 0 and len(off) == 0


def test_an_upload_needs_both_the_drivers_and_the_addresss_token() -> None:
    now = [0.0]
    rate = UploadRate(per_driver=2, per_client=3, clock=lambda: now[0])
    rate.admit(1, "10.0.0.1")
    rate.admit(1, "10.0.0.1")
    with pytest.raises(UploadsTooFrequent) as driver_held:
        rate.admit(1, "10.0.0.2")  # another address does not help driver 1
    assert driver_held.value.retry_after_s == 30
    rate.admit(2, "10.0.0.1")  # another driver from the address: its third upload
    with pytest.raises(UploadsTooFrequent) as address_held:
        rate.admit(3, "10.0.0.1")
    assert address_held.value.retry_after_s == 20
    rate.admit(3, "10.0.0.3")  # the refused attempt spent nothing of driver 3's
    rate.admit(3, None)  # no address known: only the driver's rate applies
    with pytest.raises(UploadsTooFrequent):
        rate.admit(3, None)
