// What fires now, as the dashboard knows it: the `alerts` frame (the firing set on subscribing)
// and one `alert` frame per transition, kept per host so the overview repaints only the hosts
// whose outline changed. Counts per severity for the strip, rows per rule for the panel, values
// in the units of the rule's metric. Pure.
import { compareNames } from "./hostquery.js";
import { percent, load, rate, ago } from "./format.js";
import { fullTime } from "./timerange.js";

/** Severities, worst first. */
export const SEVERITIES = ["critical", "warning", "info"];
const RANK = { critical: 3, warning: 2, info: 1 };
const rank = (severity) => RANK[severity] || 0;

/** An empty model: host -> (rule -> alert). */
export function alertModel() {
  return { byHost: new Map() };
}

/**
 * The outline a host gets: its worst severity among alerts not silenced, "silenced" when each of
 * its alerts is, or null when none fires.
 */
export function outlineOf(model, host) {
  const rules = model.byHost.get(host);
  if (!rules) return null;
  let worst = null;
  for (const alert of rules.values()) {
    if (!alert.silenced && rank(alert.severity) > rank(worst)) worst = alert.severity;
  }
  return worst || "silenced";
}

const wellFormed = (a) => a && typeof a.rule === "string" && typeof a.host === "string";

function put(model, alert) {
  if (!model.byHost.has(alert.host)) model.byHost.set(alert.host, new Map());
  model.byHost.get(alert.host).set(alert.rule, alert);
}

function drop(model, alert) {
  const rules = model.byHost.get(alert.host);
  if (!rules) return;
  rules.delete(alert.rule);
  if (!rules.size) model.byHost.delete(alert.host);
}

/** Apply `edit` and return the hosts (of `touched`) whose outline it changed. */
function changing(model, touched, edit) {
  const before = new Map([...touched].map((host) => [host, outlineOf(model, host)]));
  edit();
  return { hosts: new Set([...touched].filter((host) => outlineOf(model, host) !== before.get(host))) };
}

/** Replace what fires with a list of firing alerts (an `alerts` frame, or GET /api/alerts' `firing`). */
export function applyFiring(model, alerts) {
  const fresh = (alerts || []).filter(wellFormed);
  const touched = new Set([...model.byHost.keys(), ...fresh.map((a) => a.host)]);
  return changing(model, touched, () => {
    model.byHost.clear();
    for (const alert of fresh) put(model, alert);
  });
}

/** Apply an `alert` frame: a firing alert is added (or updated), a resolved one removed. */
export function applyAlert(model, frame) {
  if (!wellFormed(frame)) return { hosts: new Set() };
  return changing(model, new Set([frame.host]), () => {
    if (frame.state === "firing") put(model, frame);
    else drop(model, frame);
  });
}

/** Every firing alert. */
export function* firing(model) {
  for (const rules of model.byHost.values()) yield* rules.values();
}

/** Firing alerts per severity (silenced ones counted apart), and in all. */
export function severityCounts(model) {
  const counts = { critical: 0, warning: 0, info: 0, silenced: 0, total: 0 };
  for (const alert of firing(model)) {
    counts.total += 1;
    if (alert.silenced) counts.silenced += 1;
    else if (alert.severity in RANK) counts[alert.severity] += 1;
  }
  return counts;
}

/** The strip's words: "2 critical · 5 warning · 1 silenced", or "" when nothing fires. */
export function stripText(counts) {
  return [...SEVERITIES, "silenced"].filter((key) => counts[key]).map((key) => counts[key] + " " + key).join(" · ");
}

/** The metric an expression reads (`total > 90` -> "total", `offline` -> "offline"), or null. */
export function metricOf(expr) {
  const match = /^\s*([a-z_][a-z0-9_]*)/i.exec(String(expr || ""));
  return match ? match[1] : null;
}

/**
 * GET /api/alerts/rules (`{rules: [{name, expr}], error}`) as {metrics: Map rule -> metric, error:
 * why a reloaded rules file was refused (the old rules stay in use), or null}.
 */
export function rulesOf(answer) {
  const rules = Array.isArray(answer) ? answer : (answer && answer.rules) || [];
  const metrics = new Map();
  for (const rule of rules) if (rule && typeof rule.name === "string") metrics.set(rule.name, metricOf(rule.expr));
  const error = answer && typeof answer.error === "string" && answer.error ? answer.error : null;
  return { metrics, error };
}

