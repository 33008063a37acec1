// The audit log: who did what, when, with which result, and the values of the change (a
// refund's amount, a new status, a cap); newest first, filtered by actor, paged with "older".

import { call } from "./api.js";
import { t } from "./i18n.js";
import { h, money, priceText, replace, table, unavailable, when } from "./ui.js";

const PAGE = 50;
const MINOR_UNITS = new Set(["amount", "refunded", "released", "cap"]); // amounts of `currency`
// a billing model's prices, in 1/10,000 of `currency` (written as the billing view does)
const PRICES = new Set(["fixed_fee", "energy_price", "time_price", "idle_price"]);

/** A detail's value in words: an amount or a price in the record's currency, else as is. */
function valueText(name, value, currency) {
  if (!currency || typeof value !== "number") return String(value);
  if (MINOR_UNITS.has(name)) return money(value, currency);
  if (PRICES.has(name)) return `${priceText(value)} ${currency}`;
  return String(value);
}

/** The values of a change, one "name: value" each (amounts and prices in the record's
 * currency). */
function valuesOf(details) {
  const entries = Object.entries(details || {});
  if (!entries.length) return null;
  return h("ul", { class: "details" }, entries.map(([name, value]) => h("li", { "data-detail": name },
    h("span", { class: "hint" }, `${name}: `),
    valueText(name, value, details.currency))));
}

export function auditView(root) {
  const body = h("div", { class: "body" });
  const more = h("div", {});
  const actor = h("input", { type: "search", id: "audit-actor", placeholder: t("audit.actor") });
  const form = h("form", { class: "inline", id: "audit-filter" }, actor,
    h("button", { type: "submit", class: "small secondary search", "data-read": true }, t("drivers.find")));
  replace(root, h("section", { class: "card", id: "audit" }, h("h2", {}, t("nav.audit")), form, body, more));
  let rows = [];

  function row(e) {
    return h("tr", { "data-audit": e.id },
      h("td", {}, when(e.at)), h("td", { class: "wrap" }, `${e.actor} (${e.actor_kind})`), h("td", { class: "wrap" }, e.action),
      h("td", { class: "wrap" }, e.target || ""), h("td", { class: e.status_code >= 400 ? "flag" : "" }, String(e.status_code ?? "")),
      h("td", { class: "wrap" }, typeof e.detail === "object" && e.detail !== null ? JSON.stringify(e.detail) : e.detail || "",
        valuesOf(e.details)));
  }

  async function page(before) {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (before) params.set("before", before);
    if (actor.value.trim()) params.set("actor", actor.value.trim());
    try {
      const answer = await call("GET", `/api/v1/admin/audit?${params}`);
      rows = before ? rows.concat(answer.items) : answer.items;
      replace(body, table([t("audit.at"), t("audit.actor"), t("audit.action"), t("audit.target"), t("audit.status"), t("audit.detail")],
        rows.map(row)));
      replace(more, answer.next_before
        ? h("button", { type: "button", class: "small secondary", "data-read": true, id: "audit-older", onclick: () => page(answer.next_before) }, t("audit.older")) : null);
    } catch (err) {
      if (err.status === 404) replace(body, unavailable(err));
      else throw err;
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    page(null);
  });
  return { refresh: () => page(null), live: false };
}
