"""Compact JWS helpers shared by the start, settlement and trusted-keys tokens.

One verification pipeline for all three kinds, in this order, so that nothing the token says is
trusted before it has been checked (RFC 8725):

1. shape: a ``str`` of at most :data:`MAX_TOKEN_LENGTH` ASCII characters, three base64url
   segments (the last may be empty, so that an unsigned ``alg: none`` token is reported as the
   wrong algorithm rather than as noise);
2. header, read unverified: ``typ`` must be the expected kind, ``alg`` must be ES256, no
   ``crit``/``b64``/``zip`` extensions, ``kid`` must name a trusted key;
3. PyJWT verifies the signature with that key and algorithms pinned to ``["ES256"]``, checks
   that every required claim is present and that ``aud`` matches. PyJWT's own time checks are off:
   they read the wall clock, while the caller's ``now`` is what counts.

Settlements, verified by the CSMS at every upload, take the same steps on a token split and
decoded once (:func:`parse`, then :func:`verify_parsed`): the header checks of
step 2 are :func:`read_header`'s, the signature is checked by PyJWT's own ES256 algorithm
object, and the claim checks of step 3 are PyJWT's (``require``, strict ``aud``, ``sub`` and
``jti`` types), in its order and with the same refusals.

Bad input never raises: it becomes a :class:`~qr_extension.refusal.Refusal`. The claim readers
below raise :class:`~qr_extension.errors.TokenFormatError`, which the token modules convert to
``Refusal(MALFORMED)`` at their boundary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jwt
from jwt.types import Options

from qr_extension.errors import TokenFormatError
from qr_extension.keys import PublicKey, SigningKey, b64url_decode, b64url_encode
from qr_extension.refusal import Reason, Refusal

ALGORITHM: Final = "ES256"
MAX_TOKEN_LENGTH: Final = 4096
MAX_EPOCH_S: Final = 253_402_300_799  # 9999-12-31T23:59:59Z: keeps datetime conversions safe
MAX_AMOUNT: Final = 2**53 - 1  # integers that survive any JSON peer (IEEE double)
ORDER_ID_PATTERN: Final = re.compile(r"[A-Z0-9]{1,20}")
IDENTITY_PATTERN: Final = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII, no spaces

_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# header members that change how the signature or payload is interpreted: never accepted
_FORBIDDEN_HEADERS: Final = frozenset({"crit", "b64", "zip"})
_ES256: Final = jwt.get_algorithm_by_name(ALGORITHM)  # what jwt.decode verifies ES256 with


@dataclass(frozen=True, slots=True)
class Verified:
    """A token whose header, signature and audience were checked; claims not yet typed."""

    header: dict[str, Any]
    claims: dict[str, Any]
    key: PublicKey


def sign(claims: Mapping[str, object], key: SigningKey, *, typ: str) -> str:
    """Signs ``claims`` as a compact ES256 JWS with header ``typ`` and ``kid``.

    PyJWT serialises the payload with ``(",", ":")`` separators, so the token stays compact.
    """
    return jwt.encode(
        dict(claims), key.key, algorithm=ALGORITHM, headers={"typ": typ, "kid": key.kid}
    )


def _normalise_typ(value: object) -> str | None:
    """``typ`` is a media type: compared case-insensitively, ``application/`` optional."""
    if not isinstance(value, str):
        return None
    lowered = value.lower()
    return lowered.removeprefix("application/")


def check_shape(token: object) -> str | Refusal:
    """The token as a clean ``str``, or MALFORMED for anything that cannot be a compact JWS."""
    if not isinstance(token, str):
        return Refusal(Reason.MALFORMED, f"a token is text, not {type(token).__name__}")
    if len(token) > MAX_TOKEN_LENGTH:
        return Refusal(Reason.MALFORMED, f"longer than {MAX_TOKEN_LENGTH} characters")
    text = token.strip()
    if not text.isascii() or _SHAPE.fullmatch(text) is None:
        return Refusal(Reason.MALFORMED, "not a compact JWS")
    return text


def read_header(token: object, *, typ: str) -> tuple[str, dict[str, Any]] | Refusal:
    """Checks shape, ``typ`` and ``alg`` without verifying; returns the clean token and header."""
    text = check_shape(token)
    if isinstance(text, Refusal):
        return text
    try:
        header = jwt.get_unverified_header(text)
        _text_only(header)
    except (jwt.PyJWTError, ValueError, RecursionError) as exc:
        return Refusal(Reason.MALFORMED, _why("not a readable JWS", exc))
    refusal = _check_header(header, typ)
    return (text, header) if refusal is None else refusal


def _check_header(header: dict[str, Any], typ: str) -> Refusal | None:
    """Step 2 of the pipeline on a header read unverified."""
    if _normalise_typ(header.get("typ")) != typ:
        return Refusal(Reason.WRONG_TYPE, f"expected typ {typ}")
    if header.get("alg") != ALGORITHM:
        return Refusal(Reason.WRONG_ALGORITHM, f"only {ALGORITHM} is accepted")
    if _FORBIDDEN_HEADERS & header.keys():
        return Refusal(Reason.MALFORMED, "unsupported header extension")
    if not isinstance(header.get("kid"), str):
        return Refusal(Reason.MALFORMED, "header without kid")
    return None


def unverified_claims(token: str) -> dict[str, Any] | Refusal:
    """The payload of a token that passed :func:`check_shape`, NOT verified."""
    try:
        claims = _text_only(json.loads(b64url_decode(token.split(".")[1])))
    except (ValueError, RecursionError):
        return Refusal(Reason.MALFORMED, "unreadable payload")
    if not isinstance(claims, dict):
        return Refusal(Reason.MALFORMED, "payload is not a JSON object")
    return claims


@dataclass(frozen=True, slots=True)
class Parsed:
    """A token that passed steps 1 and 2, split and decoded once, NOT verified.

    ``claims`` is the payload when it is a JSON object, else None (refused as malformed only
    after the signature, as PyJWT would). Read ``claims`` before :func:`verify_parsed` only to
    find keys and rows; nothing in it is trusted yet.
    """

    text: str
    header: dict[str, Any]
    claims: dict[str, Any] | None
    signing_input: bytes
    signature: bytes


def _text_only(value: Any) -> Any:
    """``value`` (decoded JSON) when every string in it is Unicode text; ValueError for a lone
    surrogate, which JSON can spell (``"\\ud800"``) but no UTF-8 store, log or peer can take:
    an unverified ``kid`` or ``jti`` picks database rows before any signature is checked."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a string in it is no Unicode text (a lone surrogate)") from None
    return value