/** An alert's value in its metric's units: `97%`, `8.20`, `120 MB/s`; "offline" for `offline`. */
export function valueText(metric, value) {
  if (metric === "offline") return "offline";
  if (value == null) return "–";
  if (metric === "total" || metric === "mem" || metric === "disk") return percent(value, 1);
  if (metric === "load1") return load(value);
  if (metric === "net_rx" || metric === "net_tx") return rate(value);
  return String(Math.round(value * 100) / 100);
}

/**
 * The panel's groups, one per rule, worst severity first then by name: {rule, severity, count,
 * silenced (how many of its alerts are), rows: the first `limit` rows by host name}, each row
 * {rule, host, severity, value, since, summary, silenced}.
 */
export function ruleGroups(model, metrics = new Map(), limit = Infinity) {
  const groups = new Map();
  for (const alert of firing(model)) {
    if (!groups.has(alert.rule)) groups.set(alert.rule, { rule: alert.rule, severity: alert.severity, alerts: [] });
    const group = groups.get(alert.rule);
    if (rank(alert.severity) > rank(group.severity)) group.severity = alert.severity;
    group.alerts.push(alert);
  }
  const sorted = [...groups.values()].sort((a, b) => rank(b.severity) - rank(a.severity) || compareNames(a.rule, b.rule));
  return sorted.map(({ rule, severity, alerts }) => {
    const first = firstByHost(alerts, limit);
    const metric = metrics.get(rule) ?? (alerts[0].value == null ? "offline" : null);
    return {
      rule, severity, count: alerts.length, silenced: alerts.filter((a) => a.silenced).length,
      rows: first.map((a) => ({
        rule, host: a.host, severity: a.severity, value: valueText(metric, a.value), since: a.since,
        summary: a.summary || "", silenced: !!a.silenced,
      })),
    };
  });
}

/** When an alert began: `14:02:11 (5 min ago)`, with the date once it is a day old. */
export function sinceText(since, now = Date.now() / 1000, utc = false) {
  if (since == null) return "–";
  const full = fullTime(since * 1000, utc);
  return (now - since < 86400 ? full.slice(11) : full.slice(0, 16)) + " (" + ago(since, now) + ")";
}

/** A name as a key that sorts as plain strings do the way compareNames sorts (web2 before web10). */
const keys = new Map(); // name -> key, made once per host name
function nameKey(name) {
  let key = keys.get(name);
  if (key === undefined) {
    key = name.toLowerCase().replace(/\d+/g, (digits) => digits.padStart(20, "0"));
    keys.set(name, key);
  }
  return key;
}

/**
 * The first `limit` alerts by host name, in order, without sorting them all: a rule firing on
 * 10,000 hosts costs about one string comparison per host.
 */
function firstByHost(alerts, limit) {
  const keyed = alerts.map((alert) => [nameKey(alert.host), alert]);
  if (limit >= keyed.length / 2) {
    keyed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return keyed.slice(0, limit).map((entry) => entry[1]);
  }
  const best = [];
  for (const entry of keyed) {
    if (best.length === limit && entry[0] >= best[limit - 1][0]) continue;
    let lo = 0;
    let hi = best.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (best[mid][0] <= entry[0]) lo = mid + 1; else hi = mid;
    }
    best.splice(lo, 0, entry);
    if (best.length > limit) best.pop();
  }
  return best.map((entry) => entry[1]);
}

/** The active silences of GET /api/alerts/silences as one comparable string of their ids. */
export function activeSilences(answer) {
  const listed = (answer && answer.silences) || [];
  return listed.filter((s) => s && s.active).map((s) => String(s.id)).sort().join(",");
}

/** The target term for the hosts on which `rule` fires now. */
export const alertTarget = (rule) => "@alert=" + rule;

/** How long a silence from the panel may last, as the API's `for` durations. */
export const SILENCE_FOR = ["30m", "1h", "2h", "4h", "8h", "24h", "7d"];

/**
 * The POST /api/alerts/silences body for a rule (optionally narrowed to a target expression), or
 * {error} naming the field that is wrong.
 */
export function silenceRequest(rule, duration, comment, targets = "") {
  if (!SILENCE_FOR.includes(duration)) return { error: "Duration: choose one of " + SILENCE_FOR.join(", ") + "." };
  const text = String(comment || "").trim();
  if (!text) return { error: "Comment: say why the alert is silenced." };
  const body = { rule, for: duration, comment: text };
  const narrowed = String(targets || "").trim();
  if (narrowed) body.targets = narrowed;
  return { body };
}
