"""Start authorization: issue, verify on the charger, every refusal, classic JWT attacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from dataclasses import replace
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm

from qr_extension.errors import TokenFormatError
from qr_extension.jws import MAX_TOKEN_LENGTH
from qr_extension.keys import KeyRing, SigningKey, generate_key
from qr_extension.refusal import Reason, Refusal
from qr_extension.settlement import build_settlement, sign_settlement
from qr_extension.start import (
    START_TYP,
    MemoryUsedTokens,
    StartAuthorization,
    inspect_token,
    issue_start_token,
    read_start_token,
    verify_start_token,
)
from qr_extension.tariff import (
    Limits,
    Tariff,
    TouPeriod,
    UsageBucket,
    limits_to_claim,
    tariff_to_claim,
)
from qr_extension.trust import sign_trusted_keys

CP = "CP-000123"
T0 = 1_795_000_000  # 2026-11-18, a fixed "now": the wall clock is never read
LEEWAY = 300
VALIDITY = 900

FLAT = Tariff(id="FLAT", currency="CNY", energy_price=12000, time_price=3000)
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
    cap=20000,
)
ALL_LIMITS = Limits(amount=20000, energy_wh=30000, duration_s=7200)


@pytest.fixture(scope="module")
def csms() -> SigningKey:
    return generate_key()


@pytest.fixture(scope="module")
def csms_next() -> SigningKey:
    return generate_key()


@pytest.fixture(scope="module")
def stranger() -> SigningKey:
    return generate_key()


@pytest.fixture(scope="module")
def ring(csms: SigningKey, csms_next: SigningKey) -> KeyRing:
    return KeyRing.of([csms.public, csms_next.public])


def issue(key: SigningKey, **changes: Any) -> str:
    args: dict[str, Any] = {
        "key": key,
        "charge_point_id": CP,
        "order_id": "K7Q2M9XA",
        "evse_id": 1,
        "tariff": TOU,
        "limits": ALL_LIMITS,
        "issued_at": T0,
        "validity_s": VALIDITY,
    }
    args.update(changes)
    return issue_start_token(**args)


def verify(token: object, ring: KeyRing, **changes: Any) -> StartAuthorization | Refusal:
    args: dict[str, Any] = {
        "trusted": ring,
        "charge_point_id": CP,
        "evse_ids": (1, 2),
        "waiting_evse_ids": (1,),
        "now": T0 + 10,
        "leeway_s": LEEWAY,
        "used": MemoryUsedTokens(),
    }
    args.update(changes)
    return verify_start_token(token, **args)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    return inspect_token(token)[1]


def forge(
    header: dict[str, Any], claims: dict[str, Any], key: SigningKey | None, *, raw: bool = False
) -> str:
    """A compact JWS built by hand, ES256-signed by ``key`` (unsigned when None)."""
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode()) if not raw else b64(claims["raw"])
    signing_input = f"{head}.{body}".encode()
    signature = b"" if key is None else ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input, key.key)
    return f"{head}.{body}.{b64(signature)}"


def header_for(key: SigningKey, typ: str = START_TYP) -> dict[str, Any]:
    return {"alg": "ES256", "typ": typ, "kid": key.kid}


def refused(result: object, reason: Reason) -> bool:
    return isinstance(result, Refusal) and result.reason is reason


# --- round trips ------------------------------------------------------------------------------

TARIFFS = [
    FLAT,
    TOU,
    Tariff(id="IDLE", currency="EUR", fixed_fee=1, idle_price=5, idle_grace_min=0),
    Tariff(id="CAP", currency="JPY", energy_price=1, cap=0, tz_offset_min=-300),
    Tariff(id="ONE TOU", currency="KWD", tou=(TouPeriod(0, 0, 1, 2),)),
]


@pytest.mark.parametrize(
    ("evse", "wh", "seconds", "tariff"),
    list(itertools.product([1, 7, None], [None, 1, 30000], [None, 60], TARIFFS)),
)
def test_round_trip_of_every_optional_claim(
    csms: SigningKey,
    ring: KeyRing,
    evse: int | None,
    wh: int | None,
    seconds: int | None,
    tariff: Tariff,
) -> None:
    limits = Limits(amount=123, energy_wh=wh, duration_s=seconds)
    token = issue(csms, evse_id=evse, tariff=tariff, limits=limits)
    claims = claims_of(token)
    assert ("evse" in claims) is (evse is not None)
    # lim and tar are written by the tariff module's claim functions, whatever their layout
    assert claims["lim"] == limits_to_claim(limits)
    assert claims["tar"] == tariff_to_claim(tariff)
    auth = verify(token, ring, evse_ids=(1, 7), waiting_evse_ids=(7,))
    assert auth == StartAuthorization(
        order_id="K7Q2M9XA",
        charge_point_id=CP,
        evse_id=7 if evse is None else evse,  # resolved to the one waiting EVSE
        issued_at=T0,
        expires_at=T0 + VALIDITY,
        limits=limits,
        tariff=tariff,
        kid=csms.kid,
    )
    unverified = read_start_token(token)
    assert isinstance(unverified, StartAuthorization)
    assert unverified.evse_id == evse and unverified.tariff == tariff


def test_header_and_compact_claims(csms: SigningKey) -> None:
    token = issue(csms)
    header, claims = inspect_token(token)
    assert header == {"alg": "ES256", "typ": "start+jwt", "kid": csms.kid}
    assert set(claims) == {"aud", "jti", "evse", "iat", "exp", "lim", "tar"}
    assert claims["lim"] == limits_to_claim(ALL_LIMITS)
    payload = base64.urlsafe_b64decode(token.split(".")[1] + "==")
    assert b" " not in payload and b", " not in payload and b": " not in payload


def test_realistic_token_size(csms: SigningKey) -> None:
    # two tou periods, idle fee, cap, tz, all limits, 8-character order id: docs/protocol.md
    token = issue(csms)
    assert len(token) <= 450, len(token)  # QR version 16 at level M (brief 2, size budget)
    flat = issue(csms, tariff=FLAT)
    assert len(flat) <= 362, len(flat)  # version 14


def test_a_key_of_the_ring_other_than_the_first_verifies(
    csms_next: SigningKey, ring: KeyRing
) -> None:
    auth = verify(issue(csms_next), ring)
    assert isinstance(auth, StartAuthorization) and auth.kid == csms_next.kid


def test_unknown_claims_are_ignored(csms: SigningKey, ring: KeyRing) -> None:
    claims = {**claims_of(issue(csms)), "note": "hi", "nbf": "not even a number"}
    auth = verify(forge(header_for(csms), claims, csms), ring)
    assert isinstance(auth, StartAuthorization)


@pytest.mark.parametrize("typ", ["start+jwt", "START+JWT", "application/start+jwt"])
def test_typ_is_a_media_type(csms: SigningKey, ring: KeyRing, typ: str) -> None:
    token = forge(header_for(csms, typ), claims_of(issue(csms)), csms)
    assert isinstance(verify(token, ring), StartAuthorization)


def test_surrounding_whitespace_from_a_scanner_is_tolerated(
    csms: SigningKey, ring: KeyRing
) -> None:
    assert isinstance(verify(f" {issue(csms)}\n", ring), StartAuthorization)


# --- charger-side checks ------------------------------------------------------------------------


def test_wrong_charger(csms: SigningKey, ring: KeyRing) -> None:
    result = verify(issue(csms, charge_point_id="CP-000124"), ring)
    assert refused(result, Reason.WRONG_CHARGER)
    assert "CP-000124" in str(result)


def test_wrong_evse(csms: SigningKey, ring: KeyRing) -> None:
    assert refused(verify(issue(csms, evse_id=3), ring), Reason.WRONG_EVSE)


def test_named_evse_need_not_be_the_waiting_one(csms: SigningKey, ring: KeyRing) -> None:
    auth = verify(issue(csms, evse_id=2), ring, waiting_evse_ids=())
    assert isinstance(auth, StartAuthorization) and auth.evse_id == 2


@pytest.mark.parametrize("waiting", [(), (1, 2)])
def test_token_without_evse_needs_exactly_one_waiting(
    csms: SigningKey, ring: KeyRing, waiting: tuple[int, ...]
) -> None:
    result = verify(issue(csms, evse_id=None), ring, waiting_evse_ids=waiting)
    assert refused(result, Reason.NO_EVSE_WAITING)


def test_only_this_chargers_evses_count_as_waiting(csms: SigningKey, ring: KeyRing) -> None:
    result = verify(issue(csms, evse_id=None), ring, evse_ids=(1, 2), waiting_evse_ids=(9,))
    assert refused(result, Reason.NO_EVSE_WAITING)


def test_validity_window_edges(csms: SigningKey, ring: KeyRing) -> None:
    token = issue(csms)
    earliest, latest = T0 - LEEWAY, T0 + VALIDITY + LEEWAY
    assert isinstance(verify(token, ring, now=earliest), StartAuthorization)
    assert isinstance(verify(token, ring, now=latest), StartAuthorization)
    assert refused(verify(token, ring, now=earliest - 1), Reason.NOT_YET_VALID)
    assert refused(verify(token, ring, now=latest + 1), Reason.EXPIRED)
    assert refused(verify(token, ring, now=latest + 1, leeway_s=0), Reason.EXPIRED)
    assert refused(verify(token, ring, now=T0 + VALIDITY + 1, leeway_s=0), Reason.EXPIRED)


def test_time_comes_from_now_not_the_wall_clock(csms: SigningKey, ring: KeyRing) -> None:
    old = issue(csms, issued_at=1_000_000_000)  # 2001: long expired by the wall clock
    assert isinstance(verify(old, ring, now=1_000_000_100), StartAuthorization)
    future = issue(csms, issued_at=4_000_000_000)  # 2096: not valid yet by the wall clock
    assert isinstance(verify(future, ring, now=4_000_000_000), StartAuthorization)
    assert refused(verify(future, ring), Reason.NOT_YET_VALID)


def test_replayed(csms: SigningKey, ring: KeyRing) -> None:
    token = issue(csms)
    used = MemoryUsedTokens()
    auth = verify(token, ring, used=used)
    assert isinstance(auth, StartAuthorization)
    assert isinstance(verify(token, ring, used=used), StartAuthorization)  # not marked by verify
    used.mark_used(auth.order_id, auth.usable_until(LEEWAY))
    assert refused(verify(token, ring, used=used), Reason.REPLAYED)
    # the same order id in a fresh token is still a replay on this charger
    assert refused(verify(issue(csms, issued_at=T0 + 60), ring, used=used), Reason.REPLAYED)


def test_prune_keeps_ids_that_could_still_be_accepted(csms: SigningKey, ring: KeyRing) -> None:
    token = issue(csms)
    used = MemoryUsedTokens()
    auth = verify(token, ring, used=used)
    assert isinstance(auth, StartAuthorization)
    until = auth.usable_until(LEEWAY)
    used.mark_used(auth.order_id, until)
    used.mark_used(auth.order_id, until - 100)  # never shortens the record
    used.prune(until)
    assert refused(verify(token, ring, used=used, now=until), Reason.REPLAYED)
    used.prune(until + 1)
    assert len(used) == 0
    assert refused(verify(token, ring, used=used, now=until + 1), Reason.EXPIRED)


# --- attacks ----------------------------------------------------------------------------------


def test_alg_none_unsigned_token(csms: SigningKey, ring: KeyRing) -> None:
    claims = claims_of(issue(csms))
    for alg in ("none", "None", "NONE"):
        token = forge({"alg": alg, "typ": START_TYP, "kid": csms.kid}, claims, None)
        assert refused(verify(token, ring), Reason.WRONG_ALGORITHM)
    no_alg = forge({"typ": START_TYP, "kid": csms.kid}, claims, None)
    assert refused(verify(no_alg, ring), Reason.WRONG_ALGORITHM)


def test_hs256_signed_with_the_public_key_as_secret(csms: SigningKey, ring: KeyRing) -> None:
    header = {"alg": "HS256", "typ": START_TYP, "kid": csms.kid}
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims_of(issue(csms))).encode())
    for secret in (csms.public.to_pem(), json.dumps(csms.public.to_jwk()).encode()):
        mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        token = f"{head}.{body}.{b64(mac)}"
        assert refused(verify(token, ring), Reason.WRONG_ALGORITHM)


@pytest.mark.parametrize("alg", ["ES384", "ES512", "RS256", "PS256", "EdDSA", "es256"])
def test_other_algorithms(csms: SigningKey, ring: KeyRing, alg: str) -> None:
    token = forge({"alg": alg, "typ": START_TYP, "kid": csms.kid}, claims_of(issue(csms)), csms)
    assert refused(verify(token, ring), Reason.WRONG_ALGORITHM)


def test_signed_by_an_unknown_key(stranger: SigningKey, ring: KeyRing) -> None:
    result = verify(issue(stranger), ring)
    assert refused(result, Reason.UNKNOWN_KEY)


def test_unknown_kid_with_a_trusted_signature(csms: SigningKey, ring: KeyRing) -> None:
    token = forge({**header_for(csms), "kid": "AAAAAAAA"}, claims_of(issue(csms)), csms)
    assert refused(verify(token, ring), Reason.UNKNOWN_KEY)


def test_changed_claim_with_the_old_signature(csms: SigningKey, ring: KeyRing) -> None:
    token = issue(csms)
    head, _, signature = token.split(".")
    more = {"lim": limits_to_claim(Limits(amount=999999))}
    for change in (more, {"aud": "CP-000124"}, {"exp": T0 + 99999}):
        claims = {**claims_of(token), **change}
        tampered = f"{head}.{b64(json.dumps(claims).encode())}.{signature}"
        assert refused(verify(tampered, ring), Reason.BAD_SIGNATURE)


def test_kid_swapped_to_another_trusted_key(
    csms: SigningKey, csms_next: SigningKey, ring: KeyRing
) -> None:
    _, body, signature = issue(csms).split(".")
    head = b64(json.dumps(header_for(csms_next)).encode())
    assert refused(verify(f"{head}.{body}.{signature}", ring), Reason.BAD_SIGNATURE)


def test_signature_garbage(csms: SigningKey, ring: KeyRing) -> None:
    head, body, _ = issue(csms).split(".")
    for signature in ("", "AAAA", b64(bytes(64)), b64(bytes(72))):
        assert refused(verify(f"{head}.{body}.{signature}", ring), Reason.BAD_SIGNATURE)


def test_settlement_presented_as_start(csms: SigningKey, ring: KeyRing) -> None:
    auth = verify(issue(csms), ring)
    assert isinstance(auth, StartAuthorization)
    settlement = build_settlement(
        auth,
        audience=CP,  # even with aud = this charger, a settle+jwt never starts anything
        transaction_id="1",
        started_at=T0,
        stopped_at=T0 + 60,
        meter_start_wh=0,
        meter_stop_wh=0,
        usage=[UsageBucket(0, 0, 60, 0)],
        reason="Local",
        seq=1,
        offline=True,
        issued_at=T0 + 60,
    )
    token = sign_settlement(settlement, csms)  # even signed by a trusted CSMS key
    assert refused(verify(token, ring), Reason.WRONG_TYPE)
    assert refused(read_start_token(token), Reason.WRONG_TYPE)


def test_trusted_keys_presented_as_start(csms: SigningKey, ring: KeyRing) -> None:
    token = sign_trusted_keys(ring, csms, issued_at=T0)
    assert refused(verify(token, ring), Reason.WRONG_TYPE)


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "settle+jwt", "keys+jwt", "start", 7])
def test_wrong_or_missing_typ(csms: SigningKey, ring: KeyRing, typ: object) -> None:
    header = {k: v for k, v in {**header_for(csms), "typ": typ}.items() if v is not None}
    token = forge(header, claims_of(issue(csms)), csms)
    assert refused(verify(token, ring), Reason.WRONG_TYPE)


# --- malformed input never raises -------------------------------------------------------------


@pytest.mark.parametrize(
    "junk",
    [
        None,
        42,
        ["a.b.c"],
        b"eyJ.eyJ.sig",
        b"\xff\xfe\x00",
        "",
        "   ",
        "a.b",
        "a.b.c.d",
        "....",
        "héllo.wörld.sig",
        "eyJhbGciOiJFUzI1NiJ9.e30.\x00",
        "x" * 100_000,
        "a." * 60_000,
    ],
)
def test_junk_is_malformed(ring: KeyRing, junk: object) -> None:
    assert refused(verify(junk, ring), Reason.MALFORMED)
    assert refused(read_start_token(junk), Reason.MALFORMED)


def test_non_utf8_bytes_inside_segments(csms: SigningKey, ring: KeyRing) -> None:
    token = forge(header_for(csms), {"raw": b"\xff\xfe\xfd"}, csms, raw=True)
    assert refused(verify(token, ring), Reason.MALFORMED)
    bad_header = b64(b"\xff\xfe") + "." + token.split(".", 1)[1]
    assert refused(verify(bad_header, ring), Reason.MALFORMED)


def test_length_limit(csms: SigningKey, ring: KeyRing) -> None:
    token = issue(csms)
    padded = token + " " * (MAX_TOKEN_LENGTH - len(token))
    assert isinstance(verify(padded, ring), StartAuthorization)
    assert refused(verify(padded + " ", ring), Reason.MALFORMED)


def test_truncated_tokens(csms: SigningKey, ring: KeyRing) -> None:
    token = issue(csms)
    for cut in range(len(token) - 1, 0, -7):
        result = verify(token[:cut], ring)
        assert isinstance(result, Refusal), cut
        assert result.reason in {Reason.MALFORMED, Reason.BAD_SIGNATURE}


def test_payload_must_be_a_json_object(csms: SigningKey, ring: KeyRing) -> None:
    for raw in (b"[1,2]", b"null", b"not json", b'{"a":1,}', b"\xef\xbb\xbf{}"):
        token = forge(header_for(csms), {"raw": raw}, csms, raw=True)
        assert refused(verify(token, ring), Reason.MALFORMED), raw[:10]


@pytest.mark.parametrize(
    "change",
    [
        {"evse": "1"},
        {"evse": 0},
        {"evse": 1.0},
        {"evse": True},
        {"exp": True},
        {"exp": "1795000900"},
        {"exp": 1795000900.5},
        {"exp": T0 - 1},  # before iat
        {"iat": None},
        {"iat": -1},
        {"iat": 10**30},
        {"jti": "k7q2m9xa"},
        {"jti": "A" * 21},
        {"jti": ""},
        {"jti": 12345},
        {"jti": "ORDER-1"},
        {"aud": [CP]},
        {"aud": [CP, "CP-000124"]},
        {"aud": ""},
        {"aud": 123},
        # invalid in any layout of lim and tar (object or positional array)
        {"lim": None},
        {"lim": {}},
        {"lim": []},
        {"lim": 100},
        {"lim": ["100"]},
        {"lim": [-1]},
        {"lim": {"amt": "100"}},
        {"tar": None},
        {"tar": {}},
        {"tar": []},
        {"tar": ["X"]},
        {"tar": {"id": "X"}},
        {"tar": ["X", "CNY", 0, "1", 0]},
        {"tar": {"id": "X", "cur": "CNY", "f": 0, "e": "1", "t": 0}},
        {"tar": "FLAT"},
    ],
)
def test_wrong_types_are_malformed(csms: SigningKey, ring: KeyRing, change: dict[str, Any]) -> None:
    claims = {**claims_of(issue(csms)), **change}
    claims = {k: v for k, v in claims.items() if v is not None}
    token = forge(header_for(csms), claims, csms)
    result = verify(token, ring)
    assert refused(result, Reason.MALFORMED), result


@pytest.mark.parametrize("claim", ["aud", "jti", "iat", "exp", "lim", "tar"])
def test_every_required_claim(csms: SigningKey, ring: KeyRing, claim: str) -> None:
    claims = {k: v for k, v in claims_of(issue(csms)).items() if k != claim}
    result = verify(forge(header_for(csms), claims, csms), ring)
    assert refused(result, Reason.MALFORMED) and claim in str(result)
    assert refused(read_start_token(forge(header_for(csms), claims, csms)), Reason.MALFORMED)


@pytest.mark.parametrize(
    "header",
    [
        {"kid": 5},
        {"kid": None},
        {"crit": ["exp"]},
        {"crit": ["b64"], "b64": False},
        {"zip": "DEF"},
    ],
)
def test_bad_headers(csms: SigningKey, ring: KeyRing, header: dict[str, Any]) -> None:
    full = {k: v for k, v in {**header_for(csms), **header}.items() if v is not None}
    token = forge(full, claims_of(issue(csms)), csms)
    assert refused(verify(token, ring), Reason.MALFORMED)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    ring = KeyRing()
    result = verify(text, ring)
    assert isinstance(result, Refusal)


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0), char=st.sampled_from("AQgw_-.x9= é"))
def test_mutated_tokens_never_raise(position: int, char: str) -> None:
    key = _MUTATION_KEY
    token = issue(key)
    index = position % len(token)
    mutated = token[:index] + char + token[index + 1 :]
    result = verify(mutated, KeyRing.of([key.public]))
    if isinstance(result, StartAuthorization):
        # base64url's unused low bits: the same bytes, so the same authorization
        assert result.order_id == "K7Q2M9XA" and result.limits == ALL_LIMITS


_MUTATION_KEY = generate_key()


# --- issuing and reading --------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"order_id": "lower"},
        {"order_id": ""},
        {"order_id": "A" * 21},
        {"evse_id": 0},
        {"evse_id": "1"},
        {"validity_s": 0},
        {"validity_s": 1.5},
        {"issued_at": -5},
        {"charge_point_id": ""},
        {"charge_point_id": "has space"},
        {"tariff": "FLAT"},
        {"limits": 100},
    ],
)
def test_issue_refuses_values_no_charger_accepts(csms: SigningKey, change: dict[str, Any]) -> None:
    with pytest.raises(TokenFormatError):
        issue(csms, **change)


def test_read_start_token_does_not_verify(stranger: SigningKey) -> None:
    token = issue(stranger, charge_point_id="ELSEWHERE", issued_at=1)
    auth = read_start_token(token)
    assert isinstance(auth, StartAuthorization)
    assert auth.kid == stranger.kid and auth.charge_point_id == "ELSEWHERE"


def test_inspect_token(csms: SigningKey) -> None:
    header, claims = inspect_token(issue(csms))
    assert header["typ"] == START_TYP and claims["jti"] == "K7Q2M9XA"
    for junk in ("nope", "a.b.c", None, "x" * 5000):
        with pytest.raises(TokenFormatError):
            inspect_token(junk)


def test_pyjwt_agrees_the_token_is_valid_es256(csms: SigningKey) -> None:
    claims = jwt.decode(
        issue(csms),
        csms.public.key,
        algorithms=["ES256"],
        audience=CP,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["jti"] == "K7Q2M9XA"


def test_authorization_is_frozen(csms: SigningKey, ring: KeyRing) -> None:
    auth = verify(issue(csms), ring)
    assert isinstance(auth, StartAuthorization)
    assert replace(auth, evse_id=2) != auth
    with pytest.raises(AttributeError):
        auth.order_id = "X"  # type: ignore[misc]


def test_deeply_nested_json_within_the_length_limit(csms: SigningKey, ring: KeyRing) -> None:
    # deeper than the JSON parser recurses: RecursionError must become a refusal
    deep = b"[" * 1400 + b"]" * 1400
    token = forge(header_for(csms), {"raw": deep}, csms, raw=True)
    assert len(token) <= MAX_TOKEN_LENGTH
    assert refused(verify(token, ring), Reason.MALFORMED)
    assert refused(read_start_token(token), Reason.MALFORMED)
    with pytest.raises(TokenFormatError):
        inspect_token(token)
    nested_claim = b'{"aud":"CP-000123","x":' + b"[" * 1400 + b"]" * 1400 + b"}"
    token = forge(header_for(csms), {"raw": nested_claim}, csms, raw=True)
    assert len(token) <= MAX_TOKEN_LENGTH
    assert refused(verify(token, ring), Reason.MALFORMED)


@settings(max_examples=60, deadline=None)
@given(
    order_id=st.from_regex(r"[A-Z0-9]{1,20}", fullmatch=True),
    charge_point_id=st.from_regex(r"[\x21-\x7e]{1,64}", fullmatch=True),
    evse=st.none() | st.integers(1, 2**31 - 1),
    amount=st.integers(0, 2**53 - 1),
    wh=st.none() | st.integers(1, 2**53 - 1),
    seconds=st.none() | st.integers(1, 2**53 - 1),
    issued_at=st.integers(0, 4_000_000_000),
    validity=st.integers(1, 10**6),
)
def test_any_valid_token_round_trips(
    order_id: str,
    charge_point_id: str,
    evse: int | None,
    amount: int,
    wh: int | None,
    seconds: int | None,
    issued_at: int,
    validity: int,
) -> None:
    key = _MUTATION_KEY
    limits = Limits(amount=amount, energy_wh=wh, duration_s=seconds)
    token = issue(
        key,
        order_id=order_id,
        charge_point_id=charge_point_id,
        evse_id=evse,
        limits=limits,
        issued_at=issued_at,
        validity_s=validity,
    )
    waiting = 5 if evse is None else evse
    auth = verify(
        token,
        KeyRing.of([key.public]),
        charge_point_id=charge_point_id,
        evse_ids=(waiting,),
        waiting_evse_ids=(waiting,),
        now=issued_at + validity,
    )
    assert auth == StartAuthorization(
        order_id, charge_point_id, waiting, issued_at, issued_at + validity, limits, TOU, key.kid
    )
