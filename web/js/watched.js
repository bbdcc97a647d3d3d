// The hosts whose charts are open: `opened` (the one a person looked at last; opening another
// replaces it) and `pinned` (kept open, also across reloads). Actions on the store's `watched` key.

/** Every watched host. */
export function watchedNames(watched) {
  const names = new Set(watched.pinned);
  if (watched.opened) names.add(watched.opened);
  return names;
}

/** Open a host's chart, in place of the last one opened and not pinned. */
export function openHost(store, name) {
  store.set("watched", { ...store.get("watched"), opened: name });
}

/** Pin a host (its chart stays open), or unpin it (its chart closes). */
export function togglePin(store, name) {
  const { opened, pinned } = store.get("watched");
  const next = new Set(pinned);
  if (next.has(name)) next.delete(name); else next.add(name);
  store.set("watched", { opened: opened === name ? null : opened, pinned: next });
}

/** Close a host's chart, pinned or not. */
export function closeHost(store, name) {
  const { opened, pinned } = store.get("watched");
  const next = new Set(pinned);
  next.delete(name);
  store.set("watched", { opened: opened === name ? null : opened, pinned: next });
}

const PINS_KEY = "fleetdeck.pinned";

/** The pins this browser kept, for the store's initial `watched`. */
export function savedPins() {
  try { return new Set(JSON.parse(localStorage.getItem(PINS_KEY) || "[]")); } catch (e) { return new Set(); }
}

/** Keep the pins for the next visit. */
export function savePins(pinned) {
  localStorage.setItem(PINS_KEY, JSON.stringify([...pinned]));
}
