"""The operator page's translations (i18n/operator.<lang>.json): every message its modules and
its HTML ask for exists in English and in Chinese, with the same placeholders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from csms.payments.lifecycle import OrderState, PaymentState

WEB = Path(__file__).resolve().parents[2] / "client_web"
LANGUAGES = ("en", "zh-CN")
DYNAMIC = {  # keys built from a value: t(`role.${role}`), t(`registration.${state}`)
    "role.": ("admin", "operator", "viewer"),
    "registration.": ("Accepted", "Pending", "Rejected"),
    "reservation.": ("requested", "active", "refused", "cancelled", "used", "expired", "removed"),
    "idtag.": ("Accepted", "Blocked", "Expired", "Invalid"),
    "ledger.": ("top_up", "hold", "capture", "release", "debt", "refund"),
    "txn.": ("Started", "Ended"),
    "order_status.": tuple(s.value for s in OrderState),
    "payment_status.": tuple(s.value for s in PaymentState),
}


def messages(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((WEB / "i18n" / f"operator.{lang}.json").read_text("utf-8"))
    return data


def used_keys() -> set[str]:
    sources = [WEB / "js" / "operator.js", *(WEB / "js" / "operator").glob("*.js")]
    keys: set[str] = set()
    for path in sources:
        text = path.read_text("utf-8")
        keys |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", text))
        keys |= set(re.findall(r"""\bkey: ["']([\w.]+)["']""", text))  # command field labels
        keys |= set(re.findall(r"""["']((?:list|error)\.\w+)["']""", text))
    html = (WEB / "operator.html").read_text("utf-8")
    keys |= set(re.findall(r'data-i18n="([\w.]+)"', html))
    for prefix, names in DYNAMIC.items():
        keys |= {prefix + name for name in names}
    return keys


def test_order_and_payment_statuses_are_shown_in_words() -> None:
    """The order views show a status through ``orderStatus`` / ``paymentStatus`` (keys
    ``order_status.<code>`` / ``payment_status.<code>``), never the bare code."""
    orders = (WEB / "js" / "operator" / "orders.js").read_text("utf-8")
    assert "t(`order_status.${s}`)" in orders and "t(`payment_status.${s}`)" in orders
    for name in ("orders.js", "order.js"):
        text = (WEB / "js" / "operator" / name).read_text("utf-8")
        assert not re.search(r", (o|p|paid)\.status\)", text), name
        assert "[o.payment_status ||" not in text, name
    zh = messages("zh-CN")
    for state in [*OrderState, *PaymentState]:
        prefix = "order_status." if isinstance(state, OrderState) else "payment_status."
        assert re.search(r"[\u4e00-\u9fff]", zh[prefix + state.value]), state


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_key_the_operator_page_uses_is_translated(lang: str) -> None:
    keys = used_keys()
    assert len(keys) > 150
    assert keys - messages(lang).keys() == set()


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    en, zh = messages("en"), messages("zh-CN")
    assert en.keys() == zh.keys()
    for key, text in en.items():
        assert set(re.findall(r"\{\w+\}", text)) == set(re.findall(r"\{\w+\}", zh[key])), key
        if key not in ("nav.language",) and re.search(r"[a-z]{4}", text):
            assert re.search(r"[\u4e00-\u9fff]", zh[key]) or zh[key] == text, key
