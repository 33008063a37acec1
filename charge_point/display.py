"""The charger's screen: a line of text, the recent refusal reasons, and one QR code.

The QR code is the settlement QR from the end of a session until ``cp_settlement_display_s``
has passed or the next session starts, else the dynamic identification QR of the
waiting EVSE, refreshed as its time step passes. The settlement QR is also written
as a PNG file in the state directory and printed on the terminal. Pure state plus rendering:
the station decides what to show.
"""

from __future__ import annotations

import io
import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import qrcode

from qr_extension.qr import render_png
from qr_extension.refusal import Refusal

log = logging.getLogger(__name__)

SETTLEMENT_PNG = "settlement.png"
MAX_REASONS = 20


@dataclass(frozen=True, slots=True)
class ShownReason:
    at: float
    reason: str
    detail: str


class Display:
    """What the screen shows now."""

    def __init__(self, state_dir: Path, *, terminal: bool = False) -> None:
        self._dir = state_dir
        self._terminal = terminal
        self.text = "Starting"
        self.reasons: deque[ShownReason] = deque(maxlen=MAX_REASONS)
        self.qr_kind: str | None = None  # "identification" | "settlement"
        self.qr_text: str | None = None
        self.settlement_until: float | None = None
        self._png_cache: tuple[str, bytes] | None = None
        self.settlement_png_path.unlink(missing_ok=True)  # the file mirrors the screen

    @property
    def settlement_png_path(self) -> Path:
        return self._dir / SETTLEMENT_PNG

    def show_text(self, text: str) -> None:
        self.text = text

    def show_refusal(self, refusal: Refusal, now: float) -> None:
        self.reasons.append(ShownReason(now, refusal.reason.value, refusal.detail))
        self.text = f"Code refused: {refusal.reason.value}"
        log.warning("start refused: %s", refusal)

    def show_settlement(self, token: str, *, now: float, display_s: float) -> None:
        """Shows (and writes, and prints) the settlement QR until ``now + display_s``."""
        self.qr_kind, self.qr_text = "settlement", token
        self.settlement_until = now + display_s
        self.text = "Session ended: scan the code to pay"
        png = self.png()
        tmp = self.settlement_png_path.with_suffix(".tmp")
        tmp.write_bytes(png)
        tmp.replace(self.settlement_png_path)
        if self._terminal:
            self._print(token)

    def clear_settlement(self) -> None:
        if self.qr_kind == "settlement":
            self.qr_kind, self.qr_text, self.settlement_until = None, None, None
            self.settlement_png_path.unlink(missing_ok=True)

    def showing_settlement(self, now: float) -> bool:
        if self.qr_kind != "settlement":
            return False
        if self.settlement_until is not None and now >= self.settlement_until:
            self.clear_settlement()
            return False
        return True

    def show_identification(self, url: str) -> None:
        """Shows an identification URL unless a settlement QR is still on screen."""
        if self.qr_kind != "settlement":
            self.qr_kind, self.qr_text = "identification", url

    def png(self) -> bytes:
        """The current QR as a PNG (rendered once per distinct text)."""
        if self.qr_text is None:
            return b""
        if self._png_cache is None or self._png_cache[0] != self.qr_text:
            self._png_cache = (self.qr_text, render_png(self.qr_text))
        return self._png_cache[1]

    @staticmethod
    def _print(text: str) -> None:
        code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
        code.add_data(text)
        out = io.StringIO()
        code.print_ascii(out=out, invert=True)
        print(out.getvalue(), flush=True)  # the terminal is this charger's second screen

    def snapshot(self) -> dict[str, object]:
        return {
            "text": self.text,
            "qr_kind": self.qr_kind,
            "qr_text": self.qr_text,
            "settlement_until": self.settlement_until,
            "reasons": [{"at": r.at, "reason": r.reason, "detail": r.detail} for r in self.reasons],
        }
