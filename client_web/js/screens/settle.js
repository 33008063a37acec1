// Scan the charger's settlement QR (camera), or a photo of it. The code is decoded in the
// browser and kept on the phone first (js/keep.js), then sent to POST /api/v1/settlements; with
// no network it stays "saved on this phone" and is sent by itself later (js/offline.js, the
// service worker). An order already settled goes straight to its payment, without the camera.

import * as api from "../api.js";
import { h, replace, rows } from "../dom.js";
import { explain, notify } from "../errors.js";
import { t } from "../i18n.js";
import { formatAmount } from "../money.js";
import { keep, keepSettlement, keptFor, onOutbox } from "../offline.js";
import { kwh } from "../units.js";
import { cameraPanel } from "./camera.js";

const SETTLED = new Set(["settled", "paid"]);
const KIND_MESSAGES = {
  start: "settle.that_is_start",
  identification: "settle.that_is_charger",
  charger: "settle.that_is_charger",
  none: "settle.no_qr",
  unknown: "settle.not_settlement",
  other: "settle.not_settlement",
};

/** Whether the settlement answer is the driver's own order (else "accepted" only). */
export function isMine(answer) {
  return Boolean(answer && answer.order_id && (answer.payment_id || answer.replayed));
}

/** The message key for what was photographed instead of a settlement (a server `kind`). */
export function kindMessage(kind) {
  return KIND_MESSAGES[kind] || null;
}

/** The order's status: the server's, else the copy kept on the phone, else null. */
async function statusOf(orderId) {
  try {
    const order = await api.order(orderId);
    keep.saveOrder(order).catch(() => {});
    return order.status;
  } catch (err) {
    if (err.code !== "network") throw err;
    const kept = await keep.order(orderId).catch(() => null);
    return kept && kept.order ? kept.order.status : null;
  }
}

export async function show(main, route, app) {
  const orderId = route.arg;
  if (orderId && SETTLED.has(await statusOf(orderId))) {
    if (app.isCurrent()) app.navigate("payment", orderId);
    return undefined;
  }
  if (!app.isCurrent()) return undefined;
  const result = h("div", { id: "settle-result" });
  let camera = null;
  let scanner = null;
  let watching = null; // the token of the entry this screen waits for
  const refused = new Set(); // tokens the server refused: not sent again from the camera
  const stops = [];

  function stopCamera() {
    if (camera) {
      camera.stop();
      camera.element.hidden = true;
    }
  }

  function wrong(what) {
    // the browser's names (scanner.classify) and the server's (`kind`) for the same things
    const kind = { charger: "identification", unknown: "other" }[what] || what;
    const key = kindMessage(kind) || "settle.not_settlement";
    replace(result, h("section", { class: "card error-card", id: "settle-wrong", dataset: { kind } },
      h("p", {}, t(key))));
  }

  function saved(entry) {
    const claims = entry.claims || {};
    const energy = Number.isFinite(claims.m1 - claims.m0) ? kwh(claims.m1 - claims.m0) : null;
    const amount = Number.isInteger(claims.amt) && claims.cur ? formatAmount(claims.amt, claims.cur) : null;
    stopCamera();
    replace(result, h("section", { class: "card info-card", id: "settle-saved" },
      h("h2", {}, t("settle.saved_title")),
      h("p", {}, t(entry.code === "unauthorized" ? "settle.saved_sign_in" : "settle.saved_what")),
      rows([
        energy ? [t("payment.energy"), energy] : null,
        amount ? [t("settle.signed_amount"), amount] : null,
        [t("settle.saved_at"), new Date(entry.saved_at).toLocaleTimeString()],
      ]),
      h("p", { class: "hint" }, t("settle.saved_close"))));
  }

  /** Shows what became of a kept entry; true while it still waits. */
  function outcome(entry) {
    if (!entry) return false;
    if (entry.state === "waiting") {
      watching = entry.token;
      saved(entry);
      return true;
    }
    watching = null;
    keep.forgetSettlement(entry.token).catch(() => {});
    if (entry.state === "sent") {
      stopCamera();
      if (!isMine(entry.answer)) {
        replace(result, h("section", { class: "card info-card", id: "settle-not-yours" },
          h("h2", {}, t("settle.accepted")), h("p", {}, t("settle.not_yours"))));
        return false;
      }
      if (!entry.answer.replayed) {
        sessionStorage.setItem(`qrcharge.settlement.${entry.answer.order_id}`, JSON.stringify(entry.answer));
      }
      app.navigate("payment", entry.answer.order_id);
      return false;
    }
    const err = { code: entry.code, status: entry.status };
    const kind = entry.kind && kindMessage(entry.kind);
    replace(result, h("section", { class: "card error-card", id: "settle-error", dataset: { code: entry.code || "" } },
      h("p", {}, kind ? t(kind) : explain(err))));
    return false;
  }

  /** A decoded text: a settlement is kept and sent; anything else is named, and scanning goes on. */
  async function onText(text) {
    scanner = scanner || (await import("../scanner.js"));
    const what = scanner.classify(text);
    if (what.kind !== "settlement") {
      wrong(what.kind);
      return true;
    }
    if (refused.has(what.token)) return true;
    notify(null);
    replace(result, h("p", { class: "loading" }, t("settle.checking")));
    const entry = await keepSettlement(what.token, orderId || null);
    if (entry && entry.state === "refused") refused.add(what.token);
    return !outcome(entry) && Boolean(entry) && entry.state === "refused";
  }

  async function onPhoto(file) {
    notify(null);
    replace(result, h("p", { class: "loading" }, t("settle.checking")));
    let texts = [];
    try {
      scanner = scanner || (await import("../scanner.js"));
      texts = await scanner.decodeImage(file);
    } catch {
      texts = [];
    }
    const token = texts.find((text) => scanner && scanner.classify(text).kind === "settlement");
    if (token) {
      await onText(token);
      return;
    }
    if (texts.length) {
      wrong(scanner.classify(texts[0]).kind);
      return;
    }
    // the browser found no QR: the server's decoder reads harder photos (online only)
    try {
      const answer = await api.settlePhoto(file);
      outcome({ token: "", state: "sent", answer });
    } catch (err) {
      if (err.code === "network") {
        wrong("none");
        return;
      }
      const kind = err.body && err.body.detail && err.body.detail.kind;
      if (kind) wrong(kind);
      else replace(result, h("section", { class: "card error-card", id: "settle-error", dataset: { code: err.code || "" } },
        h("p", {}, explain(err))));
    }
  }

  camera = cameraPanel({ onText, onPhoto, photoLabel: t("camera.photo_settlement") });
  replace(main,
    h("section", { class: "card" },
      h("h1", {}, t("settle.title")),
      h("p", { class: "hint" }, t("settle.how")),
      orderId ? h("p", { class: "hint" }, t("settle.order", { id: orderId })) : null,
      camera.element, result));

  async function recheck() {
    const entries = await keptFor(orderId);
    const mine = entries.find((e) => e.token === watching)
      || entries.find((e) => e.state === "waiting")
      || (orderId ? entries.find((e) => e.state !== "waiting") : null);
    if (!app.isCurrent()) return false;
    return outcome(mine);
  }
  stops.push(onOutbox(() => { if (watching || orderId) recheck(); }));
  const waiting = orderId ? await recheck() : false;
  if (!waiting && app.isCurrent() && !document.getElementById("settle-not-yours")) camera.start();
  return () => {
    stopCamera();
    for (const stop of stops) stop();
  };
}
