// With `qrcharge demo`: the simulated chargers' hardware, driven through their control APIs
// (the demo app forwards /api/v1/demo/chargers/... to them): cut or restore the network,
// plug or unplug an EV, press stop, show an image to the camera, see the screen.

import { ApiError, call, enc } from "./api.js";
import { t } from "./i18n.js";
import { can } from "./roles.js";
import { action, h, notify } from "./ui.js";

const DEMO = "/api/v1/demo/chargers";
const screenUrls = new Map();

/** The simulated chargers by id (empty when this CSMS is not a demo). */
export async function simulated() {
  try {
    return new Map((await call("GET", DEMO)).map((c) => [c.id, c]));
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 403)) return new Map();
    throw err;
  }
}

async function screenQr(id) {
  try {
    const blob = await call("GET", `${DEMO}/${enc(id)}/display/qr.png`);
    const url = URL.createObjectURL(blob);
    if (screenUrls.has(id)) URL.revokeObjectURL(screenUrls.get(id));
    screenUrls.set(id, url);
    return url;
  } catch {
    return null;
  }
}

function cameraUpload(id, refresh) {
  const input = h("input", {
    type: "file", accept: "image/*", class: "file", id: `camera-${id}`,
    onchange: async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      try {
        const answer = await call("POST", `${DEMO}/${enc(id)}/camera`, { raw: file });
        notify(answer.accepted ? null : t("demo.refused", { reason: answer.reason, detail: answer.detail || "" }));
        await refresh();
      } catch (err) {
        notify(err.message);
      } finally {
        input.value = "";
      }
    },
  });
  return [h("label", { class: "button secondary small", for: `camera-${id}` }, t("demo.camera")), input];
}

/** The simulator controls and screen of one charger, as a block for its row. */
export async function controls(sim, refresh) {
  const id = sim.id;
  const base = `${DEMO}/${enc(id)}`;
  const post = (path) => async () => { await call("POST", `${base}${path}`); await refresh(); };
  const display = sim.display || {};
  const qr = display.qr_kind === "settlement" ? await screenQr(id) : null;
  return h("div", { class: "sim" },
    h("div", { class: "buttons" },
      sim.link_up
        ? action(t("demo.cut"), post("/link/down"), { area: "chargers", kind: "danger", id: `cut-${id}` })
        : action(t("demo.restore"), post("/link/up"), { area: "chargers", id: `restore-${id}` }),
      (sim.state.evses || []).map((e) => [
        e.plugged
          ? action(t("demo.unplug", { n: e.id }), post(`/evses/${e.id}/unplug`), { area: "chargers" })
          : action(t("demo.plug", { n: e.id }), post(`/evses/${e.id}/plug`), { area: "chargers" }),
        action(t("demo.stop", { n: e.id }), post(`/evses/${e.id}/stop`), { area: "chargers" }),
      ]),
      can("chargers") ? cameraUpload(id, refresh) : null),
    h("div", { class: "screen" },
      h("div", {}, display.text || ""),
      (display.reasons || []).slice(-1).map((r) => h("div", { class: "flag" }, String(r.reason || r))),
      qr ? h("img", { class: "screen-qr", src: qr, alt: t("demo.screen_qr", { id }) }) : null));
}
