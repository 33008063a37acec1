// Camera scanning with zxing-wasm (npm package, served by our CSMS under /vendor/zxing-wasm,
// never from a CDN). One Scanner owns one camera stream and stops it when asked.

import { prepareZXingModule, readBarcodes } from "/vendor/zxing-wasm/es/reader/index.js";

const WASM_DIR = "/vendor/zxing-wasm/reader/";
const READER = { formats: ["QRCode"], tryHarder: true, maxNumberOfSymbols: 1 };
const FRAME_MS = 200;
const REPEAT_MS = 4000; // a code that failed is sent again only after this

prepareZXingModule({
  overrides: {
    locateFile: (path, prefix) => (path.endsWith(".wasm") ? WASM_DIR + path : prefix + path),
  },
});

/** The texts of the QR codes in an image Blob/File (decoded in the browser). */
export async function decodeImage(blob) {
  const results = await readBarcodes(blob, READER);
  return results.filter((r) => r.isValid && r.text).map((r) => r.text);
}

/** Camera errors the page explains: "camera_denied", "camera_missing", "camera_failed". */
export function cameraErrorCode(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") return "camera_denied";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "camera_missing";
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return "camera_missing";
  return "camera_failed";
}

export class CameraError extends Error {
  constructor(code, cause) {
    super(code);
    this.code = code;
    this.cause = cause;
  }
}

/** Reads frames from the camera into `video` and hands each new QR text to a callback. */
export class Scanner {
  constructor(video) {
    this.video = video;
    this.stream = null;
    this.stopped = false;
    this.canvas = document.createElement("canvas");
  }

  /** Opens the camera; rejects with a CameraError. */
  async open() {
    if (!window.isSecureContext) throw new CameraError("camera_insecure");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new CameraError("camera_missing");
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 720 } },
        audio: false,
      });
    } catch (err) {
      throw new CameraError(cameraErrorCode(err), err);
    }
    if (this.stopped) {
      this.stop();
      return;
    }
    this.video.srcObject = this.stream;
    this.video.setAttribute("playsinline", "");
    this.video.muted = true;
    await this.video.play().catch(() => {});
  }

  /**
   * Decodes frames until stop(); `onText(text)` gets each text (the same text again only
   * after REPEAT_MS) and returns whether to go on scanning.
   */
  async run(onText) {
    const context = this.canvas.getContext("2d", { willReadFrequently: true });
    let last = null;
    let lastAt = 0;
    while (!this.stopped) {
      const { videoWidth: w, videoHeight: h } = this.video;
      if (w && h) {
        this.canvas.width = w;
        this.canvas.height = h;
        context.drawImage(this.video, 0, 0, w, h);
        const results = await readBarcodes(context.getImageData(0, 0, w, h), READER);
        const found = results.find((r) => r.isValid && r.text);
        const now = Date.now();
        if (found && !this.stopped && (found.text !== last || now - lastAt > REPEAT_MS)) {
          last = found.text;
          lastAt = now;
          if (!(await onText(found.text))) {
            this.stop();
            return;
          }
        }
      }
      await new Promise((resolve) => setTimeout(resolve, FRAME_MS));
    }
  }

  stop() {
    this.stopped = true;
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    if (this.video) this.video.srcObject = null;
  }
}

/** What a scanned text is: a charger link, a settlement token, or something else. */
export function classify(text, origin = location.origin) {
  const value = String(text || "").trim();
  if (/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(value)) {
    try {
      const header = JSON.parse(atob(value.split(".")[0].replace(/-/g, "+").replace(/_/g, "/")));
      if (header.typ === "settle+jwt") return { kind: "settlement", token: value };
      if (header.typ === "start+jwt") return { kind: "start", token: value };
    } catch {
      /* not a JWS header */
    }
    return { kind: "unknown" };
  }
  try {
    const url = new URL(value, origin);
    const match = url.pathname.match(/\/c\/([^/]+)$/);
    if (match) {
      return { kind: "charger", id: decodeURIComponent(match[1]), evse: url.searchParams.get("evse") };
    }
  } catch {
    /* not a URL */
  }
  return { kind: "unknown" };
}
