// Target expressions from a set of hosts: fold names into the node-set form the gateway expands
// (`web[01-20]`, `10.0.0.[1-40,42]`), or name a label selector (`@role=web`). Pure.

const FOLDABLE = /^[A-Za-z0-9._-]+$/; // anything else (IPv6, odd names) is written as it is
const LAST_NUMBER = /^(.*?)(\d+)(\D*)$/;

/** The numbers as ranges: [1,2,3,7] -> "1-3,7", each number padded to `width` digits. */
export function ranges(numbers, width = 0) {
  const sorted = [...new Set(numbers)].sort((a, b) => a - b);
  const pad = (n) => String(n).padStart(width, "0");
  const parts = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j += 1;
    parts.push(i === j ? pad(sorted[i]) : pad(sorted[i]) + "-" + pad(sorted[j]));
    i = j + 1;
  }
  return parts.join(",");
}

/**
 * Fold host names into a short expression: `web01..web20` -> `web[01-20]`, addresses by their last
 * octet. Numbers written with leading zeros keep their width, as the gateway expands them.
 */
export function foldHosts(names) {
  const groups = new Map(); // prefix \0 suffix \0 width -> {prefix, suffix, width, numbers}
  const plain = [];
  const group = (prefix, suffix, width) => {
    const key = prefix + "\0" + suffix + "\0" + width;
    if (!groups.has(key)) groups.set(key, { prefix, suffix, width, numbers: [] });
    return groups.get(key);
  };
  const unpadded = [];
  for (const name of new Set(names)) {
    const match = FOLDABLE.test(name) ? LAST_NUMBER.exec(name) : null;
    if (!match || match[2].length > 9) { plain.push(name); continue; }
    const [, prefix, digits, suffix] = match;
    if (digits.length > 1 && digits[0] === "0") group(prefix, suffix, digits.length).numbers.push(Number(digits));
    else unpadded.push({ prefix, suffix, digits });
  }
  // "10" belongs with "01".."09" when those are written two digits wide.
  for (const { prefix, suffix, digits } of unpadded) {
    const padded = groups.get(prefix + "\0" + suffix + "\0" + digits.length);
    (padded || group(prefix, suffix, 0)).numbers.push(Number(digits));
  }
  const terms = [];
  for (const { prefix, suffix, width, numbers } of groups.values()) {
    if (numbers.length === 1) terms.push(prefix + String(numbers[0]).padStart(width, "0") + suffix);
    else terms.push(prefix + "[" + ranges(numbers, width) + "]" + suffix);
  }
  const natural = new Intl.Collator("en", { numeric: true });
  return [...terms.sort(natural.compare), ...plain.sort(natural.compare)].join(",");
}

/** How exec reaches a host: its agent's address, else its name. */
export const addressOf = (host) => host.address || host.host;

/** The target expression for these host records. */
export function targetFor(hosts) {
  return foldHosts(hosts.map(addressOf));
}

/** `@key=value` for a single label filter, which the gateway resolves to the online hosts with it. */
export function labelSelector(key, value) {
  return "@" + key + "=" + value;
}
