"""``Revoke``: the CSMS cancels an order, the charger stores the revoked order id durably and
refuses its start QR with reason ``revoked``, also after a restart from the same state dir;
malformed data and a token already used are ``Rejected``. Over a real socket, from a central
system written with the ``ocpp`` library, on 1.6 and 2.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from charge_point.clock import ManualClock
from charge_point.qrstart import read_revoke
from charge_point.station import REVOKE_KEEP_S, Station
from qr_extension.refusal import Reason, Refusal
from qr_extension.wire import MSG_REVOKE, VENDOR_ID
from tests.charge_point.central import Central
from tests.charge_point.conftest import CP_ID, TokenFactory
from tests.charge_point.protocol.test_online import VERSIONS, running


def _push(central: Central, version: str) -> Callable[[str], Any]:
    cp = central.connections[CP_ID]
    call = call16 if version == "1.6" else call201

    async def push(data: str) -> str:
        answer = await cp.call(
            call.DataTransfer(vendor_id=VENDOR_ID, message_id=MSG_REVOKE, data=data)
        )
        return str(answer.status)

    return push


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_revoked_start_qr_is_refused_also_after_a_restart(
    tmp_path: Path, central: Central, jwks_file: Path, token: TokenFactory, version: str
) -> None:
    async with running(tmp_path, central, version, trusted_keys_file=jwks_file) as charger:
        station = charger.station
        push = _push(central, version)
        exp = int(station.now()) + 900
        assert await push(json.dumps({"jti": "ORDERREV", "exp": exp})) == "Accepted"
        assert await push(json.dumps({"jti": "ORDERREV", "exp": exp})) == "Accepted"  # a repeat
        assert station.store.is_revoked("ORDERREV")
        for bad in (
            "not json",
            "[]",
            json.dumps({"jti": "lower-case"}),
            json.dumps({"jti": "A" * 21}),
            json.dumps({"exp": exp}),
            json.dumps({"jti": "ORDERX", "exp": True}),
            json.dumps({"jti": "ORDERX", "exp": "soon"}),
        ):
            assert await push(bad) == "Rejected", bad
        assert not station.store.is_revoked("ORDERX")
        # a token this charger already used: its order is not unused, the hold must stay
        station.plug(2, capacity_wh=60_000, soc=0.3)
        started = station.scan(token("ORDERUSED", station.now(), evse=2))
        assert not isinstance(started, Refusal)
        assert await push(json.dumps({"jti": "ORDERUSED", "exp": exp})) == "Rejected"
        assert not station.store.is_revoked("ORDERUSED")
    # the same state dir, a new process: the revocation is still there
    async with running(tmp_path, central, version, trusted_keys_file=jwks_file) as charger:
        station = charger.station
        station.plug(1, capacity_wh=60_000, soc=0.3)
        refused = station.scan(token("ORDERREV", station.now(), evse=1))
        assert isinstance(refused, Refusal) and refused.reason is Reason.REVOKED
        assert 1 not in station.sessions
        shown = station.display.snapshot()
        assert shown["text"] == "Code refused: revoked"
        reasons = shown["reasons"]
        assert isinstance(reasons, list) and [r["reason"] for r in reasons] == ["revoked"]
        # another order's code still starts
        assert not isinstance(station.scan(token("ORDEROK", station.now(), evse=1)), Refusal)


def test_revocations_are_pruned_only_below_the_time_floor(
    make_station: Callable[..., Station], token: TokenFactory
) -> None:
    clock = ManualClock(1_800_000_000)
    station = make_station(clock=clock)
    leeway = station.settings.leeway_s
    exp = int(clock.now()) + 900
    assert station.revoke_token("ORDERA", exp)
    assert station.revoke_token("ORDERB", None)  # no exp: kept REVOKE_KEEP_S
    station.set_time(exp + leeway)  # the token could still verify now
    assert station.store.is_revoked("ORDERA")
    station.set_time(exp + leeway + 1)
    assert not station.store.is_revoked("ORDERA")
    assert station.store.is_revoked("ORDERB")
    station.set_time(clock.now() + REVOKE_KEEP_S + leeway + 10)
    assert not station.store.is_revoked("ORDERB")


def test_a_revoke_drops_a_remote_start_waiting_for_the_ev(
    make_station: Callable[..., Station],
) -> None:
    station = make_station()
    station.online = True
    assert station.remote_start("ORDERREM", 1, 7)
    assert 1 in station.pending
    assert station.revoke_token("ORDERREM", None)
    assert 1 not in station.pending
    station.plug(1, capacity_wh=60_000, soc=0.3)
    assert 1 not in station.sessions


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"jti": "ABC123", "exp": 1800000000}', ("ABC123", 1800000000)),
        ('{"jti": "ABC123"}', ("ABC123", None)),
        ('{"jti": "ABC123", "exp": null}', ("ABC123", None)),
        ('{"jti": "ABC123", "exp": -1}', None),
        ('{"jti": "ABC123", "exp": 1.5}', None),
        ('{"jti": ""}', None),
        ('{"jti": 12}', None),
        ('"ABC123"', None),
        ({"jti": "ABC123"}, None),  # data is always a string
        ("x" * 500, None),
    ],
)
def test_read_revoke(data: Any, expected: tuple[str, int | None] | None) -> None:
    assert read_revoke(data) == expected
