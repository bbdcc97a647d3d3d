import { test } from "node:test";
import assert from "node:assert/strict";
import { bytes, rate, duration } from "../js/format.js";

test("network rates carry a unit that fits their size", () => {
  assert.equal(rate(0), "0 B/s");
  assert.equal(rate(512), "512 B/s");
  assert.equal(rate(1500), "1.5 KB/s");
  assert.equal(rate(999_600), "1.0 MB/s");
  assert.equal(rate(12_345_678), "12 MB/s");
  assert.equal(rate(2.5e9), "2.5 GB/s");
  assert.equal(rate(null), "–");
  assert.equal(rate(undefined), "–");
});

test("sizes and uptimes read like a person would say them", () => {
  assert.equal(bytes(42e9), "42 GB");
  assert.equal(bytes(3.4e12), "3.4 TB");
  assert.equal(duration(40.7), "40 s");
  assert.equal(duration(12 * 60 + 5), "12 min");
  assert.equal(duration(5 * 3600 + 12 * 60), "5 h 12 min");
  assert.equal(duration(3 * 86400 + 4 * 3600 + 59), "3 d 4 h");
  assert.equal(duration(null), "–");
});
