"""The identification QR on a charger's screen carries a time-based code ``t``: the page
passes it on, says so in words when it is stale, and works with a charger without a secret."""

from __future__ import annotations

import time
from collections.abc import Callable

from playwright.sync_api import Browser

from qr_extension import presence_code
from tests.e2e.conftest import PHONE, Api, Demo

CHARGER = "DEMO-03"
STEP_S, DIGITS = 30, 6  # config/default.toml: identification_step_s, identification_digits


def test_screen_code_checked_when_the_charger_has_a_secret(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    page = launch().new_context(viewport=PHONE, locale="en-US").new_page()
    # no presence secret on the CSMS: the code cannot be checked, the page still works
    page.goto(f"{demo.base_url}/c/DEMO-02?evse=1&s=Available&t=123456")
    page.wait_for_selector("#request-form")

    answer = api.http.put(f"/api/v1/admin/chargers/{CHARGER}/presence-secret", headers=api.admin)
    assert answer.status_code == 200, answer.text
    secret = bytes.fromhex(answer.json()["secret_hex"])
    code = presence_code(secret, int(time.time()), step_s=STEP_S, digits=DIGITS)
    page.goto(f"{demo.base_url}/c/{CHARGER}?evse=1&s=Available&t={code}")
    page.wait_for_selector("#request-form")

    stale = presence_code(secret, int(time.time()) - 10 * STEP_S, step_s=STEP_S, digits=DIGITS)
    page.goto(f"{demo.base_url}/c/{CHARGER}?evse=1&s=Available&t={stale}")
    page.wait_for_selector("#charger-error")
    assert "out of date. Scan the screen again" in page.inner_text("#charger-error")
