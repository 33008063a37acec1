// The page's side of the offline flow: registers the service worker (root scope), keeps the
// access token where the worker can read it, and delivers settlement QRs kept on the phone
// (js/keep.js) as soon as it can: at once, on the `online` event, on a retry timer, at the next
// page open, and through Background Sync (the worker uploads even with the page closed).
// Screens listen with onOutbox(fn), called after every change of the outbox.

import "./keep.js";

export const keep = self.qrchargeKeep;
const SYNC_TAG = "settlements";
const RETRY_MS = 15000;
const EVENT = "qrcharge:outbox";
let retry = null;

/** Registers the worker; resolves with its registration, or null where there is none. */
export async function registerWorker() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return null;
  try {
    const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data && event.data.type === "outbox") changed();
    });
    return registration;
  } catch (err) {
    console.warn("service worker not registered", err);
    return null;
  }
}

/** Keeps the driver's access token (or its absence) for the worker's uploads. */
export function keepAuth(token) {
  return keep.setAuth(token || null).catch(() => {});
}

function changed() {
  window.dispatchEvent(new CustomEvent(EVENT));
}

/** Calls fn() after every change of the outbox; returns the function that stops it. */
export function onOutbox(fn) {
  window.addEventListener(EVENT, fn);
  return () => window.removeEventListener(EVENT, fn);
}

async function askForSync() {
  try {
    const registration = await navigator.serviceWorker?.ready;
    if (registration && registration.sync) await registration.sync.register(SYNC_TAG);
  } catch {
    /* no Background Sync here: the online event and the timer deliver instead */
  }
}

/** Sends every waiting settlement from the page; how many still wait for the network. */
export async function flush() {
  let waiting = 0;
  try {
    waiting = await keep.deliverAll();
  } finally {
    changed();
  }
  if (waiting) {
    if (!retry) retry = setTimeout(() => { retry = null; flush(); }, RETRY_MS);
  }
  return waiting;
}

/**
 * Keeps a scanned settlement on the phone first, then tries to send it: the entry after the
 * attempt ({state: "sent" | "refused" | "waiting", ...}).
 */
export async function keepSettlement(token, orderId) {
  try {
    await keep.keepSettlement(token, orderId);
  } catch {
    // no IndexedDB here (a private window of some browsers): sent at once, not kept
    const claims = keep.claimsOf(token);
    const base = { token, order_id: orderId || (claims || {}).jti || null, claims, saved_at: Date.now() };
    try {
      return { ...base, ...(await keep.send(token, localStorage.getItem("qrcharge.token"), fetch, base.order_id)) };
    } catch {
      return { ...base, state: "refused", code: "network" };
    }
  }
  changed();
  try {
    await keep.deliver(token);
  } catch {
    askForSync();
    if (!retry) retry = setTimeout(() => { retry = null; flush(); }, RETRY_MS);
  }
  changed();
  return keep.settlement(token);
}

/** The settlements kept for `orderId` (all of them when it is empty). */
export async function keptFor(orderId) {
  const entries = await keep.settlements().catch(() => []);
  return entries.filter((e) => !orderId || e.order_id === orderId);
}

const FORGET_AFTER_MS = 7 * 24 * 3600 * 1000;

/** Forgets kept orders whose start code expired a week ago (their charges are long settled). */
async function forgetOld(now = Date.now()) {
  for (const kept of await keep.orders()) {
    const expires = Date.parse(kept.order && kept.order.expires_at);
    if (!(expires > now - FORGET_AFTER_MS)) await keep.forgetOrder(kept.id);
  }
}

/** Starts the deliveries: now, whenever the network comes back, and through the worker. */
export function startDeliveries() {
  forgetOld().catch(() => {});
  window.addEventListener("online", () => flush());
  keep.settlements().then((entries) => {
    if (entries.some((e) => e.state === "waiting")) {
      askForSync();
      flush();
    }
  }).catch(() => {});
}
