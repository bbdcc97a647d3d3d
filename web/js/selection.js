// Picked hosts become the exec target in one click: the overview's selection, the top 10 by CPU,
// or whatever the host list's filter shows (`@key=value` when the filter is one label). Each asks
// the run panel to fill its targets field through the store's `target` key.
import { $ } from "./dom.js";
import { topByCpu, soleLabel } from "./hostquery.js";
import { targetFor, labelSelector } from "./targets.js";

const TOP = 10;

export function selectionBar(store) {
  const hostsOf = (names) => {
    const hosts = store.get("hosts");
    return names.map((name) => hosts.get(name)).filter(Boolean);
  };
  const target = (expr, what) => store.set("target", { expr, what });

  store.subscribe("selection", (selection) => {
    const n = selection.size;
    $("selection-count").textContent = n ? n + " selected" : "none selected";
    $("target-selection").disabled = !n;
    $("clear-selection").disabled = !n;
  });

  $("target-selection").addEventListener("click", () => {
    const picked = hostsOf([...store.get("selection")]);
    if (picked.length) target(targetFor(picked), picked.length + " selected " + (picked.length === 1 ? "host" : "hosts"));
  });

  $("clear-selection").addEventListener("click", () => store.set("selection", new Set(), store.get("selection")));

  $("target-top").addEventListener("click", () => {
    const top = topByCpu(store.get("hosts"), TOP);
    if (!top.length) return;
    store.set("selection", new Set(top.map((h) => h.host)), store.get("selection"));
    target(targetFor(top), "the top " + top.length + " hosts by CPU");
  });

  $("target-filter").addEventListener("click", () => {
    const query = store.get("query");
    const label = soleLabel(query);
    if (label) { target(labelSelector(...label), "the online hosts labelled " + label.join("=")); return; }
    const listed = hostsOf(store.get("listed"));
    if (listed.length) target(targetFor(listed), "the " + listed.length + " hosts the list shows");
  });

  $("select-filter").addEventListener("click", () => {
    store.set("selection", new Set(store.get("listed")), store.get("selection"));
  });
}
