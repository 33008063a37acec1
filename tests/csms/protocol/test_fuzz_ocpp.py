"""OCPP-J frames fuzzed with hypothesis against a live CSMS, over real sockets, 1.6 and 2.0.1.

One charger per version stays connected for the whole test; every generated frame (a CALL
built from the ``ocpp`` library's schema of its action, a mutation of one, a frame of our
extension, or a broken envelope: see :mod:`.ocpp_fuzz`) is followed by a Heartbeat. The
properties:

* the connection survives: the Heartbeat always gets its CALLRESULT;
* every frame that needs an answer gets exactly one (CALLRESULT or CALLERROR, with the frame's
  unique id when it had a usable one), and an answer to nothing gets none;
* no answer is an ``InternalError`` CALLERROR, and the CSMS logs no error with a traceback.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uvicorn.protocols.websockets import websockets_sansio_impl as uvicorn_sansio
from websockets.sync import connection as websockets_sync_connection
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from ocpp_rpc.frames import MAX_DEPTH

from ..conftest import ADMIN_KEY, make_settings
from ..ocpp_fuzz import Json, actions, frames
from ..threaded import ThreadedCsms, threaded_csms

EXAMPLES_PER_VERSION = 1500
PASSWORD = "fuzz-charger-pw"
CHARGER_IDS = {"1.6": "FUZZ16", "2.0.1": "FUZZ201"}
UNIQUE_ID_MAX = 36
ANSWER_TIMEOUT_S = 10
FRAMES_RUN: Counter[str] = Counter()


@dataclass
class Charger:
    """A raw OCPP-J connection: frames out, frames in, the CSMS's own CALLs answered."""

    version: str
    charger_id: str
    ws: ClientConnection
    ids: Iterator[int] = field(default_factory=itertools.count)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self.ids)}"

    def exchange(self, frame: str | bytes) -> tuple[list[list[Json]], list[Json]]:
        """Sends ``frame`` then a Heartbeat; the answers that came before the Heartbeat's,
        and the Heartbeat's own answer."""
        heartbeat = self.next_id("hb")
        self.ws.send(frame)
        self.ws.send(json.dumps([2, heartbeat, "Heartbeat", {}]))
        before: list[list[Json]] = []
        while True:
            message = json.loads(self.ws.recv(timeout=ANSWER_TIMEOUT_S))
            if message[0] == 2:
                self._answer_csms_call(message)
            elif message[1] == heartbeat:
                return before, message
            else:
                before.append(message)

    def _answer_csms_call(self, call: list[Json]) -> None:
        """TrustedKeys pushes and other commands of the CSMS: accepted or not implemented."""
        if call[2] == "DataTransfer":
            answer: list[Json] = [3, call[1], {"status": "Accepted"}]
        else:
            answer = [4, call[1], "NotImplemented", "", {}]
        self.ws.send(json.dumps(answer))


def _open(
    stack: contextlib.ExitStack, csms: ThreadedCsms, version: str, charger_id: str
) -> Charger:
    """Connects as ``charger_id`` and boots (Accepted)."""
    token = base64.b64encode(f"{charger_id}:{PASSWORD}".encode()).decode()
    ws = connect(
        csms.ws_url(charger_id),
        subprotocols=[Subprotocol("ocpp1.6" if version == "1.6" else "ocpp2.0.1")],
        additional_headers={"Authorization": f"Basic {token}"},
        max_size=2**22,
    )
    stack.enter_context(ws)
    charger = Charger(version, charger_id, ws)
    boot: dict[str, Any] = (
        {"chargePointVendor": "fuzz", "chargePointModel": "fuzz"}
        if version == "1.6"
        else {"reason": "PowerUp", "chargingStation": {"vendorName": "fuzz", "model": "fuzz"}}
    )
    _, answer = charger.exchange(json.dumps([2, "boot", "BootNotification", boot]))
    assert answer[0] == 3
    return charger


@dataclass
class Fuzzed:
    """A CSMS in a thread with one connected, accepted charger per OCPP version."""

    csms: ThreadedCsms
    chargers: dict[str, Charger]


# Both ends' keepalive pings draw their payload from the global ``random`` (the chargers'
# websockets client every 20 s, the CSMS's uvicorn every 60 s), in threads of their own:
# Hypothesis takes a change of that state while it draws a frame for a strategy's use of the
# random module and warns. Each gets a generator of its own for this module's run.
PINGING_MODULES = (websockets_sync_connection, uvicorn_sansio)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    data = tmp_path_factory.mktemp("fuzz-ocpp")
    with pytest.MonkeyPatch.context() as patched:
        for module in PINGING_MODULES:
            patched.setattr(module, "random", random.Random())
        yield from _fuzzed(data)


