// Compact `fleet` frames (binary WebSocket messages, protocol v1.2) back into the JSON `fleet`
// frames they stand for: the same fields, values rounded to 0.1, hosts in name order. The layout
// is in docs/protocol.md; fleetdeck_common.fleet_compact is the Python twin, tested on the same bytes.

export const VERSION = 1;
const FULL = 0x01;
const ONLINE = 0x01;
const FIELDS = [["total", 0x02], ["mem", 0x04], ["load1", 0x08], ["disk", 0x10]];
const KNOWN_BITS = 0x1f;
const HEADER = 10; // version, flags, float64 ts
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A compact fleet frame that is corrupt, truncated or of another version. */
export class CompactFrameError extends Error {}

function reader(bytes) {
  let at = HEADER;
  const ended = () => new CompactFrameError(`the compact fleet frame ends early (truncated) at byte ${at}`);
  const r = {
    get at() { return at; },
    byte() {
      if (at >= bytes.length) throw ended();
      return bytes[at++];
    },
    varint() { // numbers up to 2^53: arithmetic, not 32-bit shifts
      let n = 0;
      for (let scale = 1; ; scale *= 128) {
        const b = r.byte();
        n += (b & 0x7f) * scale;
        if (b < 0x80) return n;
        if (scale > 2 ** 49) throw new CompactFrameError(`the compact fleet frame has a number too long at byte ${at}`);
      }
    },
    string() {
      const size = r.varint();
      if (at + size > bytes.length) throw ended();
      const start = at;
      at += size;
      try { return utf8.decode(bytes.subarray(start, at)); } catch (e) {
        throw new CompactFrameError(`the compact fleet frame has a string not in UTF-8 before byte ${at}`);
      }
    },
  };
  return r;
}

const value = (code) => (code === 0 ? null : (code - 1) / 10);

function entry(host) {
  const e = { host: host.name, online: host.online, total: null, mem: null, load1: null, labels: { ...host.labels }, disk: null };
  FIELDS.forEach(([name], i) => { e[name] = value(host.codes[i]); });
  return e;
}

/** One connection's decoder: `feed(bytes)` gives the JSON frame or throws CompactFrameError (and
 * then holds what it held before). */
export class FleetDecoder {
  constructor() {
    this.hosts = new Map(); // id -> {name, labels, online, codes}
    this.ids = new Map(); // name -> id
  }

  feed(data) {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    if (bytes.length < HEADER) {
      throw new CompactFrameError(`a compact fleet frame has at least ${HEADER} bytes, this one ${bytes.length} (truncated)`);
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const version = bytes[0];
    const flags = bytes[1];
    if (version !== VERSION) throw new CompactFrameError(`compact fleet frame version ${version} is not known here (only ${VERSION})`);
    if (flags & ~FULL) throw new CompactFrameError(`the compact fleet frame has unknown flags ${flags}`);
    const full = Boolean(flags & FULL);
    const ts = view.getFloat64(2, true);
    const r = reader(bytes);
    const hosts = full ? new Map() : new Map(this.hosts);
    const ids = full ? new Map() : new Map(this.ids);
    const strings = [];
    for (let n = r.varint(); n > 0; n--) strings.push(r.string());
    for (let n = r.varint(); n > 0; n--) {
      const id = r.varint();
      const name = r.string();
      const labels = {};
      for (let k = r.varint(); k > 0; k--) {
        const key = r.varint();
        const text = r.varint();
        if (key >= strings.length || text >= strings.length) {
          throw new CompactFrameError(`the compact fleet frame names a label string it lacks at byte ${r.at}`);
        }
        labels[strings[key]] = strings[text];
      }
      const old = hosts.get(id);
      if (old && old.name === name) {
        hosts.set(id, { ...old, labels });
      } else {
        if (ids.has(name)) hosts.delete(ids.get(name)); // a host that came back under a new id
        hosts.set(id, { name, labels, online: false, codes: [0, 0, 0, 0] });
      }
      ids.set(name, id);
    }
    const listed = [];
    let id = -1;
    for (let n = r.varint(); n > 0; n--) {
      const gap = r.varint();
      id += gap;
      const old = hosts.get(id);
      if (gap === 0 || !old) throw new CompactFrameError(`the compact fleet frame has values for host id ${id}, never defined`);
      const mask = r.byte();
      if (mask & ~KNOWN_BITS) throw new CompactFrameError(`the compact fleet frame has an entry with unknown bits ${mask}`);
      const codes = FIELDS.map(([, bit], i) => (mask & bit ? r.varint() : old.codes[i]));
      const host = { name: old.name, labels: old.labels, online: Boolean(mask & ONLINE), codes };
      hosts.set(id, host);
      listed.push(host);
    }
    const gone = [];
    for (let n = r.varint(); n > 0; n--) gone.push(r.string());
    if (r.at !== bytes.length) throw new CompactFrameError(`the compact fleet frame has ${bytes.length - r.at} bytes after its end`);
    gone.sort(byName);
    for (const name of gone) {
      if (ids.has(name)) { hosts.delete(ids.get(name)); ids.delete(name); }
    }
    this.hosts = hosts;
    this.ids = ids;
    listed.sort((a, b) => byName(a.name, b.name));
    const entries = listed.map(entry);
    for (const name of gone) entries.push(entry({ name, labels: {}, online: false, codes: [0, 0, 0, 0] }));
    return { type: "fleet", ts, full, hosts: entries };
  }
}

function byName(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}
