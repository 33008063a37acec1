// The CSMS driver API (brief section 6): one fetch wrapper that adds the bearer token and
// turns every failure into an ApiError with a stable `code` the page can explain in words.

import { keepAuth } from "./offline.js";

const TOKEN_KEY = "qrcharge.token";

export class ApiError extends Error {
  /** `code`: a reason such as "expired", "insufficient_funds", "network", "http_404". */
  constructor(code, status, detail, body) {
    super(`${code}${detail ? `: ${detail}` : ""}`);
    this.code = code;
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

export function signedIn() {
  return Boolean(token());
}

export function signOut() {
  localStorage.removeItem(TOKEN_KEY);
  keepAuth(null);
}

const CODE_KEYS = ["reason", "code", "error_code", "error"];

/** The most specific reason code a FastAPI error body carries. */
export function errorCode(status, body) {
  const places = [body, body && typeof body.detail === "object" ? body.detail : null];
  for (const place of places) {
    if (!place || Array.isArray(place)) continue;
    for (const key of CODE_KEYS) {
      if (typeof place[key] === "string" && place[key]) return place[key];
    }
  }
  if (status === 422 && Array.isArray(body && body.detail)) return "invalid_input";
  if (status === 401) return "unauthorized";
  if (status === 402) return "insufficient_funds";
  if (status === 404) return "not_found";
  return `http_${status}`;
}

function errorDetail(body) {
  if (!body) return "";
  if (typeof body.detail === "string") return body.detail;
  if (body.detail && typeof body.detail.message === "string") return body.detail.message;
  if (typeof body.message === "string") return body.message;
  return "";
}

/** fetch + JSON; `form` sends URL-encoded fields, `files` multipart. */
export async function request(method, path,
  { json, form, files, auth = true, raw = false, headers: extra = {} } = {}) {
  const headers = { Accept: "application/json", ...extra };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = new URLSearchParams(form);
  } else if (files) {
    body = new FormData();
    for (const [name, file] of Object.entries(files)) body.append(name, file);
  }
  if (auth && token()) headers.Authorization = `Bearer ${token()}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (err) {
    throw new ApiError("network", 0, String(err && err.message || err));
  }
  if (raw && response.ok) return response;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    let code = errorCode(response.status, data);
    if (response.status === 401 && code !== "invalid_credentials") {
      code = "unauthorized";
      if (auth && token()) signOut();
    }
    throw new ApiError(code, response.status, errorDetail(data), data);
  }
  return data;
}

// --- driver API --------------------------------------------------------------------------

export async function register(email, password) {
  return request("POST", "/api/v1/users", { json: { email, password }, auth: false });
}

export async function signIn(email, password) {
  const answer = await request("POST", "/api/v1/token",
    { form: { username: email, password }, auth: false });
  localStorage.setItem(TOKEN_KEY, answer.access_token);
  await keepAuth(answer.access_token);
  return answer;
}

/** A fresh Idempotency-Key: a random UUID (``crypto.randomUUID`` exists only in a secure
 * context: a page served over plain HTTP on a local network gets 128 random bits in hex). */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export const me = () => request("GET", "/api/v1/me");
export const wallet = () => request("GET", "/api/v1/me/wallet?limit=20");
export const topUp = (amount, key = newKey()) =>
  request("POST", "/api/v1/me/wallet/top-ups", { json: { amount }, headers: { "Idempotency-Key": key } });

/** The charger with the caller's tariff; `code` is the dynamic code `t` of a screen QR. */
export function charger(id, evse, code) {
  const query = new URLSearchParams();
  if (evse) query.set("evse", evse);
  if (code) query.set("t", code);
  const search = query.toString() ? `?${query}` : "";
  return request("GET", `/api/v1/chargers/${encodeURIComponent(id)}${search}`);
}

/** Places an order; `key` (Idempotency-Key) makes a repeat of a request whose answer was lost
 * find the first order instead of placing a second one (and a second hold). */
export const createOrder = (body, key = newKey()) =>
  request("POST", "/api/v1/orders", { json: body, headers: { "Idempotency-Key": key } });
export const orders = () => request("GET", "/api/v1/orders");
export const order = (id) => request("GET", `/api/v1/orders/${encodeURIComponent(id)}`);

/** The start QR as SVG text (the image needs the bearer token, so no plain <img src>). */
export async function startQrSvg(orderId) {
  const response = await request("GET", `/api/v1/orders/${encodeURIComponent(orderId)}/qr.svg`,
    { raw: true });
  return response.text();
}

/** Cancels an unused order: {id, status, hold_released, hold_release_at, revoked_at_charger, hold_amount}. */
export const cancelOrder = (orderId) =>
  request("POST", `/api/v1/orders/${encodeURIComponent(orderId)}/cancel`);

export const remoteStart = (orderId) =>
  request("POST", `/api/v1/orders/${encodeURIComponent(orderId)}/remote-start`);

export const settleToken = (text) => request("POST", "/api/v1/settlements", { json: { token: text } });
export const settlePhoto = (file) => request("POST", "/api/v1/settlements", { files: { image: file } });
export const confirmPayment = (id) =>
  request("POST", `/api/v1/payments/${encodeURIComponent(id)}/confirm`);
export const receipt = (id) => request("GET", `/api/v1/receipts/${encodeURIComponent(id)}`);
