// The charger: status, location and the driver's own tariff in plain words, then the request
// (energy, amount, duration or until full) with its estimated cost and the hold.

import * as api from "../api.js";
import { h, replace, rows } from "../dom.js";
import { explain, notify } from "../errors.js";
import { has, t } from "../i18n.js";
import { describeTariff, estimate, exponent, formatAmount, normalizeTariff, parseAmount } from "../money.js";
import { keep } from "../offline.js";

// The Idempotency-Key of the order being asked for, kept in the tab's session storage: a
// driver who taps again after an answer was lost (a network error, the CSMS busy), also after
// reloading the page, sends the same request with the same key and gets the order placed the
// first time; a changed request is a new order with a key of its own.
const ORDER_KEY = "qrcharge.order-attempt";

function orderKey(body) {
  const asked = JSON.stringify(body);
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(ORDER_KEY) || "null");
  } catch {
    saved = null;
  }
  if (saved && saved.asked === asked && typeof saved.key === "string") return saved.key;
  const key = api.newKey();
  try {
    sessionStorage.setItem(ORDER_KEY, JSON.stringify({ asked, key }));
  } catch {
    /* storage refused (private mode): the key holds for this request only */
  }
  return key;
}

function forgetOrderKey() {
  try {
    sessionStorage.removeItem(ORDER_KEY);
  } catch {
    /* nothing kept */
  }
}

const KINDS = ["energy", "amount", "duration", "full"];
const DEFAULTS = { energy: "10", amount: "20", duration: "60", full: "" };
const STARTABLE = new Set(["Available", "Preparing", "Occupied", "SuspendedEV", "Finishing"]);

function tariffOf(data) {
  return data.tariff || data.billing_model || data.tar || null;
}

function evseOf(data, wanted) {
  if (data.evse && typeof data.evse === "object") return data.evse;
  const list = Array.isArray(data.evses) ? data.evses : [];
  const n = Number(wanted || data.evse_id || data.evse || 0);
  return list.find((e) => Number(e.id ?? e.evse_id) === n) || (list.length === 1 ? list[0] : null);
}

export function statusText(status) {
  return has(`status.${status}`) ? t(`status.${status}`) : status || t("status.unknown");
}

function locationText(location) {
  if (!location) return "";
  if (typeof location === "string") return location;
  return [location.name, location.address, location.city].filter(Boolean).join(", ");
}

/** The order request of a form state, or null when the input is not a positive number. */
export function requestOf(kind, value, currency) {
  if (kind === "full") return { full: true };
  const number = Number(String(value).replace(",", "."));
  if (!(number > 0)) return null;
  if (kind === "energy") return { energy_wh: Math.round(number * 1000) };
  if (kind === "duration") return { duration_s: Math.round(number * 60) };
  const minor = parseAmount(value, currency);
  return minor ? { amount: minor } : null;
}

