"""P-256 keys: generation, PEM files, RFC 7638 key ids, JWK/JWKS and a key ring.

Every signature in qrcharge is ES256 over P-256; nothing else is accepted here, so a JWK of
another curve or type is a :class:`KeyFormatError`, not a silently different algorithm.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from qr_extension.errors import KeyFormatError

KID_LENGTH = 8
_COORD_BYTES = 32
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url_encode`; raises ``ValueError`` on bad input.

    Strict: any character outside the base64url alphabet is an error (the standard library
    silently drops such characters, which would let two different strings decode alike).
    """
    if not isinstance(text, str) or _B64URL.fullmatch(text) is None:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _public_jwk_members(public: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": b64url_encode(numbers.x.to_bytes(_COORD_BYTES, "big")),
        "y": b64url_encode(numbers.y.to_bytes(_COORD_BYTES, "big")),
    }


def jwk_thumbprint(public: ec.EllipticCurvePublicKey) -> str:
    """The RFC 7638 SHA-256 thumbprint of a P-256 public key, base64url."""
    canonical = json.dumps(_public_jwk_members(public), separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def key_id(public: ec.EllipticCurvePublicKey) -> str:
    """The ``kid`` of a key: the first 8 characters of its RFC 7638 thumbprint."""
    return jwk_thumbprint(public)[:KID_LENGTH]


def _require_p256(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> None:
    if not isinstance(key.curve, ec.SECP256R1):
        raise KeyFormatError(f"only P-256 keys are used, not {key.curve.name}")


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A P-256 verification key and its ``kid``."""

    key: ec.EllipticCurvePublicKey
    kid: str

    @classmethod
    def from_crypto(cls, key: ec.EllipticCurvePublicKey) -> PublicKey:
        _require_p256(key)
        return cls(key=key, kid=key_id(key))

    def to_jwk(self) -> dict[str, str]:
        """The public JWK with ``kid``, ``use`` and ``alg`` members."""
        return {**_public_jwk_members(self.key), "kid": self.kid, "use": "sig", "alg": "ES256"}

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> PublicKey:
        """Reads a public P-256 JWK; a ``kid`` member, if any, must match the thumbprint."""
        if not isinstance(jwk, Mapping):
            raise KeyFormatError("a JWK must be a JSON object")
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            raise KeyFormatError("only EC P-256 JWKs are accepted")
        if "d" in jwk:
            raise KeyFormatError("a public JWK must not carry the private member 'd'")
        if jwk.get("alg", "ES256") != "ES256":
            raise KeyFormatError("the JWK's alg must be ES256")
        if jwk.get("use", "sig") != "sig":
            raise KeyFormatError("the JWK's use must be sig")
        try:
            x_bytes, y_bytes = b64url_decode(jwk["x"]), b64url_decode(jwk["y"])
            if len(x_bytes) != _COORD_BYTES or len(y_bytes) != _COORD_BYTES:
                # RFC 7518 6.2.1.2: full-length coordinates, else the thumbprint is ambiguous
                raise ValueError(f"P-256 coordinates are {_COORD_BYTES} bytes")
            x = int.from_bytes(x_bytes, "big")
            y = int.from_bytes(y_bytes, "big")
            public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyFormatError(f"bad EC coordinates: {exc}") from exc
        result = cls.from_crypto(public)
        given = jwk.get("kid")
        if given is not None and given != result.kid:
            raise KeyFormatError(f"kid {given!r} does not match the key's thumbprint {result.kid}")
        return result

    def to_pem(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A P-256 private key and its ``kid``. Never serialised except to a 0600 PEM file."""

    key: ec.EllipticCurvePrivateKey
    kid: str

    @classmethod
    def from_crypto(cls, key: ec.EllipticCurvePrivateKey) -> SigningKey:
        _require_p256(key)
        return cls(key=key, kid=key_id(key.public_key()))

    @property
    def public(self) -> PublicKey:
        return PublicKey(key=self.key.public_key(), kid=self.kid)

    def __repr__(self) -> str:  # never print key material
        return f"SigningKey(kid={self.kid!r})"


def generate_key() -> SigningKey:
    """A fresh P-256 signing key."""
    return SigningKey.from_crypto(ec.generate_private_key(ec.SECP256R1()))


def private_key_to_pem(key: SigningKey) -> bytes:
    return key.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_from_pem(data: bytes) -> SigningKey:
    try:
        loaded = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise KeyFormatError("the PEM file does not hold an EC private key")
    return SigningKey.from_crypto(loaded)


def _write_tmp(key: SigningKey, path: Path) -> Path:
    """Writes the PEM to a fresh 0600 file beside ``path`` (unique name), fsynced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        data = memoryview(private_key_to_pem(key))
        while data:  # os.write may write less than asked
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def _fsync_dir(directory: Path) -> None:
    """Makes a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_private_key(key: SigningKey, path: Path) -> None:
    """Writes the key as PKCS#8 PEM with mode 0600, atomically (write, fsync, rename)."""
    tmp = _write_tmp(key, path)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def load_private_key(path: Path) -> SigningKey:
    return private_key_from_pem(path.read_bytes())


def load_or_create_key(path: Path) -> SigningKey:
    """Loads the key at ``path``, generating and saving one on first use.

    Creation never replaces a key another process saved meanwhile (``link`` fails if the file
    exists), so two processes starting together end up with the same key.
    """
    if path.exists():
        return load_private_key(path)
    key = generate_key()
    tmp = _write_tmp(key, path)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return load_private_key(path)
    except OSError:  # a file system without hard links: last writer wins, as before
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return key


@dataclass(frozen=True, slots=True)
class KeyRing:
    """An immutable set of trusted public keys, looked up by ``kid``."""

    keys: tuple[PublicKey, ...] = ()

    def __post_init__(self) -> None:
        kids = [k.kid for k in self.keys]
        if len(kids) != len(set(kids)):
            raise KeyFormatError("a key ring cannot hold two keys with one kid")

    @classmethod
    def of(cls, keys: Iterable[PublicKey]) -> KeyRing:
        """A ring of ``keys``, duplicates dropped; two different keys with one kid are an error
        (silently keeping either would make signatures by the other fail, or worse)."""
        unique: dict[str, PublicKey] = {}
        for k in keys:
            kept = unique.setdefault(k.kid, k)
            if kept.key.public_numbers() != k.key.public_numbers():
                raise KeyFormatError(f"two different keys share the kid {k.kid}")
        return cls(tuple(unique.values()))

    def get(self, kid: str) -> PublicKey | None:
        for k in self.keys:
            if k.kid == kid:
                return k
        return None

    def __contains__(self, kid: object) -> bool:
        return any(k.kid == kid for k in self.keys)

    def __iter__(self) -> Iterator[PublicKey]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def with_key(self, key: PublicKey) -> KeyRing:
        return KeyRing.of((*self.keys, key))

    def without(self, kid: str) -> KeyRing:
        return KeyRing(tuple(k for k in self.keys if k.kid != kid))

    def to_jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [k.to_jwk() for k in self.keys]}

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> KeyRing:
        if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
            raise KeyFormatError('a JWKS must be an object with a "keys" list')
        return cls.of(PublicKey.from_jwk(j) for j in jwks["keys"])
