"""``qrcharge qr`` (with ``qr roundtrip``) and ``qrcharge keys`` through their argument parser."""

from __future__ import annotations

import argparse
import io
import json
import stat
from pathlib import Path

import pytest
from PIL import Image

from qr_extension import cli
from qr_extension.identify import identification_url
from qr_extension.keys import generate_key, load_private_key, save_private_key
from qr_extension.qr import decode_qr, qr_version, render_png
from qr_extension.refusal import Reason, Refusal
from qr_extension.start import issue_start_token
from qr_extension.tariff import Limits, Tariff


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="qrcharge")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_encode_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["qr", "encode", "x" * 420]) == 0
    assert (
        capsys.readouterr().out == f"QR version {qr_version('x' * 420)} (level M), 420 characters\n"
    )


def test_encode_png_and_svg_files(tmp_path: Path) -> None:
    png, svg = tmp_path / "code.png", tmp_path / "code.svg"
    assert run(["qr", "encode", "hello", "--out", str(png), "--box-size", "4"]) == 0
    assert decode_qr(png) == ["hello"]
    assert Image.open(png).size == ((21 + 8) * 4, (21 + 8) * 4)
    assert run(["qr", "encode", "hello", "--out", str(svg)]) == 0
    assert svg.read_text().startswith("<svg ")


def test_encode_reads_stdin_with_dash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("from stdin\n"))
    out = tmp_path / "stdin.png"
    assert run(["qr", "encode", "-", "--out", str(out)]) == 0
    assert decode_qr(out) == ["from stdin"]
    assert "10 characters" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["qr", "encode", "x", "--out", "code.gif"], "must end in .png or .svg"),
        (["qr", "encode", "x" * 3000], "do not fit"),
        (["qr", "encode", "x", "--out", "code.png", "--box-size", "0"], "box-size"),
        (["qr", "decode", "missing.png"], "cannot read"),
        (["qr", "decode", "broken.png"], "not a readable image"),
        (["qr", "decode", "blank.png"], "no QR code"),
        (["keys", "jwks", "broken.png"], "PEM"),
        (["keys", "jwks", "missing.pem"], "No such file"),
    ],
)
def test_errors_are_one_line_on_stderr_with_exit_code_2(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    Image.new("L", (200, 200), 255).save(tmp_path / "blank.png")
    assert run(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"qrcharge {argv[0]}: error: ")
    assert message in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_decode_shows_our_token_as_unverified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = issue_start_token(
        key=generate_key(),
        charge_point_id="CP-7",
        order_id="ORDER42",
        evse_id=1,
        tariff=Tariff(id="FLAT", currency="EUR", energy_price=3500),
        limits=Limits(amount=2000, energy_wh=10_000),
        issued_at=1_800_000_000,
        validity_s=900,
    )
    image = tmp_path / "start.png"
    image.write_bytes(render_png(token))
    assert run(["qr", "decode", str(image)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == token
    assert all("UNVERIFIED" in line for line in lines[1:]) and len(lines) == 4
    claims = json.loads(lines[3].split("claims: ", 1)[1])
    assert claims["jti"] == "ORDER42" and claims["aud"] == "CP-7"
    assert {"lim", "tar", "iat", "exp"} <= claims.keys()
    assert "start+jwt" in lines[1]


def test_decode_describes_an_identification_url_and_plain_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = identification_url("https://pay.example", "CP-7", 2, status="Available", code="123456")
    canvas = Image.new("L", (800, 400), 255)
    canvas.paste(Image.open(io.BytesIO(render_png(url, box_size=5))), (0, 0))
    canvas.paste(Image.open(io.BytesIO(render_png("just text", box_size=5))), (500, 0))
    image = tmp_path / "two.png"
    canvas.save(image)
    assert run(["qr", "decode", str(image)]) == 0
    out = capsys.readouterr().out
    assert url in out and "just text" in out
    assert '"charge_point_id": "CP-7"' in out and "not verified" in out


def test_keys_generate_writes_a_0600_pem_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys" / "csms.pem"
    assert run(["keys", "generate", "--out", str(path)]) == 0
    kid = capsys.readouterr().out.strip()
    assert load_private_key(path).kid == kid
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    assert run(["keys", "generate", "--out", str(path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert run(["keys", "generate", "--out", str(path), "--force"]) == 0
    assert capsys.readouterr().out.strip() != kid
    assert load_private_key(path).kid != kid


def test_keys_jwks_prints_only_public_parts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [generate_key(), generate_key()]
    paths = []
    for n, key in enumerate(keys):
        paths.append(tmp_path / f"k{n}.pem")
        save_private_key(key, paths[-1])
    assert run(["keys", "jwks", *map(str, paths)]) == 0
    jwks = json.loads(capsys.readouterr().out)
    assert [k["kid"] for k in jwks["keys"]] == [k.kid for k in keys]
    assert all("d" not in k and k["crv"] == "P-256" for k in jwks["keys"])


def test_demo_runs_every_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["qr", "roundtrip", "--keep", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for marker in ["start token:", "decoded in", "refused: replayed", "CostLimitReached",
                   "pay 10.00 CNY", "OK:"]:  # fmt: skip
        assert marker in out, marker
    assert (tmp_path / "photo-1.jpg").exists() and (tmp_path / "photo-2.jpg").exists()


def test_demo_fails_with_exit_code_1_when_a_step_does_not_hold(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        cli, "check_settlement", lambda *a, **k: Refusal(Reason.COST_MISMATCH, "tampered")
    )
    assert run(["qr", "roundtrip"]) == 1
    captured = capsys.readouterr()
    assert "FAILED: settlement does not match the order: cost_mismatch: tampered" in captured.err
    assert "OK:" not in captured.out
