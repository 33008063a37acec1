"""``qrcharge demo`` without starting it: the fleet, the printed summary, a port in use.

(The running demo is exercised by every browser test in ``tests/e2e``, which starts it as a
subprocess with ``--port 0 --info-file``.)
"""

from __future__ import annotations

import socket

import pytest

import qrcharge_cli
from demo.cli import describe
from demo.fleet import default_fleet
from demo.runner import ChargerInfo, DemoInfo


def test_fleet_alternates_ocpp_versions_and_the_first_has_two_evses() -> None:
    fleet = default_fleet(5)
    assert [c.id for c in fleet] == ["DEMO-01", "DEMO-02", "DEMO-03", "DEMO-04", "DEMO-05"]
    assert [c.ocpp_version for c in fleet] == ["1.6", "2.0.1", "1.6", "2.0.1", "1.6"]
    assert [c.evses for c in fleet] == [2, 1, 1, 1, 1]
    assert len({c.password for c in fleet}) == 5
    assert all(len(c.password) >= 8 for c in fleet)
    with pytest.raises(ValueError):
        default_fleet(0)


def test_summary_names_every_url_and_the_sign_in() -> None:
    info = DemoInfo(
        base_url="http://127.0.0.1:9",
        page_url="http://127.0.0.1:9/c/DEMO-01?evse=1",
        operator_url="http://127.0.0.1:9/operator",
        admin_api_key="k",
        driver_email="d@example.org",
        driver_password="pw-pw-pw",
        data_dir="/tmp/x",
        chargers=[ChargerInfo("DEMO-01", "1.6", 2, "here", "http://p", "http://127.0.0.1:10")],
    )
    text = describe(info)
    for part in ("/c/DEMO-01?evse=1", "/operator", "d@example.org / pw-pw-pw", "operator key: k",
                 "DEMO-01  OCPP 1.6", "control API http://127.0.0.1:10"):  # fmt: skip
        assert part in text
    assert '"page_url": "http://127.0.0.1:9/c/DEMO-01?evse=1"' in info.to_json()


def test_a_port_in_use_is_a_plain_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert qrcharge_cli.main(["demo", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_the_qr_round_trip_moved_under_qr() -> None:
    args = qrcharge_cli.build_parser().parse_args(["qr", "roundtrip"])
    assert args.action == "roundtrip"
    assert qrcharge_cli.build_parser().parse_args(["demo", "--port", "0"]).port == 0
