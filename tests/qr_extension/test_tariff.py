"""Claim conversion of billing models, limits and usage: round trips and strict validation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qr_extension.errors import TariffError
from qr_extension.tariff import (
    Limits,
    Tariff,
    TouPeriod,
    UsageBucket,
    limits_from_claim,
    limits_to_claim,
    tariff_from_claim,
    tariff_to_claim,
    usage_from_claim,
    usage_to_claim,
)

FLAT = Tariff("FLAT", "EUR", fixed_fee=5000, energy_price=12000, time_price=3000)
FULL = Tariff(
    "TOU-2",
    "CNY",
    fixed_fee=0,
    energy_price=12000,
    time_price=3000,
    idle_price=60000,
    idle_grace_min=15,
    tou=(TouPeriod(1320, 360, 8000, 0), TouPeriod(600, 900, 15000, 1000)),
    tz_offset_min=480,
    cap=8000,
)


def test_flat_claim_is_compact_and_omits_empty_members() -> None:
    assert tariff_to_claim(FLAT) == {"id": "FLAT", "cur": "EUR", "f": 5000, "e": 12000, "t": 3000}


def test_full_claim_layout() -> None:
    assert tariff_to_claim(FULL) == {
        "id": "TOU-2",
        "cur": "CNY",
        "f": 0,
        "e": 12000,
        "t": 3000,
        "i": 60000,
        "ig": 15,
        "tou": [[1320, 360, 8000, 0], [600, 900, 15000, 1000]],
        "tz": 480,
        "cap": 8000,
    }


@pytest.mark.parametrize("tariff", [FLAT, FULL, Tariff("Z", "JPY", idle_price=0, cap=0)])
def test_tariff_round_trip_through_json(tariff: Tariff) -> None:
    claim = json.loads(json.dumps(tariff_to_claim(tariff)))
    assert tariff_from_claim(claim) == tariff


def test_zero_members_are_accepted_when_present() -> None:
    claim = {"id": "A", "cur": "EUR", "f": 0, "e": 1, "t": 0, "ig": 0, "tz": 0}
    assert tariff_from_claim(claim) == Tariff("A", "EUR", energy_price=1)


def _with(**changes: Any) -> dict[str, Any]:
    claim = tariff_to_claim(FULL)
    for key, value in changes.items():
        if value is ...:
            del claim[key]
        else:
            claim[key] = value
    return claim


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        ([], "JSON object"),
        (_with(x=1), "unknown members: x"),
        (_with(id=...), "lacks members: id"),
        (_with(e=...), "lacks members: e"),
        (_with(id=""), "tariff id"),
        (_with(id="x" * 37), "tariff id"),
        (_with(id="tab\there"), "printable"),
        (_with(id="caf\u00e9"), "printable"),
        (_with(id=7), "tariff id"),
        (_with(cur="eur"), "cur"),
        (_with(cur="EURO"), "cur"),
        (_with(cur="E1R"), "cur"),
        (_with(f=-1), "f must be in"),
        (_with(e=1.5), "e must be an integer, not float"),
        (_with(e=12000.0), "not float"),
        (_with(t=True), "not bool"),
        (_with(t="3000"), "not str"),
        (_with(i=None), "i must be an integer"),
        (_with(i=-5), "i must be in"),
        (_with(i=..., ig=15), "without i"),
        (_with(ig=-1), "ig must be in"),
        (_with(tz=841), "tz must be in"),
        (_with(tz=-841), "tz must be in"),
        (_with(cap=-1), "cap must be in"),
        (_with(cap=None), "cap must be an integer"),
        (_with(cap=2**53), "cap must be in"),
        (_with(tou=[]), "non-empty list"),
        (_with(tou={"a": 1}), "non-empty list"),
        (_with(tou=[[0, 60, 1]]), "each tou entry must be a list"),
        (_with(tou=[(0, 60, 1, 1)]), "each tou entry must be a list"),
        (_with(tou=[[1440, 60, 1, 1]]), "tou from must be in 0..1439"),
        (_with(tou=[[-1, 60, 1, 1]]), "tou from"),
        (_with(tou=[[0, 1441, 1, 1]]), "tou to must be in 0..1440"),
        (_with(tou=[[0, 60, -1, 1]]), "tou e"),
        (_with(tou=[[0, 60, 1, False]]), "tou t must be an integer"),
        (_with(tou=[[0, 60, 1, 1], [59, 120, 1, 1]]), "tou periods 1 and 2 overlap"),
        (_with(tou=[[1380, 60, 1, 1], [30, 90, 1, 1]]), "overlap"),
        (_with(tou=[[600, 600, 1, 1], [0, 1, 1, 1]]), "overlap"),
    ],
)
def test_invalid_tariff_claims_are_refused(claim: object, message: str) -> None:
    with pytest.raises(TariffError, match=message):
        tariff_from_claim(claim)


def test_adjacent_and_midnight_periods_are_valid() -> None:
    claim = _with(tou=[[1320, 0, 1, 1], [0, 360, 2, 2], [360, 1320, 3, 3]])
    assert len(tariff_from_claim(claim).tou) == 3


def test_an_invalid_tariff_cannot_be_built_either() -> None:
    with pytest.raises(TariffError, match="overlap"):
        Tariff("A", "EUR", tou=(TouPeriod(0, 0, 1, 1), TouPeriod(5, 6, 1, 1)))


# --- limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "claim"),
    [
        (Limits(5000), {"amt": 5000}),
        (Limits(0, energy_wh=20000), {"amt": 0, "wh": 20000}),
        (Limits(5000, energy_wh=1, duration_s=3600), {"amt": 5000, "wh": 1, "s": 3600}),
    ],
)
def test_limits_round_trip(limits: Limits, claim: dict[str, int]) -> None:
    assert limits_to_claim(limits) == claim
    assert limits_from_claim(claim) == limits


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        ("5000", "JSON object"),
        ({}, "lacks members: amt"),
        ({"amt": 1, "kwh": 2}, "unknown members: kwh"),
        ({"amt": -1}, "amt must be in"),
        ({"amt": 1.0}, "not float"),
        ({"amt": True}, "not bool"),
        ({"amt": 1, "wh": 0}, "wh must be in 1"),
        ({"amt": 1, "wh": None}, "wh must be an integer"),
        ({"amt": 1, "s": "60"}, "s must be an integer"),
        ({"amt": 1, "s": 0}, "s must be in 1"),
    ],
)
def test_invalid_limits_are_refused(claim: object, message: str) -> None:
    with pytest.raises(TariffError, match=message):
        limits_from_claim(claim)


# --- usage -------------------------------------------------------------------------------


def test_usage_round_trip() -> None:
    usage = (UsageBucket(0, 1200, 600, 0), UsageBucket(2, 0, 0, 1800))
    claim = usage_to_claim(usage)
    assert claim == [[0, 1200, 600, 0], [2, 0, 0, 1800]]
    assert usage_from_claim(json.loads(json.dumps(claim)), tariff=FULL) == usage
    assert usage_from_claim([]) == ()


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        ({"0": [1, 2, 3]}, "u must be a list"),
        ([[0, 1, 2]], "entry must be a list"),
        ([(0, 1, 2, 3)], "entry must be a list"),
        ([[0, -1, 2, 3]], "usage wh must be in"),
        ([[0, 1, 2.0, 3]], "usage charging_s must be an integer"),
        ([[0, 1, 2, None]], "usage idle_s must be an integer"),
        ([[True, 1, 2, 3]], "usage bucket index must be an integer"),
        ([[0, 1, 2, 3], [0, 4, 5, 6]], "index 0 appears twice"),
        ([[3, 1, 2, 3]], r"usage bucket index must be in 0\.\.2"),
    ],
)
def test_invalid_usage_is_refused(claim: object, message: str) -> None:
    with pytest.raises(TariffError, match=message):
        usage_from_claim(claim, tariff=FULL)
