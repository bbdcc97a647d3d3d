// Searching, filtering and sorting the host list, and the label values to filter by. Pure.

const natural = new Intl.Collator("en", { numeric: true, sensitivity: "base" });

/** web2 before web10. */
export const compareNames = (a, b) => natural.compare(a, b);

/** The sort orders a person can pick, each with the label shown for it. */
export const SORTS = { cpu: "CPU", mem: "memory", name: "name" };

/**
 * Does the host match? `search` is words that must each appear in the name, the address or a
 * `key=value` label; `labels` is {key: value} that must all hold.
 */
export function matches(host, query) {
  for (const [key, value] of Object.entries(query.labels || {})) {
    if (value && host.labels[key] !== value) return false;
  }
  const words = (query.search || "").toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const text = [host.host, host.address, ...Object.entries(host.labels).map(([k, v]) => k + "=" + v)]
    .join(" ").toLowerCase();
  return words.every((word) => text.includes(word));
}

// Busy first; offline and never-sampled hosts after every online one, whatever they last showed.
function byValue(field) {
  return (a, b) => {
    const av = a.online && a[field] != null ? a[field] : -1;
    const bv = b.online && b[field] != null ? b[field] : -1;
    return bv - av || compareNames(a.host, b.host);
  };
}
const ORDERS = { cpu: byValue("total"), mem: byValue("mem"), name: (a, b) => compareNames(a.host, b.host) };

/** The hosts that match, in the query's order (`sort`: cpu, mem or name). */
export function queryHosts(hosts, query) {
  const found = [];
  for (const host of hosts.values()) if (matches(host, query)) found.push(host);
  return found.sort(ORDERS[query.sort] || ORDERS.name);
}

/** The `n` online hosts with the highest CPU. */
export function topByCpu(hosts, n) {
  return [...hosts.values()].filter((h) => h.online && h.total != null).sort(ORDERS.cpu).slice(0, n);
}

/** Every label key with its values and how many hosts have each: Map key -> Map value -> count. */
export function labelIndex(hosts) {
  const index = new Map();
  for (const host of hosts.values()) {
    for (const [key, value] of Object.entries(host.labels)) {
      if (!index.has(key)) index.set(key, new Map());
      const values = index.get(key);
      values.set(value, (values.get(value) || 0) + 1);
    }
  }
  return new Map([...index].sort(([a], [b]) => compareNames(a, b)).map(
    ([key, values]) => [key, new Map([...values].sort(([a], [b]) => compareNames(a, b)))]));
}

/** The one label filter a query amounts to ([key, value]), or null when it is more or other than that. */
export function soleLabel(query) {
  if ((query.search || "").trim()) return null;
  const set = Object.entries(query.labels || {}).filter(([, v]) => v);
  return set.length === 1 ? set[0] : null;
}
