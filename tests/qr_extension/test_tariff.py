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


def test_flat_claim_is_the_five_required_members() -> None:
    assert tariff_to_claim(FLAT) == ["FLAT", "EUR", 5000, 12000, 3000]


def test_full_claim_layout() -> None:
    assert tariff_to_claim(FULL) == [
        "TOU-2",
        "CNY",
        0,
        12000,
        3000,
        [[1320, 360, 8000, 0], [600, 900, 15000, 1000]],
        480,
        60000,
        15,
        8000,
    ]


@pytest.mark.parametrize(
    ("tariff", "tail"),
    [
        (Tariff("A", "EUR", tou=(TouPeriod(0, 60, 1, 2),)), [[[0, 60, 1, 2]]]),
        (Tariff("A", "EUR", tz_offset_min=-300), [[], -300]),
        (Tariff("A", "EUR", idle_price=0), [[], 0, 0]),
        (Tariff("A", "EUR", idle_price=500, idle_grace_min=10), [[], 0, 500, 10]),
        (Tariff("A", "EUR", cap=0), [[], 0, None, 0, 0]),
        (Tariff("A", "EUR", idle_price=7, cap=900), [[], 0, 7, 0, 900]),
    ],
)
def test_claim_writes_defaults_before_a_present_member_and_drops_trailing_ones(
    tariff: Tariff, tail: list[object]
) -> None:
    assert tariff_to_claim(tariff) == ["A", "EUR", 0, 0, 0, *tail]


@pytest.mark.parametrize(
    "tariff", [FLAT, FULL, Tariff("Z", "JPY", idle_price=0, cap=0), Tariff("Z", "JPY", cap=1)]
)
def test_tariff_round_trip_through_json(tariff: Tariff) -> None:
    claim = json.loads(json.dumps(tariff_to_claim(tariff)))
    assert tariff_from_claim(claim) == tariff


@pytest.mark.parametrize(
    "claim",
    [
        ["A", "EUR", 0, 1, 0, []],
        ["A", "EUR", 0, 1, 0, [], 0],
        ["A", "EUR", 0, 1, 0, [], 0, None],
        ["A", "EUR", 0, 1, 0, [], 0, None, 0, None],
    ],
)
def test_trailing_defaults_are_accepted_but_never_written(claim: list[object]) -> None:
    tariff = tariff_from_claim(claim)
    assert tariff == Tariff("A", "EUR", energy_price=1)
    assert tariff_to_claim(tariff) == ["A", "EUR", 0, 1, 0]


def _with(position: int, value: Any) -> list[Any]:
    """The FULL claim with one member replaced (``...``: cut the claim before it)."""
    claim = tariff_to_claim(FULL)
    if value is ...:
        return claim[:position]
    claim[position] = value
    return claim


