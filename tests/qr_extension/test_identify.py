"""Identification URLs and the time-based presence code."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qr_extension.errors import IdentificationError
from qr_extension.identify import (
    Identification,
    identification_url,
    parse_identification_url,
    presence_code,
    verify_presence_code,
)

RFC_SECRET = b"12345678901234567890123456789012"  # RFC 6238 appendix B, SHA-256 seed
SECRET = bytes(range(32))


@pytest.mark.parametrize(
    ("at", "expected"),
    [(59, "46119246"), (1111111109, "68084774"), (1234567890, "91819424")],
)
def test_rfc_6238_sha256_vectors(at: int, expected: str) -> None:
    assert presence_code(RFC_SECRET, at, step_s=30, digits=8) == expected


def test_six_digit_code_is_the_last_six_digits_of_the_eight_digit_one() -> None:
    # dynamic truncation takes value mod 10^digits
    assert presence_code(RFC_SECRET, 59, step_s=30, digits=6) == "119246"


def test_code_is_constant_within_a_step_and_changes_across_steps() -> None:
    codes = {presence_code(SECRET, t, step_s=30, digits=6) for t in range(600, 630)}
    assert len(codes) == 1
    assert presence_code(SECRET, 630, step_s=30, digits=6) not in codes


def test_verify_accepts_previous_current_and_next_step_only() -> None:
    now = 1_800_000_015
    for delta, accepted in [(-60, False), (-30, True), (0, True), (30, True), (60, False)]:
        code = presence_code(SECRET, now + delta, step_s=30, digits=6)
        assert verify_presence_code(SECRET, code, now, step_s=30, digits=6) is accepted, delta


def test_verify_with_window_zero_accepts_only_the_current_step() -> None:
    now = 1_800_000_015
    previous = presence_code(SECRET, now - 30, step_s=30, digits=6)
    current = presence_code(SECRET, now, step_s=30, digits=6)
    assert verify_presence_code(SECRET, current, now, step_s=30, digits=6, window=0)
    assert not verify_presence_code(SECRET, previous, now, step_s=30, digits=6, window=0)


def test_verify_refuses_other_secret_and_malformed_codes() -> None:
    now = 1_800_000_015
    code = presence_code(SECRET, now, step_s=30, digits=6)
    other = bytes(reversed(SECRET))
    assert not verify_presence_code(other, code, now, step_s=30, digits=6)
    for bad in ["", code[:-1], code + "0", "abcdef", "١٢٣٤٥٦"]:
        assert not verify_presence_code(SECRET, bad, now, step_s=30, digits=6)
    assert not verify_presence_code(SECRET, 123456, now, step_s=30, digits=6)  # type: ignore[arg-type]


def test_verify_near_the_epoch_does_not_wrap_to_negative_steps() -> None:
    code = presence_code(SECRET, 5, step_s=30, digits=6)
    assert verify_presence_code(SECRET, code, 5, step_s=30, digits=6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": b"short", "at": 0, "step_s": 30, "digits": 6},
        {"secret": SECRET, "at": 0, "step_s": 0, "digits": 6},
        {"secret": SECRET, "at": 0, "step_s": 30, "digits": 5},
        {"secret": SECRET, "at": 0, "step_s": 30, "digits": 11},
        {"secret": SECRET, "at": -1, "step_s": 30, "digits": 6},
    ],
)
def test_bad_code_parameters_are_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(IdentificationError):
        presence_code(**kwargs)  # type: ignore[arg-type]


def test_static_url() -> None:
    url = identification_url("https://pay.example.com/", "CP-0042", 2)
    assert url == "https://pay.example.com/c/CP-0042?evse=2"
    assert parse_identification_url(url) == Identification(
        "https://pay.example.com", "CP-0042", 2, None, None
    )


def test_dynamic_url_with_status_and_code() -> None:
    code = presence_code(SECRET, 1_800_000_000, step_s=30, digits=6)
    url = identification_url(
        "http://127.0.0.1:8000", "north_1.bay-3", 1, status="Available", code=code
    )
    assert url == f"http://127.0.0.1:8000/c/north_1.bay-3?evse=1&s=Available&t={code}"
    parsed = parse_identification_url(url)
    assert parsed.charge_point_id == "north_1.bay-3"
    assert (parsed.status, parsed.code) == ("Available", code)
    assert verify_presence_code(SECRET, parsed.code or "", 1_800_000_010, step_s=30, digits=6)


def test_ids_that_need_quoting_are_quoted_and_round_trip() -> None:
    for cp in ["CP:1", "CP+1", "CP&evse=9", "Ladesäule:7", "a=b;c"]:
        url = identification_url("https://x.example/app", cp, 3)
        assert "&evse=9" not in url and "+" not in url.split("?")[0]
        parsed = parse_identification_url(url)
        assert (parsed.base_url, parsed.charge_point_id, parsed.evse_id) == (
            "https://x.example/app",
            cp,
            3,
        )


@settings(deadline=None)  # a shared 2-core machine: no per-example deadline
@given(
    cp=st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/?#\\% "),
        min_size=1,
        max_size=64,
    ).filter(lambda s: s not in (".", "..")),
    evse=st.integers(1, 999),
)
def test_any_valid_id_round_trips(cp: str, evse: int) -> None:
    parsed = parse_identification_url(identification_url("https://h.example", cp, evse))
    assert (parsed.charge_point_id, parsed.evse_id) == (cp, evse)


@pytest.mark.parametrize(
    ("cp", "evse"),
    [("", 1), ("a/b", 1), ("..", 1), (".", 1), ("x" * 65, 1), ("CP1", 0), ("CP1", 1000),
     ("CP1", True), ("a%2Fb", 1), ("new\nline", 1)],
)  # fmt: skip
def test_url_refuses_bad_ids(cp: str, evse: int) -> None:
    with pytest.raises(IdentificationError):
        identification_url("https://h.example", cp, evse)


@pytest.mark.parametrize(
    ("base", "status", "code"),
    [
        ("ftp://h.example", None, None),
        ("https://", None, None),
        ("https://h.example?x=1", None, None),
        ("https://h.example", "Avail able", None),
        ("https://h.example", None, "12ab56"),
    ],
)
def test_url_refuses_bad_base_status_or_code(
    base: str, status: str | None, code: str | None
) -> None:
    with pytest.raises(IdentificationError):
        identification_url(base, "CP1", 1, status=status, code=code)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "not a url",
        "javascript:alert(1)",
        "https://h.example/x/CP1?evse=1",  # no /c/
        "https://h.example/c/?evse=1",
        "https://h.example/c/CP1/extra?evse=1",
        "https://h.example/c/CP1",  # no evse
        "https://h.example/c/CP1?evse=",
        "https://h.example/c/CP1?evse=01",
        "https://h.example/c/CP1?evse=-1",
        "https://h.example/c/CP1?evse=1000",
        "https://h.example/c/CP1?evse=1&evse=2",
        "https://h.example/c/CP1?evse=1&s=Avail%20able",
        "https://h.example/c/CP1?evse=1&t=12345",
        "https://h.example/c/CP1?evse=1&t=12ab56",
        "https://h.example/c/%2E%2E?evse=1",
        "https://h.example/c/a%2Fb?evse=1",
        "https://h.example/c/%FF?evse=1",
        "https://h.example/c/CP1?evse=%F0%9D%9F%99",  # a non-ASCII digit
        "https://h.example/c/" + "x" * 65 + "?evse=1",
    ],
)
def test_parse_refuses_anything_else(url: str) -> None:
    with pytest.raises(IdentificationError):
        parse_identification_url(url)


def test_parse_ignores_unknown_parameters_and_keeps_the_base_path() -> None:
    parsed = parse_identification_url("https://h.example/pay/c/CP1?utm_source=sticker&evse=4")
    assert parsed == Identification("https://h.example/pay", "CP1", 4)


@settings(deadline=None)  # a shared 2-core machine: no per-example deadline
@given(
    secret=st.binary(min_size=16, max_size=64),
    at=st.integers(0, 2**40),
    step=st.sampled_from([15, 30, 60]),
    digits=st.integers(6, 10),
)
def test_any_code_verifies_at_its_own_time_and_has_its_digits(
    secret: bytes, at: int, step: int, digits: int
) -> None:
    code = presence_code(secret, at, step_s=step, digits=digits)
    assert len(code) == digits and code.isdigit()
    assert verify_presence_code(secret, code, at, step_s=step, digits=digits)
    assert verify_presence_code(secret, code, at + step, step_s=step, digits=digits)
