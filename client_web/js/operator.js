// The operator page: chargers (online/offline), orders, settlements and the reconciliation
// report, refreshed every few seconds. With `qrcharge demo`, it also drives the simulated
// chargers through their control APIs (via /api/v1/demo/...): cut or restore a charger's
// network to show the offline path, plug/unplug an EV, show an image to the camera.

import { h, replace } from "./dom.js";
import { formatAmount } from "./money.js";
import { setLanguage } from "./i18n.js";

const KEY = "qrcharge.admin";
const REFRESH_MS = 3000;
const DEMO = "/api/v1/demo/chargers";

function key() {
  return sessionStorage.getItem(KEY) || "";
}

function notify(message) {
  const bar = document.getElementById("notice");
  bar.hidden = !message;
  bar.textContent = message || "";
  bar.className = "notice error";
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${key()}`, Accept: "application/json" },
    body,
  });
  if (response.status === 401) throw new Error("The operator key was not accepted.");
  if (!response.ok) {
    const text = await response.text();
    const error = new Error(`${method} ${path}: HTTP ${response.status} ${text.slice(0, 200)}`);
    error.status = response.status;
    throw error;
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.blob();
}

function table(headers, rows, empty = "Nothing yet.") {
  if (!rows.length) return h("p", { class: "hint" }, empty);
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((title) => h("th", {}, title)))),
    h("tbody", {}, rows));
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function money(amount, currency) {
  return amount === null || amount === undefined ? "" : formatAmount(amount, currency || "CNY");
}

// --- chargers -------------------------------------------------------------------------

const screenUrls = new Map();

async function screenQr(id) {
  try {
    const blob = await call("GET", `${DEMO}/${encodeURIComponent(id)}/display/qr.png`);
    const url = URL.createObjectURL(blob);
    if (screenUrls.has(id)) URL.revokeObjectURL(screenUrls.get(id));
    screenUrls.set(id, url);
    return url;
  } catch {
    return null;
  }
}

function actionButton(label, path, { danger = false, id } = {}) {
  return h("button", {
    type: "button", class: `small ${danger ? "danger" : "secondary"}`, id,
    onclick: async () => {
      try {
        await call("POST", path);
        await refresh();
      } catch (err) {
        notify(err.message);
      }
    },
  }, label);
}

function cameraUpload(id) {
  const input = h("input", {
    type: "file", accept: "image/*", class: "file", id: `camera-${id}`,
    onchange: async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      try {
        const answer = await call("POST", `${DEMO}/${encodeURIComponent(id)}/camera`, file);
        notify(answer.accepted ? null : `Charger refused the code: ${answer.reason} ${answer.detail || ""}`);
        await refresh();
      } catch (err) {
        notify(err.message);
      } finally {
        input.value = "";
      }
    },
  });
  return [h("label", { class: "button secondary small", for: `camera-${id}` }, "Show an image to the camera"), input];
}

async function chargerRows(chargers, simulated) {
  const rows = [];
  for (const c of chargers) {
    const sim = simulated.get(c.id);
    const evses = (c.evses || []).map((e) => `${e.evse_id}: ${e.status}`).join(", ");
    const cells = [
      h("td", { class: "wrap" }, h("strong", {}, c.id), ` OCPP ${c.ocpp_version || "?"}`,
        h("div", { class: "hint" }, c.location || "")),
      h("td", {},
        h("span", { class: c.connected ? "online" : "offline", "data-charger-state": c.id },
          c.connected ? "online" : "offline"),
        h("div", { class: "hint" }, when(c.last_seen))),
      h("td", { class: "wrap" }, evses),
    ];
    if (sim) {
      const base = `${DEMO}/${encodeURIComponent(c.id)}`;
      const up = sim.link_up;
      const display = sim.display || {};
      const qr = display.qr_kind === "settlement" ? await screenQr(c.id) : null;
      const evseButtons = (sim.state.evses || []).map((e) => [
        e.plugged
          ? actionButton(`Unplug EV ${e.id}`, `${base}/evses/${e.id}/unplug`)
          : actionButton(`Plug EV ${e.id}`, `${base}/evses/${e.id}/plug`),
        actionButton(`Stop ${e.id}`, `${base}/evses/${e.id}/stop`),
      ]);
      cells.push(
        h("td", {},
          up
            ? actionButton("Cut network", `${base}/link/down`, { danger: true, id: `cut-${c.id}` })
            : actionButton("Restore network", `${base}/link/up`, { id: `restore-${c.id}` }),
          h("br"), evseButtons, h("br"), cameraUpload(c.id)),
        h("td", { class: "wrap" },
          h("div", {}, display.text || ""),
          (display.reasons || []).slice(-1).map((r) => h("div", { class: "flag" }, String(r.reason || r))),
          qr ? h("img", { class: "screen-qr", src: qr, alt: `settlement QR on ${c.id}` }) : null),
      );
    }
    rows.push(h("tr", { "data-charger": c.id }, cells));
  }
  return rows;
}

// --- refresh ---------------------------------------------------------------------------

async function refresh() {
  if (!key()) return;
  const body = (id) => document.querySelector(`#${id} .body`);
  let simulated = new Map();
  try {
    const chargers = await call("GET", "/api/v1/admin/chargers");
    try {
      simulated = new Map((await call("GET", DEMO)).map((c) => [c.id, c]));
    } catch (err) {
      if (err.status !== 404) throw err;
    }
    const headers = ["Charger", "Link (last seen)", "EVSEs"];
    if (simulated.size) headers.push("Simulator", "Screen");
    replace(body("chargers"), table(headers, await chargerRows(chargers, simulated)));

    const orders = await call("GET", "/api/v1/admin/orders?limit=30");
    replace(body("orders"), table(
      ["Order", "Charger", "Driver", "Status", "Hold", "Charged", "Payment", "Created", "Flags"],
      orders.map((o) => h("tr", { "data-order": o.id },
        h("td", {}, o.id), h("td", {}, o.charger_id), h("td", {}, String(o.user_id)),
        h("td", {}, o.status), h("td", {}, money(o.hold_amount, o.currency)),
        h("td", {}, money(o.amount, o.currency)), h("td", {}, o.payment_status || ""),
        h("td", {}, when(o.created_at)),
        h("td", { class: "flag" }, (o.flags || []).map((f) => f.kind || f.reason || "").join(", "))))));

    const settlements = await call("GET", "/api/v1/admin/settlements?limit=30");
    replace(body("settlements"), table(
      ["#", "Order", "Charger", "Txn", "Energy", "Amount", "Signed", "OCPP", "Sources", "Disagreement"],
      settlements.map((s) => h("tr", { "data-settlement": s.id },
        h("td", {}, String(s.id)), h("td", {}, s.order_id), h("td", {}, s.charger_id),
        h("td", {}, s.txn || ""), h("td", {}, s.energy_wh === null ? "" : `${s.energy_wh} Wh`),
        h("td", {}, money(s.amount, s.currency)), h("td", {}, money(s.signed_amount, s.currency)),
        h("td", {}, money(s.ocpp_amount, s.currency)), h("td", {}, (s.sources || []).join(" + ")),
        h("td", { class: s.disagreement ? "flag" : "" }, s.disagreement ? "yes" : "")))));

    const report = await call("GET", "/api/v1/admin/reconciliation");
    replace(body("reconciliation"),
      h("div", { class: "counts", id: "reconciliation-counts" },
        Object.entries(report.counts || {}).map(([name, n]) =>
          h("div", { class: "count", "data-count": name }, h("strong", {}, String(n)), name.replace(/_/g, " ")))),
      table(["Order", "Charger", "Status", "Settled by", "Sessions", "Signed", "OCPP", "Charged", "Stuck hold", "Flags"],
        (report.rows || []).slice(-30).reverse().map((r) => h("tr", {},
          h("td", {}, r.order_id), h("td", {}, r.charger_id), h("td", {}, r.status),
          h("td", {}, r.settled_by), h("td", {}, String(r.sessions)),
          h("td", {}, money(r.signed_amount)), h("td", {}, money(r.ocpp_amount)),
          h("td", {}, money(r.charged_amount)), h("td", { class: r.stuck_hold ? "flag" : "" }, r.stuck_hold ? "yes" : ""),
          h("td", { class: "flag" }, r.flags || "")))),
      h("p", { class: "hint" }, `Generated ${when(report.generated_at)}. `,
        h("a", { href: "#", id: "csv", onclick: downloadCsv }, "Download CSV")));
    notify(null);
  } catch (err) {
    notify(err.message);
  }
}

async function downloadCsv(event) {
  event.preventDefault();
  try {
    const blob = await call("GET", "/api/v1/admin/reconciliation.csv");
    const link = h("a", { href: URL.createObjectURL(blob), download: "reconciliation.csv" });
    link.click();
  } catch (err) {
    notify(err.message);
  }
}

async function start() {
  const form = document.getElementById("key-form");
  const input = document.getElementById("admin-key");
  input.value = key();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    refresh();
  });
  await setLanguage("en");
  document.body.dataset.ready = "true";
  await refresh();
  setInterval(refresh, REFRESH_MS);
}

start();
