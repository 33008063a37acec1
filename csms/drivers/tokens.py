"""Driver access tokens: short-lived JWTs, HS256, with a secret made on first run.

The secret (32 random bytes, hex) lives in the CSMS key directory as ``driver-token.secret``,
mode 0600, created atomically so that two processes starting together agree on one secret. It
is never committed; deleting it logs every driver out. Why JWT rather than opaque database
tokens: docs/decisions.md ("Driver access tokens").
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import jwt

from csms.drivers.errors import TokenInvalid

SECRET_FILE = "driver-token.secret"
TOKEN_TYP = "at+jwt"  # RFC 9068: an access token, never mistaken for our ES256 tokens
AUDIENCE = "qrcharge:driver"
SECRET_BYTES = 32
VERIFIED_CACHE = 10_000  # tokens remembered after their signature and claims were checked


def load_or_create_secret(key_dir: Path) -> bytes:
    """The HS256 secret from ``key_dir``, created (0600) if absent (blocking: use a thread)."""
    path = key_dir / SECRET_FILE
    if not path.exists():
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = key_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(SECRET_BYTES))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process won: use theirs
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    secret = bytes.fromhex(path.read_text().strip())
    if len(secret) < SECRET_BYTES:
        raise TokenInvalid(f"{path} holds a secret shorter than {SECRET_BYTES} bytes")
    return secret


@dataclass(frozen=True, slots=True)
class DriverTokens:
    """Issues and verifies access tokens for one CSMS (``issuer`` is the setting)."""

    secret: bytes
    issuer: str
    ttl_s: int
    # token -> (user id, generation, iat, exp): a token seen before skips the HMAC and the
    # claim parsing (a driver's page sends the same one with every request); its times are
    # still checked against ``now`` at every use
    _verified: OrderedDict[str, tuple[int, int, int, int]] = field(
        default_factory=OrderedDict, compare=False, repr=False
    )

    def issue(self, user_id: int, *, now: int, generation: int = 0) -> str:
        """A token for ``user_id``; ``generation`` is the account's token generation (a token
        of an older generation is refused by the current-user dependency)."""
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "iat": now,
            "exp": now + self.ttl_s,
            "gen": generation,
        }
        return jwt.encode(claims, self.secret, algorithm="HS256", headers={"typ": TOKEN_TYP})

    def device_mark(self, email: str) -> str:
        """What a browser that signed in to ``email`` keeps (a cookie): proof that this device
        knew the password once, so a lock aimed at the account from elsewhere spares it."""
        digest = hmac.new(self.secret, b"device\0" + email.strip().lower().encode(), "sha256")
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()

    def is_device_mark(self, email: str, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value, self.device_mark(email))

    def verify(self, token: str, *, now: int) -> int:
        """The user id of a valid token; TokenInvalid otherwise (one message, no oracle)."""
        return self.verify_access(token, now=now)[0]

    def verify_access(self, token: str, *, now: int) -> tuple[int, int]:
        """``(user id, token generation)`` of a valid token (a token without ``gen`` was issued
        before generations existed: 0); TokenInvalid otherwise."""
        seen = self._verified.get(token)
        if seen is not None and seen[2] - 60 <= now < seen[3]:
            self._verified.move_to_end(token)
            return seen[0], seen[1]
        try:
            if jwt.get_unverified_header(token).get("typ") != TOKEN_TYP:
                raise TokenInvalid("not a driver access token")
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={
                    "require": ["exp", "iat", "sub"],
                    "verify_exp": False,  # checked below against our clock
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise TokenInvalid("invalid access token") from exc
        exp, iat, sub = claims["exp"], claims["iat"], claims["sub"]
        if not (isinstance(exp, int) and isinstance(iat, int) and iat - 60 <= now < exp):
            raise TokenInvalid("the access token has expired (or is not valid yet)")
        generation = claims.get("gen", 0)
        if not (isinstance(sub, str) and sub.isdigit()) or type(generation) is not int:
            raise TokenInvalid("invalid access token")
        self._verified[token] = (int(sub), generation, iat, exp)
        if len(self._verified) > VERIFIED_CACHE:
            self._verified.popitem(last=False)
        return int(sub), generation
