"""OCPP time stamps: what the CSMS and the charger read from each other."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qr_extension.wire import ocpp_timestamp, parse_ocpp_timestamp


def test_offsets_are_read_as_utc() -> None:
    moment = datetime(2024, 6, 13, 10, 0, tzinfo=UTC)
    assert parse_ocpp_timestamp("2024-06-13T12:00:00+02:00") == moment
    assert parse_ocpp_timestamp("2024-06-13T10:00:00Z") == moment
    assert parse_ocpp_timestamp(ocpp_timestamp(moment)) == moment


@pytest.mark.parametrize(
    "text",
    [
        "today",
        "",
        "2024-02-30T00:00:00Z",
        "2024-06-13T12:00:00+24:00",
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-23:59",  # after year 9999 in UTC
    ],
)
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ocpp_timestamp(text)