export async function show(main, route, app) {
  const id = route.arg;
  const wanted = route.query.get("evse");
  replace(main, h("p", { class: "loading" }, t("common.loading")));
  let data;
  const code = route.query.get("t"); // a charger screen's dynamic code: proves presence
  try {
    try {
      data = await api.charger(id, wanted, code);
    } catch (err) {
      if (err.code === "unauthorized") {
        data = await api.charger(id, wanted, code); // the stale sign-in is gone: as a visitor
      } else if (err.code === "presence_not_configured") {
        data = await api.charger(id, wanted); // nothing to check the code against
      } else {
        throw err;
      }
    }
  } catch (err) {
    replace(main, h("section", { class: "card error-card", id: "charger-error" },
      h("h1", {}, id), h("p", {}, err.code === "not_found" ? t("error.charger_not_found") : explain(err)),
      h("a", { class: "button secondary", href: "#/" }, t("common.back_home"))));
    return;
  }
  if (!app.isCurrent()) return;
  const tariff = tariffOf(data);
  const tar = normalizeTariff(tariff) || { cur: data.currency || "CNY", cap: 0 };
  const currency = tar.cur || data.currency || "CNY";
  const evse = evseOf(data, wanted);
  const evseId = Number(wanted || (evse && (evse.id ?? evse.evse_id)) || 0) || null;
  const status = (evse && evse.status) || data.status || "unknown";
  const online = data.online ?? data.connected;
  const maxOrder = data.max_order_amount || 0;

  const statusBadge = h("span", { class: `badge status-${String(status).toLowerCase()}`, id: "charger-status" }, statusText(status));
  const facts = rows([
    [t("charger.status"), statusBadge],
    evseId ? [t("charger.evse"), String(evseId)] : null,
    locationText(data.location) ? [t("charger.location"), locationText(data.location)] : null,
    online === false ? [t("charger.network"), t("charger.offline_ok")] : null,
  ]);
  const tariffBox = h("section", { class: "card tariff", id: "tariff" },
    h("h2", {}, api.signedIn() ? t("charger.your_tariff") : t("charger.tariff")),
    describeTariff(tariff).map((line) => h("p", { class: "tariff-line" }, line)),
    api.signedIn() ? null : h("p", { class: "hint" }, t("charger.sign_in_for_yours")));

  // --- the request form ---------------------------------------------------------------
  const orderButton = h("button", { type: "submit", class: "primary", id: "order-button" },
    api.signedIn() ? t("request.order") : t("request.sign_in_to_order"));
  let kind = "energy";
  const value = h("input", { id: "request-value", inputmode: "decimal", autocomplete: "off", value: "10" });
  const unit = h("span", { class: "unit", id: "request-unit", "aria-hidden": "true" });
  const valueLabel = h("label", { for: "request-value", id: "request-value-label" });
  const estimateLine = h("p", { class: "estimate", id: "estimate" });
  const holdLine = h("p", { class: "hint", id: "hold" });
  const capLine = h("p", { class: "warning", id: "over-cap", hidden: true });
  const chips = KINDS.map((k) => h("button", {
    type: "button", class: "chip", dataset: { kind: k }, id: `kind-${k}`, "aria-pressed": "false",
    onclick: () => {
      kind = k;
      value.value = DEFAULTS[k];
      refresh();
    },
  }, t(`request.${k}`)));

  let overCap = false;
  function refresh() {
    for (const chip of chips) {
      chip.classList.toggle("selected", chip.dataset.kind === kind);
      chip.setAttribute("aria-pressed", String(chip.dataset.kind === kind));
    }
    value.hidden = unit.hidden = valueLabel.hidden = kind === "full";
    if (kind !== "full") replace(valueLabel, t(`request.value.${kind}`, { currency }));
    replace(unit, { energy: "kWh", amount: currency, duration: t("request.minutes"), full: "" }[kind]);
    const request = requestOf(kind, value.value, currency);
    const limit = [tar.cap, maxOrder].filter((x) => x > 0);
    const ceiling = limit.length ? Math.min(...limit) : 0;
    if (!request) {
      replace(estimateLine, t("request.enter_value"));
      replace(holdLine, "");
      return;
    }
    const cost = estimate(tariff, request, data.max_power_w || undefined);
    if (request.full) {
      replace(estimateLine, t("request.full_estimate"));
    } else {
      replace(estimateLine, t("request.estimate", { amount: formatAmount(cost, currency) }));
    }
    // Above the most one order may hold: said before the order is placed, not capped silently.
    overCap = Boolean(ceiling && request.amount && request.amount > ceiling);
    capLine.hidden = !(overCap || (ceiling && cost > ceiling));
    if (overCap) {
      replace(capLine, t("request.over_cap", { asked: formatAmount(request.amount, currency), max: formatAmount(ceiling, currency) }), " ",
        h("button", {
          type: "button", class: "link", id: "use-max",
          onclick: () => { value.value = (ceiling / 10 ** exponent(currency)).toFixed(exponent(currency)); refresh(); },
        }, t("request.use_max", { max: formatAmount(ceiling, currency) })));
      replace(estimateLine, "");
      replace(holdLine, ""); // nothing is ordered, so nothing is held or estimated
      return;
    }
    if (!capLine.hidden) {
      replace(capLine, t("request.stops_at_max", { max: formatAmount(ceiling, currency) }));
    }
    if (!api.signedIn()) {
      // A visitor's own prices (and so the hold) are known only after sign-in: the hold of a
      // typical order is shown, the page's suggested amount, within the limits known here.
      const typical = parseAmount(DEFAULTS.amount, currency);
      const typicalHold = Math.min(typical, ceiling || Infinity);
      replace(holdLine, t("request.hold_typical", { amount: formatAmount(typicalHold, currency), typical: formatAmount(typical, currency) }));
      return;
    }
    // The CSMS holds the order's maximum: the amount asked for, else the cap.
    const hold = request.amount ? Math.min(request.amount, ceiling || Infinity) : ceiling;
    replace(holdLine, hold ? t("request.hold", { amount: formatAmount(hold, currency) }) : t("request.hold_later"));
  }
  value.addEventListener("input", refresh);

  const canStart = STARTABLE.has(status) || online === false;

  async function onSubmit(event) {
    event.preventDefault();
    if (!api.signedIn()) {
      app.navigate("signin", "", { next: app.here() });
      return;
    }
    const request = requestOf(kind, value.value, currency);
    if (!request) {
      notify(t("request.enter_value"));
      return;
    }
    if (overCap) {
      notify(capLine.firstChild ? capLine.firstChild.textContent : t("request.enter_value"));
      return;
    }
    orderButton.disabled = true;
    notify(null);
    const body = { charger_id: id, ...(evseId ? { evse_id: evseId } : {}), ...request };
    try {
      const order = await api.createOrder(body, orderKey(body));
      forgetOrderKey();
      await keep.saveOrder(order).catch(() => {}); // kept on the phone: shown offline later
      app.navigate("order", order.id);
    } catch (err) {
      if (err.status > 0 && err.status < 500) forgetOrderKey(); // answered: a retry is a new order
      notify(explain(err));
      if (err.code === "insufficient_funds") {
        holdLine.append(" ", h("a", { href: "#/wallet", id: "top-up-link" }, t("wallet.top_up_now")));
      }
    } finally {
      orderButton.disabled = false;
    }
  }

  const form = h("form", { class: "card request", id: "request-form", onsubmit: onSubmit },
    h("h2", {}, t("request.title")),
    h("div", { class: "chips", role: "group", "aria-label": t("request.kinds") }, chips),
    valueLabel,
    h("div", { class: "amount-row" }, value, unit),
    estimateLine, capLine, holdLine,
    canStart ? null : h("p", { class: "warning", id: "not-available" }, t("charger.not_available")),
    orderButton);
  refresh();
  replace(main,
    h("section", { class: "card" }, h("h1", { id: "charger-id-title" }, id), facts),
    tariffBox, form);
}
