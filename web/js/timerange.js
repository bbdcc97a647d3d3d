// The history charts' arithmetic: the range buttons, the window each one asks the API for, the
// window a drag-to-zoom asks for, and time labels in local time or UTC with the zone named. Pure.

/** The range buttons, shortest first; the first is the live view. */
export const RANGES = [
  { label: "15 m", seconds: 900 },
  { label: "1 h", seconds: 3600 },
  { label: "6 h", seconds: 6 * 3600 },
  { label: "24 h", seconds: 86400 },
  { label: "7 d", seconds: 7 * 86400 },
  { label: "30 d", seconds: 30 * 86400 },
  { label: "90 d", seconds: 90 * 86400 },
];
export const LIVE = RANGES[0];

/** A zoom narrower than this is not asked for: the finest tier holds one sample a second. */
export const MIN_ZOOM_SECONDS = 60;

/** The window `{since, until}` (unix seconds, whole) of the last `seconds` before `nowMs`. */
export function lastWindow(seconds, nowMs) {
  const until = Math.ceil(nowMs / 1000);
  return { since: until - seconds, until };
}

/**
 * The window to fetch for a zoom from `startMs` to `endMs`, or null when it is too narrow to ask
 * for (a click, not a drag). The API picks the finest stored step that covers it.
 */
export function zoomWindow(startMs, endMs) {
  const since = Math.floor(Math.min(startMs, endMs) / 1000);
  const until = Math.ceil(Math.max(startMs, endMs) / 1000);
  return until - since < MIN_ZOOM_SECONDS ? null : { since, until };
}

/** `?since=…&until=…` (and `step` and `targets` when given) for the history endpoints. */
export function historyQuery({ since, until, step, targets }) {
  const params = new URLSearchParams({ since: String(since) });
  if (until != null) params.set("until", String(until));
  if (step != null) params.set("step", String(step));
  if (targets) params.set("targets", targets);
  return "?" + params.toString();
}

/** `1 s`, `1 min`, `1 h` for a step in seconds. */
export function stepText(step) {
  if (step >= 3600 && step % 3600 === 0) return step / 3600 + " h";
  if (step >= 60 && step % 60 === 0) return step / 60 + " min";
  return step + " s";
}

/** Older points (`{t}`) before the first of `live`, then `live`: at most `limit`, the newest kept. */
export function seedSeries(older, live, limit) {
  const first = live.length ? live[0].t : Infinity;
  return [...older.filter((p) => p.t < first), ...live].slice(-limit);
}

const two = (n) => String(n).padStart(2, "0");

/** The parts of a time (ms) in UTC or in local time. */
function parts(ms, utc) {
  const d = new Date(ms);
  return utc
    ? { mo: d.getUTCMonth() + 1, day: d.getUTCDate(), h: d.getUTCHours(), m: d.getUTCMinutes(), s: d.getUTCSeconds() }
    : { mo: d.getMonth() + 1, day: d.getDate(), h: d.getHours(), m: d.getMinutes(), s: d.getSeconds() };
}

/**
 * An axis label for a time (ms) on an axis spanning `spanMs`: `14:02:30` over minutes, `14:02`
 * over hours, `12-07 14:02` over days, `12-07` over weeks.
 */
export function timeLabel(ms, spanMs, utc = false) {
  const p = parts(ms, utc);
  const date = two(p.mo) + "-" + two(p.day);
  const hm = two(p.h) + ":" + two(p.m);
  if (spanMs > 14 * 86400_000) return date;
  if (spanMs > 86400_000) return date + " " + hm;
  return spanMs > 15 * 60_000 ? hm : hm + ":" + two(p.s);
}

/** `2026-12-07 14:02:30` for a tooltip, in UTC or local time. */
export function fullTime(ms, utc = false) {
  const d = new Date(ms);
  const year = utc ? d.getUTCFullYear() : d.getFullYear();
  const p = parts(ms, utc);
  return year + "-" + two(p.mo) + "-" + two(p.day) + " " + two(p.h) + ":" + two(p.m) + ":" + two(p.s);
}

/** The zone's name for labels: "UTC", or the local zone's short name (`CET`, `GMT+1`). */
export function zoneName(utc, ms = Date.now(), locale = undefined) {
  if (utc) return "UTC";
  const named = new Intl.DateTimeFormat(locale, { timeZoneName: "short" })
    .formatToParts(new Date(ms)).find((part) => part.type === "timeZoneName");
  return named ? named.value : "local";
}
