"""The fault proxy's framing, checked against the ``websockets`` library's own frames."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from tests.faults.proxy import frame_length, frame_payload, without_extensions

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("size", [0, 10, 125, 126, 200, 65535, 65536, 70_000])
@pytest.mark.parametrize("mask", [True, False])
def test_frame_boundaries_and_payload(size: int, mask: bool) -> None:
    text = ("x" * size).encode()
    wire = Frame(Opcode.TEXT, text).serialize(mask=mask, extensions=[])
    follower = Frame(Opcode.TEXT, b"next").serialize(mask=mask, extensions=[])
    assert frame_length(wire + follower) == len(wire)
    for cut in {0, 1, 2, 3, 9, len(wire) - 1} & set(range(len(wire))):
        assert frame_length(wire[:cut]) is None
    assert frame_payload(wire) == (0x1, text)


def test_the_handshake_loses_only_its_extensions() -> None:
    request = (
        b"GET /ocpp/CP HTTP/1.1\r\nHost: x\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
    assert without_extensions(request) == (
        b"GET /ocpp/CP HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
