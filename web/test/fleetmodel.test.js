import { test } from "node:test";
import assert from "node:assert/strict";
import { applyFleetFrame, applyHostsFrame, fleetStats, percentile } from "../js/fleetmodel.js";

const entry = (host, total, extra = {}) => ({ host, online: true, total, mem: 50, load1: 1, labels: { role: "web" }, ...extra });

test("a full fleet frame sets every host; later frames change only the hosts they carry", () => {
  const hosts = new Map();
  let change = applyFleetFrame(hosts, { ts: 100, full: true, hosts: [entry("a", 10), entry("b", 20)] });
  assert.deepEqual([...change.changed].sort(), ["a", "b"]);
  assert.ok(change.added && change.labels);
  change = applyFleetFrame(hosts, { ts: 101, full: false, hosts: [entry("b", 90)] });
  assert.deepEqual([...change.changed], ["b"]);
  assert.ok(!change.added && !change.labels);
  assert.equal(hosts.get("a").total, 10);
  assert.equal(hosts.get("b").total, 90);
  assert.equal(hosts.get("b").lastSeen, 101);
});

test("a full frame drops hosts it no longer lists", () => {
  const hosts = new Map();
  applyFleetFrame(hosts, { ts: 1, full: true, hosts: [entry("a", 1), entry("b", 2)] });
  const change = applyFleetFrame(hosts, { ts: 2, full: true, hosts: [entry("a", 1)] });
  assert.ok(change.added);
  assert.deepEqual([...hosts.keys()], ["a"]);
});

test("hosts frames bring addresses and last seen, and drop forgotten offline hosts", () => {
  const hosts = new Map();
  applyFleetFrame(hosts, { ts: 1, full: true, hosts: [entry("a", 1), entry("b", 2, { online: false })] });
  const change = applyHostsFrame(hosts, { hosts: [{ host: "a", online: true, last_seen: 5, cpus: 8, labels: { role: "db" }, address: "10.0.0.1" }] });
  assert.ok(change.labels && change.added);
  assert.equal(hosts.get("a").address, "10.0.0.1");
  assert.equal(hosts.get("a").lastSeen, 5);
  assert.ok(!hosts.has("b"));
});

test("hosts change frames touch only the hosts they carry and drop those gone", () => {
  const hosts = new Map();
  const info = (host, online, extra = {}) => ({ host, online, last_seen: 5, cpus: 4, labels: {}, address: host, ...extra });
  applyHostsFrame(hosts, { full: true, hosts: [info("a", true), info("b", true), info("c", false)] });
  let change = applyHostsFrame(hosts, { full: false, hosts: [info("b", false, { last_seen: 9 })], gone: [] });
  assert.deepEqual([...change.changed], ["b"]);
  assert.ok(!change.added);
  assert.deepEqual([...hosts.keys()], ["a", "b", "c"]); // c, offline and not listed, stays
  assert.equal(hosts.get("b").online, false);
  assert.equal(hosts.get("b").lastSeen, 9);
  change = applyHostsFrame(hosts, { full: false, hosts: [], gone: ["c"] });
  assert.deepEqual([...change.changed], ["c"]);
  assert.ok(change.added);
  assert.deepEqual([...hosts.keys()], ["a", "b"]);
});

test("fleet statistics count online and offline and summarise the sampled online hosts", () => {
  const hosts = new Map();
  const list = Array.from({ length: 20 }, (_, i) => entry("h" + i, i * 5));
  list.push(entry("off", 99, { online: false }), entry("new", null));
  applyFleetFrame(hosts, { ts: 1, full: true, hosts: list });
  const stats = fleetStats(hosts);
  assert.equal(stats.online, 21);
  assert.equal(stats.offline, 1);
  assert.equal(stats.sampled, 20);
  assert.equal(stats.max, 95);
  assert.equal(stats.p95, 90);
  assert.equal(stats.mean, 47.5);
  assert.equal(percentile([], 0.95), null);
});

test("a host's disk comes with fleet entries, and an entry without one (older gateway) leaves null", () => {
  const hosts = new Map();
  applyFleetFrame(hosts, { ts: 1, full: true, hosts: [entry("a", 1, { disk: 91.5 }), entry("b", 2)] });
  assert.equal(hosts.get("a").disk, 91.5);
  assert.equal(hosts.get("b").disk, null);
});
