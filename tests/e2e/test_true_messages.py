"""Every message of the driver page is true: a photo of the wrong code says what it is (online
and offline), an order already settled goes straight to its payment, a request above the most
one order may hold is said so before the order is placed, a visitor sees the hold of a typical
order (not the system maximum), the page replaces the start QR with the live session once the
charger has started (with the energy and cost so far from the charger's meter readings, on 1.6
and 2.0.1), and an unused order can be cancelled with its hold's return in words (at once with
the charger online, at a stated time with it offline)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page

from qr_extension import identification_url, render_png
from tests.e2e.conftest import PHONE, Api, Demo, shot
from tests.e2e.flow import link, order_energy, signed_in_context
from tests.e2e.test_pwa import message

CHARGER = "DEMO-02"
LANGS = ["en", "zh-CN"]


def _place_order(api: Api, driver: dict[str, Any]) -> dict[str, Any]:
    order: dict[str, Any] = api._ok(
        api.http.post(
            "/api/v1/orders",
            json={"charger_id": CHARGER, "evse_id": 1, "energy_wh": 1000},
            headers=api.bearer(driver),
        )
    )
    return order


def _photo(page: Page, path: Path) -> None:
    page.set_input_files("#photo-input", str(path))


@pytest.mark.parametrize("lang", LANGS)
def test_a_photo_of_the_wrong_code_says_what_it_is(
    lang: str, demo: Demo, api: Api, launch: Callable[..., Browser], tmp_path: Path
) -> None:
    driver = api.new_driver(top_up=10_000)
    start_token = _place_order(api, driver)["start_token"]
    (tmp_path / "start.png").write_bytes(render_png(start_token))
    (tmp_path / "charger.png").write_bytes(
        render_png(identification_url(demo.base_url, CHARGER, 1))
    )
    blank = io.BytesIO()
    Image.new("L", (320, 240), 255).save(blank, "PNG")
    (tmp_path / "blank.png").write_bytes(blank.getvalue())

    context = signed_in_context(launch(allow_camera=False), driver, viewport=PHONE, locale=lang)
    page = context.new_page()
    page.goto(f"{demo.base_url}/#/settle")
    page.wait_for_selector("#camera-status[data-code=camera_denied]")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    cases = [("start.png", "start", "settle.that_is_start"),
             ("charger.png", "identification", "settle.that_is_charger"),
             ("blank.png", "none", "settle.no_qr")]  # fmt: skip
    for offline in (False, True):
        context.set_offline(offline)
        for name, kind, key in cases:
            page.evaluate("document.getElementById('settle-result').replaceChildren()")
            _photo(page, tmp_path / name)
            page.wait_for_selector(f"#settle-wrong[data-kind={kind}]")
            assert page.inner_text("#settle-wrong") == message(lang, key), (offline, name)
            if name == "start.png" and not offline:
                shot(page, f"driver-wrong-qr{'' if lang == 'en' else '-zh'}-360", doc=True)
    context.set_offline(False)


@pytest.mark.parametrize(
    ("charger_id", "lang"), [("DEMO-02", "en"), ("DEMO-03", "zh-CN")], ids=["2.0.1", "1.6"]
)
def test_live_session_replaces_the_qr_and_a_settled_order_goes_to_its_payment(
    charger_id: str, lang: str, demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    driver = api.new_driver(top_up=10_000)
    page = signed_in_context(launch(), driver, viewport=PHONE, locale=lang).new_page()
    page.goto(demo.charger(charger_id)["page_url"])
    page.wait_for_selector("#tariff")
    order_id = order_energy(page)
    assert page.is_visible("#cancel-order")
    start_png = page.locator("#start-qr").screenshot()
    api.control(charger_id, "POST", "/evses/1/plug")
    answer = api.control(charger_id, "POST", "/camera", content=start_png).json()
    assert answer["accepted"] is True, answer

    # online, the page follows the order: the live session takes the QR's place
    page.wait_for_selector("#session-state", timeout=15_000)
    assert page.inner_text("#session-state") == message(lang, "start.live_what", charger=charger_id)
    assert not page.is_visible("#start-qr")
    assert not page.is_visible("#cancel-order")
    assert "1.00 kWh" in page.inner_text("#session")
    # the energy and cost so far, from the charger's meter readings, follow the session
    first = _live_shown(page, order_id, above_wh=0)
    later = _live_shown(page, order_id, above_wh=first["energy_wh"])
    assert later["read_at"] > first["read_at"]
    assert later["amount"] >= first["amount"] >= 200  # the 2.00 CNY per-charge fee at least
    shot(page, f"driver-live-session{'' if lang == 'en' else '-zh'}-360", doc=True)
    api.control(charger_id, "POST", "/evses/1/unplug")
    page.wait_for_selector("#payment-summary", timeout=30_000)  # settled over OCPP

    # the settle screen of a settled order: straight to the payment, no camera
    page.goto(f"{demo.base_url}/#/")
    page.wait_for_selector("#scan-charger")
    page.goto(f"{demo.base_url}/#/settle/{order_id}")
    page.wait_for_selector("#payment-summary")
    assert page.locator("#camera-status").count() == 0
    assert page.evaluate("document.querySelectorAll('video').length") == 0


def _live_shown(page: Page, order_id: str, *, above_wh: int) -> dict[str, Any]:
    """Waits for the page's poll of the order that brings a reading of more than ``above_wh``
    and returns its ``live``, once the page shows those very figures."""
    deadline = time.monotonic() + 30
    live: dict[str, Any] | None = None
    while live is None or live["energy_wh"] <= above_wh:
        assert time.monotonic() < deadline, f"no reading above {above_wh} Wh: {live}"
        with page.expect_response(
            lambda r: r.url.endswith(f"/api/v1/orders/{order_id}") and r.request.method == "GET",
            timeout=10_000,
        ) as polled:
            pass
        live = polled.value.json()["live"]
    energy, cost = f"{live['energy_wh'] / 1000:.2f} kWh", f"{live['amount'] / 100:.2f} CNY"
    page.wait_for_function(
        "([energy, cost]) => document.getElementById('live-energy')?.textContent === energy"
        " && document.getElementById('live-cost')?.textContent === cost",
        arg=[energy, cost],
    )
    assert page.is_visible("#live-at")
    return live


@pytest.mark.parametrize("lang", LANGS)
def test_a_request_above_the_cap_is_said_before_the_order(
    lang: str, demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    browser = launch()
    public = api._ok(api.http.get(f"/api/v1/chargers/{CHARGER}", params={"evse": 1}))
    system_max = public["max_order_amount"]
    assert system_max > 2_000  # else a typical order and the maximum could not be told apart

    # a visitor: the hold of the page's suggested 20.00 CNY, not the most an order may hold
    visitor = browser.new_context(viewport=PHONE, locale=lang).new_page()
    visitor.goto(demo.charger(CHARGER)["page_url"])
    visitor.wait_for_selector("#request-form")
    hold = visitor.inner_text("#hold")
    assert hold == message(lang, "request.hold_typical", typical="20.00 CNY", amount="20.00 CNY")
    assert f"{system_max / 100:,.2f}" not in hold

    driver = api.new_driver(top_up=10_000)  # capped at 50.00 CNY
    page = signed_in_context(browser, driver, viewport=PHONE, locale=lang).new_page()
    page.goto(demo.charger(CHARGER)["page_url"])
    page.wait_for_selector("#tariff")
    page.click("#kind-amount")
    page.fill("#request-value", "5000")
    page.wait_for_selector("#over-cap")
    said = message(lang, "request.over_cap", asked="5,000.00 CNY", max="50.00 CNY")
    assert said in page.inner_text("#over-cap")
    shot(page, f"driver-over-cap{'' if lang == 'en' else '-zh'}-360", doc=True)
    page.click("#order-button")
    page.wait_for_selector("#notice:not([hidden])")
    assert said in page.inner_text("#notice")
    assert api._ok(api.http.get("/api/v1/orders", headers=api.bearer(driver))) == []

    page.click("#use-max")
    assert page.input_value("#request-value") == "50.00"
    assert page.is_hidden("#over-cap")
    page.click("#order-button")
    page.wait_for_selector("#start-qr[src]")
    order_id = page.url.rsplit("/", 1)[-1]
    assert api.order(driver, order_id)["hold_amount"] == 5_000


@pytest.mark.parametrize("lang", LANGS)
def test_cancel_an_unused_order_says_when_the_hold_comes_back(
    lang: str, demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    suffix = "" if lang == "en" else "-zh"
    driver = api.new_driver(top_up=10_000)
    page = signed_in_context(launch(), driver, viewport=PHONE, locale=lang).new_page()
    page.goto(demo.charger(CHARGER)["page_url"])
    page.wait_for_selector("#tariff")
    order_id = order_energy(page)
    assert api.wallet(driver)["held"] == 5_000
    page.click("#cancel-order")
    page.click("#cancel-keep")  # changed their mind: the order and its code stay
    assert page.is_hidden("#cancel-ask") and page.is_visible("#start-qr")
    page.click("#cancel-order")
    page.wait_for_selector("#cancel-ask")
    assert message(lang, "start.cancel_what", amount="50.00 CNY") in page.inner_text("#cancel-ask")
    shot(page, f"driver-cancel-ask{suffix}-360", doc=True)
    page.click("#cancel-confirm")
    page.wait_for_selector("#cancelled")
    order = api.order(driver, order_id)
    assert order["status"] == "cancelled"
    assert page.inner_text("#cancel-hold") == message(
        lang, "start.cancel_released", amount="50.00 CNY"
    )  # the charger is online: the start code was revoked and the hold released at once
    assert api.wallet(driver)["held"] == 0
    shot(page, f"driver-cancelled{suffix}-360", doc=True)
    page.reload()  # the cancelled order stays cancelled on the phone
    page.wait_for_selector("#cancelled")
    assert page.inner_text("#cancel-hold") == message(
        lang, "start.cancel_released", amount="50.00 CNY"
    )

    # the charger is offline: the hold stays until the start code can no longer be used
    page.goto(demo.charger(CHARGER)["page_url"])
    page.wait_for_selector("#tariff")
    order_id = order_energy(page)
    start_png = page.locator("#start-qr").screenshot()
    link(api, CHARGER, up=False)
    try:
        page.click("#cancel-order")
        with page.expect_response(lambda r: r.url.endswith("/cancel")) as cancelled:
            page.click("#cancel-confirm")
        answer = cancelled.value.json()
        page.wait_for_selector("#cancel-hold[data-status=cancelling]")
        assert (answer["status"], answer["hold_released"]) == ("cancelling", False)
        assert api.order(driver, order_id)["status"] == "cancelling"
        assert api.wallet(driver)["held"] == 5_000
        back_at = page.evaluate(
            "(at) => new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })",
            answer["hold_release_at"],
        )
        said = message(lang, "start.cancel_release_at", amount="50.00 CNY", time=back_at)
        assert page.inner_text("#cancel-hold") == said
        shot(page, f"driver-cancel-later{suffix}-360", doc=True)
        page.reload()  # the phone still knows when the hold comes back
        page.wait_for_selector("#cancel-hold[data-status=cancelling]")
        assert page.inner_text("#cancel-hold") == said
        if lang == "en":  # the offline charger had read the code before the cancel reached it
            api.control(CHARGER, "POST", "/evses/1/plug")
            scanned = api.control(CHARGER, "POST", "/camera", content=start_png).json()
            assert scanned["accepted"] is True, scanned
    finally:
        link(api, CHARGER, up=True)
    if lang == "en":
        try:
            # the charger reports the start once online: the CSMS answers the cancelled id
            # Invalid, so the charger ends the session; what it delivered is billed from the
            # hold, and the page takes the driver to that payment
            page.wait_for_selector("#payment-summary", timeout=30_000)
            assert api.order(driver, order_id)["status"] == "settled"
        finally:
            api.control(CHARGER, "POST", "/evses/1/unplug")
