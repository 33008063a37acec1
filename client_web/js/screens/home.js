// Home: scan a charger's identification QR with the camera, or type the charger's id.

import { h, replace } from "../dom.js";
import { notify } from "../errors.js";
import { t } from "../i18n.js";
import { keep } from "../offline.js";
import { cameraPanel } from "./camera.js";

const OPEN = new Set(["created", "started"]);

/** The orders kept on this phone that are still open, and the settlements not yet sent: links
 * that work with no network. */
async function onThisPhone() {
  const [orders, outbox] = await Promise.all([
    keep.orders().catch(() => []), keep.settlements().catch(() => []),
  ]);
  const waiting = outbox.filter((e) => e.state === "waiting");
  const open = orders.filter((k) => k.order && OPEN.has(k.order.status)
    && (k.order.status === "started" || k.put_away || Date.parse(k.order.expires_at) > Date.now())
    && !waiting.some((e) => e.order_id === k.id));
  if (!open.length && !waiting.length) return null;
  return h("section", { class: "card", id: "on-this-phone" },
    h("h2", {}, t("home.on_this_phone")),
    h("ul", { class: "kept" },
      open.map((k) => h("li", {}, h("a", { href: `#/order/${encodeURIComponent(k.id)}`, dataset: { order: k.id } },
        t("home.kept_order", { charger: k.order.charger_id })))),
      waiting.map((e) => h("li", {}, h("a", {
        href: `#/settle/${encodeURIComponent(e.order_id || "")}`, dataset: { settlement: e.order_id || "" },
      }, t("home.kept_settlement"))))));
}

export async function show(main, route, app) {
  let camera = null;

  function handle(text) {
    const { classify } = scannerModule;
    const what = classify(text);
    if (what.kind === "charger") {
      app.navigate("charger", what.id, { evse: what.evse });
      return false;
    }
    notify(t(what.kind === "settlement" ? "home.settlement_here" : "home.not_a_charger"));
    return true;
  }

  let scannerModule = null;
  async function decodePhoto(file) {
    try {
      scannerModule = scannerModule || (await import("../scanner.js"));
      const texts = await scannerModule.decodeImage(file);
      if (!texts.length) notify(t("error.no_qr_found"));
      else handle(texts[0]);
    } catch {
      notify(t("error.no_qr_found"));
    }
  }

  const scanButton = h("button", {
    type: "button", class: "primary", id: "scan-charger",
    onclick: async () => {
      scanButton.hidden = true;
      camera = cameraPanel({
        onText: async (text) => {
          scannerModule = scannerModule || (await import("../scanner.js"));
          return handle(text);
        },
        onPhoto: decodePhoto,
        photoLabel: t("camera.photo_charger"),
      });
      slot.append(camera.element);
      camera.start();
    },
  }, t("home.scan"));
  const slot = h("div", { class: "camera-slot" });
  const idInput = h("input", { id: "charger-id", name: "charger", autocomplete: "off", required: true, maxlength: 64 });
  const form = h("form", {
    class: "inline", id: "charger-form",
    onsubmit: (event) => {
      event.preventDefault();
      if (idInput.value.trim()) app.navigate("charger", idInput.value.trim());
    },
  }, h("label", { for: "charger-id" }, t("home.type_id")), idInput,
  h("button", { type: "submit", class: "secondary" }, t("home.open")));

  replace(main,
    h("section", { class: "card hero" },
      h("h1", {}, t("home.title")),
      h("p", { class: "hint" }, t("home.how")),
      h("ol", { class: "steps" },
        h("li", {}, t("home.step1")), h("li", {}, t("home.step2")),
        h("li", {}, t("home.step3")), h("li", {}, t("home.step4"))),
      scanButton, slot),
    h("section", { class: "card" }, form));
  const kept = await onThisPhone();
  if (kept && app.isCurrent()) main.prepend(kept);
  return () => camera && camera.stop();
}
