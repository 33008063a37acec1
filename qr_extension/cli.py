"""``qrcharge qr encode|decode|roundtrip`` and ``qrcharge keys generate|jwks``.

Every command reports a failure as one line on stderr and exit code 2 (usage or input errors)
or 1 (a demo step that did not hold); no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from qr_extension.errors import QrChargeError, TokenFormatError
from qr_extension.identify import parse_identification_url
from qr_extension.keys import KeyRing, generate_key, load_private_key, save_private_key
from qr_extension.qr import (
    PhotoConditions,
    decode_qr,
    qr_version,
    render_png,
    render_svg,
    simulate_photo,
)
from qr_extension.refusal import Refusal
from qr_extension.settlement import (
    build_settlement,
    check_settlement,
    peek_settlement,
    sign_settlement,
    verify_settlement,
)
from qr_extension.start import (
    MemoryUsedTokens,
    StartAuthorization,
    inspect_token,
    issue_start_token,
    verify_start_token,
)
from qr_extension.tariff import (
    Limits,
    Tariff,
    TouPeriod,
    UsageBucket,
    compute_cost,
    currency_exponent,
    limit_reached,
    max_amount,
    merge_usage,
    split_usage,
)

_T = TypeVar("_T")
Handler = Callable[[argparse.Namespace], int]
EXIT_USAGE = 2


class CommandError(QrChargeError):
    """A command cannot do what was asked (bad argument, file exists, ...)."""


def _guarded(handler: Handler) -> Handler:
    """Turns the expected errors of a command into a message on stderr and exit code 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (QrChargeError, OSError) as exc:
            message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
            print(f"qrcharge {args.command}: error: {message}{where}", file=sys.stderr)
            return EXIT_USAGE

    return run


def register(subparsers: Any) -> None:
    """Adds the ``qr`` (with ``roundtrip``) and ``keys`` commands to the ``qrcharge`` parser."""
    qr = subparsers.add_parser("qr", help="render a text as a QR code, or read codes from an image")
    qr_actions = qr.add_subparsers(dest="action", required=True, metavar="ACTION")
    encode = qr_actions.add_parser("encode", help="render TEXT (or stdin with -) as a QR code")
    encode.add_argument("text", metavar="TEXT|-")
    encode.add_argument("--out", type=Path, help="write a .png or .svg file")
    encode.add_argument("--box-size", type=int, default=8, help="PNG pixels per module")
    encode.set_defaults(func=_guarded(_qr_encode))
    decode = qr_actions.add_parser("decode", help="print the texts of the QR codes in IMAGE")
    decode.add_argument("image", type=Path, metavar="IMAGE")
    decode.set_defaults(func=_guarded(_qr_decode))

    keys = subparsers.add_parser("keys", help="P-256 signing keys")
    key_actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    generate = key_actions.add_parser("generate", help="write a new private key (PEM, 0600)")
    generate.add_argument("--out", type=Path, required=True, metavar="PATH")
    generate.add_argument("--force", action="store_true", help="replace an existing file")
    generate.set_defaults(func=_guarded(_keys_generate))
    jwks = key_actions.add_parser("jwks", help="print the JWKS of the public parts of PEM files")
    jwks.add_argument("pems", type=Path, nargs="+", metavar="PEM")
    jwks.set_defaults(func=_guarded(_keys_jwks))

    demo = qr_actions.add_parser(
        "roundtrip",
        help="run one offline scan-to-pay session end to end, in memory, and print it",
    )
    demo.add_argument("--keep", type=Path, metavar="DIR", help="keep keys and images in DIR")
    demo.set_defaults(func=_guarded(_demo))


# --- qr ----------------------------------------------------------------------------------------


def _qr_encode(args: argparse.Namespace) -> int:
    text: str = sys.stdin.read().rstrip("\r\n") if args.text == "-" else args.text
    if not text:
        raise CommandError("nothing to encode")
    version = qr_version(text)
    out: Path | None = args.out
    if out is not None:
        suffix = out.suffix.lower()
        if suffix == ".png":
            if args.box_size < 1:
                raise CommandError("--box-size must be at least 1")
            out.write_bytes(render_png(text, box_size=args.box_size))
        elif suffix == ".svg":
            out.write_text(render_svg(text), encoding="utf-8")
        else:
            raise CommandError(f"--out must end in .png or .svg, not {out.name!r}")
    written = f", written to {out}" if out is not None else ""
    print(f"QR version {version} (level M), {len(text)} characters{written}")
    return 0


