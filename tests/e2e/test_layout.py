"""The page at 360x740 and 1280x800, in English and Simplified Chinese (from the browser's
language, and by the switch), with screenshots saved as test artifacts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from tests.e2e.conftest import DESKTOP, PHONE, Api, Demo, shot
from tests.e2e.flow import signed_in_context

CHARGER = "DEMO-01"


def _fits(page: Page) -> None:
    """Nothing sticks out sideways (no horizontal scrolling on a phone)."""
    assert page.viewport_size is not None
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["360x740", "1280x800"])
def test_screens_fit_the_width(
    size: ViewportSize, demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    tag = f"{size['width']}"
    driver = api.new_driver(top_up=12_345)
    page = signed_in_context(launch(), driver, viewport=size, locale="en-US").new_page()
    page.goto(f"{demo.base_url}/")
    page.wait_for_selector("#scan-charger")
    page.click("#scan-charger")
    page.wait_for_selector("#camera-status >> text=Point the camera")  # zxing-wasm loaded
    _fits(page)
    shot(page, f"layout-home-{tag}")

    page.goto(demo.charger(CHARGER)["page_url"])
    page.wait_for_selector("#tariff >> text=Your prices")
    assert page.inner_text("#charger-status") == "Free"
    for kind in ("amount", "duration", "full", "energy"):
        page.click(f"#kind-{kind}")
        assert page.locator(f"#kind-{kind}.selected").count() == 1
    _fits(page)
    shot(page, f"layout-charger-{tag}", doc=size is DESKTOP)

    page.goto(f"{demo.base_url}/#/wallet")
    page.wait_for_selector("#wallet-balance")
    assert page.inner_text("#wallet-balance") == "123.45 CNY"
    _fits(page)
    shot(page, f"layout-wallet-{tag}")


def test_chinese_from_the_browser_and_the_switch(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    page = launch().new_context(viewport=PHONE, locale="zh-CN").new_page()
    page.goto(demo.charger(CHARGER)["page_url"])
    page.wait_for_selector("#request-form")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert "价格" in page.inner_text("#tariff")
    assert "1.20 CNY/千瓦时" in page.inner_text("#tariff")  # the default billing model
    assert page.inner_text("#charger-status") == "空闲"
    _fits(page)
    shot(page, "driver-charger-zh-360", doc=True)

    page.click("#lang-switch")
    page.wait_for_selector("#tariff >> text=Prices")
    assert "1.20 CNY/kWh, 0.30 CNY/hour" in page.inner_text("#tariff")
    page.reload()  # the choice is remembered
    page.wait_for_selector("#tariff >> text=Prices")


def test_unknown_charger_is_explained(demo: Demo, launch: Callable[..., Browser]) -> None:
    page = launch().new_context(viewport=PHONE, locale="en-US").new_page()
    page.goto(f"{demo.base_url}/c/NO-SUCH-CHARGER?evse=1")
    page.wait_for_selector("#charger-error")
    assert "We do not know this charger" in page.inner_text("#charger-error")
    page.click(".brand")  # from a charger's link back to the home screen
    page.wait_for_selector("#scan-charger")


def test_plain_http_from_another_host_offers_the_photo(
    demo: Demo, launch: Callable[..., Browser]
) -> None:
    """A phone on plain HTTP (not localhost) gets no camera: the page says why."""
    port = demo.base_url.rsplit(":", 1)[1]
    browser = launch(extra_args=("--host-resolver-rules=MAP charger.example 127.0.0.1",))
    page = browser.new_context(viewport=PHONE, locale="en-US").new_page()
    page.goto(f"http://charger.example:{port}/")
    assert page.evaluate("window.isSecureContext") is False
    page.click("#scan-charger")
    page.wait_for_selector("#camera-status[data-code=camera_insecure]")
    assert "secure (https) address" in page.inner_text("#camera-status")
    assert page.is_visible("#photo-button")
