// How numbers, times and CPU load look on the dashboard. Pure.

/** `42.3%`, or an en dash for a value never sampled. */
export const percent = (value, digits = 0) => (value == null ? "–" : value.toFixed(digits) + "%");

/** Load average with two decimals, or an en dash. */
export const load = (value) => (value == null ? "–" : value.toFixed(2));

const UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

/** `512 B`, `1.5 KB`, `12 MB`, `3.4 GB` (powers of 1000), or an en dash for no value. */
export function bytes(value) {
  if (value == null) return "–";
  let v = Math.max(0, value);
  let unit = 0;
  while (v >= 999.5 && unit < UNITS.length - 1) { v /= 1000; unit += 1; }
  const digits = unit === 0 || v >= 10 ? 0 : 1;
  return v.toFixed(digits) + " " + UNITS[unit];
}

/** A network rate in bytes/s: `0 B/s`, `1.5 KB/s`, `12 MB/s`, or an en dash. */
export const rate = (value) => (value == null ? "–" : bytes(value) + "/s");

/** How long a host has been up: "40 s", "12 min", "5 h 12 min", "3 d 4 h", or an en dash. */
export function duration(seconds) {
  if (seconds == null) return "–";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
}

/** "12 s ago", "5 min ago", "3 h ago", "2 d ago" for a unix time (seconds) seen from `now`. */
export function ago(ts, now = Date.now() / 1000) {
  if (ts == null) return "never";
  const s = Math.max(0, Math.round(now - ts));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  return Math.floor(s / 86400) + " d ago";
}

const two = (n) => String(n).padStart(2, "0");

/** `14:02:11`, local time of a unix time (seconds). */
export function clock(ts) {
  const d = new Date(ts * 1000);
  return two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
}

/** "last seen 14:02:11 (5 min ago)" for an offline host. */
export function lastSeen(ts, now = Date.now() / 1000) {
  if (ts == null) return "never seen";
  return "last seen " + clock(ts) + " (" + ago(ts, now) + ")";
}

// CPU colour scale: calm blue-green when idle, through yellow, to red when saturated.
const STOPS = [
  [0, [38, 96, 80]],
  [25, [46, 139, 87]],
  [50, [190, 170, 40]],
  [75, [230, 120, 30]],
  [100, [220, 50, 47]],
];

/** An `rgb()` colour for a CPU percentage (0–100). */
export function cpuColor(value) {
  const v = Math.min(100, Math.max(0, value));
  let i = 1;
  while (i < STOPS.length - 1 && v > STOPS[i][0]) i += 1;
  const [v0, c0] = STOPS[i - 1];
  const [v1, c1] = STOPS[i];
  const t = (v - v0) / (v1 - v0);
  const mix = c0.map((c, k) => Math.round(c + (c1[k] - c) * t));
  return "rgb(" + mix.join(",") + ")";
}

/** The colour scale's stops as CSS, for a legend bar. */
export function cpuGradient() {
  return "linear-gradient(to right, " + STOPS.map(([v]) => cpuColor(v) + " " + v + "%").join(", ") + ")";
}
