// The dashboard's entry point: read the protocol's values from the server, make the store and the
// connection, start each panel, connect.
import { createStore } from "./store.js";
import { createConnection } from "./connection.js";
import { layout } from "./layout.js";
import { fleetFeed } from "./fleetfeed.js";
import { fleetView } from "./fleetview.js";
import { fleetChart } from "./fleetchart.js";
import { selectionBar } from "./selection.js";
import { hostList } from "./hostlist.js";
import { hostDetail } from "./hostdetail.js";
import { savedPins } from "./watched.js";
import { execPanel } from "./exec.js";
import { jobsList } from "./jobs.js";
import { chatPanel } from "./chat.js";

/** GET /api/protocol, retried while the gateway restarts; statuses, states and limits are the server's. */
async function loadProtocol() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const answer = await fetch("/api/protocol", { credentials: "same-origin" });
      if (answer.status === 401) { location.replace("/login"); return null; }
      if (answer.ok) return answer.json();
    } catch (e) { /* gateway restarting: try again */ }
    await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** attempt)));
  }
}

async function main() {
  const protocol = await loadProtocol();
  if (!protocol) return;
  const store = createStore({
    protocol,
    me: null,
    conn: { state: "connecting", text: "connecting…" },
    hosts: new Map(),
    stats: null,
    fleetSeries: [],
    query: { search: "", labels: {}, sort: "cpu" },
    listed: [],
    selection: new Set(),
    watched: { opened: null, pinned: savedPins() },
    jobs: new Map(),
    currentJob: null,
    target: null,
    tab: "fleet",
  });
  const conn = createConnection(store);
  conn.on("hello", (frame) => {
    store.set("me", { user: frame.user, role: frame.role });
    conn.online("live");
  });
  conn.on("error", (frame) => console.warn("fleetdeck:", frame.code, frame.message, frame.ref || ""));

  layout(store);
  fleetFeed(store, conn);
  fleetView(store);
  fleetChart(store);
  selectionBar(store);
  hostList(store);
  hostDetail(store, conn);
  const exec = execPanel(store, conn);
  jobsList(store, conn, exec);
  chatPanel(store, conn);
  store.set("selection", new Set(), new Set());
  store.set("watched", store.get("watched"));
  conn.connect();
}

main();
