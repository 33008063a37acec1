// Energy and durations for people: "0.01 kWh", "45 s", "12 min", "1 h 05 min".

/** Watt-hours as kWh with two decimals. */
export function kwh(wh) {
  return `${(Number(wh) / 1000).toFixed(2)} kWh`;
}

/** Seconds as "45 s", "12 min" or "1 h 05 min". */
export function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds)));
  if (s < 60) return `${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}
