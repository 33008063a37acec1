"""The identification QR: a URL that any phone camera opens in the web client.

A printed sticker holds the static form ``{base}/c/{charge_point_id}?evse={n}``. A charger with
a screen can show a dynamic form that adds ``s`` (its current status) and ``t``, a time-based
one-time code: HMAC-SHA256 over a per-charger secret and the number of ``step_s`` periods since
the epoch, dynamically truncated to ``digits`` decimal digits as in RFC 4226 / RFC 6238. A valid
code shows that the driver saw the charger's screen within the last step or so, i.e. that they
stand at the charger.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from qr_extension.errors import IdentificationError

MAX_CHARGE_POINT_ID = 64  # as the tokens allow (OCPP 2.0.1 identities are at most 48)
MAX_EVSE_ID = 999
MIN_SECRET_BYTES = 16  # RFC 4226 section 4: at least 128 bits
_STATUS = re.compile(r"[A-Za-z]{1,32}")
_BAD_ID_CHARS = re.compile(r"[\x00-\x20\x7f/?#\\%]")
_PATH = re.compile(r"(?P<prefix>.*)/c/(?P<cp>[^/]+)")


@dataclass(frozen=True, slots=True)
class Identification:
    """What an identification URL says: which charger and EVSE, and for a dynamic code the
    status the charger showed and its one-time code (not yet verified)."""

    base_url: str
    charge_point_id: str
    evse_id: int
    status: str | None = None
    code: str | None = None


def _check_charge_point_id(charge_point_id: str) -> None:
    if not isinstance(charge_point_id, str) or not charge_point_id:
        raise IdentificationError("the charge point id is empty")
    if len(charge_point_id) > MAX_CHARGE_POINT_ID:
        raise IdentificationError(f"the charge point id is over {MAX_CHARGE_POINT_ID} characters")
    if charge_point_id in (".", "..") or _BAD_ID_CHARS.search(charge_point_id):
        raise IdentificationError(
            f"the charge point id {charge_point_id!r} cannot be in a URL path"
        )


def _check_evse(evse_id: object) -> int:
    if isinstance(evse_id, bool) or not isinstance(evse_id, int):
        raise IdentificationError("the EVSE id must be an integer")
    if not 1 <= evse_id <= MAX_EVSE_ID:
        raise IdentificationError(f"the EVSE id must be in 1..{MAX_EVSE_ID}, not {evse_id}")
    return evse_id


def _check_status(status: str) -> None:
    if not _STATUS.fullmatch(status):
        raise IdentificationError(f"a status is 1-32 letters (OCPP vocabulary), not {status!r}")


def _check_digits(digits: int) -> None:
    if not 6 <= digits <= 10:
        raise IdentificationError(f"a one-time code has 6-10 digits, not {digits}")


def identification_url(
    base_url: str,
    charge_point_id: str,
    evse_id: int,
    *,
    status: str | None = None,
    code: str | None = None,
) -> str:
    """The identification URL; static when neither ``status`` nor ``code`` is given."""
    _check_charge_point_id(charge_point_id)
    _check_evse(evse_id)
    base = base_url.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise IdentificationError(f"the public base URL {base_url!r} is not an http(s) URL")
    query: list[tuple[str, str]] = [("evse", str(evse_id))]
    if status is not None:
        _check_status(status)
        query.append(("s", status))
    if code is not None:
        if not code.isascii() or not code.isdigit():
            raise IdentificationError("a one-time code is decimal digits")
        query.append(("t", code))
    return f"{base}/c/{quote(charge_point_id, safe='')}?{urlencode(query)}"


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise IdentificationError(f"the parameter {name!r} appears more than once")
    return values[0]


def parse_identification_url(url: str) -> Identification:
    """Reads an identification URL; raises :class:`IdentificationError` for anything that is
    not exactly what :func:`identification_url` produces (unknown parameters are ignored)."""
    if not isinstance(url, str) or len(url) > 2048:
        raise IdentificationError("not an identification URL")
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise IdentificationError(f"not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise IdentificationError("an identification URL is an http(s) URL")
    match = _PATH.fullmatch(parts.path)
    if match is None:
        raise IdentificationError("an identification URL has the path /c/{charge_point_id}")
    try:
        charge_point_id = unquote(match["cp"], errors="strict")
    except UnicodeDecodeError as exc:
        raise IdentificationError("the charge point id is not UTF-8") from exc
    _check_charge_point_id(charge_point_id)
    try:
        params = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except (ValueError, UnicodeDecodeError) as exc:
        raise IdentificationError(f"bad query string: {exc}") from exc
    evse = _single(params, "evse")
    if evse is None or not evse.isascii() or not evse.isdigit() or evse.startswith("0"):
        raise IdentificationError("an identification URL names its EVSE: evse=<1..999>")
    status = _single(params, "s")
    if status is not None:
        _check_status(status)
    code = _single(params, "t")
    if code is not None and not (code.isascii() and code.isdigit() and 6 <= len(code) <= 10):
        raise IdentificationError("the one-time code t is 6-10 decimal digits")
    base = f"{parts.scheme}://{parts.netloc}{match['prefix']}"
    return Identification(base, charge_point_id, _check_evse(int(evse)), status, code)


def presence_code(secret: bytes, at: int, *, step_s: int, digits: int) -> str:
    """The one-time code for time ``at`` (epoch seconds): RFC 6238 TOTP with HMAC-SHA256."""
    if len(secret) < MIN_SECRET_BYTES:
        raise IdentificationError(f"a presence secret needs at least {MIN_SECRET_BYTES} bytes")
    if step_s <= 0:
        raise IdentificationError("the time step must be positive")
    _check_digits(digits)
    if at < 0:
        raise IdentificationError("time before the epoch")
    return _code_for_counter(secret, int(at) // step_s, digits)


def _code_for_counter(secret: bytes, counter: int, digits: int) -> str:
    mac = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha256).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def verify_presence_code(
    secret: bytes, code: str, now: int, *, step_s: int, digits: int, window: int = 1
) -> bool:
    """True when ``code`` is the code of the current step or of one up to ``window`` steps
    before or after it (clock drift, a driver who took a few seconds). Every candidate is
    compared in constant time and all of them are compared, so timing reveals nothing."""
    expected = presence_code(secret, now, step_s=step_s, digits=digits)  # validates arguments
    if not isinstance(code, str) or len(code) != digits or not code.isascii():
        return False
    counter = int(now) // step_s
    matched = hmac.compare_digest(code.encode(), expected.encode())
    for delta in range(-window, window + 1):
        if delta == 0 or counter + delta < 0:
            continue
        candidate = _code_for_counter(secret, counter + delta, digits)
        matched |= hmac.compare_digest(code.encode(), candidate.encode())
    return matched