def _fuzzed(data: Path) -> Iterator[Fuzzed]:
    with threaded_csms(make_settings(data)) as csms:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with httpx.Client(base_url=csms.base_url, headers=admin) as http:
            for charger_id in CHARGER_IDS.values():
                body = {"id": charger_id, "password": PASSWORD, "evses": 2}
                assert http.post("/api/v1/admin/chargers", json=body).status_code == 201
        with contextlib.ExitStack() as stack:
            chargers = {
                version: _open(stack, csms, version, charger_id)
                for version, charger_id in CHARGER_IDS.items()
            }
            yield Fuzzed(csms, chargers)
    print("\nOCPP frames per version and kind:", dict(sorted(FRAMES_RUN.items())))


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is no JSON number")


STRICT_JSON = json.JSONDecoder(parse_constant=_not_json)


def _depth(value: Json) -> int:
    """How deep lists and objects nest in ``value`` (without recursion: it may be deep)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | dict):
            deepest = max(deepest, depth + 1)
            stack.extend(
                (v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def answer_due(frame: str | bytes) -> tuple[bool, str | None]:
    """Whether the CSMS must answer ``frame``, and with which unique id (None: any id).

    Everything gets an answer except a well-formed CALLRESULT or CALLERROR envelope (type 3
    or 4 with a usable unique id, within the CSMS's nesting limit): answers are never
    answered. A binary frame is read as UTF-8, anything else in it replaced; ``NaN`` and
    ``Infinity`` are no JSON."""
    if isinstance(frame, bytes):
        frame = frame.decode("utf-8", "replace")
    try:
        parsed = STRICT_JSON.decode(frame)
    except (ValueError, RecursionError):
        return True, None
    if _depth(parsed) > MAX_DEPTH:
        return True, None
    if not isinstance(parsed, list) or len(parsed) < 2:
        return True, "-1"
    kind, uid = parsed[0], parsed[1]
    usable = isinstance(uid, str) and 0 < len(uid) <= UNIQUE_ID_MAX and _text(uid)
    is_answer = isinstance(kind, int | float) and not isinstance(kind, bool) and kind in (3, 4)
    if usable and is_answer:
        return False, None
    return True, uid if usable else "-1"


def _text(value: str) -> bool:
    """Whether ``value`` is Unicode text (no lone surrogate, which JSON can spell)."""
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace") == value


def check_exchange(charger: Charger, csms: ThreadedCsms, frame: str | bytes) -> None:
    """Sends ``frame`` and checks every property of the module docstring."""
    sent = repr(frame[:300])
    before, heartbeat = charger.exchange(frame)
    assert heartbeat[0] == 3, f"the Heartbeat after {sent} got {heartbeat}"
    due, uid = answer_due(frame)
    assert len(before) == (1 if due else 0), f"{sent} was answered {before}"
    for answer in before:
        assert answer[0] in (3, 4)
        assert uid is None or answer[1] == uid, f"{sent} was answered {answer}"
        assert answer[0] == 3 or answer[2] != "InternalError", f"{sent} -> {answer}"
    assert csms.take_tracebacks() == [], f"after {sent}"


def _kind(version: str, frame: str | bytes) -> str:
    """What a frame is, for the count of what was sent."""
    if isinstance(frame, bytes):
        return "binary"
    try:
        parsed = STRICT_JSON.decode(frame)
    except ValueError:
        return "not JSON"
    except RecursionError:
        return "too deep"
    if _depth(parsed) > MAX_DEPTH:
        return "too deep"
    if isinstance(parsed, list) and len(parsed) == 4 and parsed[0] == 2:
        return f"CALL {parsed[2] if parsed[2] in actions(version) else '(no such action)'}"
    return "broken envelope"


@pytest.mark.filterwarnings("error::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@settings(
    max_examples=EXAMPLES_PER_VERSION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_every_frame_is_answered_and_the_connection_survives(
    fuzzed: Fuzzed, version: str, data: st.DataObject
) -> None:
    charger = fuzzed.chargers[version]
    fuzzed.csms.take_tracebacks()  # a failing example's own, already reported
    uid = charger.next_id("f")
    frame = data.draw(frames(version, charger.charger_id, uid), label="frame")
    text = frame if isinstance(frame, str | bytes) else json.dumps(frame)
    FRAMES_RUN[f"{version} {_kind(version, text)}"] += 1
    check_exchange(charger, fuzzed.csms, text)
