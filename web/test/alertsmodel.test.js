import { test } from "node:test";
import assert from "node:assert/strict";
import {
  alertModel, applyFiring, applyAlert, outlineOf, severityCounts, stripText, metricOf, rulesOf, valueText,
  ruleGroups, alertTarget, silenceRequest, sinceText, activeSilences,
} from "../js/alertsmodel.js";

const alert = (rule, host, extra = {}) => ({
  type: "alert", rule, host, state: "firing", value: 97.25, since: 1000, severity: "warning",
  summary: rule + " on " + host, labels: {}, silenced: false, ...extra,
});

test("the firing set on subscribing replaces what was known; outlines change only where they differ", () => {
  const model = alertModel();
  let change = applyFiring(model, [alert("cpu", "web2"), alert("cpu", "web10"), alert("disk", "web2", { severity: "critical" })]);
  assert.deepEqual([...change.hosts].sort(), ["web10", "web2"]);
  assert.equal(outlineOf(model, "web2"), "critical");
  assert.equal(outlineOf(model, "web10"), "warning");
  assert.equal(outlineOf(model, "db1"), null);
  // A resubscription after a reconnect: web10 resolved meanwhile, db1 began, web2 as it was.
  change = applyFiring(model, [alert("cpu", "web2"), alert("disk", "web2", { severity: "critical" }), alert("cpu", "db1")]);
  assert.deepEqual([...change.hosts].sort(), ["db1", "web10"]);
  assert.equal(outlineOf(model, "web10"), null);
});

test("transitions add and remove one alert; a host keeps its worst outline until its last alert resolves", () => {
  const model = alertModel();
  assert.deepEqual([...applyAlert(model, alert("cpu", "a")).hosts], ["a"]);
  assert.deepEqual([...applyAlert(model, alert("disk", "a", { severity: "critical" })).hosts], ["a"]);
  assert.equal(outlineOf(model, "a"), "critical");
  assert.deepEqual([...applyAlert(model, alert("cpu", "a", { value: 99 })).hosts], []); // same outline
  assert.deepEqual([...applyAlert(model, alert("disk", "a", { state: "resolved" })).hosts], ["a"]);
  assert.equal(outlineOf(model, "a"), "warning");
  applyAlert(model, alert("cpu", "a", { state: "resolved" }));
  assert.equal(outlineOf(model, "a"), null);
  assert.equal(model.byHost.size, 0);
  // A resolve for something never seen, or a frame without a rule, changes nothing.
  assert.deepEqual([...applyAlert(model, alert("cpu", "b", { state: "resolved" })).hosts], []);
  assert.deepEqual([...applyAlert(model, { type: "alert", host: "b" }).hosts], []);
  assert.equal(model.byHost.size, 0);
});

test("silenced alerts still show, counted apart; a host whose every alert is silenced is outlined as such", () => {
  const model = alertModel();
  applyFiring(model, [
    alert("cpu", "a", { silenced: true, severity: "critical" }), alert("mem", "a", { severity: "info" }),
    alert("cpu", "b", { silenced: true, severity: "critical" }), alert("load", "c", { severity: "critical" }),
    alert("load", "d", { severity: "critical" }),
  ]);
  assert.equal(outlineOf(model, "a"), "info");
  assert.equal(outlineOf(model, "b"), "silenced");
  const counts = severityCounts(model);
  assert.deepEqual(counts, { critical: 2, warning: 0, info: 1, silenced: 2, total: 5 });
  assert.equal(stripText(counts), "2 critical · 1 info · 2 silenced");
  assert.equal(stripText(severityCounts(alertModel())), "");
});