def _segment(text: str) -> bytes:
    """One base64url segment, strictly: the alphabet only and the canonical encoding (as
    PyJWT's reader: no two strings decode alike); ValueError otherwise."""
    data = b64url_decode(text)
    if b64url_encode(data) != text:
        raise ValueError("not the canonical base64url encoding")
    return data


def _pyjwt_header_error(header: dict[str, Any], payload_segment: str) -> str | None:
    """What PyJWT's reader refuses in a header before anything of ours looks at it."""
    if "kid" in header and not isinstance(header["kid"], str):
        return "Key ID header parameter must be a string"
    if header.get("b64", True) is False and payload_segment:
        return "Payload segment must be empty when 'b64' is false."
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit:
            return "Invalid 'crit' header: must be a non-empty list"
        if any(ext != "b64" or ext not in header for ext in crit):
            return "Unsupported critical extension"
    return None


def parse(token: object, *, typ: str) -> Parsed | Refusal:
    """Steps 1 and 2 of the pipeline (the refusals of :func:`read_header`), reading every
    segment once: what :func:`verify_parsed` then checks without reading the token again."""
    text = check_shape(token)
    if isinstance(text, Refusal):
        return text
    header_segment, payload_segment, signature_segment = text.split(".")
    try:
        header = _text_only(json.loads(_segment(header_segment)))
        if not isinstance(header, dict):
            raise ValueError("Invalid header string: must be a json object")
        error = _pyjwt_header_error(header, payload_segment)
        if error is not None:
            raise ValueError(error)
        payload = _segment(payload_segment)
        signature = _segment(signature_segment)
    except (ValueError, RecursionError) as exc:
        return Refusal(Reason.MALFORMED, _why("not a readable JWS", exc))
    refusal = _check_header(header, typ)
    if refusal is not None:
        return refusal
    try:
        claims = _text_only(json.loads(payload))
    except (ValueError, RecursionError):
        claims = None
    signing_input = text[: len(header_segment) + 1 + len(payload_segment)].encode()
    return Parsed(
        text=text,
        header=header,
        claims=claims if isinstance(claims, dict) else None,
        signing_input=signing_input,
        signature=signature,
    )


