"""Start QR payloads fuzzed with hypothesis at the charger: camera frame -> decode -> verify.

Whatever a camera sees (random bytes, an image of any text, a token with any header and claims,
a real token with a few characters changed, claims signed by the trusted CSMS key but of the
wrong shape), :func:`charge_point.qrstart.decode_frame` and :func:`check_start` answer with
a value, never an exception: a token that is not a start authorisation signed for this
charger now is a :class:`Refusal` with a reason.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charge_point.qrstart import ScanContext, StartAuthorization, check_start, decode_frame
from qr_extension import jws
from qr_extension.keys import KeyRing, generate_key
from qr_extension.qr import render_png
from qr_extension.refusal import Reason, Refusal
from qr_extension.start import START_TYP, MemoryUsedTokens, inspect_token, issue_start_token
from qr_extension.tariff import Limits, Tariff

CP = "CP-FUZZ"
T0 = 1_795_000_000
CSMS = generate_key()
STRANGER = generate_key()
TRUSTED = KeyRing.of([CSMS.public])
CONTEXT = ScanContext(
    charge_point_id=CP,
    evse_ids=(1, 2),
    waiting_evse_ids=(1,),
    now=T0 + 10,
    clock_synced=True,
    accept_unsynced_clock=False,
    leeway_s=300,
)
TARIFF = Tariff(id="T-1", currency="CNY", energy_price=12000, time_price=3000)
REAL = issue_start_token(
    key=CSMS,
    charge_point_id=CP,
    order_id="K7Q2M9XA",
    evse_id=1,
    tariff=TARIFF,
    limits=Limits(amount=20000),
    issued_at=T0,
    validity_s=900,
)
REAL_CLAIMS = inspect_token(REAL)[1]
SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
EXAMPLES_RUN: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print("\nstart QR examples per target:", dict(sorted(EXAMPLES_RUN.items())))


def check(token: str) -> StartAuthorization | Refusal:
    return check_start(token, trusted=TRUSTED, ctx=CONTEXT, used=MemoryUsedTokens())


def refused(result: object) -> bool:
    return isinstance(result, Refusal) and isinstance(result.reason, Reason) and bool(str(result))


JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.text(max_size=30),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def _segment(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@st.composite
def jws_shaped(draw: st.DrawFn) -> str:
    """Three base64url segments: a header and claims of any JSON, any signature."""
    header = draw(
        st.one_of(
            JSON,
            st.fixed_dictionaries(
                {"alg": st.sampled_from(["ES256", "none", "HS256"]), "typ": st.just(START_TYP)},
                optional={"kid": st.one_of(st.just(CSMS.public.kid), st.text(max_size=10), JSON)},
            ),
        )
    )
    claims = draw(st.one_of(JSON, st.dictionaries(st.sampled_from(sorted(REAL_CLAIMS)), JSON)))
    signature = draw(st.sampled_from(["", REAL.rsplit(".", 1)[1], "AAAA"]))
    return f"{_segment(header)}.{_segment(claims)}.{signature}"


@st.composite
def edited(draw: st.DrawFn) -> str:
    """The real token with a few characters replaced, inserted or removed."""
    text = list(REAL)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text) - 1))
        how = draw(st.sampled_from(["replace", "insert", "delete"]))
        char = draw(st.sampled_from("AZaz09-_.=+/ é\x00"))
        if how == "replace":
            text[at] = char
        elif how == "insert":
            text.insert(at, char)
        elif len(text) > 1:
            del text[at]
    return "".join(text)


FOREIGN = st.one_of(
    st.text(),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", max_size=200
    ),
    jws_shaped(),
    edited(),
    st.builds(lambda claims: jws.sign(claims, STRANGER, typ=START_TYP), st.just(REAL_CLAIMS)),
    st.just("x" * (jws.MAX_TOKEN_LENGTH + 1)),
)


def test_the_real_token_is_accepted() -> None:
    """The context accepts what it should, so that the refusals below mean something."""
    assert isinstance(check(REAL), StartAuthorization)
    texts = decode_frame(render_png(REAL))
    assert texts == [REAL]


@settings(SETTINGS, max_examples=1500)
@given(token=FOREIGN)
def test_a_token_not_signed_for_this_charger_is_refused_with_a_reason(token: str) -> None:
    EXAMPLES_RUN["token text"] += 1
    assert refused(check(token)) or token.strip() == REAL, token  # a scanner's blanks are cut


@settings(SETTINGS, max_examples=600)
@given(
    claims=st.one_of(
        st.dictionaries(st.sampled_from(sorted(REAL_CLAIMS)), JSON),
        st.builds(
            lambda name, value: {**REAL_CLAIMS, name: value},
            st.sampled_from(sorted(REAL_CLAIMS)),
            JSON,
        ),
        st.builds(
            lambda name: {k: v for k, v in REAL_CLAIMS.items() if k != name},
            st.sampled_from(sorted(REAL_CLAIMS)),
        ),
    )
)
def test_claims_of_any_shape_signed_by_the_csms_never_raise(claims: dict[str, Any]) -> None:
    """A CSMS bug (or a leaked key) signs claims of the wrong shape: refused as malformed, or
    an authorisation whose every field has its type."""
    EXAMPLES_RUN["signed claims"] += 1
    result = check(jws.sign(claims, CSMS, typ=START_TYP))
    if isinstance(result, StartAuthorization):
        assert isinstance(result.order_id, str) and result.charge_point_id == CP
        assert result.evse_id in (None, 1) and result.issued_at <= result.expires_at
    else:
        assert refused(result), result


@settings(SETTINGS, max_examples=300)
@given(image=st.one_of(st.binary(max_size=2000), st.just(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)))
def test_a_frame_that_is_no_image_is_refused(image: bytes) -> None:
    EXAMPLES_RUN["camera bytes"] += 1
    result = decode_frame(image)
    assert refused(result) or (isinstance(result, list) and all(isinstance(t, str) for t in result))


@settings(SETTINGS, max_examples=60)
@given(token=st.one_of(st.text(min_size=1, max_size=300), jws_shaped(), edited()))
def test_a_qr_code_of_any_text_goes_through_decode_and_verify(token: str) -> None:
    EXAMPLES_RUN["QR images"] += 1
    texts = decode_frame(render_png(token))
    assert not isinstance(texts, Refusal), texts  # our own rendering is always readable
    for text in texts:
        result = check(text)
        assert refused(result) or text.strip() == REAL, (token, text, result)
