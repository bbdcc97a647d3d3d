import { test } from "node:test";
import assert from "node:assert/strict";
import { FleetDecoder, CompactFrameError, VERSION } from "../js/fleetcompact.js";

// Bytes as the Python encoder writes them (tests/test_fleet_compact_browser.py checks the two
// decoders agree on many more): a full frame of two hosts, then a change of one value.
function frame(full, ts, body) {
  const head = new Uint8Array(10);
  head[0] = VERSION;
  head[1] = full ? 1 : 0;
  new DataView(head.buffer).setFloat64(2, ts, true);
  return new Uint8Array([...head, ...body]);
}
const enc = (s) => [...new TextEncoder().encode(s)];
const str = (s) => [enc(s).length, ...enc(s)];

const FULL = frame(true, 1.5, [
  2, ...str("role"), ...str("web"), // strings
  2, 0, ...str("a"), 1, 0, 1, 1, ...str("b"), 0, // definitions: a {role: web}, b {}
  2, 1, 0x1f, 124, 0, 0xc5, 0x03, 0, 1, 0x1e, 0, 0, 0, 0, // a online 12.3, -, 45.2, -; b offline
  0, // forgotten
]);

test("a full frame, then a change that carries one value of one host", () => {
  const decoder = new FleetDecoder();
  const first = decoder.feed(FULL);
  assert.deepEqual(first, {
    type: "fleet", ts: 1.5, full: true, hosts: [
      { host: "a", online: true, total: 12.3, mem: null, load1: 45.2, labels: { role: "web" }, disk: null },
      { host: "b", online: false, total: null, mem: null, load1: null, labels: {}, disk: null },
    ],
  });
  const change = decoder.feed(frame(false, 2.5, [0, 0, 1, 1, 0x01 | 0x04, 11, 1, ...str("b")]));
  assert.deepEqual(change.hosts.map((h) => [h.host, h.online, h.total, h.mem, h.load1]),
    [["a", true, 12.3, 1.0, 45.2], ["b", false, null, null, null]]);
});

test("a truncated or corrupt frame is refused and changes nothing held", () => {
  const decoder = new FleetDecoder();
  decoder.feed(FULL);
  for (let end = 0; end < FULL.length; end++) {
    assert.throws(() => decoder.feed(FULL.subarray(0, end)), CompactFrameError);
  }
  assert.throws(() => decoder.feed(new Uint8Array([VERSION + 1, ...FULL.subarray(1)])), /version/);
  assert.throws(() => decoder.feed(new Uint8Array([...FULL, 0])), /after its end/);
  assert.throws(() => decoder.feed(frame(false, 3, [0, 0, 1, 3, 0x01, 0])), /never defined/);
  const after = decoder.feed(frame(false, 3, [0, 0, 1, 1, 0x01, 0]));
  assert.equal(after.hosts[0].total, 12.3);
});