def verify_parsed(
    parsed: Parsed,
    *,
    key: PublicKey,
    require: Sequence[str],
    audience: str | None,
    audience_mismatch: Reason,
) -> Verified | Refusal:
    """Step 3 on a token read by :func:`parse`, with the key its ``kid`` names (UNKNOWN_KEY
    for another key): the signature by PyJWT's ES256 algorithm, then PyJWT's claim checks in
    its order (every claim of ``require`` present and not null; ``aud`` a single string equal to
    ``audience`` when given; ``sub`` and ``jti``, if present, strings), refused as
    :func:`verify` refuses them."""
    kid: str = parsed.header["kid"]
    if kid != key.kid:
        return Refusal(Reason.UNKNOWN_KEY, f"no trusted key {kid[:16]!r}")
    try:
        good = _ES256.verify(parsed.signing_input, _ES256.prepare_key(key.key), parsed.signature)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        return Refusal(Reason.MALFORMED, _why("unreadable token", exc))
    if not good:
        return Refusal(Reason.BAD_SIGNATURE, f"signature does not verify with key {kid}")
    claims = parsed.claims
    if claims is None:
        return Refusal(Reason.MALFORMED, "unreadable token: the payload is not a JSON object")
    for name in require:
        if claims.get(name) is None:
            return Refusal(Reason.MALFORMED, f"missing claim {name}")
    if audience is not None:
        aud = claims.get("aud")
        if not aud:
            return Refusal(Reason.MALFORMED, "missing claim aud")
        if not isinstance(aud, str):
            return Refusal(Reason.MALFORMED, "aud must be a single string")
        if aud != audience:
            return Refusal(audience_mismatch, f"token is for {aud[:64]!r}")
    for name in ("sub", "jti"):
        if name in claims and not isinstance(claims[name], str):
            return Refusal(Reason.MALFORMED, f"unreadable token: {name} must be a string")
    return Verified(header=parsed.header, claims=claims, key=key)


def verify(
    token: object,
    *,
    typ: str,
    key_for: Callable[[str], PublicKey | None],
    require: Sequence[str],
    audience: str | None,
    audience_mismatch: Reason,
) -> Verified | Refusal:
    """Runs the whole pipeline of the module docstring.

    ``key_for(kid)`` returns the trusted key or ``None`` (UNKNOWN_KEY). ``audience``, when given,
    must equal the ``aud`` claim exactly (a list is MALFORMED); a mismatch is refused with
    ``audience_mismatch``.
    """
    read = read_header(token, typ=typ)
    if isinstance(read, Refusal):
        return read
    text, header = read
    kid: str = header["kid"]
    key = key_for(kid)
    if key is None:
        return Refusal(Reason.UNKNOWN_KEY, f"no trusted key {kid[:16]!r}")
    options: Options = {
        "verify_signature": True,
        "require": list(require),
        "verify_aud": audience is not None,
        "strict_aud": True,
        "verify_exp": False,  # time is checked by the caller against its own ``now``
        "verify_iat": False,
        "verify_nbf": False,
        "verify_iss": False,
        "verify_sub": True,
        "verify_jti": True,
    }
    try:
        claims = jwt.decode(
            text, key.key, algorithms=[ALGORITHM], audience=audience, options=options
        )
    except jwt.InvalidSignatureError:
        return Refusal(Reason.BAD_SIGNATURE, f"signature does not verify with key {kid}")
    except jwt.InvalidAlgorithmError:
        return Refusal(Reason.WRONG_ALGORITHM, f"only {ALGORITHM} is accepted")
    except jwt.MissingRequiredClaimError as exc:
        return Refusal(Reason.MALFORMED, f"missing claim {exc.claim}")
    except jwt.InvalidAudienceError:
        # the signature verified before PyJWT looked at claims, so the payload is authentic
        payload = unverified_claims(text)
        if isinstance(payload, dict) and isinstance(payload.get("aud"), str):
            return Refusal(audience_mismatch, f"token is for {payload['aud'][:64]!r}")
        return Refusal(Reason.MALFORMED, "aud must be a single string")
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError) as exc:
        return Refusal(Reason.MALFORMED, _why("unreadable token", exc))
    return Verified(header=header, claims=claims, key=key)


