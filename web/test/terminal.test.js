import { test } from "node:test";
import assert from "node:assert/strict";
import { createTerms, stateText, isLive, MAX_TABS } from "../js/termmodel.js";
import { parseCast, resizeOf, dueCount, clock, IDLE_CAP } from "../js/cast.js";
import { createSender, chunks, MAX_INPUT } from "../js/termsend.js";

test("a tab goes from connecting to open to closed with its exit status", () => {
  const terms = createTerms();
  const tab = terms.open("web01", "term1", 100, 30);
  assert.equal(stateText(tab), "Connecting to web01…");
  assert.equal(terms.active, tab);
  assert.equal(terms.opened({ term: "abc", host: "web01", cols: 100, rows: 30, ref: "term1" }), tab);
  assert.equal(stateText(tab), "Connected to web01 (100×30)");
  assert.equal(terms.byTerm("abc"), tab);
  assert.equal(terms.closed({ term: "abc", exit_code: 3, reason: "the shell exited" }), tab);
  assert.equal(stateText(tab), "Closed: the shell exited (exit status 3)");
  assert.equal(isLive(tab), false);
  assert.equal(terms.closed({ term: "abc", exit_code: 0, reason: "again" }), null, "a closed tab stays closed");
  const said = terms.open("web02", "term2", 80, 24);
  terms.opened({ term: "def", host: "web02", cols: 80, rows: 24, ref: "term2" });
  terms.closed({ term: "def", exit_code: 3, reason: "the shell exited with status 3" });
  assert.equal(stateText(said), "Closed: the shell exited with status 3", "the status is not said twice");
});

test("a refused host key and a refused open read differently", () => {
  const terms = createTerms();
  const key = terms.open("db1", "term1", 80, 24);
  terms.closed({ term: "x", ref: "term1", exit_code: null, reason: "host key not verifiable (unknown or changed; check known_hosts)" });
  assert.equal(key.state, "hostkey");
  assert.match(stateText(key), /^Host key refused: host key not verifiable/);
  const scope = terms.open("db2", "term2", 80, 24);
  assert.equal(terms.refused("term2", "db2 is outside this token's targets"), scope);
  assert.equal(stateText(scope), "Not opened: db2 is outside this token's targets");
  assert.equal(terms.refused("term9", "unknown"), null);
});

test("resizes are sent only when the size changed and the terminal is open", () => {
  const terms = createTerms();
  const tab = terms.open("web01", "r1", 80, 24);
  assert.equal(terms.resized(tab, 90, 24), false, "not open yet: the size goes with term_opened's check");
  terms.opened({ term: "t", host: "web01", cols: 80, rows: 24, ref: "r1" });
  assert.equal(terms.resized(tab, 120, 40), true);
  assert.equal(terms.resized(tab, 120, 40), false);
  assert.equal(terms.resized(tab, 120, 41), true);
});

test("at most MAX_TABS live tabs; a dropped socket closes every live tab; removing shows a neighbour", () => {
  const terms = createTerms();
  const tabs = Array.from({ length: MAX_TABS }, (_, i) => terms.open("h" + i, "r" + i, 80, 24));
  assert.match(terms.whyNot(), /At most 8 terminals/);
  terms.closed({ term: null, ref: "r0", exit_code: 0, reason: "exited" });
  assert.equal(terms.whyNot(), "");
  assert.equal(terms.dropped().length, MAX_TABS - 1);
  assert.equal(stateText(tabs[3]), "Closed: the connection to the gateway dropped");
  terms.select(tabs[2].key);
  terms.remove(tabs[2].key);
  assert.equal(terms.active, tabs[3]);
  terms.remove(tabs[MAX_TABS - 1].key);
  terms.select(tabs[MAX_TABS - 2].key);
  terms.remove(tabs[MAX_TABS - 2].key);
  assert.equal(terms.active, tabs[MAX_TABS - 3]);
});

test("a cast is read, long pauses are cut, and playback finds the events due", () => {
  const text = [
    JSON.stringify({ version: 2, width: 80, height: 24 }),
    JSON.stringify([0.5, "o", "$ "]),
    JSON.stringify([1.0, "r", "100x30"]),
    JSON.stringify([31.0, "o", "late"]),
    "",
  ].join("\n");
  const cast = parseCast(text);
  assert.equal(cast.header.width, 80);
  assert.deepEqual(cast.events.map((e) => e.t), [0.5, 1.0, 1.0 + IDLE_CAP]);
  assert.equal(cast.duration, 1.0 + IDLE_CAP);
  assert.deepEqual(resizeOf(cast.events[1]), { cols: 100, rows: 30 });
  assert.equal(resizeOf(cast.events[0]), null);
  assert.equal(dueCount(cast.events, 0), 0);
  assert.equal(dueCount(cast.events, 1.0), 2);
  assert.equal(dueCount(cast.events, 99), 3);
  assert.equal(clock(65.7), "1:05");
});

test("a broken cast names its line", () => {
  assert.throws(() => parseCast(""), /empty/);
  assert.throws(() => parseCast('{"version": 1}'), /version 2/);
  assert.throws(() => parseCast('{"version": 2}\n[1, "o"'), /line 2 .* not JSON/);
  assert.throws(() => parseCast('{"version": 2}\n{"a": 1}'), /line 2 .* not an event/);
});

test("the first key goes at once; keys that follow close behind are joined, in order with resizes", () => {
  const sent = [];
  let clock = 0;
  let pending = null;
  const sender = createSender((frame) => sent.push(frame), {
    interval: 60, now: () => clock, later: (fn) => { pending = fn; return 1; },
  });
  sender.input("a", "l");
  assert.deepEqual(sent, [{ type: "term_input", term: "a", data: "l" }]);
  clock = 10;
  sender.input("a", "s");
  sender.input("a", " -l");
  sender.resize("a", 100, 30);
  sender.resize("a", 120, 40);
  sender.input("a", "\r");
  sender.input("b", "x");
  assert.equal(sent.length, 1, "held until the interval passed");
  clock = 60;
  pending();
  assert.deepEqual(sent.slice(1), [
    { type: "term_input", term: "a", data: "s -l" },
    { type: "term_resize", term: "a", cols: 120, rows: 40 },
    { type: "term_input", term: "a", data: "\r" },
    { type: "term_input", term: "b", data: "x" },
  ]);
  clock = 500;
  sender.close("a");
  assert.deepEqual(sent[sent.length - 1], { type: "term_close", term: "a" });
});

test("a long paste goes in pieces the server takes, never splitting a character", () => {
  const text = "x".repeat(4095) + "😀" + "y".repeat(10);
  const pieces = chunks(text);
  assert.equal(pieces.join(""), text);
  assert.equal(pieces[0].length, 4095);
  assert.ok(pieces.every((piece) => piece.length <= MAX_INPUT));
});
