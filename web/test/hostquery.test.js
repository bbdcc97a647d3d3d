import { test } from "node:test";
import assert from "node:assert/strict";
import { queryHosts, topByCpu, labelIndex, soleLabel, matches } from "../js/hostquery.js";

const host = (name, total, mem, labels, online = true) =>
  [name, { host: name, online, total, mem, load1: 0, labels, address: "" }];
const hosts = new Map([
  host("web10", 50, 10, { role: "web", dc: "eu" }),
  host("web2", 90, 20, { role: "web", dc: "us" }),
  host("db1", 70, 95, { role: "db", dc: "eu" }),
  host("db2", 99, 30, { role: "db", dc: "eu" }, false),
]);
const names = (list) => list.map((h) => h.host);

test("sorting by name is natural; by CPU or memory busiest first with offline hosts last", () => {
  assert.deepEqual(names(queryHosts(hosts, { sort: "name" })), ["db1", "db2", "web2", "web10"]);
  assert.deepEqual(names(queryHosts(hosts, { sort: "cpu" })), ["web2", "db1", "web10", "db2"]);
  assert.deepEqual(names(queryHosts(hosts, { sort: "mem" })), ["db1", "web2", "web10", "db2"]);
});

test("search words and label filters narrow the list", () => {
  assert.deepEqual(names(queryHosts(hosts, { search: "web", sort: "name" })), ["web2", "web10"]);
  assert.deepEqual(names(queryHosts(hosts, { search: "dc=eu web", sort: "name" })), ["web10"]);
  assert.deepEqual(names(queryHosts(hosts, { labels: { role: "db", dc: "" }, sort: "name" })), ["db1", "db2"]);
  assert.ok(!matches(hosts.get("db1"), { labels: { dc: "us" } }));
});

test("top by CPU takes online hosts only", () => {
  assert.deepEqual(names(topByCpu(hosts, 2)), ["web2", "db1"]);
});

test("labels are indexed with counts; one label filter alone is a label selector", () => {
  const index = labelIndex(hosts);
  assert.deepEqual([...index.keys()], ["dc", "role"]);
  assert.equal(index.get("dc").get("eu"), 3);
  assert.deepEqual(soleLabel({ search: "", labels: { role: "web", dc: "" } }), ["role", "web"]);
  assert.equal(soleLabel({ search: "x", labels: { role: "web" } }), null);
  assert.equal(soleLabel({ search: "", labels: { role: "web", dc: "eu" } }), null);
});
