"""The translations: every message the page asks for exists in English and in Chinese, with
the same placeholders, and every reason code the CSMS can answer has a driver's sentence."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qr_extension.refusal import Reason

WEB = Path(__file__).resolve().parents[2] / "client_web"
LANGUAGES = ("en", "zh-CN")


def messages(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((WEB / "i18n" / f"{lang}.json").read_text("utf-8"))
    return data


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in (WEB / "js").rglob("*.js"):
        if path.name == "operator.js" or "operator" in path.parent.parts:
            continue  # the operator page has its own messages (test_operator_i18n.py)
        keys |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", path.read_text("utf-8")))
    return keys


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_key_the_page_uses_is_translated(lang: str) -> None:
    keys = used_keys()
    assert len(keys) > 60
    assert keys - messages(lang).keys() == set()


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    en, zh = messages("en"), messages("zh-CN")
    assert en.keys() == zh.keys()
    for key, text in en.items():
        assert set(re.findall(r"\{\w+\}", text)) == set(re.findall(r"\{\w+\}", zh[key])), key


def test_every_refusal_reason_and_money_error_has_a_sentence() -> None:
    codes = {f"error.{reason.value}" for reason in Reason if reason is not Reason.UNTRUSTED_KEYS}
    codes |= {"error.insufficient_funds", "error.payment_declined", "error.invalid_amount"}
    codes |= {
        f"camera.camera_{c}" for c in ("denied", "missing", "failed", "unavailable", "insecure")
    }
    for lang in LANGUAGES:
        assert codes - messages(lang).keys() == set(), lang