def _why(what: str, exc: BaseException) -> str:
    """A short detail for a refusal; never echoes much of the (attacker's) input."""
    return f"{what}: {str(exc)[:80]}"


# --- typed claim readers (raise TokenFormatError) ---------------------------------------------


def claim_int(
    claims: Mapping[str, Any], name: str, *, minimum: int = 0, maximum: int = MAX_AMOUNT
) -> int:
    """An integer claim (``true`` is not an integer here) within ``[minimum, maximum]``."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TokenFormatError(f"claim {name} must be an integer")
    if not minimum <= value <= maximum:
        raise TokenFormatError(f"claim {name} out of range")
    return value


def claim_optional_int(
    claims: Mapping[str, Any], name: str, *, minimum: int = 0, maximum: int = MAX_AMOUNT
) -> int | None:
    if claims.get(name) is None:
        return None
    return claim_int(claims, name, minimum=minimum, maximum=maximum)


def claim_epoch(claims: Mapping[str, Any], name: str) -> int:
    return claim_int(claims, name, minimum=0, maximum=MAX_EPOCH_S)


def claim_str(claims: Mapping[str, Any], name: str, *, pattern: re.Pattern[str]) -> str:
    """A string claim matching ``pattern`` in full."""
    value = claims.get(name)
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise TokenFormatError(f"claim {name} is not a valid string")
    return value


def claim_bool(claims: Mapping[str, Any], name: str) -> bool:
    value = claims.get(name)
    if not isinstance(value, bool):
        raise TokenFormatError(f"claim {name} must be true or false")
    return value


def check_order_id(order_id: object) -> str:
    """Raises TokenFormatError unless ``order_id`` is 1-20 characters of ``[A-Z0-9]``."""
    if not isinstance(order_id, str) or ORDER_ID_PATTERN.fullmatch(order_id) is None:
        raise TokenFormatError("an order id is 1-20 characters of A-Z and 0-9")
    return order_id


def check_identity(identity: object, what: str) -> str:
    """Raises TokenFormatError unless ``identity`` is 1-64 printable ASCII characters."""
    if not isinstance(identity, str) or IDENTITY_PATTERN.fullmatch(identity) is None:
        raise TokenFormatError(f"{what} must be 1-64 printable ASCII characters")
    return identity


def inspect(token: object) -> tuple[dict[str, Any], dict[str, Any]]:
    """Unverified header and claims of any compact JWS (for the CLI's decode command).

    Raises :class:`TokenFormatError` when the token cannot be read at all.
    """
    text = check_shape(token)
    if isinstance(text, Refusal):
        raise TokenFormatError(text.detail)
    try:
        header = json.loads(b64url_decode(text.split(".")[0]))
    except (ValueError, RecursionError) as exc:
        raise TokenFormatError("unreadable header") from exc
    claims = unverified_claims(text)
    if not isinstance(header, dict) or isinstance(claims, Refusal):
        raise TokenFormatError("header and payload must be JSON objects")
    return header, claims