test("values are shown in the units of the rule's metric", () => {
  assert.equal(metricOf("total > 90"), "total");
  assert.equal(metricOf(" net_rx>=1e8"), "net_rx");
  assert.equal(metricOf("offline"), "offline");
  assert.equal(metricOf(""), null);
  assert.equal(valueText("total", 97.25), "97.3%");
  assert.equal(valueText("disk", 95), "95.0%");
  assert.equal(valueText("load1", 8.2), "8.20");
  assert.equal(valueText("net_tx", 1.5e8), "150 MB/s");
  assert.equal(valueText("offline", null), "offline");
  assert.equal(valueText(null, 3.14159), "3.14");
  assert.equal(valueText("mem", null), "–");
  const rules = rulesOf({ rules: [{ name: "cpu", expr: "total > 90" }, { name: "gone", expr: "offline" }, {}], error: null });
  assert.deepEqual([...rules.metrics], [["cpu", "total"], ["gone", "offline"]]);
  assert.equal(rules.error, null);
  assert.deepEqual([...rulesOf([{ name: "x", expr: "load1 > 8" }]).metrics], [["x", "load1"]]);
  assert.equal(rulesOf(null).metrics.size, 0);
  assert.equal(rulesOf({ rules: [], error: "rule 2 (cpu): for: bad duration" }).error, "rule 2 (cpu): for: bad duration");
});

test("the panel groups rows per rule, worst first, hosts in natural order, at most `limit` rows each", () => {
  const model = alertModel();
  applyFiring(model, [
    alert("cpu-high", "web10"), alert("cpu-high", "web2", { silenced: true }), alert("cpu-high", "web1"),
    alert("agent-gone", "db1", { severity: "critical", value: null }),
    alert("busy", "web3", { severity: "info", value: 9 }),
  ]);
  const groups = ruleGroups(model, new Map([["cpu-high", "total"], ["busy", "load1"]]), 2);
  assert.deepEqual(groups.map((g) => [g.rule, g.severity, g.count, g.silenced]),
    [["agent-gone", "critical", 1, 0], ["cpu-high", "warning", 3, 1], ["busy", "info", 1, 0]]);
  assert.deepEqual(groups[1].rows.map((r) => r.host), ["web1", "web2"]);
  assert.deepEqual(groups[1].rows[1], {
    rule: "cpu-high", host: "web2", severity: "warning", value: "97.3%", since: 1000,
    summary: "cpu-high on web2", silenced: true,
  });
  assert.equal(groups[0].rows[0].value, "offline"); // no rules known: a value-less alert is `offline`
  assert.equal(groups[2].rows[0].value, "9.00");
});

test("run on these hosts names the rule; a silence needs a listed duration and a comment", () => {
  assert.equal(alertTarget("cpu-high"), "@alert=cpu-high");
  assert.deepEqual(silenceRequest("cpu-high", "2h", "  deploying  "), { body: { rule: "cpu-high", for: "2h", comment: "deploying" } });
  assert.deepEqual(silenceRequest("cpu-high", "1h", "x", " web[1-3] ").body.targets, "web[1-3]");
  assert.match(silenceRequest("cpu-high", "2 hours", "x").error, /^Duration/);
  assert.match(silenceRequest("cpu-high", "2h", " ").error, /^Comment/);
});

test("the active silences compare as one string, whatever their order", () => {
  const a = { silences: [{ id: "b", active: true }, { id: "a", active: true }, { id: "c", active: false }] };
  assert.equal(activeSilences(a), "a,b");
  assert.equal(activeSilences({ silences: [{ id: "a", active: true }, { id: "b", active: true }] }), "a,b");
  assert.equal(activeSilences({ silences: [] }), "");
  assert.equal(activeSilences(null), "");
});

test("since reads as a time and how long ago, with the date once a day has passed", () => {
  const since = Date.UTC(2026, 11, 7, 14, 2, 11) / 1000;
  assert.equal(sinceText(since, since + 300, true), "14:02:11 (5 min ago)");
  assert.equal(sinceText(since, since + 2 * 86400, true), "2026-12-07 14:02 (2 d ago)");
  assert.equal(sinceText(null), "–");
});
