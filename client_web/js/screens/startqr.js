// The start QR, full screen and bright, with a countdown to its expiry and what to do. The
// charger scans it with its camera and starts even without a network.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { explain, notify } from "../errors.js";
import { t } from "../i18n.js";
import { formatAmount } from "../money.js";

const POLL_MS = 4000;
const DONE = new Set(["settled", "paid"]);
const RUNNING = new Set(["started"]);

/** Epoch milliseconds of an ISO date or epoch seconds. */
export function whenMs(value) {
  if (typeof value === "number") return value < 1e12 ? value * 1000 : value;
  return Date.parse(value);
}

export function countdownText(msLeft) {
  const s = Math.max(0, Math.ceil(msLeft / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export async function show(main, route, app) {
  const id = route.arg;
  const cached = sessionStorage.getItem(`qrcharge.order.${id}`);
  let order = cached ? JSON.parse(cached) : null;
  if (!order) order = await api.order(id);
  if (!app.isCurrent()) return;
  const currency = order.currency || order.cur || "CNY";
  const expires = whenMs(order.expires_at);
  let qrUrl = null;
  let wakeLock = null;
  const timers = [];

  const image = h("img", { class: "start-qr", id: "start-qr", alt: t("start.alt") });
  const countdown = h("p", { class: "countdown", id: "countdown" });
  const state = h("p", { class: "order-state", id: "order-state" });
  const holder = h("div", { class: "qr-holder" }, image);
  const screen = h("section", { class: "start-screen", id: "start-screen" },
    h("h1", {}, t("start.title")),
    holder, countdown,
    h("ol", { class: "steps" },
      h("li", {}, t("start.do1")), h("li", {}, t("start.do2")), h("li", {}, t("start.do3"))),
    h("p", { class: "hint" }, t("start.hold", { amount: formatAmount(order.hold_amount ?? 0, currency) })),
    state,
    h("a", { class: "button primary", id: "to-settle", href: `#/settle/${encodeURIComponent(id)}` }, t("start.done")),
    h("button", { type: "button", class: "link", id: "remote-start", onclick: startRemotely }, t("start.remote")));

  async function startRemotely(event) {
    event.target.disabled = true;
    notify(null);
    try {
      await api.remoteStart(id);
      replace(state, t("start.remote_sent"));
    } catch (err) {
      notify(err.status === 409 ? t("error.remote_start_failed") : explain(err));
    } finally {
      event.target.disabled = false;
    }
  }
  replace(main, screen);
  document.body.classList.add("bright");

  try {
    qrUrl = await api.startQrUrl(id);
    image.src = qrUrl;
  } catch (err) {
    notify(explain(err));
  }
  try {
    wakeLock = navigator.wakeLock ? await navigator.wakeLock.request("screen") : null;
  } catch {
    wakeLock = null;
  }

  function expired() {
    holder.replaceChildren(h("div", { class: "expired", id: "start-expired" },
      h("h2", {}, t("error.expired")),
      h("p", {}, t("start.expired_what")),
      order.charger_id
        ? h("a", {
          class: "button primary", id: "order-again",
          href: `#/charger/${encodeURIComponent(order.charger_id)}${order.evse_id ? `?evse=${order.evse_id}` : ""}`,
        }, t("start.order_again"))
        : null));
    replace(countdown, "");
  }

  function tick() {
    const left = expires - Date.now();
    if (Number.isNaN(left)) return;
    if (left <= 0) {
      if (!document.getElementById("start-expired") && !RUNNING.has(order.status)) expired();
      return;
    }
    replace(countdown, t("start.valid_for", { time: countdownText(left) }));
  }

  async function poll() {
    try {
      order = await api.order(id);
    } catch {
      return;
    }
    if (!app.isCurrent()) return;
    if (RUNNING.has(order.status)) replace(state, t("start.charging"));
    if (DONE.has(order.status)) app.navigate("payment", id);
    if (order.status === "expired" || order.status === "cancelled") expired();
  }

  tick();
  if (order.status === "expired" || order.status === "cancelled") expired();
  timers.push(setInterval(tick, 1000), setInterval(poll, POLL_MS));
  return () => {
    for (const timer of timers) clearInterval(timer);
    document.body.classList.remove("bright");
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    if (wakeLock) wakeLock.release().catch(() => {});
  };
}
