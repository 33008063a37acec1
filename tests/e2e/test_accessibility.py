"""Every driver screen, in English and Chinese, checked with axe-core in Chromium: no serious
or critical violation (labels, names, contrast, ...), the screens of the offline mode and of
the page's messages included (start QR offline, code put away, live session, saved on this
phone, wrong QR, over the cap, cancel). Then the receipt: the seller, the place,
the tariff, the cost parts and the tax included, in both languages (the guide's pictures).

axe-core is the npm development package in ``client_web/node_modules``; the test injects it
into the page (the CSMS never serves it). The page's Content-Security-Policy allows only its
own scripts, so these browser contexts bypass it to let the injected checker run.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page

from qr_extension import identification_url, render_png
from tests.e2e.conftest import PHONE, RECEIPT_SETTINGS, ROOT, Api, Demo, shot, until
from tests.e2e.flow import order_energy, signed_in_context

AXE = ROOT / "client_web" / "node_modules" / "axe-core" / "axe.min.js"
CHARGER = "DEMO-02"
LOCALES = {"en": "en-US", "zh": "zh-CN"}
BLOCKING = ("serious", "critical")

_RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
  }));
}"""


def check(page: Page, screen: str) -> list[dict[str, Any]]:
    """Runs axe-core on the page as it stands; fails on a serious or critical violation and
    returns the lesser ones."""
    assert AXE.is_file(), "client_web/node_modules/axe-core is missing: run scripts/setup-browser"
    page.wait_for_load_state("networkidle")
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate(_RUN_AXE)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, f"{screen}: {blocking}"
    return violations


def _context(browser: Browser, lang: str, driver: dict[str, Any] | None = None) -> BrowserContext:
    options: dict[str, Any] = {"viewport": PHONE, "locale": LOCALES[lang], "bypass_csp": True}
    if driver is None:
        return browser.new_context(**options)
    return signed_in_context(browser, driver, **options)


def _screen(page: Page, url: str, selector: str, name: str) -> None:
    page.goto(url)
    page.wait_for_selector(selector)
    check(page, name)


