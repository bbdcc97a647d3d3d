import { test } from "node:test";
import assert from "node:assert/strict";
import { foldHosts, ranges, targetFor, labelSelector } from "../js/targets.js";

test("ranges fold consecutive numbers and keep a width", () => {
  assert.equal(ranges([1, 2, 3, 7, 9, 10]), "1-3,7,9-10");
  assert.equal(ranges([3, 1, 2, 2]), "1-3");
  assert.equal(ranges([1, 2, 10], 2), "01-02,10");
});

test("zero-padded names fold into one node set, as the gateway expands them", () => {
  const names = Array.from({ length: 20 }, (_, i) => "web" + String(i + 1).padStart(2, "0"));
  assert.equal(foldHosts(names), "web[01-20]");
  assert.equal(foldHosts(["web01", "web02", "web05"]), "web[01-02,05]");
});

test("addresses fold by their last octet", () => {
  const addresses = [...Array.from({ length: 40 }, (_, i) => "10.0.0." + (i + 1)), "10.0.0.42"];
  assert.equal(foldHosts(addresses), "10.0.0.[1-40,42]");
  assert.equal(foldHosts(["10.0.0.9", "10.0.0.10", "10.0.1.1"]), "10.0.0.[9-10],10.0.1.1");
});

test("names with a suffix after the number fold too; odd names stay as they are", () => {
  assert.equal(foldHosts(["web-eu-001", "web-eu-002", "db-us-001"]), "db-us-001,web-eu-[001-002]");
  assert.equal(foldHosts(["rack1-n01", "rack1-n02"]), "rack1-n[01-02]");
  assert.equal(foldHosts(["fd00::1", "fd00::2"]), "fd00::1,fd00::2");
  assert.equal(foldHosts(["gateway", "gateway"]), "gateway");
  assert.equal(foldHosts(["web9", "web10", "web11"]), "web[9-11]");
});

test("a target uses each host's address when its agent gave one", () => {
  const hosts = [{ host: "web-a", address: "127.16.0.1" }, { host: "web-b", address: "127.16.0.2" }, { host: "db", address: "" }];
  assert.equal(targetFor(hosts), "127.16.0.[1-2],db");
  assert.equal(labelSelector("role", "web"), "@role=web");
});
