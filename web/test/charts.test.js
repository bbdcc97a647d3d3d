import { test } from "node:test";
import assert from "node:assert/strict";
import { timeAxis, timeLabel, MIN_SPAN_MS } from "../js/timeaxis.js";
import { gridLayout, cellAt, cellOrigin, cellsIn } from "../js/fleetgrid.js";
import { jobOutcome, summaryText, hostLegend, HOST_LEGEND } from "../js/outcome.js";
import { cpuColor, ago } from "../js/format.js";

test("a time axis with seconds of data still spans a minute, with ticks at least 15 s apart", () => {
  const axis = timeAxis(1_000_000, 1_005_000);
  assert.equal(axis.max - axis.min, MIN_SPAN_MS);
  assert.ok(axis.minInterval >= 15_000);
  assert.ok(axis.axisLabel.hideOverlap);
  assert.match(timeLabel(0, 60_000), /^\d\d:\d\d:\d\d$/);
  assert.match(timeLabel(0, 3_600_000), /^\d\d:\d\d$/);
  const long = timeAxis(0, 900_000);
  assert.equal(long.min, 0);
});

test("the overview grid fits the fleet, and maps points and rectangles to cells", () => {
  const layout = gridLayout(880, 500, 380);
  assert.ok(layout.cols * layout.rows >= 500);
  assert.ok(layout.height <= 380 && layout.width <= 880);
  const { x, y } = cellOrigin(layout, 37);
  assert.equal(cellAt(layout, x + 1, y + 1), 37);
  assert.equal(cellAt(layout, -1, 0), -1);
  assert.deepEqual(cellsIn(layout, x, y, x + 1, y + 1), [37]);
  const last = cellOrigin(layout, 499);
  assert.ok(cellsIn(layout, 0, 0, last.x + 1, last.y + 1).length <= 500);
  const phone = gridLayout(366, 1000, 330);
  assert.ok(phone.width <= 366 && phone.cols * phone.rows >= 1000);
});

const protocol = {
  finished_states: ["cancelled", "done"], job_states: ["queued", "running", "done", "cancelled"],
  host_statuses: ["ok", "failed", "timeout"], status_tones: { ok: "good", failed: "bad", timeout: "slow" },
};

test("a job is coloured by what happened on its hosts", () => {
  assert.equal(jobOutcome({ state: "done", summary: { ok: 20 } }, protocol).tone, "good");
  assert.equal(jobOutcome({ state: "done", summary: { failed: 3 } }, protocol).tone, "bad");
  assert.equal(jobOutcome({ state: "done", summary: { ok: 2, timeout: 1 } }, protocol).tone, "partial");
  assert.equal(jobOutcome({ state: "running" }, protocol).tone, "running");
  assert.equal(jobOutcome({ state: "cancelled", summary: { ok: 1, cancelled: 4 } }, protocol).tone, "muted");
  assert.equal(jobOutcome({ state: "done", summary: {}, error: "not allowed" }, protocol).tone, "bad");
  assert.equal(summaryText({ timeout: 1, ok: 2 }, protocol), "ok 2, timeout 1");
});

test("colours and ages", () => {
  assert.notEqual(cpuColor(0), cpuColor(100));
  assert.equal(cpuColor(150), cpuColor(100));
  assert.equal(ago(100, 130), "30 s ago");
  assert.equal(ago(0, 7200), "2 h ago");
});

test("a chart breaks its line where the host was away or its agent restarted", async () => {
  const { points } = await import("../js/timeaxis.js");
  const sample = (ts, n, total = 10) => ({ ts, n, total, interval: 1 });
  const line = points([sample(0, 1), sample(1, 2), sample(10, 3), sample(11, 1), sample(12, 2)], (s) => s.total);
  assert.deepEqual(line.map(([, v]) => v), [10, 10, null, 10, null, 10, 10]);
  assert.deepEqual(line[2], [5500, null]);
  assert.deepEqual(points([], (s) => s.total), []);
});

test("the {host} legend comes with a group that stands for several outputs, and no other", () => {
  assert.equal(hostLegend({ hosts: "web[01-02]", count: 2, output: "hello from {host}\n" }), HOST_LEGEND);
  assert.match(HOST_LEGEND, /^\{host\} is each host's own name or address/);
  assert.equal(hostLegend({ hosts: "web[01-02]", count: 2, output: "same\n" }), "");
  assert.equal(hostLegend({ hosts: "solo", count: 1, output: "prints {host} as it is\n" }), "");
});