def test_every_driver_screen_passes_axe_in_both_languages(
    demo: Demo, api: Api, launch: Callable[..., Browser], tmp_path: Path
) -> None:
    base = demo.base_url
    charger_url = demo.charger(CHARGER)["page_url"]
    browser = launch()

    # before sign-in: home (with the camera open), the charger, the sign-in form
    for lang in LOCALES:
        page = _context(browser, lang).new_page()
        _screen(page, f"{base}/", "#scan-charger", f"home-{lang}")
        page.click("#scan-charger")
        page.wait_for_selector("#camera-status:not(:empty)")
        check(page, f"home-camera-{lang}")
        _screen(page, charger_url, "#request-form", f"charger-visitor-{lang}")
        _screen(page, f"{base}/#/signin", "#signin-form", f"signin-{lang}")
        page.click("#signin-toggle")
        check(page, f"register-{lang}")
        icon = page.evaluate(
            "fetch(document.querySelector('link[rel=icon]').href).then((r) => r.status)"
        )
        assert icon == 200  # the linked icon exists (no 404 in the console)
        page.context.close()

    driver = api.new_driver(top_up=10_000)
    pages = {lang: _context(browser, lang, driver).new_page() for lang in LOCALES}
    api.control(CHARGER, "POST", "/evses/1/plug")
    try:
        # signed in: the charger with its chips, then the start QR and the settle screen
        for lang, page in pages.items():
            _screen(page, charger_url, "#tariff", f"charger-{lang}")
            for kind in ("amount", "duration", "full", "energy"):
                page.click(f"#kind-{kind}")
                assert page.get_attribute(f"#kind-{kind}", "aria-pressed") == "true"
                assert page.locator(".chip[aria-pressed=true]").count() == 1
                check(page, f"charger-{kind}-{lang}")
            page.click("#kind-amount")
            label = page.locator("label[for=request-value]")
            assert label.is_visible() and "CNY" in label.inner_text()
            page.click("#kind-energy")
        order_id = order_energy(pages["en"], "1")
        start_png = pages["en"].locator("#start-qr").screenshot()
        for lang, page in pages.items():
            _screen(page, f"{base}/#/order/{order_id}", "#start-qr[src]", f"start-qr-{lang}")
            _screen(page, f"{base}/#/settle/{order_id}", "#camera-status", f"settle-{lang}")

        # the charger starts it: the live session with its energy and cost so far
        answer = api.control(CHARGER, "POST", "/camera", content=start_png).json()
        assert answer["accepted"] is True, answer
        for lang, page in pages.items():
            _screen(page, f"{base}/#/order/{order_id}", "#live-energy", f"live-session-{lang}")
            page.goto(f"{base}/#/settle")
            page.wait_for_selector("#camera-status")
    finally:
        api.control(CHARGER, "POST", "/evses/1/unplug")
    until(lambda: api.control(CHARGER, "GET", "/display").json()["qr_kind"] == "settlement")
    settlement = tmp_path / "settlement.png"
    settlement.write_bytes(api.control(CHARGER, "GET", "/display/qr.png").content)
    for lang, page in pages.items():  # scanned with no network: "saved on this phone"
        page.context.set_offline(True)
        try:
            page.set_input_files("#photo-input", str(settlement))
            page.wait_for_selector("#settle-saved")
            check(page, f"settle-saved-{lang}")
        finally:
            page.context.set_offline(False)
    payment_id = until(lambda: api.order(driver, order_id)["payment_id"], timeout=30)
    for lang, page in pages.items():
        _screen(page, f"{base}/#/payment/{order_id}", "#pay-button", f"payment-{lang}")

    confirmed = api.http.post(f"/api/v1/payments/{payment_id}/confirm", headers=api.bearer(driver))
    assert confirmed.status_code == 200, confirmed.text
    receipt = confirmed.json()
    for lang, page in pages.items():
        _screen(page, f"{base}/#/receipt/{receipt['id']}", "#receipt-cost", f"receipt-{lang}")
        _receipt_says_it_all(page, receipt, lang)
        shot(page, f"driver-receipt-{lang}-360", doc=True)
        _screen(page, f"{base}/#/wallet", "#top-up-form", f"wallet-{lang}")
        assert page.locator("label[for=top-up-amount]").is_visible()
        _screen(page, f"{base}/#/history", "#orders", f"history-{lang}")


def test_the_offline_and_message_screens_pass_axe_in_both_languages(
    demo: Demo, api: Api, launch: Callable[..., Browser], tmp_path: Path
) -> None:
    """The screens of the page's offline mode and of its messages: the over-cap warning, the
    start QR offline, the code put away, the cancel question and the cancelled order, and
    what a photo of the wrong code (a start code, the charger's own code, no QR) says."""
    browser = launch()
    driver = api.new_driver(top_up=10_000)
    photos = _wrong_photos(api, demo, driver, tmp_path)
    for lang in LOCALES:
        context = _context(browser, lang, driver)
        page = context.new_page()
        _screen(page, demo.charger(CHARGER)["page_url"], "#tariff", f"charger-signed-in-{lang}")
        page.click("#kind-amount")
        page.fill("#request-value", "5000")
        page.wait_for_selector("#over-cap")
        check(page, f"over-cap-{lang}")
        order_energy(page, "1")
        context.set_offline(True)
        try:
            page.wait_for_selector("#offline-help", state="visible")
            check(page, f"start-qr-offline-{lang}")
            page.click("#charging-started")
            page.wait_for_selector("#show-start-qr")
            assert page.is_hidden("#cancel-order")  # charging has started, the driver said
            check(page, f"code-put-away-{lang}")
        finally:
            context.set_offline(False)
        page.click("#show-start-qr")
        page.click("#cancel-order")
        page.wait_for_selector("#cancel-ask", state="visible")
        check(page, f"cancel-confirm-{lang}")
        page.click("#cancel-confirm")
        page.wait_for_selector("#cancelled")
        check(page, f"cancelled-{lang}")

        page.goto(f"{demo.base_url}/#/settle")
        page.wait_for_selector("#camera-status")
        for kind, photo in photos.items():
            page.set_input_files("#photo-input", str(photo))
            page.wait_for_selector(f"#settle-wrong[data-kind={kind}]")
            check(page, f"wrong-qr-{kind}-{lang}")
        context.close()


