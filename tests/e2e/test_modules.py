"""The page's pure modules (money, tariff words, error codes, what a scanned text is), run in
Chromium as the page loads them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Browser

from tests.e2e.conftest import Demo

SCRIPT = """async () => {
  const money = await import("/js/money.js");
  const api = await import("/js/api.js");
  const scanner = await import("/js/scanner.js");
  const i18n = await import("/js/i18n.js");
  await i18n.setLanguage("en");
  const long = {id: "T", currency: "CNY", fixed_fee: 10000, energy_price: 12000,
    time_price: 3000, idle_price: 60000, idle_grace_min: 15, cap: 5000, tz_offset_min: 480,
    tou: [{start_minute: 1320, end_minute: 420, energy_price: 8000, time_price: 0}]};
  const positional = ["T", "CNY", 10000, 12000, 3000, [[1320, 420, 8000, 0]], 480, 60000, 15, 5000];
  return {
    amounts: [money.formatAmount(1234, "CNY"), money.formatAmount(5, "JPY"),
              money.formatAmount(1234, "KWD")],
    prices: [money.formatPrice(12000, "CNY"), money.formatPrice(12345, "CNY")],
    parsed: [money.parseAmount("12.5", "CNY"), money.parseAmount("1.234", "CNY"),
             money.parseAmount("abc", "CNY"), money.parseAmount("7", "JPY")],
    same: JSON.stringify(money.normalizeTariff(long))
      === JSON.stringify(money.normalizeTariff(positional)),
    words: money.describeTariff(long),
    estimates: [money.estimate(long, {energy_wh: 11000}, 11000),
                money.estimate(long, {amount: 999}),
                money.estimate(long, {energy_wh: 100000}, 11000),
                money.estimate(long, {full: true})],
    codes: [api.errorCode(402, {detail: {message: "no"}}),
            api.errorCode(422, {detail: {reason: "bad_signature", message: "x"}}),
            api.errorCode(409, {detail: "taken", code: "email_taken"}),
            api.errorCode(422, {detail: [{loc: ["body"], msg: "bad"}]}),
            api.errorCode(500, null)],
    kinds: [scanner.classify(location.origin + "/c/CP%201?evse=2&t=123456"),
            scanner.classify(SETTLE), scanner.classify(START), scanner.classify("hello")],
  };
}"""


def _jws(typ: str) -> str:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "ES256", "typ": typ}).encode())
    return f"{header.decode().rstrip('=')}.e30.c2ln"


def test_page_modules(demo: Demo, launch: Callable[..., Browser]) -> None:
    page = launch().new_page()
    page.goto(f"{demo.base_url}/operator")  # any page of ours: same origin for the imports
    script = SCRIPT.replace("SETTLE", repr(_jws("settle+jwt"))).replace(
        "START", repr(_jws("start+jwt"))
    )
    out: dict[str, Any] = page.evaluate(script)
    assert out["amounts"] == ["12.34 CNY", "5 JPY", "1.234 KWD"]
    assert out["prices"] == ["1.20 CNY", "1.2345 CNY"]
    assert out["parsed"] == [1250, None, None, 7]
    assert out["same"] is True
    assert out["words"] == [
        "1.20 CNY/kWh, 0.30 CNY/hour, capped at 50.00 CNY",
        "From 22:00 to 07:00: 0.80 CNY/kWh",
        "Plus 1.00 CNY per charge",
        "Parking after charging: 6.00 CNY/hour after 15 minutes",
    ]
    # 11 kWh at 11 kW: 1.00 + 13.20 + 0.30 = 14.50; an amount is itself; the cap caps
    assert out["estimates"] == [1450, 999, 5000, None]
    assert out["codes"] == [
        "insufficient_funds", "bad_signature", "email_taken", "invalid_input", "http_500",
    ]  # fmt: skip
    assert out["kinds"] == [
        {"kind": "charger", "id": "CP 1", "evse": "2"},
        {"kind": "settlement", "token": _jws("settle+jwt")},
        {"kind": "start", "token": _jws("start+jwt")},
        {"kind": "unknown"},
    ]
