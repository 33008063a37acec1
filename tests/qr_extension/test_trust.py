"""TrustedKeys JWS: signed key sets, the trust-first-keys policy, and what must be refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from jwt.algorithms import ECAlgorithm

from qr_extension.errors import TokenFormatError
from qr_extension.keys import KeyRing, SigningKey, generate_key
from qr_extension.refusal import Reason, Refusal
from qr_extension.start import inspect_token, issue_start_token
from qr_extension.tariff import Limits, Tariff
from qr_extension.trust import (
    KEYS_TYP,
    TrustedKeySet,
    sign_trusted_keys,
    verify_trusted_key_set,
    verify_trusted_keys,
)

T0 = 1_795_000_000


@pytest.fixture(scope="module")
def old() -> SigningKey:
    return generate_key()


@pytest.fixture(scope="module")
def new() -> SigningKey:
    return generate_key()


@pytest.fixture(scope="module")
def stranger() -> SigningKey:
    return generate_key()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: object, key: SigningKey | None) -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    signature = b"" if key is None else ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input, key.key)
    return f"{head}.{body}.{b64(signature)}"


def header_for(key: SigningKey, typ: str = KEYS_TYP) -> dict[str, Any]:
    return {"alg": "ES256", "typ": typ, "kid": key.kid}


def refused(result: object, reason: Reason) -> bool:
    return isinstance(result, Refusal) and result.reason is reason


def test_rotation_signed_by_the_current_key(old: SigningKey, new: SigningKey) -> None:
    current = KeyRing.of([old.public])
    offered = KeyRing.of([old.public, new.public])
    token = sign_trusted_keys(offered, old, issued_at=T0)
    header, payload = inspect_token(token)
    assert header == {"alg": "ES256", "typ": "keys+jwt", "kid": old.kid}
    assert payload == {**offered.to_jwks(), "iat": T0}
    ring = verify_trusted_keys(token, trusted=current)
    assert isinstance(ring, KeyRing)
    assert [k.kid for k in ring] == [old.kid, new.kid]


def test_new_set_may_drop_the_signing_key(old: SigningKey, new: SigningKey) -> None:
    token = sign_trusted_keys(KeyRing.of([new.public]), old, issued_at=T0)
    ring = verify_trusted_keys(token, trusted=KeyRing.of([old.public, new.public]))
    assert isinstance(ring, KeyRing) and [k.kid for k in ring] == [new.kid]


def test_signed_by_a_key_not_trusted(old: SigningKey, new: SigningKey) -> None:
    token = sign_trusted_keys(KeyRing.of([new.public]), new, issued_at=T0)
    result = verify_trusted_keys(token, trusted=KeyRing.of([old.public]))
    assert refused(result, Reason.UNTRUSTED_KEYS)


def test_trust_first_keys_needs_a_signer_inside_the_set(
    old: SigningKey, stranger: SigningKey
) -> None:
    own = sign_trusted_keys(KeyRing.of([old.public]), old, issued_at=T0)
    ring = verify_trusted_keys(own, trusted=None)
    assert isinstance(ring, KeyRing) and old.kid in ring
    foreign = sign_trusted_keys(KeyRing.of([old.public]), stranger, issued_at=T0)
    assert refused(verify_trusted_keys(foreign, trusted=None), Reason.UNTRUSTED_KEYS)


def test_trust_first_keys_still_checks_the_signature(old: SigningKey, new: SigningKey) -> None:
    token = sign_trusted_keys(KeyRing.of([old.public, new.public]), old, issued_at=T0)
    head, _, signature = token.split(".")
    smaller = KeyRing.of([new.public]).to_jwks()
    smaller["keys"].insert(0, old.public.to_jwk())
    body = b64(json.dumps({**smaller, "iat": T0 + 1}).encode())
    assert refused(
        verify_trusted_keys(f"{head}.{body}.{signature}", trusted=None), Reason.BAD_SIGNATURE
    )


def test_changed_payload_with_the_old_signature(old: SigningKey, stranger: SigningKey) -> None:
    token = sign_trusted_keys(KeyRing.of([old.public]), old, issued_at=T0)
    head, _, signature = token.split(".")
    evil = KeyRing.of([old.public, stranger.public]).to_jwks()
    body = b64(json.dumps({**evil, "iat": T0}).encode())
    result = verify_trusted_keys(f"{head}.{body}.{signature}", trusted=KeyRing.of([old.public]))
    assert refused(result, Reason.BAD_SIGNATURE)


def test_key_set_reports_iat_and_signer_and_refuses_older_sets(old: SigningKey) -> None:
    trusted = KeyRing.of([old.public])
    token = sign_trusted_keys(trusted, old, issued_at=T0)
    result = verify_trusted_key_set(token, trusted=trusted, not_before=T0)
    assert result == TrustedKeySet(ring=trusted, issued_at=T0, signed_by=old.kid)
    stale = verify_trusted_key_set(token, trusted=trusted, not_before=T0 + 1)
    assert refused(stale, Reason.REPLAYED)


def test_start_token_presented_as_keys(old: SigningKey) -> None:
    token = issue_start_token(
        key=old,
        charge_point_id="CP-1",
        order_id="A1",
        evse_id=1,
        tariff=Tariff(id="F", currency="EUR"),
        limits=Limits(amount=1),
        issued_at=T0,
        validity_s=60,
    )
    assert refused(verify_trusted_keys(token, trusted=KeyRing.of([old.public])), Reason.WRONG_TYPE)
    assert refused(verify_trusted_keys(token, trusted=None), Reason.WRONG_TYPE)


def test_alg_none(old: SigningKey) -> None:
    claims = {**KeyRing.of([old.public]).to_jwks(), "iat": T0}
    token = forge({**header_for(old), "alg": "none"}, claims, None)
    assert refused(verify_trusted_keys(token, trusted=None), Reason.WRONG_ALGORITHM)


@pytest.mark.parametrize(
    "payload",
    [
        {"keys": [], "iat": T0},
        {"keys": "x", "iat": T0},
        {"keys": [{"kty": "RSA"}], "iat": T0},
        {"iat": T0},
        [1, 2],
    ],
)
def test_bad_key_sets_are_malformed(old: SigningKey, payload: object) -> None:
    token = forge(header_for(old), payload, old)
    for trusted in (KeyRing.of([old.public]), None):
        assert refused(verify_trusted_keys(token, trusted=trusted), Reason.MALFORMED)


@pytest.mark.parametrize("iat", [None, "now", True, -1, 1.5])
def test_iat_is_required_and_an_integer(old: SigningKey, iat: object) -> None:
    payload: dict[str, Any] = KeyRing.of([old.public]).to_jwks()
    if iat is not None:
        payload["iat"] = iat
    token = forge(header_for(old), payload, old)
    assert refused(verify_trusted_keys(token, trusted=KeyRing.of([old.public])), Reason.MALFORMED)


@pytest.mark.parametrize("junk", [None, b"x", "", "x" * 100_000, "a.b", "é.é.é"])
def test_junk(old: SigningKey, junk: object) -> None:
    assert refused(verify_trusted_keys(junk, trusted=KeyRing.of([old.public])), Reason.MALFORMED)
    assert refused(verify_trusted_keys(junk, trusted=None), Reason.MALFORMED)


def test_truncated(old: SigningKey) -> None:
    token = sign_trusted_keys(KeyRing.of([old.public]), old, issued_at=T0)
    for cut in range(len(token) - 1, 0, -9):
        result = verify_trusted_keys(token[:cut], trusted=None)
        assert isinstance(result, Refusal), cut


def test_sign_refuses_an_empty_set(old: SigningKey) -> None:
    with pytest.raises(TokenFormatError):
        sign_trusted_keys(KeyRing(), old, issued_at=T0)
    with pytest.raises(TokenFormatError):
        sign_trusted_keys(KeyRing.of([old.public]), old, issued_at=-1)
