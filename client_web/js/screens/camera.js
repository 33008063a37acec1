// The camera panel shared by the charger scan and the settlement scan: live video decoded by
// zxing-wasm, and, when the camera is denied or missing, a clear sentence and a photo upload.

import { h, replace } from "../dom.js";
import { t } from "../i18n.js";

/**
 * cameraPanel({onText, onPhoto, photoLabel}) -> {element, start, stop}.
 * onText(text) gets each decoded text (return true to keep scanning); onPhoto(file) a photo.
 */
export function cameraPanel({ onText, onPhoto, photoLabel }) {
  const video = h("video", { class: "camera-video", playsinline: true, muted: true });
  const status = h("p", { class: "camera-status", id: "camera-status" }, "");
  const fileInput = h("input", {
    type: "file", accept: "image/*", capture: "environment", id: "photo-input", class: "file",
    onchange: () => {
      const file = fileInput.files && fileInput.files[0];
      if (file) onPhoto(file);
      fileInput.value = "";
    },
  });
  const upload = h("label", { class: "button secondary", for: "photo-input", id: "photo-button" },
    photoLabel || t("camera.photo"));
  const frame = h("div", { class: "camera-frame" }, video, h("div", { class: "camera-aim" }));
  const element = h("section", { class: "camera" }, frame, status, h("div", { class: "actions" }, upload, fileInput));
  let scanner = null;
  let stopped = false;

  function denied(code) {
    frame.hidden = true;
    status.className = `camera-status ${code}`;
    status.dataset.code = code;
    replace(status, t(`camera.${code}`));
    upload.classList.remove("secondary");
  }

  async function start() {
    replace(status, t("camera.starting"));
    let module;
    try {
      module = await import("../scanner.js");
    } catch {
      denied("camera_unavailable");
      return;
    }
    scanner = new module.Scanner(video);
    if (stopped) return;
    try {
      await scanner.open();
    } catch (err) {
      if (!stopped) denied(err.code || "camera_failed");
      return;
    }
    replace(status, t("camera.aim"));
    await scanner.run(async (text) => !stopped && (await onText(text)));
  }

  function stop() {
    stopped = true;
    if (scanner) scanner.stop();
  }

  return { element, start, stop, status };
}
