"""The settlement read once (D18): the same verdict as PyJWT's pipeline, token by token.

:func:`verify_settlement` splits and decodes the token once (``jws.parse`` then
``jws.verify_parsed``); :func:`jws.verify` is the PyJWT pipeline the start and trusted-keys
tokens still use. Every token below, honest or not, must get the same settlement or the same
refusal reason from both.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from jwt.algorithms import ECAlgorithm

from qr_extension import jws
from qr_extension.errors import TariffError, TokenFormatError
from qr_extension.keys import SigningKey, generate_key
from qr_extension.refusal import Reason, Refusal
from qr_extension.settlement import (
    _REQUIRED,
    SETTLE_TYP,
    Settlement,
    _from_claims,
    parse_settlement,
    peek_parsed,
    peek_settlement,
    sign_settlement,
    verify_parsed_settlement,
    verify_settlement,
)
from qr_extension.start import StartAuthorization
from qr_extension.tariff import Limits, Tariff, UsageBucket

ISSUER = "qrcharge"
T0 = 1_795_000_000
KEY = generate_key()
OTHER = generate_key()
ORDER = StartAuthorization(
    order_id="K7Q2M9XA",
    charge_point_id="CP-1",
    evse_id=1,
    issued_at=T0,
    expires_at=T0 + 900,
    limits=Limits(amount=20000),
    tariff=Tariff(id="T-1", currency="CNY", fixed_fee=0, energy_price=10000, time_price=0),
    kid="AAAAAAAA",
)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: object, key: SigningKey | None = KEY) -> str:
    head, body = b64(json.dumps(header).encode()), b64(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    signature = b"" if key is None else ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input, key.key)
    return f"{head}.{body}.{b64(signature)}"


def honest() -> dict[str, Any]:
    from qr_extension.settlement import build_settlement

    s = build_settlement(
        ORDER, audience=ISSUER, transaction_id="42", started_at=T0 + 60, stopped_at=T0 + 660,
        meter_start_wh=0, meter_stop_wh=5000, usage=[UsageBucket(0, 5000, 600, 0)],
        reason="EVDisconnected", seq=3, offline=False, issued_at=T0 + 700,
    )  # fmt: skip
    token = sign_settlement(s, KEY)
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


HEADER = {"alg": "ES256", "typ": SETTLE_TYP, "kid": KEY.kid}


def _tweak_last(segment: str) -> str | None:
    """The same bytes, written with non-zero padding bits (no two strings may decode alike)."""
    if len(segment) % 4 not in (2, 3):
        return None
    last = ALPHABET.index(segment[-1])
    return segment[:-1] + ALPHABET[last | 1] if last | 1 != last else None


def pyjwt_pipeline(token: object, key: SigningKey = KEY) -> Settlement | Refusal:
    verified = jws.verify(
        token,
        typ=SETTLE_TYP,
        key_for=lambda kid: key.public if kid == key.kid else None,
        require=_REQUIRED,
        audience=ISSUER,
        audience_mismatch=Reason.WRONG_AUDIENCE,
    )
    if isinstance(verified, Refusal):
        return verified
    try:
        return _from_claims(verified.claims)
    except (TokenFormatError, TariffError) as exc:
        return Refusal(Reason.MALFORMED, str(exc))


def verdict(result: Settlement | Refusal) -> object:
    return result.reason if isinstance(result, Refusal) else result


def cases() -> list[tuple[str, object]]:
    claims = honest()
    token = forge(HEADER, claims)
    head, body, sig = token.split(".")
    found: list[tuple[str, object]] = [
        ("honest", token),
        ("other key's kid", forge({**HEADER, "kid": OTHER.kid}, claims, OTHER)),
        ("signed by another key", forge(HEADER, claims, OTHER)),
        ("tampered amount", f"{head}.{b64(json.dumps({**claims, 'amt': 1}).encode())}.{sig}"),
        ("start typ", forge({**HEADER, "typ": "start+jwt"}, claims)),
        ("typ with application/", forge({**HEADER, "typ": "application/SETTLE+JWT"}, claims)),
        ("alg none", forge({**HEADER, "alg": "none"}, claims, None)),
        ("alg RS256", forge({**HEADER, "alg": "RS256"}, claims)),
        ("no kid", forge({"alg": "ES256", "typ": SETTLE_TYP}, claims)),
        ("kid a number, typ wrong", forge({**HEADER, "kid": 7, "typ": "x"}, claims)),
        ("crit", forge({**HEADER, "crit": ["exp"]}, claims)),
        ("crit b64", forge({**HEADER, "crit": ["b64"], "b64": True}, claims)),
        ("crit empty, typ wrong", forge({**HEADER, "crit": [], "typ": "x"}, claims)),
        ("b64 false", forge({**HEADER, "b64": False}, claims)),
        ("zip", forge({**HEADER, "zip": "DEF"}, claims)),
        ("header a list", forge([1], claims)),  # type: ignore[arg-type]
        ("payload a list", forge(HEADER, [claims])),
        ("payload a list, bad signature", forge(HEADER, [claims], OTHER)),
        ("payload not JSON", f"{head}.{b64(b'{not json')}.{sig}"),
        ("aud a list", forge(HEADER, {**claims, "aud": [ISSUER]})),
        ("aud a number", forge(HEADER, {**claims, "aud": 5})),
        ("aud empty", forge(HEADER, {**claims, "aud": ""})),
        ("aud another CSMS", forge(HEADER, {**claims, "aud": "other"})),
        ("sub a number", forge(HEADER, {**claims, "sub": 5})),
        ("jti a number", forge(HEADER, {**claims, "jti": 5})),
        ("jti null", forge(HEADER, {**claims, "jti": None})),
        ("amt a string", forge(HEADER, {**claims, "amt": "5"})),
        ("te before ts", forge(HEADER, {**claims, "te": claims["ts"] - 1})),
        ("empty signature", f"{head}.{body}."),
        ("short signature", f"{head}.{body}.{b64(b'x' * 10)}"),
        ("padding", f"{head}.{body}.{sig}=="),
        ("not a str", token.encode()),
        ("two segments", f"{head}.{body}"),
        ("spaces around", f"  {token}\n"),
    ]
    found += [(f"no {name}", forge(HEADER, {k: v for k, v in claims.items() if k != name}))
              for name in _REQUIRED]  # fmt: skip
    for n, segment in enumerate((head, body, sig)):
        tweaked = _tweak_last(segment)
        if tweaked is not None:
            parts = [head, body, sig]
            parts[n] = tweaked
            found.append((f"non-canonical segment {n}", ".".join(parts)))
    found += [(f"cut at {cut}", token[:cut]) for cut in range(len(token) - 1, 0, -7)]
    return found


@pytest.mark.parametrize(("case", "token"), cases(), ids=[c for c, _ in cases()])
def test_same_verdict_as_the_pyjwt_pipeline(case: str, token: object) -> None:
    assert verdict(verify_settlement(token, key=KEY.public, audience=ISSUER)) == verdict(
        pyjwt_pipeline(token)
    )


def test_the_cases_cover_every_outcome() -> None:
    verdicts = {verdict(verify_settlement(t, key=KEY.public, audience=ISSUER)) for _, t in cases()}
    reasons = {v for v in verdicts if isinstance(v, Reason)}
    assert reasons >= {
        Reason.MALFORMED, Reason.WRONG_TYPE, Reason.WRONG_ALGORITHM, Reason.UNKNOWN_KEY,
        Reason.BAD_SIGNATURE, Reason.WRONG_AUDIENCE,
    }  # fmt: skip
    assert any(isinstance(v, Settlement) for v in verdicts)


def test_a_non_canonical_encoding_is_refused() -> None:
    token = forge(HEADER, honest())
    head, body, sig = token.split(".")
    tweaked = [t for t in (_tweak_last(head), _tweak_last(body), _tweak_last(sig)) if t]
    assert tweaked, "no segment with padding bits to tweak"
    for n, segment in enumerate((head, body, sig)):
        other = _tweak_last(segment)
        if other is None:
            continue
        parts = [head, body, sig]
        parts[n] = other
        result = verify_settlement(".".join(parts), key=KEY.public, audience=ISSUER)
        assert isinstance(result, Refusal) and result.reason is Reason.MALFORMED


def test_parsed_once_then_peeked_and_verified() -> None:
    token = forge(HEADER, honest())
    parsed = parse_settlement(token)
    assert isinstance(parsed, jws.Parsed)
    assert peek_parsed(parsed) == peek_settlement(token) == ("CP-1", KEY.kid)
    assert verify_parsed_settlement(parsed, key=KEY.public, audience=ISSUER) == verify_settlement(
        token, key=KEY.public, audience=ISSUER
    )
    assert isinstance(verify_parsed_settlement(parsed, key=OTHER.public, audience=ISSUER), Refusal)
