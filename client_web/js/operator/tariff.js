// "Which tariff applies here?": the billing model the CSMS resolves for a charger (an
// anonymous driver) or for one driver at a charger, named with the scope that chose it
// (a driver at this charger, a driver, a charger, a site, or the default), and a driver's
// own assignments.

import { call, enc } from "./api.js";
import { t } from "./i18n.js";
import { facts, h, money, priceText, replace, table, when } from "./ui.js";

/** An assignment's or a resolution's scope in words ("user:7/charger:CP-1" -> "driver 7 at
 * charger CP-1"). */
export function scopeText(scope) {
  if (!scope || scope === "default") return t("tariff.scope_default");
  const both = /^user:(\d+)\/charger:(.+)$/.exec(scope);
  if (both) return t("tariff.scope_user_charger", { user: both[1], charger: both[2] });
  const [kind, ...rest] = scope.split(":");
  const value = rest.join(":");
  if (kind === "user") return t("tariff.scope_user", { user: value });
  if (kind === "charger") return t("tariff.scope_charger", { charger: value });
  if (kind === "site") return t("tariff.scope_site", { site: value });
  return scope;
}

/** The prices of a resolved model, as the billing view writes them. */
function pricesOf(m) {
  const unit = (price, per) => `${priceText(price)} ${m.currency}${per}`;
  return [
    [t("billing.fixed_fee"), unit(m.fixed_fee, "")],
    [t("billing.energy_price"), unit(m.energy_price, "/kWh")],
    [t("billing.time_price"), unit(m.time_price, "/h")],
    [t("billing.idle_price"), m.idle_price === null || m.idle_price === undefined ? null : unit(m.idle_price, "/h")],
    [t("billing.cap"), m.cap ? money(m.cap, m.currency) : t("tariff.no_cap")],
    [t("tariff.tou"), m.tou && m.tou.length ? t("tariff.tou_periods", { n: m.tou.length }) : null],
  ];
}

/** The model that applies at `chargerId` (for driver `userId`, or anyone), with its scope. */
export async function appliesBody(chargerId, userId = null) {
  const params = new URLSearchParams({ charger_id: chargerId });
  if (userId !== null) params.set("user_id", String(userId));
  const m = await call("GET", `/api/v1/admin/billing-models/resolve?${params}`);
  return facts([
    [t("tariff.model"), h("a", { href: "#/billing", id: "tariff-model", "data-model": m.id }, m.id)],
    [t("billing.scope"), h("strong", { id: "tariff-scope", "data-scope": m.scope }, scopeText(m.scope))],
    ...pricesOf(m),
  ], { id: "tariff-facts" });
}

/** A driver's assignments (each scope and model) and a charger field that resolves the model
 * applying to the driver there. */
export function driverTariffBody(userId) {
  const assigned = h("div", { id: "driver-assignments" });
  const answer = h("div", { id: "driver-tariff" });
  const charger = h("input", { type: "search", id: "driver-tariff-charger", placeholder: t("orders.charger"),
    "aria-label": t("orders.charger"), maxlength: 48 });
  const form = h("form", { class: "filters", id: "driver-tariff-form" }, charger,
    h("button", { type: "submit", class: "small secondary", "data-read": true }, t("tariff.which")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = charger.value.trim();
    if (!id) return;
    try {
      replace(answer, await appliesBody(id, userId));
    } catch (err) {
      replace(answer, h("p", { class: "error-line" }, err.detail || String(err.status)));
    }
  });
  async function load() {
    const rows = await call("GET", `/api/v1/admin/billing-assignments?user_id=${enc(userId)}`);
    replace(assigned, table([t("billing.scope"), t("tariff.model"), t("orders.created")],
      rows.map((a) => h("tr", { "data-assignment": a.id, "data-scope": a.scope },
        h("td", {}, scopeText(a.scope)), h("td", {}, a.billing_model_id), h("td", {}, when(a.created_at)))),
      { empty: t("tariff.no_driver_assignments") }));
  }
  return { body: [h("p", { class: "hint" }, t("tariff.driver_hint")), assigned, form, answer], load };
}
