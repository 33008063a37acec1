"""The identification QR on a charger's screen carries a time-based code ``t``: the page
passes it on, says so in words when it is stale, and works with a charger without a secret."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Browser

from tests.e2e.conftest import PHONE, Api, Demo, until

CHARGER = "DEMO-03"


def screen_url(api: Api, charger_id: str) -> str:
    """The identification URL the charger's screen shows now (with ``s`` and ``t``)."""
    api.control(charger_id, "POST", "/evses/1/unplug")  # idle screen: the identification QR
    return str(
        until(
            lambda: (
                (d := api.control(charger_id, "GET", "/display").json())["qr_kind"]
                == "identification"
                and "t=" in d["qr_text"]
                and d["qr_text"]
            )
        )
    )


def test_screen_code_checked_when_the_charger_has_a_secret(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    page = launch().new_context(viewport=PHONE, locale="en-US").new_page()
    # no presence secret on the CSMS yet: the code cannot be checked, the page still works
    page.goto(screen_url(api, "DEMO-02"))
    page.wait_for_selector("#request-form")

    answer = api.http.put(f"/api/v1/admin/chargers/{CHARGER}/presence-secret", headers=api.admin)
    assert answer.status_code == 200, answer.text
    assert answer.json().get("installed") is True, answer.json()
    url = screen_url(api, CHARGER)
    page.goto(url)
    page.wait_for_selector("#request-form")

    stale = url.split("&t=")[0] + "&t=000000"
    page.goto(stale)
    page.wait_for_selector("#charger-error")
    assert "out of date. Scan the screen again" in page.inner_text("#charger-error")
