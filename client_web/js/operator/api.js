// The operator API as the page calls it: one fetch wrapper that adds the operator's bearer
// (a signed-in operator's token, or the admin API key) and turns every failure into an
// ApiError with the HTTP status and the server's reason.

const SESSION_KEY = "qrcharge.operator";

export class ApiError extends Error {
  constructor(status, detail, method, path) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.method = method;
    this.path = path;
  }
}

/** The signed-in session of this tab: {token, name, role, kind} or null. */
export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
  } catch {
    return null;
  }
}

export function saveSession(value) {
  if (value) sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  else sessionStorage.removeItem(SESSION_KEY);
}

/** The server's reason as one sentence: a string detail, a reason object, or field errors. */
export function describe(body) {
  if (!body) return "";
  const detail = body.detail ?? body.message;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc || []).filter((p) => p !== "body").join(".")}: ${e.msg}`).join("; ");
  }
  if (detail && typeof detail === "object") return detail.message || detail.reason || JSON.stringify(detail);
  return "";
}

/**
 * call("POST", "/api/v1/admin/...", {json, form, raw}) -> parsed JSON, a Blob for other types,
 * or null for an empty answer. `auth: false` sends no bearer (the sign-in itself).
 */
export async function call(method, path, { json, form, raw, auth = true, headers: extra = {} } = {}) {
  const headers = { Accept: "application/json", ...extra };
  const current = session();
  if (auth && current) headers.Authorization = `Bearer ${current.token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = new URLSearchParams(form);
  } else if (raw !== undefined) {
    body = raw;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (err) {
    throw new ApiError(0, `network: ${err.message}`, method, path);
  }
  const type = response.headers.get("content-type") || "";
  if (!response.ok) {
    let parsed = null;
    try {
      parsed = type.includes("json") ? await response.json() : { detail: (await response.text()).slice(0, 300) };
    } catch {
      parsed = null;
    }
    throw new ApiError(response.status, describe(parsed), method, path);
  }
  if (response.status === 204) return null;
  if (type.includes("json")) return response.json();
  return response.blob();
}

export const enc = encodeURIComponent;
