// What the phone keeps for the offline flow, in IndexedDB: the driver's placed orders (with
// their start QR image), the settlement QRs scanned but not yet delivered (the outbox), and the
// access token the service worker uploads them with. A plain script (no import/export), so the
// page imports it as a module and the service worker loads it with importScripts; both find
// the functions on `self.qrchargeKeep`.
//
//   orders : {id, order, svg, put_away, saved_at}
//   outbox : {token, order_id, claims, saved_at, state: "waiting"|"sent"|"refused", answer, code}
//   kv     : {key, value}  ("auth": the bearer token)

(function (scope) {
  "use strict";

  const NAME = "qrcharge";
  const VERSION = 1;
  let opening = null;

  function open() {
    if (!opening) {
      opening = new Promise((resolve, reject) => {
        const request = indexedDB.open(NAME, VERSION);
        request.onupgradeneeded = () => {
          const db = request.result;
          if (!db.objectStoreNames.contains("orders")) db.createObjectStore("orders", { keyPath: "id" });
          if (!db.objectStoreNames.contains("outbox")) db.createObjectStore("outbox", { keyPath: "token" });
          if (!db.objectStoreNames.contains("kv")) db.createObjectStore("kv", { keyPath: "key" });
        };
        request.onsuccess = () => {
          const db = request.result;
          db.onversionchange = () => {
            db.close();
            opening = null;
          };
          resolve(db);
        };
        request.onerror = () => {
          opening = null;
          reject(request.error);
        };
      });
    }
    return opening;
  }

  /** Runs `work(store)` in one transaction of `name`; resolves with its request's result. */
  async function run(name, mode, work) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(name, mode);
      const request = work(tx.objectStore(name));
      let result;
      if (request) request.onsuccess = () => { result = request.result; };
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  const get = (name, key) => run(name, "readonly", (s) => s.get(key));
  const all = (name) => run(name, "readonly", (s) => s.getAll());
  const put = (name, value) => run(name, "readwrite", (s) => s.put(value));
  const remove = (name, key) => run(name, "readwrite", (s) => s.delete(key));

  /** Changes the stored record `key` with `change(old)` (old may be undefined) atomically. */
  async function update(name, key, change) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(name, "readwrite");
      const store = tx.objectStore(name);
      let value;
      const read = store.get(key);
      read.onsuccess = () => {
        value = change(read.result);
        if (value) store.put(value);
      };
      tx.oncomplete = () => resolve(value);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  /** The unverified claims of a compact JWS (for showing what was scanned), or null. */
  function claimsOf(token) {
    try {
      const part = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const text = atob(part + "=".repeat((4 - (part.length % 4)) % 4));
      return JSON.parse(decodeURIComponent(escape(text)));
    } catch {
      return null;
    }
  }

  const RETRY_LATER = new Set([401, 403, 408, 425, 429, 500, 502, 503, 504]);

  /**
   * Sends a settlement token to the CSMS with the bearer `auth`: the outcome's fields, state
   * "sent" (the answer kept; a copy of an order already paid counts as sent), "refused" (the
   * CSMS will never take it: its reason kept), or "waiting" (no sign-in, or the server busy).
   * Rejects only when the network failed.
   */
  async function send(token, auth, fetcher = fetch, orderId = null) {
    const response = await fetcher("/api/v1/settlements", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${auth}` },
      body: JSON.stringify({ token }),
    });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    const detail = body && typeof body.detail === "object" && body.detail ? body.detail : {};
    const tried = { tried_at: Date.now(), status: response.status };
    if (response.ok) return { ...tried, state: "sent", answer: body, code: null };
    if (response.status === 409 && detail.reason === "replayed") {
      return { ...tried, state: "sent", answer: { order_id: orderId, replayed: true }, code: null };
    }
    if (RETRY_LATER.has(response.status)) {
      return { ...tried, state: "waiting", code: response.status === 401 ? "unauthorized" : `http_${response.status}` };
    }
    return { ...tried, state: "refused", code: detail.reason || `http_${response.status}`, kind: detail.kind || null };
  }

  /**
   * Sends one kept settlement with the stored access token and records the outcome on its
   * entry. The upload is idempotent on the server (one settlement per token), so the page and
   * the service worker sending the same entry at once is harmless. Resolves with the entry;
   * rejects only when the network failed (the entry stays waiting).
   */
  async function deliver(token, fetcher = fetch) {
    const auth = await scope.qrchargeKeep.auth();
    const entry = await get("outbox", token);
    if (!entry || entry.state !== "waiting") return entry;
    if (!auth) return scope.qrchargeKeep.markSettlement(token, { code: "unauthorized" });
    const outcome = await send(token, auth, fetcher, entry.order_id);
    return scope.qrchargeKeep.markSettlement(token, outcome);
  }

  /** Delivers every waiting entry; resolves with how many are still waiting for the network. */
  async function deliverAll(fetcher = fetch) {
    let offline = 0;
    for (const entry of await all("outbox")) {
      if (entry.state !== "waiting") continue;
      try {
        await deliver(entry.token, fetcher);
      } catch {
        offline += 1;
      }
    }
    return offline;
  }

  scope.qrchargeKeep = {
    send,
    deliver,
    deliverAll,
    open,
    claimsOf,
    saveOrder: (order, extra = {}) =>
      update("orders", order.id, (old) => ({ ...(old || {}), ...extra, id: order.id, order, saved_at: Date.now() })),
    patchOrder: (id, fields) => update("orders", id, (old) => (old ? { ...old, ...fields } : null)),
    order: (id) => get("orders", id),
    orders: () => all("orders"),
    forgetOrder: (id) => remove("orders", id),
    /** Keeps a scanned settlement; an existing entry (same token) is left as it is. */
    keepSettlement: (token, orderId) =>
      update("outbox", token, (old) => old || {
        token, order_id: orderId || (claimsOf(token) || {}).jti || null,
        claims: claimsOf(token), saved_at: Date.now(), state: "waiting",
      }),
    settlement: (token) => get("outbox", token),
    settlements: () => all("outbox"),
    markSettlement: (token, fields) => update("outbox", token, (old) => (old ? { ...old, ...fields } : null)),
    forgetSettlement: (token) => remove("outbox", token),
    setAuth: (value) => (value ? put("kv", { key: "auth", value }) : remove("kv", "auth")),
    auth: async () => ((await get("kv", "auth")) || {}).value || null,
  };
})(self);
