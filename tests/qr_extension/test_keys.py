"""P-256 keys: kid, JWK round trips, strict parsing, PEM files and the key ring."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from qr_extension.errors import KeyFormatError
from qr_extension.keys import (
    KeyRing,
    PublicKey,
    SigningKey,
    b64url_decode,
    b64url_encode,
    generate_key,
    jwk_thumbprint,
    key_id,
    load_or_create_key,
    load_private_key,
    private_key_from_pem,
    save_private_key,
)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_key()


@pytest.fixture(scope="module")
def other() -> SigningKey:
    return generate_key()


# --- base64url ------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff\xfe", b"abc", b"abcd", bytes(range(256))])
def test_b64url_round_trip_without_padding(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64url_decode(text) == data


@pytest.mark.parametrize("bad", ["ab$c", "ab c", "ab+c", "ab/c", "abc=", "a\tbc", "é", "abcde"])
def test_b64url_decode_rejects_characters_outside_the_alphabet(bad: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(bad)


def test_b64url_decode_rejects_non_text() -> None:
    with pytest.raises(ValueError):
        b64url_decode(b"abcd")  # type: ignore[arg-type]


# --- kid and thumbprint -------------------------------------------------------------------------


def test_thumbprint_follows_rfc7638_canonical_form(key: SigningKey) -> None:
    jwk = key.public.to_jwk()
    canonical = json.dumps(
        {"crv": "P-256", "kty": "EC", "x": jwk["x"], "y": jwk["y"]}, separators=(",", ":")
    )
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest())
    assert jwk_thumbprint(key.public.key) == expected.rstrip(b"=").decode()


def test_kid_is_first_eight_characters_of_thumbprint(key: SigningKey) -> None:
    assert key.kid == key_id(key.public.key) == jwk_thumbprint(key.public.key)[:8]
    assert len(key.kid) == 8


def test_kid_of_a_fixed_key_is_stable() -> None:
    # d = 1: the public key is the P-256 base point G; its kid must never change between
    # releases, or chargers in the field would no longer find the CSMS key.
    signing = SigningKey.from_crypto(ec.derive_private_key(1, ec.SECP256R1()))
    assert signing.public.to_jwk()["x"] == "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY"
    assert jwk_thumbprint(signing.public.key) == "xx0BcA-wMohw8atYDJOe6peGModklG2wRHBlXHMvl0M"
    assert signing.kid == "xx0BcA-w"


def test_different_keys_have_different_kids(key: SigningKey, other: SigningKey) -> None:
    assert key.kid != other.kid


def test_signing_key_repr_hides_key_material(key: SigningKey) -> None:
    assert repr(key) == f"SigningKey(kid={key.kid!r})"


def test_other_curves_are_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(KeyFormatError):
        SigningKey.from_crypto(p384)
    with pytest.raises(KeyFormatError):
        PublicKey.from_crypto(p384.public_key())


# --- JWK --------------------------------------------------------------------------------------


def test_jwk_round_trip(key: SigningKey) -> None:
    jwk = key.public.to_jwk()
    assert jwk["kid"] == key.kid and jwk["alg"] == "ES256" and jwk["use"] == "sig"
    assert "d" not in jwk
    back = PublicKey.from_jwk(jwk)
    assert back.kid == key.kid
    assert back.key.public_numbers() == key.public.key.public_numbers()


def test_jwk_without_kid_is_accepted(key: SigningKey) -> None:
    jwk = {k: v for k, v in key.public.to_jwk().items() if k != "kid"}
    assert PublicKey.from_jwk(jwk).kid == key.kid


def _jwk(key: SigningKey, **changes: object) -> dict[str, object]:
    jwk: dict[str, object] = dict(key.public.to_jwk())
    jwk.update(changes)
    return {k: v for k, v in jwk.items() if v is not None}


@pytest.mark.parametrize(
    "changes",
    [
        {"kty": "RSA"},
        {"crv": "P-384"},
        {"alg": "HS256"},
        {"alg": "none"},
        {"use": "enc"},
        {"kid": "AAAAAAAA"},  # does not match the thumbprint
        {"d": "AAAA"},  # private member
        {"x": None},
        {"y": 12},
        {"x": "not base64!"},
        {"x": b64url_encode(b"\x01" * 32)},  # not on the curve
        {"x": b64url_encode(b"\x01" * 31)},  # short coordinate
    ],
)
def test_bad_jwks_are_refused(key: SigningKey, changes: dict[str, object]) -> None:
    with pytest.raises(KeyFormatError):
        PublicKey.from_jwk(_jwk(key, **changes))


def test_short_coordinate_with_leading_zero_is_refused() -> None:
    # find a key whose x starts with a zero byte; a stripped coordinate must not be accepted
    for _ in range(2000):
        candidate = generate_key()
        x = candidate.public.key.public_numbers().x.to_bytes(32, "big")
        if x[0] == 0:
            break
    else:  # pragma: no cover - probability about 2e-4
        pytest.fail("no key with a leading zero byte found")
    jwk = candidate.public.to_jwk()
    stripped = {**jwk, "x": b64url_encode(x[1:])}
    stripped.pop("kid")
    with pytest.raises(KeyFormatError):
        PublicKey.from_jwk(stripped)


def test_jwk_must_be_an_object() -> None:
    with pytest.raises(KeyFormatError):
        PublicKey.from_jwk([])  # type: ignore[arg-type]


# --- PEM files ----------------------------------------------------------------------------------


def test_save_and_load_private_key(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "keys" / "csms.pem"
    save_private_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_private_key(path)
    assert loaded.kid == key.kid
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_save_replaces_an_existing_file(tmp_path: Path, key: SigningKey, other: SigningKey) -> None:
    path = tmp_path / "k.pem"
    save_private_key(key, path)
    save_private_key(other, path)
    assert load_private_key(path).kid == other.kid


def test_load_or_create_creates_once(tmp_path: Path) -> None:
    path = tmp_path / "cp" / "key.pem"
    first = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path).kid == first.kid
    assert list(path.parent.iterdir()) == [path]


def test_load_or_create_keeps_a_key_written_meanwhile(
    tmp_path: Path, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "key.pem"
    real_exists = Path.exists

    def racing_exists(self: Path) -> bool:
        # another process saves its key right after our existence check
        if self == path and not real_exists(self):
            save_private_key(key, path)
            return False
        return real_exists(self)

    monkeypatch.setattr(Path, "exists", racing_exists)
    assert load_or_create_key(path).kid == key.kid
    assert load_private_key(path).kid == key.kid


def test_unusable_pem_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFormatError):
        private_key_from_pem(b"not a pem")
    ed = ed25519.Ed25519PrivateKey.generate()
    pem = ed.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFormatError):
        private_key_from_pem(pem)
    encrypted = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(KeyFormatError):
        private_key_from_pem(encrypted)


def test_public_pem_round_trip(key: SigningKey) -> None:
    loaded = serialization.load_pem_public_key(key.public.to_pem())
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert PublicKey.from_crypto(loaded).kid == key.kid


# --- KeyRing ----------------------------------------------------------------------------------


def test_ring_lookup_and_immutability(key: SigningKey, other: SigningKey) -> None:
    ring = KeyRing.of([key.public])
    bigger = ring.with_key(other.public)
    assert len(ring) == 1 and len(bigger) == 2
    assert bigger.get(other.kid) == other.public
    assert ring.get(other.kid) is None
    assert key.kid in bigger and other.kid not in ring
    assert 42 not in bigger
    assert [k.kid for k in bigger] == [key.kid, other.kid]
    assert bigger.without(key.kid).get(key.kid) is None
    assert len(bigger) == 2  # unchanged


def test_ring_drops_exact_duplicates(key: SigningKey) -> None:
    ring = KeyRing.of([key.public, key.public]).with_key(key.public)
    assert len(ring) == 1


def test_ring_refuses_two_keys_with_one_kid(key: SigningKey, other: SigningKey) -> None:
    impostor = PublicKey(key=other.public.key, kid=key.kid)
    with pytest.raises(KeyFormatError):
        KeyRing.of([key.public, impostor])
    with pytest.raises(KeyFormatError):
        KeyRing((key.public, impostor))


def test_jwks_round_trip(key: SigningKey, other: SigningKey) -> None:
    ring = KeyRing.of([key.public, other.public])
    jwks = json.loads(json.dumps(ring.to_jwks()))
    back = KeyRing.from_jwks(jwks)
    assert [k.kid for k in back] == [key.kid, other.kid]


@pytest.mark.parametrize("bad", [[], {"keys": {}}, {"keys": [1]}, {"nokeys": []}, "x"])
def test_bad_jwks_sets_are_refused(bad: object) -> None:
    with pytest.raises(KeyFormatError):
        KeyRing.from_jwks(bad)  # type: ignore[arg-type]


def test_load_or_create_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: object, dst: object) -> None:
        raise PermissionError("hard links not supported here")

    monkeypatch.setattr("os.link", no_link)
    path = tmp_path / "key.pem"
    key = load_or_create_key(path)
    assert load_private_key(path).kid == key.kid
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]