def _describe(text: str) -> list[str]:
    """What a decoded text is, when it is one of ours; every line says it is unverified."""
    try:
        identification = parse_identification_url(text)
    except QrChargeError:
        pass
    else:
        fields = {k: v for k, v in asdict(identification).items() if v is not None}
        return [f"  identification URL (code not verified): {json.dumps(fields)}"]
    try:
        header, claims = inspect_token(text)
    except TokenFormatError:
        return []
    kind = header.get("typ", "token")
    return [
        f"  UNVERIFIED {kind} (signature, audience and time NOT checked):",
        f"  UNVERIFIED header: {json.dumps(header, sort_keys=True)}",
        f"  UNVERIFIED claims: {json.dumps(claims, sort_keys=True)}",
    ]


def _qr_decode(args: argparse.Namespace) -> int:
    for text in decode_qr(args.image):
        print(text)
        for line in _describe(text):
            print(line)
    return 0


# --- keys --------------------------------------------------------------------------------------


def _keys_generate(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and not args.force:
        raise CommandError(f"{out} exists; pass --force to replace it")
    if out.is_dir():
        raise CommandError(f"{out} is a directory")
    key = generate_key()
    save_private_key(key, out)
    print(key.kid)
    return 0


def _keys_jwks(args: argparse.Namespace) -> int:
    ring = KeyRing.of(load_private_key(path).public for path in args.pems)
    print(json.dumps(ring.to_jwks(), indent=2))
    return 0


# --- demo --------------------------------------------------------------------------------------
# One session on a simulated clock: the order is issued at 21:40 local time (UTC+8), so the
# charge crosses the 22:00 boundary into the night price, reaches the order's amount limit,
# idles past the grace period and ends when the driver unplugs.

DEMO_ISSUER = "qrcharge"
DEMO_CHARGER = "CP-0042.north_1"
DEMO_ORDER = "ORD7K2M9Q4XW8P1"
DEMO_ISSUED_AT = 1_795_700_400  # 2026-11-26T13:40:00Z = 21:40 at UTC+8
DEMO_LEEWAY_S = 300
DEMO_POWER_W = 7_400
DEMO_PLUGGED_S = 2 * 3600
DEMO_METER_START_WH = 1_234_567


class DemoFailure(QrChargeError):
    """A step of the demo did not give the expected result."""


def _demo_tariff() -> tuple[Tariff, Limits]:
    tariff = Tariff(
        id="DAYNIGHT-2026",
        currency="CNY",
        fixed_fee=5_000,  # 0.50
        energy_price=12_000,
        time_price=3_000,
        idle_price=6_000,  # 0.60 per idle hour after 30 minutes
        idle_grace_min=30,
        tou=(TouPeriod(480, 1320, 15_000, 3_000), TouPeriod(1320, 480, 8_000, 1_000)),
        tz_offset_min=480,
        cap=20_000,
    )
    amount = max_amount(tariff, 1_000, 50_000)  # the driver asks for at most 10.00
    return tariff, Limits(amount=amount, energy_wh=40_000, duration_s=4 * 3600)


def _money(minor: int, currency: str) -> str:
    exponent = currency_exponent(currency)
    return f"{minor / 10**exponent:.{exponent}f} {currency}"


def _photo_decode(text: str, seed: int, keep: Path) -> tuple[str, float]:
    """Renders ``text``, photographs it like a camera would and decodes the frame."""
    (keep / f"qr-{seed}.png").write_bytes(render_png(text))
    photo = simulate_photo(text, PhotoConditions(angle_deg=14.0, seed=seed))
    (keep / f"photo-{seed}.jpg").write_bytes(photo)
    began = time.perf_counter()
    texts = decode_qr(photo)
    elapsed_ms = (time.perf_counter() - began) * 1000
    if texts != [text]:
        raise DemoFailure(f"the photo decoded to {len(texts)} other text(s)")
    return texts[0], elapsed_ms


def _simulate_session(
    auth: StartAuthorization, started: int
) -> tuple[tuple[UsageBucket, ...], int, int, str]:
    """Meters the session minute by minute: (usage, stopped_at, meter_stop_wh, reason)."""
    usage: tuple[UsageBucket, ...] = ()
    meter, charging, reason = DEMO_METER_START_WH, True, "EVDisconnected"
    for t in range(started, started + DEMO_PLUGGED_S, 60):
        wh = DEMO_POWER_W * 60 // 3600 if charging else 0
        usage = merge_usage(usage, split_usage(auth.tariff, t, t + 60, wh, idle=not charging))
        meter += wh
        if charging:
            reached = limit_reached(auth.tariff, auth.limits, usage, elapsed_s=t + 60 - started)
            if reached is not None:
                charging, reason = False, reached.value
                print(f"     limit reached after {(t + 60 - started) // 60} min: {reason}")
    return usage, started + DEMO_PLUGGED_S, meter, reason


def _demo(args: argparse.Namespace) -> int:
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return _run_demo(args.keep)
    with tempfile.TemporaryDirectory(prefix="qrcharge-demo-") as tmp:
        return _run_demo(Path(tmp))


def _run_demo(workdir: Path) -> int:
    try:
        _demo_steps(workdir)
    except DemoFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print("OK: the order was started offline, settled and checked.")
    return 0


def _expect(outcome: _T | Refusal, what: str) -> _T:
    if isinstance(outcome, Refusal):
        raise DemoFailure(f"{what} refused: {outcome}")
    return outcome


def _demo_steps(workdir: Path) -> None:
    print(f"qrcharge qr roundtrip: simulated clock, files in {workdir}")
    csms_key, charger_key = generate_key(), generate_key()
    save_private_key(csms_key, workdir / "csms.pem")
    save_private_key(charger_key, workdir / "charger.pem")
    print(f" 1. keys: CSMS {csms_key.kid}, charger {charger_key.kid} (P-256, 0600 PEM)")

    tariff, limits = _demo_tariff()
    token = issue_start_token(
        key=csms_key, charge_point_id=DEMO_CHARGER, order_id=DEMO_ORDER, evse_id=2,
        tariff=tariff, limits=limits, issued_at=DEMO_ISSUED_AT, validity_s=900,
    )  # fmt: skip
    print(f" 2. start token: {len(token)} characters, QR version {qr_version(token)} (level M),"
          f" hold {_money(limits.amount, tariff.currency)}")  # fmt: skip

    scanned, decode_ms = _photo_decode(token, seed=1, keep=workdir)
    print(f" 3. charger camera: 1280x720 JPEG photo decoded in {decode_ms:.1f} ms")

    used, now = MemoryUsedTokens(), DEMO_ISSUED_AT + 60

    def scan(at: int) -> StartAuthorization | Refusal:
        return verify_start_token(
            scanned, trusted=KeyRing((csms_key.public,)), charge_point_id=DEMO_CHARGER,
            evse_ids=(1, 2), waiting_evse_ids=(2,), now=at, leeway_s=DEMO_LEEWAY_S, used=used,
        )  # fmt: skip

    auth = _expect(scan(now), "start token")
    used.mark_used(auth.order_id, auth.usable_until(DEMO_LEEWAY_S))
    print(f" 4. verified offline: order {auth.order_id}, EVSE {auth.evse_id}, tariff"
          f" {auth.tariff.id}, amt={auth.limits.amount} wh={auth.limits.energy_wh}")  # fmt: skip
    replay = scan(now + 5)
    if not isinstance(replay, Refusal):
        raise DemoFailure("a second scan of the same start QR was accepted")
    print(f" 5. second scan of the same QR refused: {replay}")

    print(f" 6. charging at {DEMO_POWER_W} W from 21:41 local, unplugged after 2 h")
    usage, stopped, meter_stop, reason = _simulate_session(auth, now)
    cost = compute_cost(auth.tariff, usage, limit_amount=auth.limits.amount)
    for b in usage:
        print(f"     bucket {b.tou_index}: {b.wh} Wh, {b.charging_s} s charging, {b.idle_s} s idle")
    print(f" 7. cost: fixed {cost.fixed:.4f} + energy {cost.energy:.4f} + time {cost.time:.4f}"
          f" + idle {cost.idle:.4f} -> {_money(cost.total, tariff.currency)}"
          f"{' (held to a limit)' if cost.capped else ''}")  # fmt: skip

    settlement = build_settlement(
        auth, audience=DEMO_ISSUER, transaction_id="1", started_at=now, stopped_at=stopped,
        meter_start_wh=DEMO_METER_START_WH, meter_stop_wh=meter_stop, usage=usage,
        reason=reason, seq=1, offline=True, issued_at=stopped,
    )  # fmt: skip
    signed = sign_settlement(settlement, charger_key)
    print(f" 8. settlement signed by the charger: {len(signed)} characters,"
          f" QR version {qr_version(signed)}, {settlement.energy_wh} Wh, rsn {reason}")  # fmt: skip

    uploaded, decode_ms = _photo_decode(signed, seed=2, keep=workdir)
    print(f" 9. driver's phone: settlement QR photo decoded in {decode_ms:.1f} ms")

    issuer, kid = _expect(peek_settlement(uploaded), "settlement")
    if (issuer, kid) != (DEMO_CHARGER, charger_key.kid):
        raise DemoFailure(f"settlement names {issuer}/{kid}")
    checked = _expect(
        verify_settlement(uploaded, key=charger_key.public, audience=DEMO_ISSUER), "settlement"
    )
    mismatch = check_settlement(checked, auth, leeway_s=DEMO_LEEWAY_S)
    if mismatch is not None:
        raise DemoFailure(f"settlement does not match the order: {mismatch}")
    if checked.amount != cost.total:
        raise DemoFailure(f"settled {checked.amount}, the charger computed {cost.total}")
    print(f"10. CSMS: signature of {issuer} key {kid} verified, order matched, cost recomputed:"
          f" pay {_money(checked.amount, checked.currency)}")  # fmt: skip
