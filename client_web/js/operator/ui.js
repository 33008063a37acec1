// Small building blocks of the operator page: notices, tables that scroll inside their card
// (never the page), labelled form fields, buttons that act and report, and number formats.

import { h, replace } from "../dom.js";
import { formatAmount } from "../money.js";
import { can } from "./roles.js";
import { t } from "./i18n.js";

export { h, replace };

/** Shows `message` in the page's notice bar (`kind` "error" or "ok"); null hides it. */
export function notify(message, kind = "error") {
  const bar = document.getElementById("notice");
  bar.hidden = !message;
  bar.textContent = message || "";
  bar.className = `notice ${kind}`;
}

/** The sentence for a failed call: 401/403 in words, a missing endpoint as "not available". */
export function failure(err) {
  if (err.status === 401) return t("error.unauthorized");
  if (err.status === 403) return t("error.forbidden", { detail: err.detail || "" });
  if (err.status === 0) return t("error.network");
  return t("error.http", { status: err.status, detail: err.detail || "" });
}

/** A panel body for an endpoint that may not exist on this CSMS yet (404/405 without a
 * resource reason, or a 422 for a command this CSMS does not offer). */
export function unavailable(err) {
  return h("p", { class: "hint unavailable" }, t("common.unavailable", { status: err.status }));
}

/** A table that scrolls inside its box on a desktop and stacks its rows on a phone (each
 * cell then carries its column's title, from `data-label`). */
export function table(headers, rows, { empty } = {}) {
  if (!rows.length) return h("p", { class: "hint" }, empty || t("common.nothing"));
  for (const row of rows) {
    [...row.children].forEach((cell, i) => cell.setAttribute("data-label", headers[i] || ""));
  }
  return h("div", { class: "scroll" }, h("table", { class: "stack" },
    h("thead", {}, h("tr", {}, headers.map((title) => h("th", {}, title)))),
    h("tbody", {}, rows)));
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function money(amount, currency) {
  return amount === null || amount === undefined ? "" : formatAmount(amount, currency || "CNY");
}

/** A labelled input/select: field("Location", {name: "location"}) -> [label, input]. */
export function field(label, attrs = {}, options = null) {
  const id = attrs.id || `f-${attrs.name}-${Math.random().toString(36).slice(2, 8)}`;
  const control = options
    ? h("select", { ...attrs, id }, options.map((o) => {
      const [value, text] = Array.isArray(o) ? o : [o, o];
      return h("option", { value, selected: String(attrs.value ?? "") === String(value) }, text);
    }))
    : attrs.type === "textarea"
      ? h("textarea", { ...attrs, type: null, id }, attrs.value || "")
      : h("input", { type: "text", ...attrs, id });
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

/** The form's named values as strings (empty ones left out). */
export function values(form) {
  const out = {};
  for (const [name, value] of new FormData(form).entries()) {
    if (String(value).trim() !== "") out[name] = String(value).trim();
  }
  return out;
}

/** A button for `area` (hidden when the role may not act there) that runs `work`, shows
 * its failure, and is disabled while it runs. */
export function action(label, work, { area, kind = "secondary", id, confirmText } = {}) {
  if (area && !can(area)) return null;
  const button = h("button", { type: "button", class: `small ${kind}`, id });
  button.textContent = label;
  button.addEventListener("click", async () => {
    if (confirmText && !window.confirm(confirmText)) return;
    button.disabled = true;
    try {
      await work();
    } catch (err) {
      notify(failure(err));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** A form for `area` whose submit runs `work(values)`; hidden for a role that may not act. */
export function actionForm(attrs, children, work, { area, submit } = {}) {
  if (area && !can(area)) return null;
  const form = h("form", { class: "form-grid", ...attrs }, children,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "small primary" }, submit)));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await work(values(form), form);
    } catch (err) {
      notify(failure(err));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/** A section card with a title and a body to fill. */
export function card(id, title, ...children) {
  return h("section", { class: "card", id }, h("h2", {}, title), h("div", { class: "body" }, children));
}

/** A <pre> holding a JSON answer. */
export function answer(value, attrs = {}) {
  return h("pre", { class: "answer", ...attrs }, JSON.stringify(value, null, 2));
}

/** "1.20" -> 12000 (prices are in 1/10,000 of the currency unit); null if not a price. */
export function parsePrice(text) {
  const match = /^(\d{1,6})(?:[.,](\d{0,4}))?$/.exec(String(text ?? "").trim());
  if (!match) return null;
  return Number(match[1]) * 10000 + Number((match[2] || "").padEnd(4, "0"));
}

/** 12000 -> "1.20" (at least two decimals, up to four). */
export function priceText(price) {
  if (price === null || price === undefined) return "";
  const whole = Math.floor(price / 10000);
  const rest = String(price % 10000).padStart(4, "0").replace(/0{1,2}$/, "").replace(/0$/, "");
  return `${whole}.${rest.padEnd(2, "0")}`;
}

/** How many decimals the currency's minor unit has (CNY 2, JPY 0, KWD 3). */
export function decimalsOf(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency: currency || "CNY" })
      .resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

/** 1250 minor units -> "12.50" as typed in a form (no grouping, no symbol). */
export function minorText(amount, currency) {
  const decimals = decimalsOf(currency);
  return (amount / 10 ** decimals).toFixed(decimals);
}

/** "12.50" in a currency with ``decimals`` decimals -> 1250 minor units; null if not an
 * amount. */
export function parseMinor(text, decimals = 2) {
  const match = /^(\d{1,9})(?:[.,](\d*))?$/.exec(String(text ?? "").trim());
  if (!match || (match[2] || "").length > decimals) return null;
  return Number(match[1]) * 10 ** decimals + Number((match[2] || "").padEnd(decimals, "0") || 0);
}

/** A definition list of [title, value] pairs (a value may be a node); empty values left out. */
export function facts(pairs, attrs = {}) {
  return h("dl", { class: "rows", ...attrs }, pairs.filter(([, value]) => value !== null && value !== undefined && value !== "")
    .flatMap(([title, value]) => [h("dt", {}, title), h("dd", {}, typeof value === "object" ? value : String(value))]));
}

/** A back link to a list view. */
export function back(hash, label) {
  return h("p", {}, h("a", { href: hash }, `← ${label}`));
}
