// Billing models: the list, a form that creates or edits one (prices in currency units per
// kWh and per hour, time-of-use periods in local time), the cost of a sample session with
// the prices in the form (computed by the CSMS with the chargers' own cost function), and
// the model's assignments (driver, driver at a charger, charger, site).

import { call, enc } from "./api.js";
import { t } from "./i18n.js";
import { can } from "./roles.js";
import {
  action, actionForm, decimalsOf, field, h, minorText, money, notify, parseMinor, parsePrice, priceText,
  replace, table, when,
} from "./ui.js";

const MAX_TOU = 8; // the CSMS takes up to 8 periods; the form shows one more, empty
const hhmm = (minute) => `${String(Math.floor(minute / 60) % 24).padStart(2, "0")}:${String(minute % 60).padStart(2, "0")}`;
const minutes = (text) => {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text || "");
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
};

function touRow(p = {}, i = 0, ro = {}) {
  return h("fieldset", { class: "tou", "data-tou": i },
    h("legend", {}, t("billing.tou", { n: i + 1 })),
    field(t("billing.from"), { name: `tou_start_${i}`, type: "time", value: p.start_minute !== undefined ? hhmm(p.start_minute) : "", ...ro }),
    field(t("billing.to"), { name: `tou_end_${i}`, type: "time", value: p.end_minute !== undefined ? hhmm(p.end_minute % 1440) : "", ...ro }),
    field(t("billing.energy_price"), { name: `tou_energy_${i}`, inputmode: "decimal", value: priceText(p.energy_price), ...ro }),
    field(t("billing.time_price"), { name: `tou_time_${i}`, inputmode: "decimal", value: priceText(p.time_price), ...ro }));
}

/** The tariff fields of the form, or a sentence naming the first bad field. */
function tariffOf(v) {
  const price = (name, { optional = false } = {}) => {
    if (v[name] === undefined) return optional ? null : 0;
    const p = parsePrice(v[name]);
    if (p === null) throw new Error(t("billing.bad_price", { field: t(`billing.${name}`) }));
    return p;
  };
  const body = {
    currency: (v.currency || "CNY").toUpperCase(),
    fixed_fee: price("fixed_fee"), energy_price: price("energy_price"), time_price: price("time_price"),
    idle_price: price("idle_price", { optional: true }), idle_grace_min: Number(v.idle_grace_min || 0),
    tz_offset_min: Number(v.tz_offset_min || 0), tou: [],
  };
  if (v.cap !== undefined) {
    body.cap = parseMinor(v.cap, decimalsOf(body.currency));
    if (body.cap === null) throw new Error(t("billing.bad_price", { field: t("billing.cap") }));
  }
  for (let i = 0; i <= MAX_TOU; i += 1) {
    if (v[`tou_start_${i}`] === undefined) continue;
    const end = minutes(v[`tou_end_${i}`]);
    body.tou.push({ start_minute: minutes(v[`tou_start_${i}`]), end_minute: end === 0 ? 1440 : end,
      energy_price: price(`tou_energy_${i}`), time_price: price(`tou_time_${i}`) });
  }
  return body;
}

/** The model's form: editable by an admin; for other roles its prices read only, with the
 * cost of a sample charge (the preview is a read every role may ask for). */
