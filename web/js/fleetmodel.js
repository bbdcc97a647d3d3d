// The fleet as the dashboard knows it: one record per host, merged from `fleet` frames (the latest
// CPU, memory, load, disk) and `hosts` frames (labels, address, cores, last seen). Pure: each function
// changes the map it is given and says which hosts changed, so views redraw only those.

/** A host heard of but not yet described. */
function blank(name) {
  return { host: name, online: false, total: null, mem: null, load1: null, disk: null, labels: {}, address: "",
           cpus: null, lastSeen: null };
}

function sameLabels(a, b) {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/**
 * Merge a `fleet` frame. Returns {changed: Set of names, added: bool (hosts came or went, so the
 * overview lays out again), labels: bool (a label changed, so the label filters are rebuilt)}.
 */
export function applyFleetFrame(hosts, frame) {
  const change = { changed: new Set(), added: false, labels: false };
  if (frame.full) {
    const listed = new Set(frame.hosts.map((h) => h.host));
    for (const name of [...hosts.keys()]) {
      if (!listed.has(name)) { hosts.delete(name); change.changed.add(name); change.added = true; }
    }
  }
  for (const entry of frame.hosts) {
    let host = hosts.get(entry.host);
    if (!host) { host = blank(entry.host); hosts.set(entry.host, host); change.added = true; change.labels = true; }
    if (entry.labels && !sameLabels(host.labels, entry.labels)) { host.labels = entry.labels; change.labels = true; }
    host.online = entry.online;
    host.total = entry.total;
    host.mem = entry.mem;
    host.load1 = entry.load1;
    host.disk = entry.disk ?? null; // v1.2; absent from an older gateway's frames
    if (entry.online && entry.total != null) host.lastSeen = Math.max(host.lastSeen || 0, frame.ts);
    change.changed.add(entry.host);
  }
  return change;
}

/**
 * Merge a `hosts` frame: the whole presence list (v1, or `full: true`), in which a host missing that
 * is offline has been forgotten by the gateway and is dropped; or (`full: false`) only the hosts
 * whose presence changed, and in `gone` those forgotten.
 */
export function applyHostsFrame(hosts, frame) {
  const change = { changed: new Set(), added: false, labels: false };
  const listed = new Set();
  for (const name of frame.gone || []) {
    if (hosts.delete(name)) { change.changed.add(name); change.added = true; }
  }
  for (const entry of frame.hosts) {
    listed.add(entry.host);
    let host = hosts.get(entry.host);
    if (!host) { host = blank(entry.host); hosts.set(entry.host, host); change.added = true; change.labels = true; }
    const labels = entry.labels || {};
    if (!sameLabels(host.labels, labels)) { host.labels = labels; change.labels = true; }
    if (host.online !== entry.online || host.address !== (entry.address || "") || host.cpus !== entry.cpus ||
        host.lastSeen !== entry.last_seen) change.changed.add(entry.host);
    host.online = entry.online;
    host.address = entry.address || "";
    host.cpus = entry.cpus;
    host.lastSeen = Math.max(host.lastSeen || 0, entry.last_seen || 0) || null;
  }
  if (frame.full === false) return change;
  for (const [name, host] of [...hosts]) {
    if (!listed.has(name) && !host.online) { hosts.delete(name); change.changed.add(name); change.added = true; }
  }
  return change;
}

/** The value below which a share `p` of the sorted values lie (nearest rank). */
export function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/** Online/offline counts and the CPU mean, p95 and max of the online hosts that have a sample. */
export function fleetStats(hosts) {
  let online = 0;
  let offline = 0;
  const values = new Float64Array(hosts.size); // typed: sorts numerically, and fast at 10,000 hosts
  let sampled = 0;
  let sum = 0;
  for (const host of hosts.values()) {
    if (!host.online) { offline += 1; continue; }
    online += 1;
    if (host.total != null) { values[sampled++] = host.total; sum += host.total; }
  }
  const sorted = values.subarray(0, sampled).sort();
  return {
    online, offline, hosts: online + offline, sampled,
    mean: sampled ? sum / sampled : null,
    p95: percentile(sorted, 0.95),
    max: sampled ? sorted[sampled - 1] : null,
  };
}
