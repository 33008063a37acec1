"""Small parts: camera folder, display, command line, configuration."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

from charge_point.camera import take_new_frames
from charge_point.cli import register, settings_from_args
from charge_point.configuration import Configuration
from charge_point.display import Display
from charge_point.errors import ConfigurationError
from charge_point.settings import StationSettings
from charge_point.store import Store
from qr_extension.qr import decode_qr, render_png
from qr_extension.refusal import Reason, Refusal


def test_camera_folder_takes_each_new_image_once(tmp_path: Path) -> None:
    folder = tmp_path / "camera"
    folder.mkdir()
    (folder / "b.png").write_bytes(render_png("B"))
    (folder / "a.png").write_bytes(render_png("A"))
    (folder / "notes.txt").write_text("not an image")
    frames = take_new_frames(folder)
    assert [decode_qr(f) for f in frames] == [["A"], ["B"]]
    assert take_new_frames(folder) == []
    assert (folder / "a.png.done").exists() and (folder / "notes.txt").exists()


def test_display_shows_settlement_then_identification(tmp_path: Path, capsys) -> None:
    display = Display(tmp_path, terminal=True)
    display.show_identification("http://x/c/CP?evse=1")
    display.show_refusal(Refusal(Reason.EXPIRED, "old"), now=5)
    assert display.reasons[-1].reason == "expired" and "expired" in display.text
    display.show_settlement("SETTLEMENT", now=10, display_s=60)
    printed = capsys.readouterr().out
    assert len(printed.splitlines()) > 10 and "▄" in printed  # the QR drawn on the terminal
    assert decode_qr(display.settlement_png_path.read_bytes()) == ["SETTLEMENT"]
    display.show_identification("http://x/c/CP?evse=1&t=2")  # does not replace it
    assert display.qr_text == "SETTLEMENT" and display.showing_settlement(69)
    assert not display.showing_settlement(70)
    display.show_identification("http://x/c/CP?evse=1&t=3")
    assert display.qr_kind == "identification"
    assert not display.settlement_png_path.exists()


def test_command_line_overrides_settings(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("QRCHARGE_CP_METER_INTERVAL_S", "15")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "cp",
            "--id",
            "CP-9",
            "--csms",
            "ws://h/ocpp",
            "--ocpp",
            "2.0.1",
            "--evses",
            "3",
            "--state-dir",
            str(tmp_path),
            "--time-scale",
            "60",
            "--trust-first-keys",
        ]
    )
    s = settings_from_args(args)
    assert (s.charge_point_id, s.ocpp_version, s.evses, s.time_scale) == ("CP-9", "2.0.1", 3, 60)
    assert s.trust_first_keys and s.meter_interval_s == 15 and s.state_dir == tmp_path
    member = s.for_fleet_member(2)
    assert member.charge_point_id == "CP-9-002" and member.state_dir == tmp_path / "CP-9-002"
    assert member.control_port is None
    assert replace(s, control_port=9000).for_fleet_member(2).control_port == 9002
    assert replace(s, control_port=0).for_fleet_member(2).control_port == 0  # any free port
    with pytest.raises(SystemExit):
        parser.parse_args(["cp", "--id", "X", "--ocpp", "2.1"])


def test_the_password_can_stay_out_of_the_process_list(tmp_path: Path, monkeypatch) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())

    def password(*extra: str) -> str | None:
        args = parser.parse_args(["cp", "--id", "CP-9", "--state-dir", str(tmp_path), *extra])
        return settings_from_args(args).password

    assert password() is None
    monkeypatch.setenv("QRCHARGE_CP_PASSWORD", "from-the-environment")
    assert password() == "from-the-environment"
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    assert password("--password-file", str(secret)) == "from-a-file"
    assert password("--password-file", str(secret), "--password", "given") == "given"
    assert "from-the-environment" not in repr(
        settings_from_args(parser.parse_args(["cp", "--id", "CP-9", "--state-dir", str(tmp_path)]))
    )
    secret.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        password("--password-file", str(secret))
    with pytest.raises(ValueError, match="cannot read"):
        password("--password-file", str(tmp_path / "missing"))


def test_configuration_is_durable_and_typed(tmp_path: Path) -> None:
    store = Store.in_dir(tmp_path)
    defaults = StationSettings("CP").ocpp_defaults()
    config = Configuration(store, defaults)
    config.set("LocalPreAuthorize", "TRUE")
    config.set("HeartbeatInterval", "90")
    bad_values = [
        ("HeartbeatInterval", "-1"),
        ("HeartbeatInterval", "x"),
        ("LocalPreAuthorize", "yes"),
        ("NumberOfConnectors", "3"),
        ("Nope", "1"),
    ]
    for bad in bad_values:
        with pytest.raises(ConfigurationError):
            config.set(*bad)
    store.close()
    again = Configuration(Store.in_dir(tmp_path), defaults)
    assert again["LocalPreAuthorize"] is True and again["HeartbeatInterval"] == 90


def test_camera_source_kinds(tmp_path: Path) -> None:
    from charge_point.camera import source_kind

    image = tmp_path / "qr.png"
    image.write_bytes(render_png("X"))
    assert source_kind(tmp_path) == "folder"
    assert source_kind(image) == "file"
    assert source_kind(Path("/dev/video0")) == "video"
