// Searching, filtering and sorting the host list, and the label values to filter by. Pure.

const natural = new Intl.Collator("en", { numeric: true, sensitivity: "base" });

/** web2 before web10. */
export const compareNames = (a, b) => natural.compare(a, b);

/** The sort orders a person can pick, each with the label shown for it. */
export const SORTS = { cpu: "CPU", mem: "memory", name: "name" };

/** What a query asks of every host, worked out once for the whole list. */
function compile(query) {
  return {
    labels: Object.entries(query.labels || {}).filter(([, value]) => value),
    words: (query.search || "").toLowerCase().split(/\s+/).filter(Boolean),
  };
}

function fits(host, { labels, words }) {
  for (const [key, value] of labels) if (host.labels[key] !== value) return false;
  if (!words.length) return true;
  const text = [host.host, host.address, ...Object.entries(host.labels).map(([k, v]) => k + "=" + v)]
    .join(" ").toLowerCase();
  return words.every((word) => text.includes(word));
}

/**
 * Does the host match? `search` is words that must each appear in the name, the address or a
 * `key=value` label; `labels` is {key: value} that must all hold.
 */
export function matches(host, query) {
  return fits(host, compile(query));
}

// Each host's place in natural name order, worked out again only when a host is new to it: the
// collator is by far the dearest part of a sort, and at 10,000 hosts the list is sorted every second.
let nameRanks = new Map();
function ranks(hosts) {
  for (const name of hosts.keys()) {
    if (!nameRanks.has(name)) {
      nameRanks = new Map([...hosts.keys()].sort(compareNames).map((n, i) => [n, i]));
      break;
    }
  }
  return nameRanks;
}

// Busy first; offline and never-sampled hosts after every online one, whatever they last showed.
const VALUE_OF = {
  cpu: (h) => (h.online && h.total != null ? h.total : -1),
  mem: (h) => (h.online && h.mem != null ? h.mem : -1),
  name: () => 0,
};

/** The hosts that match, in the query's order (`sort`: cpu, mem or name), ties by name. */
export function queryHosts(hosts, query) {
  const wanted = compile(query);
  const every = !wanted.labels.length && !wanted.words.length;
  const found = [];
  for (const host of hosts.values()) if (every || fits(host, wanted)) found.push(host);
  const value = VALUE_OF[query.sort] || VALUE_OF.name;
  const rank = ranks(hosts);
  const values = new Float64Array(found.length);
  const places = new Float64Array(found.length);
  found.forEach((host, i) => { values[i] = value(host); places[i] = rank.get(host.host); });
  const order = Array.from(found.keys()).sort((i, j) => values[j] - values[i] || places[i] - places[j]);
  return order.map((i) => found[i]);
}

/** The `n` online hosts with the highest CPU. */
export function topByCpu(hosts, n) {
  return queryHosts(hosts, { sort: "cpu" }).filter((h) => h.online && h.total != null).slice(0, n);
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
