"""Settlement: build on the charger, sign, verify and check against the order on the CSMS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm

from qr_extension import jws
from qr_extension.errors import TariffError, TokenFormatError
from qr_extension.keys import KeyRing, SigningKey, generate_key
from qr_extension.refusal import Reason, Refusal
from qr_extension.settlement import (
    SETTLE_TYP,
    Settlement,
    build_settlement,
    check_settlement,
    peek_settlement,
    sign_settlement,
    verify_settlement,
)
from qr_extension.start import StartAuthorization, inspect_token, issue_start_token
from qr_extension.tariff import Limits, Tariff, TouPeriod, UsageBucket, compute_cost
from qr_extension.trust import sign_trusted_keys

CP = "CP-000123"
ISSUER = "qrcharge"
T0 = 1_795_000_000
LEEWAY = 300

TOU = Tariff(
    id="T-0001",
    currency="CNY",
    fixed_fee=5000,
    energy_price=12000,
    time_price=3000,
    idle_price=60000,
    idle_grace_min=30,
    tou=(TouPeriod(480, 1320, 15000, 3000), TouPeriod(1320, 480, 8000, 0)),
    tz_offset_min=480,
)
ORDER = StartAuthorization(
    order_id="K7Q2M9XA",
    charge_point_id=CP,
    evse_id=2,
    issued_at=T0,
    expires_at=T0 + 900,
    limits=Limits(amount=20000, energy_wh=30000),
    tariff=TOU,
    kid="AAAAAAAA",
)
CLAIMS = ("iss", "aud", "jti", "txn", "evse", "ts", "te", "m0", "m1",
          "u", "amt", "cur", "tid", "rsn", "seq", "off", "iat")  # fmt: skip
USAGE = (UsageBucket(1, 7000, 1800, 0), UsageBucket(2, 5500, 1500, 2400))


@pytest.fixture(scope="module")
def charger() -> SigningKey:
    return generate_key()


@pytest.fixture(scope="module")
def other() -> SigningKey:
    return generate_key()


def build(order: StartAuthorization = ORDER, **changes: Any) -> Settlement:
    args: dict[str, Any] = {
        "audience": ISSUER,
        "transaction_id": "42",
        "started_at": T0 + 120,
        "stopped_at": T0 + 120 + 5700,
        "meter_start_wh": 1_000_000,
        "meter_stop_wh": 1_012_500,
        "usage": USAGE,
        "reason": "EVDisconnected",
        "seq": 7,
        "offline": True,
        "issued_at": T0 + 5900,
    }
    args.update(changes)
    return build_settlement(order, **args)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], key: SigningKey | None) -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    signature = b"" if key is None else ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input, key.key)
    return f"{head}.{body}.{b64(signature)}"


def header_for(key: SigningKey, typ: str = SETTLE_TYP) -> dict[str, Any]:
    return {"alg": "ES256", "typ": typ, "kid": key.kid}


def claims_of(token: str) -> dict[str, Any]:
    return inspect_token(token)[1]


def verify(token: object, key: SigningKey, audience: str = ISSUER) -> Settlement | Refusal:
    return verify_settlement(token, key=key.public, audience=audience)


def refused(result: object, reason: Reason) -> bool:
    return isinstance(result, Refusal) and result.reason is reason


# --- build, sign, verify, check -------------------------------------------------------------


def test_build_computes_the_amount_with_the_orders_tariff() -> None:
    s = build()
    assert s.amount == compute_cost(TOU, USAGE, limit_amount=20000).total
    assert s.amount > 0
    assert (s.currency, s.tariff_id, s.evse_id) == ("CNY", "T-0001", 2)
    assert (s.charge_point_id, s.order_id, s.audience) == (CP, "K7Q2M9XA", ISSUER)
    assert s.energy_wh == 12_500


def test_build_holds_the_amount_to_the_limit() -> None:
    small = replace(ORDER, limits=Limits(amount=50))
    s = build(small)
    assert s.amount == 50
    assert check_settlement(s, small, leeway_s=LEEWAY) is None


@pytest.mark.parametrize("offline", [True, False])
@pytest.mark.parametrize(
    "usage",
    [
        (),
        (UsageBucket(0, 12_500, 0, 0),),
        USAGE,
        (UsageBucket(0, 1, 1, 1), UsageBucket(1, 12_000, 10, 0), UsageBucket(2, 499, 0, 7)),
    ],
)
def test_round_trip(charger: SigningKey, offline: bool, usage: tuple[UsageBucket, ...]) -> None:
    meter_stop = 1_000_000 + sum(b.wh for b in usage)
    s = build(usage=usage, offline=offline, meter_stop_wh=meter_stop)
    token = sign_settlement(s, charger)
    assert peek_settlement(token) == (CP, charger.kid)
    back = verify(token, charger)
    assert back == s
    assert check_settlement(back, ORDER, leeway_s=LEEWAY) is None


def test_token_layout(charger: SigningKey) -> None:
    token = sign_settlement(build(), charger)
    header, claims = inspect_token(token)
    assert header == {"alg": "ES256", "typ": "settle+jwt", "kid": charger.kid}
    assert claims["txn"] == "42" and claims["off"] is True
    assert claims["u"] == [[1, 7000, 1800, 0], [2, 5500, 1500, 2400]]
    assert set(claims) == set(CLAIMS)
    payload = base64.urlsafe_b64decode(token.split(".")[1] + "==")
    assert b" " not in payload
    assert len(token) <= 520, len(token)  # docs/protocol.md, "Tokens"


def test_order_without_evse_accepts_the_settlements_evse() -> None:
    s = build()
    assert check_settlement(s, replace(ORDER, evse_id=None), leeway_s=LEEWAY) is None


def test_build_refuses_an_unresolved_evse() -> None:
    with pytest.raises(TokenFormatError):
        build(replace(ORDER, evse_id=None))


@pytest.mark.parametrize(
    "change",
    [
        {"transaction_id": ""},
        {"transaction_id": 42},
        {"transaction_id": "x" * 37},
        {"stopped_at": T0},  # before started_at
        {"meter_stop_wh": 999_999},  # below meter_start_wh
        {"reason": "Stop pressed"},
        {"seq": -1},
        {"offline": 1},
        {"audience": ""},
    ],
)
def test_build_refuses_what_the_csms_would_refuse(change: dict[str, Any]) -> None:
    with pytest.raises(TokenFormatError):
        build(**change)


def test_build_refuses_usage_the_tariff_cannot_price() -> None:
    with pytest.raises(TariffError):
        build(usage=(UsageBucket(3, 12_500, 0, 0),))


def test_sign_refuses_a_hand_made_bad_settlement(charger: SigningKey) -> None:
    with pytest.raises(TokenFormatError):
        sign_settlement(replace(build(), transaction_id="has space"), charger)
    with pytest.raises(TokenFormatError):
        sign_settlement(replace(build(), meter_stop_wh=0), charger)


# --- check_settlement (brief 7.7) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"order_id": "OTHER1"}, Reason.ORDER_MISMATCH),
        ({"charge_point_id": "CP-000999"}, Reason.WRONG_ISSUER),
        ({"evse_id": 1}, Reason.ORDER_MISMATCH),
        ({"tariff_id": "T-0002"}, Reason.ORDER_MISMATCH),
        ({"currency": "EUR"}, Reason.ORDER_MISMATCH),
        ({"started_at": T0 - LEEWAY - 1}, Reason.OUTSIDE_WINDOW),
        ({"started_at": T0 + 900 + LEEWAY + 1, "stopped_at": T0 + 9999}, Reason.OUTSIDE_WINDOW),
        ({"stopped_at": T0 + 100}, Reason.OUTSIDE_WINDOW),  # te before ts
        ({"meter_stop_wh": 1_012_499}, Reason.USAGE_MISMATCH),
        ({"meter_start_wh": 1_012_501}, Reason.USAGE_MISMATCH),  # m1 < m0
        ({"usage": (UsageBucket(3, 12_500, 0, 0),)}, Reason.USAGE_MISMATCH),
        ({"usage": (UsageBucket(1, 6_000, 0, 0), UsageBucket(1, 6_500, 0, 0))},
         Reason.USAGE_MISMATCH),
        ({"amount": 20001}, Reason.OVER_LIMIT),
        ({"amount": 1}, Reason.COST_MISMATCH),
        ({"usage": (UsageBucket(1, 7000, 1800, 0), UsageBucket(2, 5500, 1500, 0))},
         Reason.COST_MISMATCH),
    ],
)  # fmt: skip
def test_check_refusals(change: dict[str, Any], reason: Reason) -> None:
    s = replace(build(), **change)
    result = check_settlement(s, ORDER, leeway_s=LEEWAY)
    assert isinstance(result, Refusal) and result.reason is reason, result
    assert result.detail  # every refusal says what differed


def test_usage_seconds_must_fit_the_session() -> None:
    """A 60 s session that claims 400,000 charging seconds would be billed for them (up to
    lim.amt): the buckets may hold no more seconds than te - ts, give or take rounding."""
    claimed = (UsageBucket(1, 12_500, 400_000, 0),)
    s = build(usage=claimed, stopped_at=T0 + 120 + 60, issued_at=T0 + 200)
    assert refused(check_settlement(s, ORDER, leeway_s=LEEWAY), Reason.USAGE_MISMATCH)
    honest = build()  # 5,700 s of buckets over te - ts = 5,700 s
    assert check_settlement(replace(honest, stopped_at=T0 + 120 + 5698), ORDER, leeway_s=0) is None
    short = replace(honest, stopped_at=T0 + 120 + 5697)
    assert refused(check_settlement(short, ORDER, leeway_s=LEEWAY), Reason.USAGE_MISMATCH)


def test_a_settlement_from_the_future_is_refused() -> None:
    s = build()  # te = T0 + 5820, signed at T0 + 5900
    latest = T0 + 5900
    assert check_settlement(s, ORDER, leeway_s=LEEWAY, now=latest - LEEWAY) is None
    early = check_settlement(s, ORDER, leeway_s=LEEWAY, now=latest - LEEWAY - 1)
    assert refused(early, Reason.OUTSIDE_WINDOW)
    assert check_settlement(s, ORDER, leeway_s=LEEWAY) is None  # no clock given: not checked


def test_check_window_edges() -> None:
    s = build()
    for ts in (T0 - LEEWAY, T0 + 900 + LEEWAY):
        ok = replace(s, started_at=ts, stopped_at=ts + 5700)
        assert check_settlement(ok, ORDER, leeway_s=LEEWAY) is None


def test_check_recomputes_from_the_snapshot_not_a_newer_tariff() -> None:
    s = build()
    edited = replace(ORDER, tariff=replace(TOU, energy_price=99_000))
    # same tid and tou, other base price: bucket 0 is unused, so amounts still agree ...
    assert check_settlement(s, edited, leeway_s=LEEWAY) is None
    dearer = replace(ORDER, tariff=replace(TOU, fixed_fee=6000))
    # ... but a changed fee does not
    assert refused(check_settlement(s, dearer, leeway_s=LEEWAY), Reason.COST_MISMATCH)


def test_over_limit_is_reported_before_cost() -> None:
    s = replace(build(), amount=ORDER.limits.amount + 1)
    assert refused(check_settlement(s, ORDER, leeway_s=LEEWAY), Reason.OVER_LIMIT)


# --- verify: attacks and malformed input ----------------------------------------------------


def test_wrong_audience(charger: SigningKey) -> None:
    token = sign_settlement(build(audience="other-csms"), charger)
    assert refused(verify(token, charger), Reason.WRONG_AUDIENCE)


def test_unknown_key(charger: SigningKey, other: SigningKey) -> None:
    token = sign_settlement(build(), other)
    assert refused(verify(token, charger), Reason.UNKNOWN_KEY)


def test_changed_claim_with_the_old_signature(charger: SigningKey) -> None:
    token = sign_settlement(build(), charger)
    head, _, signature = token.split(".")
    for change in ({"amt": 1}, {"m1": 1_000_001}, {"jti": "OTHER1"}):
        body = b64(json.dumps({**claims_of(token), **change}).encode())
        assert refused(verify(f"{head}.{body}.{signature}", charger), Reason.BAD_SIGNATURE)


def test_kid_swapped_to_another_key(charger: SigningKey, other: SigningKey) -> None:
    _, body, signature = sign_settlement(build(), charger).split(".")
    head = b64(json.dumps(header_for(other)).encode())
    assert refused(verify(f"{head}.{body}.{signature}", other), Reason.BAD_SIGNATURE)


def test_alg_none_and_hs256(charger: SigningKey) -> None:
    claims = claims_of(sign_settlement(build(), charger))
    unsigned = forge({**header_for(charger), "alg": "none"}, claims, None)
    assert refused(verify(unsigned, charger), Reason.WRONG_ALGORITHM)
    head = b64(json.dumps({**header_for(charger), "alg": "HS256"}).encode())
    body = b64(json.dumps(claims).encode())
    mac = hmac.new(charger.public.to_pem(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert refused(verify(f"{head}.{body}.{b64(mac)}", charger), Reason.WRONG_ALGORITHM)


def test_start_token_presented_as_settlement(charger: SigningKey) -> None:
    token = issue_start_token(
        key=charger,
        charge_point_id=ISSUER,  # even with aud = the CSMS issuer id
        order_id="K7Q2M9XA",
        evse_id=2,
        tariff=TOU,
        limits=ORDER.limits,
        issued_at=T0,
        validity_s=900,
    )
    assert refused(verify(token, charger), Reason.WRONG_TYPE)
    assert refused(peek_settlement(token), Reason.WRONG_TYPE)


def test_trusted_keys_presented_as_settlement(charger: SigningKey) -> None:
    token = sign_trusted_keys(KeyRing.of([charger.public]), charger, issued_at=T0)
    assert refused(verify(token, charger), Reason.WRONG_TYPE)
    assert refused(peek_settlement(token), Reason.WRONG_TYPE)


@pytest.mark.parametrize("claim", CLAIMS)
def test_every_claim_is_required(charger: SigningKey, claim: str) -> None:
    claims = {k: v for k, v in claims_of(sign_settlement(build(), charger)).items() if k != claim}
    result = verify(forge(header_for(charger), claims, charger), charger)
    assert refused(result, Reason.MALFORMED) and claim in str(result), result


@pytest.mark.parametrize(
    "change",
    [
        {"txn": 42},
        {"txn": ""},
        {"evse": "2"},
        {"evse": 0},
        {"ts": True},
        {"te": 1.5},
        {"m0": "1000000"},
        {"m1": -1},
        {"u": {"0": [0, 1, 2, 3]}},
        {"u": [[0, 12500, 0]]},
        {"u": [[0, "12500", 0, 0]]},
        {"u": [[0, 12500, 0, 0], [0, 0, 0, 0]]},
        {"amt": "100"},
        {"amt": False},
        {"cur": "cny"},
        {"tid": ""},
        {"rsn": 5},
        {"seq": 1.0},
        {"off": "true"},
        {"off": 1},
        {"iat": "now"},
        {"iss": ["CP-000123"]},
        {"aud": [ISSUER]},
        {"jti": "lower"},
        {"te": T0},  # before ts
        {"m1": 999_999},  # below m0
    ],
)
def test_wrong_types_and_insane_values(charger: SigningKey, change: dict[str, Any]) -> None:
    claims = {**claims_of(sign_settlement(build(), charger)), **change}
    result = verify(forge(header_for(charger), claims, charger), charger)
    assert refused(result, Reason.MALFORMED), result


def test_unknown_claims_are_ignored(charger: SigningKey) -> None:
    claims = {**claims_of(sign_settlement(build(), charger)), "x": [1, {"y": None}]}
    assert verify(forge(header_for(charger), claims, charger), charger) == build()


@pytest.mark.parametrize("junk", [None, b"abc", "", "a.b", "x" * 100_000, "\udcff.a.b"])
def test_junk(charger: SigningKey, junk: object) -> None:
    assert refused(verify(junk, charger), Reason.MALFORMED)
    assert refused(peek_settlement(junk), Reason.MALFORMED)


def test_truncated(charger: SigningKey) -> None:
    token = sign_settlement(build(), charger)
    for cut in range(len(token) - 1, 0, -5):
        result = verify(token[:cut], charger)
        assert isinstance(result, Refusal), cut
        assert result.reason in {Reason.MALFORMED, Reason.BAD_SIGNATURE}


def test_peek_needs_a_readable_iss(charger: SigningKey) -> None:
    claims = {**claims_of(sign_settlement(build(), charger)), "iss": 7}
    assert refused(peek_settlement(forge(header_for(charger), claims, charger)), Reason.MALFORMED)
    assert refused(
        peek_settlement(forge({**header_for(charger), "alg": "RS256"}, claims, charger)),
        Reason.WRONG_ALGORITHM,
    )


_PROPERTY_KEY = generate_key()


@settings(max_examples=60, deadline=None)
@given(
    buckets=st.lists(
        st.tuples(st.integers(0, 10**7), st.integers(0, 10**6), st.integers(0, 10**6)),
        min_size=0,
        max_size=3,
    ),
    meter_start=st.integers(0, 10**12),
    start_offset=st.integers(-LEEWAY, 900 + LEEWAY),
    spare=st.integers(0, 10**6),  # te - ts beyond the seconds the buckets hold
    txn=st.from_regex(r"[\x21-\x7e]{1,36}", fullmatch=True),
    seq=st.integers(0, 2**53 - 1),
    offline=st.booleans(),
)
def test_any_honest_settlement_round_trips_and_pays(
    buckets: list[tuple[int, int, int]],
    meter_start: int,
    start_offset: int,
    spare: int,
    txn: str,
    seq: int,
    offline: bool,
) -> None:
    usage = tuple(UsageBucket(i, wh, c, idle) for i, (wh, c, idle) in enumerate(buckets))
    started = T0 + start_offset
    s = build(
        usage=usage,
        meter_start_wh=meter_start,
        meter_stop_wh=meter_start + sum(b.wh for b in usage),
        started_at=started,
        stopped_at=started + sum(b.charging_s + b.idle_s for b in usage) + spare,
        transaction_id=txn,
        seq=seq,
        offline=offline,
    )
    assert s.amount <= ORDER.limits.amount
    back = verify(sign_settlement(s, _PROPERTY_KEY), _PROPERTY_KEY)
    assert back == s
    assert check_settlement(back, ORDER, leeway_s=LEEWAY) is None


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{segment(header)}.{segment(claims)}."


@pytest.mark.parametrize(
    ("kid", "jti"),
    [("\ud800", "ORDER1"), ("k1", "\udfff"), ("k1\udbff", "\ud800ORDER")],
)
def test_json_with_a_lone_surrogate_is_malformed(kid: str, jti: str) -> None:
    """JSON may spell a lone surrogate ("\\ud800"), no UTF-8 database or log can take one: the
    CSMS looked rows up by the unverified kid and jti (found by the OCPP fuzz test)."""
    token = _unsigned({"alg": "ES256", "typ": SETTLE_TYP, "kid": kid}, {"iss": "CP1", "jti": jti})
    refused = peek_settlement(token)
    assert isinstance(refused, Refusal) and refused.reason == Reason.MALFORMED
    assert isinstance(jws.read_header(token, typ=SETTLE_TYP), Refusal) == (kid != "k1")
    assert isinstance(jws.unverified_claims(token), Refusal) == (jti != "ORDER1")
