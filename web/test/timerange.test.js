import { test } from "node:test";
import assert from "node:assert/strict";
import {
  RANGES, LIVE, lastWindow, zoomWindow, historyQuery, stepText, seedSeries, timeLabel, fullTime, zoneName,
} from "../js/timerange.js";

test("the range buttons run from the live 15 minutes to 90 days, and each asks for its window", () => {
  assert.deepEqual(RANGES.map((r) => r.label), ["15 m", "1 h", "6 h", "24 h", "7 d", "30 d", "90 d"]);
  assert.equal(LIVE.seconds, 900);
  assert.equal(RANGES[RANGES.length - 1].seconds, 90 * 86400);
  assert.deepEqual(lastWindow(3600, 1_000_000_500), { since: 1_000_001 - 3600, until: 1_000_001 });
});

test("a drag asks for the window it covers, whichever way it went; a click asks for nothing", () => {
  assert.deepEqual(zoomWindow(120_500, 10_000), { since: 10, until: 121 });
  assert.equal(zoomWindow(10_000, 30_000), null);
  assert.equal(historyQuery({ since: 10, until: 121 }), "?since=10&until=121");
  assert.equal(historyQuery({ since: 10, step: 60, targets: "@role=web" }), "?since=10&step=60&targets=%40role%3Dweb");
});

test("steps read as people say them", () => {
  assert.equal(stepText(1), "1 s");
  assert.equal(stepText(30), "30 s");
  assert.equal(stepText(60), "1 min");
  assert.equal(stepText(300), "5 min");
  assert.equal(stepText(3600), "1 h");
  assert.equal(stepText(90), "90 s");
});

test("history seeds the live series under the points that already arrived", () => {
  const older = [{ t: 1 }, { t: 2 }, { t: 3 }, { t: 4 }];
  assert.deepEqual(seedSeries(older, [{ t: 3, live: true }, { t: 5 }], 10).map((p) => p.t), [1, 2, 3, 5]);
  assert.equal(seedSeries(older, [{ t: 3, live: true }], 10)[2].live, true);
  assert.deepEqual(seedSeries(older, [], 2).map((p) => p.t), [3, 4]);
});

test("times are labelled for their span, in UTC or local time, with the zone named", () => {
  const ms = Date.UTC(2026, 11, 7, 14, 2, 30);
  assert.equal(timeLabel(ms, 60_000, true), "14:02:30");
  assert.equal(timeLabel(ms, 3600_000, true), "14:02");
  assert.equal(timeLabel(ms, 7 * 86400_000, true), "12-07 14:02");
  assert.equal(timeLabel(ms, 90 * 86400_000, true), "12-07");
  assert.equal(fullTime(ms, true), "2026-12-07 14:02:30");
  assert.equal(zoneName(true), "UTC");
  assert.equal(typeof zoneName(false, ms, "en-US"), "string");
  const local = new Date(ms);
  assert.equal(timeLabel(ms, 3600_000), String(local.getHours()).padStart(2, "0") + ":02");
});

test("local labels follow the machine's zone, UTC ones do not", () => {
  const ms = Date.UTC(2026, 11, 7, 23, 30, 0);
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, "0");
  assert.equal(timeLabel(ms, 86400_000 * 2, true), "12-07 23:30");
  assert.equal(timeLabel(ms, 86400_000 * 2),
    two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " + two(d.getHours()) + ":" + two(d.getMinutes()));
});
