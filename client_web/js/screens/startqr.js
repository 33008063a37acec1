// The start QR, full screen and bright, with a countdown to its expiry and what to do. The
// charger scans it with its camera and starts even without a network, so the order and its QR
// image are kept on the phone (IndexedDB) and this screen renders from that copy offline. Online
// it follows the order and shows the live session once the charger reports the start; offline
// it says what the charger's screen shows then, and "Charging has started" puts the code away.
// An unused order can be cancelled here.

import * as api from "../api.js";
import { h, replace, rows } from "../dom.js";
import { explain, notify } from "../errors.js";
import { t } from "../i18n.js";
import { describeTariff, formatAmount } from "../money.js";
import { keep } from "../offline.js";
import { duration, kwh } from "../units.js";

const POLL_MS = 4000;
const DONE = new Set(["settled", "paid"]);
const RUNNING = new Set(["started"]);
const GONE = new Set(["expired", "cancelling", "cancelled"]);
const CANCELLED = new Set(["cancelling", "cancelled"]);

/** Epoch milliseconds of an ISO date or epoch seconds. */
export function whenMs(value) {
  if (typeof value === "number") return value < 1e12 ? value * 1000 : value;
  return Date.parse(value);
}

export function countdownText(msLeft) {
  const s = Math.max(0, Math.ceil(msLeft / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** "14:05" in the phone's own time zone. */
export function localTime(value) {
  const date = new Date(whenMs(value));
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** "14:05:09" in the phone's own time zone (a meter reading's instant). */
export function clockTime(value) {
  const date = new Date(whenMs(value));
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** The text the charger's screen shows once the session has started (charge_point/station.py). */
export function chargerScreenText(evseId) {
  return evseId ? `Charging on EVSE ${evseId}` : "Charging on EVSE";
}

/** The order's limits in words: "1.00 kWh", "60 min", "50.00 CNY", joined. */
export function limitsText(order) {
  const limits = order.limits || {};
  const currency = order.currency || "CNY";
  const parts = [];
  if (limits.energy_wh) parts.push(kwh(limits.energy_wh));
  if (limits.duration_s) parts.push(duration(limits.duration_s));
  if (limits.amount) parts.push(formatAmount(limits.amount, currency));
  return parts.join(t("start.limit_or"));
}

/** The kept copy of an order, else the server's (kept on the way); null offline with none. */
async function loadOrder(id) {
  const kept = await keep.order(id).catch(() => null);
  if (kept && kept.order) return kept;
  const order = await api.order(id);
  return (await keep.saveOrder(order).catch(() => null)) || { id, order };
}

export async function show(main, route, app) {
  const id = route.arg;
  let kept;
  try {
    kept = await loadOrder(id);
  } catch (err) {
    if (err.code !== "network") throw err;
    replace(main, h("section", { class: "card error-card", id: "start-not-kept" },
      h("p", {}, t("start.not_on_phone"))));
    return undefined;
  }
  if (!app.isCurrent()) return undefined;
  let order = kept.order;
  let putAway = Boolean(kept.put_away);
  const currency = order.currency || "CNY";
  const expires = whenMs(order.expires_at);
  let qrUrl = null;
  let wakeLock = null;
  let offline = !navigator.onLine;
  const timers = [];

  const image = h("img", { class: "start-qr", id: "start-qr", alt: t("start.alt") });
  const countdown = h("p", { class: "countdown", id: "countdown" });
  const state = h("p", { class: "order-state", id: "order-state" });
  const holder = h("div", { class: "qr-holder" }, image);
  const offlineHelp = h("section", { class: "card info-card", id: "offline-help", hidden: true },
    h("p", {}, t("start.offline_screen", { text: chargerScreenText(order.evse_id) })),
    h("button", { type: "button", class: "primary", id: "charging-started", onclick: () => setPutAway(true) },
      t("start.charging_started")));
  const confirmCancel = h("button", { type: "button", class: "danger", id: "cancel-confirm", onclick: cancel },
    t("start.cancel_confirm"));
  const keepOrder = h("button", {
    type: "button", class: "link", id: "cancel-keep",
    onclick: () => { cancelAsk.hidden = true; cancelButton.hidden = false; cancelButton.focus(); },
  }, t("start.cancel_keep"));
  const cancelAsk = h("div", { class: "card", id: "cancel-ask", hidden: true },
    h("p", {}, t("start.cancel_what", { amount: formatAmount(order.hold_amount ?? 0, currency) })),
    confirmCancel, keepOrder);
  const cancelButton = h("button", {
    type: "button", class: "link", id: "cancel-order",
    onclick: () => { cancelAsk.hidden = false; cancelButton.hidden = true; },
  }, t("start.cancel"));
  const remoteButton = h("button", { type: "button", class: "link", id: "remote-start", onclick: startRemotely },
    t("start.remote"));
  const validity = [t("start.valid_until"), localTime(order.expires_at)];
  const facts = h("div", { class: "card", id: "start-facts" });
  /** The order's facts; the code's validity only while the code is what matters. */
  const renderFacts = (withValidity) => replace(facts, rows([
    withValidity ? validity : null,
    limitsText(order) ? [t("start.limits"), h("span", { id: "start-limits" }, limitsText(order))] : null,
    [t("start.tariff"), h("span", { id: "start-tariff" }, describeTariff(order.tariff).join(" · "))],
    [t("start.charger"), `${order.charger_id}${order.evse_id ? ` · ${t("charger.evse")} ${order.evse_id}` : ""}`],
  ]));
  const codeView = h("div", { id: "start-code" },
    h("h1", {}, t("start.title")),
    holder, countdown,
    h("ol", { class: "steps" },
      h("li", {}, t("start.do1")), h("li", {}, t("start.do2")), h("li", {}, t("start.do3"))),
    offlineHelp);
  const sessionView = h("section", { class: "card info-card", id: "session", hidden: true });
  const screen = h("section", { class: "start-screen", id: "start-screen" },
    codeView, sessionView,
    h("p", { class: "hint", id: "start-hold" }, t("start.hold", { amount: formatAmount(order.hold_amount ?? 0, currency) })),
    facts,
    state,
    h("a", { class: "button primary", id: "to-settle", href: `#/settle/${encodeURIComponent(id)}` }, t("start.done")),
    remoteButton, cancelButton, cancelAsk);

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

  async function cancel() {
    confirmCancel.disabled = true;
    notify(null);
    try {
      const answer = await api.cancelOrder(id);
      order = { ...order, status: answer.status || "cancelled" };
      kept = { ...kept, cancel: answer };
      await keep.saveOrder(order, { cancel: answer }).catch(() => {});
      cancelled(answer);
    } catch (err) {
      if (err.status === 409) {
        notify(t("start.cancel_too_late"));
        poll();
      } else {
        notify(explain(err));
      }
    } finally {
      confirmCancel.disabled = false;
    }
  }

  /** The hold of a cancelled order in words: back now (cancelled), or when it comes back
   * (cancelling: kept until the charger confirms or the start code can no longer be used). */
  function holdWords(answer) {
    const hold = formatAmount(answer && answer.hold_amount != null ? answer.hold_amount : order.hold_amount ?? 0, currency);
    if (order.status === "cancelled") return t(answer ? "start.cancel_released" : "start.cancel_returned", { amount: hold });
    if (answer && answer.hold_release_at) {
      return t("start.cancel_release_at", { amount: hold, time: localTime(answer.hold_release_at) });
    }
    return t("start.cancel_release_later", { amount: hold });
  }

  function cancelled(answer) {
    stopTimers();
    document.body.classList.remove("bright");
    const words = h("p", { id: "cancel-hold", "data-status": order.status }, holdWords(answer));
    if (order.status === "cancelling") {
      // the hold is still kept: follow the order until it comes back
      timers.push(setInterval(async () => {
        let fresh;
        try {
          fresh = await api.order(id);
        } catch {
          return;
        }
        if (!app.isCurrent() || fresh.status === order.status) return;
        order = fresh;
        keep.saveOrder(order, answer ? { cancel: answer } : undefined).catch(() => {});
        if (DONE.has(order.status)) {
          app.navigate("payment", id);
          return;
        }
        if (RUNNING.has(order.status)) {
          // the charger had started it before it heard of the cancel: the session is honoured
          stopTimers();
          replace(main, screen);
          render();
          follow();
          return;
        }
        words.dataset.status = order.status;
        replace(words, holdWords(answer));
        if (order.status !== "cancelling") stopTimers();
      }, POLL_MS));
    }
    replace(main, h("section", { class: "card info-card", id: "cancelled" },
      h("h1", {}, t("start.cancelled_title")),
      words,
      order.charger_id ? h("a", {
        class: "button primary", id: "order-again",
        href: `#/charger/${encodeURIComponent(order.charger_id)}${order.evse_id ? `?evse=${order.evse_id}` : ""}`,
      }, t("start.order_again")) : null));
  }

  function setPutAway(value) {
    putAway = value;
    keep.patchOrder(id, { put_away: value, put_away_at: value ? Date.now() : null }).catch(() => {});
    render();
  }

  /** Shows the code, or the session in its place (started, or put away by the driver). */
  function render() {
    if (!screen.isConnected) return; // the cancelled screen took its place
    const running = RUNNING.has(order.status);
    const showCode = !running && !putAway;
    codeView.hidden = !showCode;
    sessionView.hidden = showCode;
    document.body.classList.toggle("bright", showCode);
    offlineHelp.hidden = !offline || running;
    // a code the driver put away has (they said) started charging: no cancel offered then
    const cancellable = order.status === "created" && !putAway;
    cancelButton.hidden = !cancellable || !cancelAsk.hidden;
    if (!cancellable) cancelAsk.hidden = true;
    remoteButton.hidden = order.status !== "created" || offline;
    renderFacts(showCode);
    if (showCode) return;
    const live = running && !offline ? order.live : null;
    replace(sessionView,
      h("h1", {}, running ? t("start.live_title") : t("start.put_away_title")),
      h("p", { id: "session-state" }, running
        ? t("start.live_what", { charger: order.charger_id })
        : t("start.put_away_what")),
      limitsText(order) ? h("p", { class: "hint" }, t("start.stops_at", { limits: limitsText(order) })) : null,
      live ? h("div", { id: "live", "aria-live": "polite" },
        rows([
          [t("start.energy_so_far"), h("span", { id: "live-energy" }, kwh(live.energy_wh))],
          [t("start.cost_so_far"), h("span", { id: "live-cost" }, formatAmount(live.amount, currency))],
        ]),
        h("p", { class: "hint", id: "live-at" }, t("start.read_at", { time: clockTime(live.read_at) })))
        : running ? h("p", { class: "hint", id: "live-waiting" }, t("start.live_waiting")) : null,
      running ? null : h("button", {
        type: "button", class: "link", id: "show-start-qr", onclick: () => setPutAway(false),
      }, t("start.show_again")));
  }

  function expired() {
    if (document.getElementById("start-expired")) return;
    const gone = order.status === "cancelled" || order.status === "cancelling";
    holder.replaceChildren(h("div", { class: "expired", id: "start-expired" },
      h("h2", {}, gone ? t("start.cancelled_title") : t("error.expired")),
      h("p", {}, gone ? t("start.cancelled") : t("start.expired_what")),
      order.charger_id
        ? h("a", {
          class: "button primary", id: "order-again",
          href: `#/charger/${encodeURIComponent(order.charger_id)}${order.evse_id ? `?evse=${order.evse_id}` : ""}`,
        }, t("start.order_again"))
        : null));
    replace(countdown, "");
    offlineHelp.hidden = true;
    cancelButton.hidden = true;
    cancelAsk.hidden = true;
    remoteButton.hidden = true;
  }

  function tick() {
    const left = expires - Date.now();
    if (Number.isNaN(left)) return;
    if (left <= 0) {
      if (!RUNNING.has(order.status) && !putAway) expired();
      return;
    }
    replace(countdown, t("start.valid_for", { time: countdownText(left) }));
  }

  async function poll() {
    let fresh;
    try {
      fresh = await api.order(id);
    } catch (err) {
      if (err.code === "network" && !offline) {
        offline = true;
        if (!document.getElementById("start-expired")) render();
      }
      return;
    }
    if (!app.isCurrent()) return;
    const was = order.status;
    order = fresh;
    offline = false;
    keep.saveOrder(order).catch(() => {});
    if (DONE.has(order.status)) {
      app.navigate("payment", id);
      return;
    }
    if (CANCELLED.has(order.status)) {
      cancelled(kept.cancel || null);
      return;
    }
    if (GONE.has(order.status)) {
      expired();
      return;
    }
    if (RUNNING.has(order.status) && was !== order.status) replace(state, "");
    render();
  }

  function follow() {
    timers.push(setInterval(tick, 1000), setInterval(poll, POLL_MS));
  }

  function stopTimers() {
    for (const timer of timers) clearInterval(timer);
    timers.length = 0;
  }

  function cleanup() {
    stopTimers();
    window.removeEventListener("offline", goOffline);
    window.removeEventListener("online", goOnline);
    document.body.classList.remove("bright");
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    if (wakeLock) wakeLock.release().catch(() => {});
  }

  const goOffline = () => {
    offline = true;
    if (!document.getElementById("start-expired")) render();
  };
  const goOnline = () => { poll(); };
  window.addEventListener("offline", goOffline);
  window.addEventListener("online", goOnline);

  replace(main, screen);
  render();
  if (CANCELLED.has(order.status)) {
    cancelled(kept.cancel || null);
    return cleanup;
  } else if (GONE.has(order.status)) {
    expired();
  }

  try {
    let svg = kept.svg;
    if (!svg) {
      svg = await api.startQrSvg(id);
      keep.patchOrder(id, { svg }).catch(() => {});
    }
    qrUrl = URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" }));
    image.src = qrUrl;
  } catch (err) {
    notify(err.code === "network" ? t("start.not_on_phone") : explain(err));
  }
  try {
    wakeLock = navigator.wakeLock ? await navigator.wakeLock.request("screen") : null;
  } catch {
    wakeLock = null;
  }

  tick();
  if (!GONE.has(order.status)) {
    follow();
    poll();
  }
  return cleanup;
}
