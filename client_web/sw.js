// The driver page's service worker, served at /sw.js (root scope). The CSMS puts the line
// `self.PRECACHE = {version, assets}` before this text: every file of the page (HTML, modules,
// styles, translations, icons, the zxing-wasm decoder and its .wasm), so the page opens and
// scans with no network. It also delivers settlement QRs scanned offline (Background Sync tag
// "settlements"), with the driver's access token the page keeps in IndexedDB.

/* global PRECACHE */
importScripts("/js/keep.js");

const CACHE = `qrcharge-${self.PRECACHE.version}`;
const PAGES = new Set(["/", "/operator"]);
const NETWORK_WAIT_MS = 4000; // a navigation waits this long for the network, then the copy
const SYNC_TAG = "settlements";

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(self.PRECACHE.assets.map((url) => new Request(url, { cache: "reload" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("qrcharge-") && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

function pageOf(url) {
  if (url.pathname === "/operator") return "/operator";
  return "/"; // "/", "/c/{id}": the same index.html
}

async function navigation(request) {
  const cache = await caches.open(CACHE);
  const copy = () => cache.match(pageOf(new URL(request.url)));
  try {
    const response = await Promise.race([
      fetch(request),
      new Promise((_, reject) => setTimeout(() => reject(new Error("slow network")), NETWORK_WAIT_MS)),
    ]);
    if (response.ok && PAGES.has(new URL(request.url).pathname)) {
      await cache.put(new URL(request.url).pathname, response.clone());
    }
    return response;
  } catch (err) {
    const kept = await copy();
    if (kept) return kept;
    throw err;
  }
}

async function asset(request) {
  const cache = await caches.open(CACHE);
  const url = new URL(request.url);
  const kept = await cache.match(url.pathname);
  if (kept) return kept;
  return fetch(request);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith("/api/")) return;
  if (request.mode === "navigate") {
    if (url.pathname === "/" || url.pathname.startsWith("/c/") || url.pathname === "/operator") {
      event.respondWith(navigation(request));
    }
    return;
  }
  if (self.PRECACHE.assets.includes(url.pathname)) event.respondWith(asset(request));
});

async function tellPages(message) {
  for (const client of await self.clients.matchAll({ includeUncontrolled: true })) {
    client.postMessage(message);
  }
}

async function deliverKept() {
  const waiting = await self.qrchargeKeep.deliverAll();
  await tellPages({ type: "outbox" });
  if (waiting) throw new Error(`${waiting} settlement(s) still waiting for the network`);
}

self.addEventListener("sync", (event) => {
  if (event.tag === SYNC_TAG) event.waitUntil(deliverKept());
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "deliver") event.waitUntil(deliverKept().catch(() => {}));
});