def _wrong_photos(api: Api, demo: Demo, driver: dict[str, Any], tmp_path: Path) -> dict[str, Path]:
    """Photos of what is not a settlement: a start code, the charger's own code, no QR."""
    order = api.http.post(
        "/api/v1/orders",
        json={"charger_id": CHARGER, "evse_id": 1, "energy_wh": 1000},
        headers=api.bearer(driver),
    ).json()
    blank = io.BytesIO()
    Image.new("L", (320, 240), 255).save(blank, "PNG")
    images = {
        "start": render_png(order["start_token"]),
        "identification": render_png(identification_url(demo.base_url, CHARGER, 1)),
        "none": blank.getvalue(),
    }
    for name, data in images.items():
        (tmp_path / f"{name}.png").write_bytes(data)
    return {name: tmp_path / f"{name}.png" for name in images}


def _receipt_says_it_all(page: Page, receipt: dict[str, Any], lang: str) -> None:
    text = page.inner_text("#receipt")
    assert receipt["number"].startswith("QRC-")
    assert page.inner_text("#receipt-number") == receipt["number"]
    assert RECEIPT_SETTINGS["QRCHARGE_OPERATOR_NAME"] in text
    assert RECEIPT_SETTINGS["QRCHARGE_OPERATOR_ADDRESS"] in text
    assert RECEIPT_SETTINGS["QRCHARGE_OPERATOR_TAX_ID"] in text
    assert page.inner_text("#receipt-location") == "Riverside car park, level 2"
    amount, (tax,) = receipt["amount"], receipt["tax"]
    assert tax["rate"] == "0.13"
    assert tax["amount"] + receipt["net_amount"] == amount
    assert page.inner_text("#receipt-amount") == f"{amount / 100:.2f} CNY"
    assert page.inner_text(".receipt-tax") == f"{tax['amount'] / 100:.2f} CNY"
    assert page.inner_text("#receipt-net") == f"{receipt['net_amount'] / 100:.2f} CNY"
    tariff = page.inner_text("#receipt-tariff")
    if lang == "en":
        assert "13%" in text and "Plus 2.00 CNY per charge" in tariff and "Per-charge fee" in text
        assert "1.00 CNY/kWh" in tariff
    else:
        assert "13%" in text and "每次服务费" in text and "1.00 CNY/千瓦时" in tariff


def test_the_check_finds_what_it_is_for(demo: Demo, launch: Callable[..., Browser]) -> None:
    """The checker is live: a field without a label and grey-on-grey text are caught."""
    page = _context(launch(), "en").new_page()
    page.goto(f"{demo.base_url}/")
    page.wait_for_selector("#scan-charger")
    page.evaluate("""() => {
      const main = document.getElementById("screen");
      main.append(Object.assign(document.createElement("input"), { id: "bare" }));
      const faint = Object.assign(document.createElement("p"), { textContent: "faint" });
      faint.style.cssText = "color: #bbb; background: #fff";
      main.append(faint);
    }""")
    try:
        check(page, "broken-home")
    except AssertionError as failure:
        assert "'label'" in str(failure) and "color-contrast" in str(failure)
    else:
        raise AssertionError("axe-core found nothing wrong with an unlabelled field")
