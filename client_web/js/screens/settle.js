// Scan the charger's settlement QR (camera), or upload a photo of it that the server decodes.
// The settlement goes to POST /api/v1/settlements; the answer leads to the payment summary.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { explain, notify } from "../errors.js";
import { t } from "../i18n.js";
import { cameraPanel } from "./camera.js";

/** Whether the settlement answer is the driver's own order (7.9: else "accepted" only). */
export function isMine(answer) {
  return Boolean(answer && answer.payment_id && answer.order_id);
}

export async function show(main, route, app) {
  const orderId = route.arg;
  const result = h("div", { id: "settle-result" });
  let camera = null;
  let busy = false;
  const refused = new Set(); // texts the server refused: not sent again from the camera

  async function send(upload, text = null) {
    if (busy) return true;
    busy = true;
    notify(null);
    replace(result, h("p", { class: "loading" }, t("settle.checking")));
    try {
      const answer = await upload();
      if (!isMine(answer)) {
        if (camera) camera.stop();
        replace(result, h("section", { class: "card info-card", id: "settle-not-yours" },
          h("h2", {}, t("settle.accepted")), h("p", {}, t("settle.not_yours"))));
        return false;
      }
      sessionStorage.setItem(`qrcharge.settlement.${answer.order_id}`, JSON.stringify(answer));
      if (camera) camera.stop();
      app.navigate("payment", answer.order_id);
      return false;
    } catch (err) {
      if (text && err.status >= 400 && err.status < 500) refused.add(text);
      replace(result, h("section", { class: "card error-card", id: "settle-error", dataset: { code: err.code || "" } },
        h("p", {}, explain(err))));
      return true;
    } finally {
      busy = false;
    }
  }

  camera = cameraPanel({
    onText: async (text) => {
      const { classify } = await import("../scanner.js");
      const what = classify(text);
      if (what.kind === "charger" || what.kind === "start") {
        notify(t(what.kind === "start" ? "settle.that_is_start" : "settle.that_is_charger"));
        await new Promise((resolve) => setTimeout(resolve, 1500));
        return true;
      }
      if (refused.has(text)) return true;
      return send(() => api.settleToken(text.trim()), text);
    },
    onPhoto: (file) => send(() => api.settlePhoto(file)),
    photoLabel: t("camera.photo_settlement"),
  });
  replace(main,
    h("section", { class: "card" },
      h("h1", {}, t("settle.title")),
      h("p", { class: "hint" }, t("settle.how")),
      orderId ? h("p", { class: "hint" }, t("settle.order", { id: orderId })) : null,
      camera.element, result));
  camera.start();
  return () => camera.stop();
}