function modelForm(model, reload) {
  const editable = can("billing");
  if (!editable && !model) return h("p", { class: "hint" }, t("billing.open_to_read"));
  const ro = editable ? {} : { readonly: true };
  const m = model || { currency: "CNY", fixed_fee: 0, energy_price: 0, time_price: 0, tou: [], tz_offset_min: 480 };
  const preview = h("div", { id: "preview-answer", "aria-live": "polite" });
  const now = new Date();
  now.setMinutes(0, 0, 0);
  const local = new Date(now.getTime() - now.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const children = [
    model ? h("p", {}, h("strong", {}, model.id), ` · ${t("billing.version", { n: model.version })}`)
      : field(t("billing.id"), { name: "id", required: true, pattern: "[A-Za-z0-9._:-]{1,36}" }),
    field(t("billing.name"), { name: "name", value: m.name || "", maxlength: 100, ...ro }),
    field(t("billing.currency"), { name: "currency", value: m.currency, pattern: "[A-Z]{3}", required: true, ...ro }),
    field(t("billing.fixed_fee"), { name: "fixed_fee", inputmode: "decimal", value: priceText(m.fixed_fee), ...ro }),
    field(t("billing.energy_price"), { name: "energy_price", id: "model-energy", inputmode: "decimal", value: priceText(m.energy_price), ...ro }),
    field(t("billing.time_price"), { name: "time_price", inputmode: "decimal", value: priceText(m.time_price), ...ro }),
    field(t("billing.idle_price"), { name: "idle_price", inputmode: "decimal", value: priceText(m.idle_price), ...ro }),
    field(t("billing.idle_grace_min"), { name: "idle_grace_min", type: "number", min: 0, max: 1440, value: m.idle_grace_min || 0, ...ro }),
    field(t("billing.cap"), { name: "cap", inputmode: "decimal", value: m.cap ? minorText(m.cap, m.currency) : "", ...ro }),
    field(t("billing.tz_offset_min"), { name: "tz_offset_min", type: "number", min: -840, max: 840, value: m.tz_offset_min || 0, ...ro }),
    (editable ? [...(m.tou || []), {}] : m.tou || []).map((p, i) => touRow(p, i, ro)),
    h("fieldset", { class: "sample" }, h("legend", {}, t("billing.sample")),
      field(t("billing.sample_start"), { name: "sample_start", type: "datetime-local", value: local }),
      field(t("billing.sample_minutes"), { name: "sample_minutes", type: "number", min: 0, value: 60 }),
      field(t("billing.sample_kwh"), { name: "sample_kwh", id: "sample-kwh", inputmode: "decimal", value: "10" }),
      field(t("billing.sample_idle"), { name: "sample_idle", type: "number", min: 0, value: 0 }),
      h("button", { type: "button", class: "small secondary", id: "preview-button", "data-read": true, onclick: () => runPreview() }, t("billing.preview")),
      preview),
  ];
  const form = editable ? actionForm({ id: "model-form" }, children, async (v) => {
    let body;
    try {
      body = tariffOf(v);
    } catch (err) {
      notify(err.message);
      return;
    }
    body.name = v.name || "";
    if (model) {
      await call("PUT", `/api/v1/admin/billing-models/${enc(model.id)}`, { json: body });
      notify(t("billing.saved", { id: model.id }), "ok");
    } else {
      await call("POST", "/api/v1/admin/billing-models", { json: { ...body, id: v.id } });
      notify(t("billing.created", { id: v.id }), "ok");
    }
    await reload(model ? model.id : v.id);
  }, { area: "billing", submit: model ? t("common.save") : t("billing.create") })
    : h("form", { class: "form-grid", id: "model-form", "data-read": true, onsubmit: (event) => event.preventDefault() }, children);

  async function runPreview() {
    const data = {};
    for (const [k, val] of new FormData(form).entries()) if (String(val).trim() !== "") data[k] = String(val).trim();
    try {
      const kwh = Number(String(data.sample_kwh || "0").replace(",", "."));
      const body = { ...tariffOf(data), start: new Date(data.sample_start).toISOString(),
        charging_min: Number(data.sample_minutes || 0), energy_wh: Math.round(kwh * 1000), idle_min: Number(data.sample_idle || 0) };
      const cost = await call("POST", "/api/v1/admin/billing-models/preview", { json: body });
      replace(preview, h("p", { class: "estimate", id: "preview-total", "data-total": cost.total }, money(cost.total, cost.currency)),
        h("p", { class: "hint" }, t("billing.parts", { fixed: cost.fixed, energy: cost.energy, time: cost.time, idle: cost.idle,
          currency: cost.currency }), cost.capped ? ` ${t("billing.capped")}` : ""));
    } catch (err) {
      replace(preview, h("p", { class: "error-line" }, err.status === 404 ? t("common.unavailable", { status: 404 }) : err.message));
    }
  }
  return form;
}

function assignmentsBlock(model, rows, reload) {
  const form = actionForm({ id: "assign-form" }, [
    field(t("billing.assign_user"), { name: "user_id", type: "number", min: 1 }),
    field(t("billing.assign_charger"), { name: "charger_id", maxlength: 48 }),
    field(t("billing.assign_site"), { name: "site", maxlength: 200 }),
  ], async (v) => {
    const body = {};
    if (v.user_id) body.user_id = Number(v.user_id);
    if (v.charger_id) body.charger_id = v.charger_id;
    if (v.site) body.site = v.site;
    await call("POST", `/api/v1/admin/billing-models/${enc(model.id)}/assignments`, { json: body });
    await reload(model.id);
  }, { area: "billing", submit: t("billing.assign") });
  return h("div", {},
    table([t("billing.scope"), t("drivers.id"), t("orders.charger"), t("billing.site"), t("orders.created"), ""],
      rows.map((a) => h("tr", { "data-assignment": a.id },
        h("td", {}, a.scope), h("td", {}, a.user_id ?? ""), h("td", {}, a.charger_id || ""), h("td", {}, a.site || ""),
        h("td", {}, when(a.created_at)),
        h("td", {}, action(t("common.delete"), async () => {
          await call("DELETE", `/api/v1/admin/billing-assignments/${a.id}`);
          await reload(model.id);
        }, { area: "billing", kind: "danger" })))),
      { empty: t("billing.no_assignments") }),
    form);
}

export function billingView(root) {
  const list = h("div", { class: "body" });
  const editor = h("div", { class: "body", id: "model-editor" });
  const assignments = h("div", { class: "body" });
  const defaults = h("div", { class: "body" });
  replace(root,
    h("section", { class: "card", id: "billing" }, h("h2", {}, t("billing.models")), list,
      can("billing") ? h("button", { type: "button", class: "small secondary", id: "new-model", onclick: () => open(null) }, t("billing.new")) : null),
    h("section", { class: "card", id: "model-card" }, h("h2", { id: "model-title" }, t("billing.new")), editor),
    h("section", { class: "card", id: "assignments-card", hidden: true }, h("h2", {}, t("billing.assignments")), assignments),
    h("section", { class: "card", id: "default-card" }, h("h2", {}, t("billing.default")), defaults));

  let opening = 0; // the latest open() wins: an earlier one still loading drops its result
  async function open(modelId) {
    const mine = ++opening;
    delete editor.dataset.ready;
    const card = document.getElementById("assignments-card");
    if (!modelId) {
      document.getElementById("model-title").textContent = t(can("billing") ? "billing.new" : "billing.models");
      replace(editor, modelForm(null, reload));
      card.hidden = true;
      editor.dataset.ready = "new";
      return;
    }
    const [model, rows] = await Promise.all([
      call("GET", `/api/v1/admin/billing-models/${enc(modelId)}`),
      call("GET", `/api/v1/admin/billing-models/${enc(modelId)}/assignments`),
    ]);
    if (mine !== opening) return;
    document.getElementById("model-title").textContent = t(can("billing") ? "billing.edit" : "billing.read", { id: model.id });
    replace(editor, modelForm(model, reload));
    replace(assignments, assignmentsBlock(model, rows, reload));
    card.hidden = false;
    editor.dataset.ready = model.id;
    document.getElementById("model-card").scrollIntoView();
  }

  /** Deletes a model; one still assigned is refused (409), which is said in words. */
  async function remove(model) {
    try {
      await call("DELETE", `/api/v1/admin/billing-models/${enc(model.id)}`);
    } catch (err) {
      if (err.status !== 409) throw err;
      notify(t("billing.delete_refused", { id: model.id }));
      return;
    }
    notify(t("billing.deleted", { id: model.id }), "ok");
    if (editor.dataset.ready === model.id) replace(editor);
    await refresh();
  }

  async function reload(modelId) {
    await refresh();
    if (modelId) await open(modelId);
  }

  async function refresh() {
    const [models, fallback] = await Promise.all([
      call("GET", "/api/v1/admin/billing-models?limit=1000"), call("GET", "/api/v1/admin/billing-models/default"),
    ]);
    replace(list, table([t("billing.id"), t("billing.name"), t("billing.energy_price"), t("billing.time_price"),
      t("billing.fixed_fee"), t("billing.cap"), t("billing.version_col"), t("billing.updated"), ""],
    models.map((m) => h("tr", { "data-model": m.id },
      h("td", {}, h("button", { type: "button", class: "link", id: `open-model-${m.id}`, "data-read": true, onclick: () => open(m.id),
        title: can("billing") ? t("common.edit") : t("common.show") }, m.id)),
      h("td", { class: "wrap" }, m.name), h("td", {}, `${priceText(m.energy_price)} ${m.currency}`),
      h("td", {}, `${priceText(m.time_price)} ${m.currency}`), h("td", {}, `${priceText(m.fixed_fee)} ${m.currency}`),
      h("td", {}, m.cap ? money(m.cap, m.currency) : ""), h("td", {}, String(m.version)), h("td", {}, when(m.updated_at)),
      h("td", {}, action(t("common.delete"), () => remove(m), {
        area: "billing", kind: "danger", id: `delete-model-${m.id}`, confirmText: t("billing.delete_confirm", { id: m.id }),
      }))))));
    replace(defaults, h("p", {}, `${fallback.id}: ${priceText(fallback.energy_price)} ${fallback.currency}/kWh, `
      + `${priceText(fallback.time_price)} ${fallback.currency}/h`), h("p", { class: "hint" }, t("billing.default_hint")));
    if (!editor.childNodes.length) await open(null);
  }
  return { refresh, live: false };
}
