// A host's file systems for its chart card: read from GET /api/hosts/{host} (the agent sends them
// with its heartbeat) when the card opens and every 30 s while it stays open.
import { h } from "./dom.js";
import { percent, bytes } from "./format.js";

const REFRESH_MS = 30_000;

/** The host's local file systems, fullest first; [] if it has none or the gateway cannot say. */
async function fetchMounts(host) {
  try {
    const answer = await fetch("/api/hosts/" + encodeURIComponent(host), { credentials: "same-origin" });
    if (!answer.ok) return [];
    return (await answer.json()).mounts || [];
  } catch {
    return [];
  }
}

/** Fills `list` with a row per file system and keeps it fresh; returns a function that stops it. */
export function followMounts(host, list) {
  let stopped = false;
  async function refresh() {
    const mounts = await fetchMounts(host);
    if (stopped) return;
    list.replaceChildren(...mounts.map((m) => h("li", { class: m.used_pct >= 90 ? "mount full" : "mount", dataset: { mount: m.mount } },
      h("span", { class: "mount-path", title: m.mount }, m.mount),
      h("span", { class: "mount-bar" }, h("span", { style: { width: Math.min(100, m.used_pct) + "%" } })),
      h("span", { class: "mount-used" }, percent(m.used_pct)),
      h("span", { class: "mount-free" }, bytes(m.free_bytes) + " free"))));
    list.hidden = !mounts.length;
  }
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => { stopped = true; clearInterval(timer); };
}