ID, CUR, F, E, T, TOU, TZ, IDLE, IG, CAP = range(10)


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        ({"id": "A", "cur": "EUR", "f": 0, "e": 1, "t": 0}, "JSON array"),
        ("FLAT", "JSON array"),
        ((), "JSON array"),
        ([], r"5\.\.10 members .*got 0"),
        (_with(T, ...), r"tar must have 5\.\.10 members \[id, cur, f, e, t, .*got 4"),
        ([*tariff_to_claim(FULL), 1], "got 11"),
        (_with(ID, ""), "tariff id"),
        (_with(ID, "x" * 37), "tariff id"),
        (_with(ID, "tab\there"), "printable"),
        (_with(ID, "caf\u00e9"), "printable"),
        (_with(ID, 7), "tariff id"),
        (_with(ID, None), "tariff id"),
        (_with(CUR, "eur"), "cur"),
        (_with(CUR, "EURO"), "cur"),
        (_with(CUR, "E1R"), "cur"),
        (_with(F, -1), "f must be in"),
        (_with(F, None), "f must be an integer, not NoneType"),
        (_with(E, 1.5), "e must be an integer, not float"),
        (_with(E, 12000.0), "not float"),
        (_with(T, True), "not bool"),
        (_with(T, "3000"), "not str"),
        (_with(IDLE, "6000"), "i must be an integer"),
        (_with(IDLE, -5), "i must be in"),
        (_with(IDLE, None), "without i"),
        (_with(IG, -1), "ig must be in"),
        (_with(IG, None), "ig must be an integer"),
        (_with(TZ, 841), "tz must be in"),
        (_with(TZ, -841), "tz must be in"),
        (_with(TZ, None), "tz must be an integer"),
        (_with(CAP, -1), "cap must be in"),
        (_with(CAP, "8000"), "cap must be an integer"),
        (_with(CAP, 2**53), "cap must be in"),
        (_with(TOU, None), r"tou must be a list .*\[\] for none"),
        (_with(TOU, {"a": 1}), "tou must be a list"),
        (_with(TOU, [[0, 60, 1]]), "each tou entry must be a list"),
        (_with(TOU, [(0, 60, 1, 1)]), "each tou entry must be a list"),
        (_with(TOU, [[1440, 60, 1, 1]]), "tou from must be in 0..1439"),
        (_with(TOU, [[-1, 60, 1, 1]]), "tou from"),
        (_with(TOU, [[0, 1441, 1, 1]]), "tou to must be in 0..1440"),
        (_with(TOU, [[0, 60, -1, 1]]), "tou e"),
        (_with(TOU, [[0, 60, 1, False]]), "tou t must be an integer"),
        (_with(TOU, [[0, 60, 1, 1], [59, 120, 1, 1]]), "tou periods 1 and 2 overlap"),
        (_with(TOU, [[1380, 60, 1, 1], [30, 90, 1, 1]]), "overlap"),
        (_with(TOU, [[600, 600, 1, 1], [0, 1, 1, 1]]), "overlap"),
    ],
)
def test_invalid_tariff_claims_are_refused(claim: object, message: str) -> None:
    with pytest.raises(TariffError, match=message):
        tariff_from_claim(claim)


def test_adjacent_and_midnight_periods_are_valid() -> None:
    claim = _with(TOU, [[1320, 0, 1, 1], [0, 360, 2, 2], [360, 1320, 3, 3]])
    assert len(tariff_from_claim(claim).tou) == 3


def test_an_invalid_tariff_cannot_be_built_either() -> None:
    with pytest.raises(TariffError, match="overlap"):
        Tariff("A", "EUR", tou=(TouPeriod(0, 0, 1, 1), TouPeriod(5, 6, 1, 1)))


# --- limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "claim"),
    [
        (Limits(5000), [5000]),
        (Limits(0, energy_wh=20000), [0, 20000]),
        (Limits(5000, duration_s=3600), [5000, None, 3600]),
        (Limits(5000, energy_wh=1, duration_s=3600), [5000, 1, 3600]),
    ],
)
def test_limits_round_trip(limits: Limits, claim: list[int | None]) -> None:
    assert limits_to_claim(limits) == claim
    assert limits_from_claim(json.loads(json.dumps(claim))) == limits


@pytest.mark.parametrize("claim", [[5000, None], [5000, None, None]])
def test_trailing_null_limits_are_accepted_but_never_written(claim: list[int | None]) -> None:
    limits = limits_from_claim(claim)
    assert limits == Limits(5000)
    assert limits_to_claim(limits) == [5000]


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        ("5000", "JSON array"),
        (5000, "JSON array"),
        ({"amt": 5000}, r"lim must be a JSON array \[amt, wh\?, s\?\]"),
        ([], r"lim must have 1\.\.3 members .*got 0"),
        ([1, 2, 3, 4], "got 4"),
        ([None], "amt must be an integer, not NoneType"),
        ([-1], "amt must be in"),
        ([1.0], "not float"),
        ([True], "not bool"),
        ([1, 0], "wh must be in 1"),
        ([1, "2"], "wh must be an integer"),
        ([1, None, "60"], "s must be an integer"),
        ([1, None, 0], "s must be in 1"),
        ([1, 2, 60.0], "s must be an integer, not float"),
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
