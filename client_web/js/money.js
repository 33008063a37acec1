// Money and billing models in plain words. Amounts are integers in minor units; prices are
// integers in 1/10,000 of the currency unit (brief section 2.1), exactly as the API gives them.

import { language, t } from "./i18n.js";

export const PRICE_SCALE = 10000;
const EXPONENTS = { BHD: 3, CLP: 0, ISK: 0, JOD: 3, JPY: 0, KRW: 0, KWD: 3, OMR: 3, TND: 3, VND: 0 };

export function exponent(currency) {
  return EXPONENTS[currency] ?? 2;
}

function number(value, minDigits, maxDigits) {
  return new Intl.NumberFormat(language(), {
    minimumFractionDigits: minDigits, maximumFractionDigits: maxDigits, useGrouping: true,
  }).format(value);
}

/** 1234 CNY -> "12.34 CNY". */
export function formatAmount(minor, currency) {
  const digits = exponent(currency);
  return `${number(Number(minor) / 10 ** digits, digits, digits)} ${currency}`;
}

/** 12000 (1/10,000 units) -> "1.20 CNY" (up to 4 decimals when the price needs them). */
export function formatPrice(price, currency) {
  const digits = exponent(currency);
  return `${number(Number(price) / PRICE_SCALE, digits, Math.max(digits, 4))} ${currency}`;
}

/** Major units typed by the driver ("12.5") -> minor units (1250), or null. */
export function parseAmount(text, currency) {
  const cleaned = String(text).trim().replace(",", ".");
  if (!/^\d+(\.\d+)?$/.test(cleaned)) return null;
  const [whole, frac = ""] = cleaned.split(".");
  const digits = exponent(currency);
  if (frac.length > digits) return null;
  return Number(whole) * 10 ** digits + Number(frac.padEnd(digits, "0") || 0);
}

const POSITIONAL = ["id", "cur", "f", "e", "t", "tou", "tz", "i", "ig", "cap"];
const LONG_NAMES = {
  currency: "cur", fixed: "f", fixed_fee: "f", energy: "e", energy_price: "e", per_kwh: "e",
  time: "t", time_price: "t", per_hour: "t", idle: "i", idle_price: "i",
  idle_grace_min: "ig", idle_grace: "ig", tz_offset_min: "tz",
};

/**
 * One shape for a billing model, whatever the API sends: the token's positional array, its
 * claim names (`e`, `t`, ...) or long names (`energy`, `time`, ...).
 */
export function normalizeTariff(raw) {
  if (!raw) return null;
  let src = raw;
  if (Array.isArray(raw)) {
    src = Object.fromEntries(POSITIONAL.map((key, i) => [key, raw[i]]));
  }
  const out = { id: "", cur: "", f: 0, e: 0, t: 0, tou: [], tz: 0, i: 0, ig: 0, cap: 0 };
  for (const [key, value] of Object.entries(src)) {
    const name = LONG_NAMES[key] || key;
    if (name in out && value !== null && value !== undefined) out[name] = value;
  }
  out.tou = (out.tou || []).map((p) => (Array.isArray(p) ? p : [
    p.start_minute ?? p.from, p.end_minute ?? p.to,
    p.energy_price ?? p.e ?? 0, p.time_price ?? p.t ?? 0,
  ]));
  for (const key of ["f", "e", "t", "i", "ig", "tz", "cap"]) out[key] = Number(out[key] || 0);
  return out;
}

function clock(minute) {
  const m = ((minute % 1440) + 1440) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
}

/** "1.20 CNY/kWh, 0.30 CNY/hour, capped at 50.00 CNY" and its companions, one line each. */
export function describeTariff(tariff) {
  const tar = normalizeTariff(tariff);
  if (!tar) return [];
  const cur = tar.cur;
  const pair = (e, time) => {
    const parts = [t("tariff.per_kwh", { price: formatPrice(e, cur) })];
    if (time) parts.push(t("tariff.per_hour", { price: formatPrice(time, cur) }));
    return parts.join(t("tariff.sep"));
  };
  const lines = [];
  let head = pair(tar.e, tar.t);
  if (tar.cap) head += t("tariff.sep") + t("tariff.cap", { amount: formatAmount(tar.cap, cur) });
  lines.push(head);
  for (const [from, to, e, time] of tar.tou) {
    lines.push(t("tariff.tou", { from: clock(from), to: clock(to), prices: pair(e, time) }));
  }
  if (tar.f) lines.push(t("tariff.fixed", { price: formatPrice(tar.f, cur) }));
  if (tar.i) {
    lines.push(t("tariff.idle", { price: formatPrice(tar.i, cur), minutes: tar.ig || 0 }));
  }
  return lines;
}

function roundHalfUp(value) {
  return Math.floor(value + 0.5);
}

/**
 * The estimated cost (minor units) of a request at `powerW`, from the main prices (time of use
 * aside: an estimate only; the charger and the CSMS compute the real cost exactly).
 * Request: {energy_wh} | {amount} | {duration_s} | {full: true}. null when it cannot be told.
 */
export function estimate(tariff, request, powerW = 11000) {
  const tar = normalizeTariff(tariff);
  if (!tar) return null;
  const scale = 10 ** exponent(tar.cur) / PRICE_SCALE;
  let cost;
  if (request.energy_wh) {
    const hours = request.energy_wh / powerW;
    cost = (tar.f + (tar.e * request.energy_wh) / 1000 + tar.t * hours) * scale;
  } else if (request.duration_s) {
    const hours = request.duration_s / 3600;
    cost = (tar.f + (tar.e * powerW * hours) / 1000 + tar.t * hours) * scale;
  } else if (request.amount) {
    cost = request.amount;
  } else {
    return null;
  }
  cost = roundHalfUp(cost);
  return tar.cap ? Math.min(cost, tar.cap) : cost;
}
