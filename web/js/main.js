// The dashboard's entry point: read the protocol's values from the server, make the store and the
// connection, start each panel, connect. The panels that draw with ECharts or xterm.js load those
// big libraries while the fleet is already connecting and drawing.
import { createStore } from "./store.js";
import { createConnection } from "./connection.js";
import { layout } from "./layout.js";
import { fleetFeed } from "./fleetfeed.js";
import { fleetView } from "./fleetview.js";
import { selectionBar } from "./selection.js";
import { hostList } from "./hostlist.js";
import { savedPins } from "./watched.js";
import { jobsList } from "./jobs.js";
import { chatPanel } from "./chat.js";
import { zoneToggle } from "./timezone.js";
import { alertModel } from "./alertsmodel.js";
import { alertsFeed } from "./alertsfeed.js";
import { alertsPanel } from "./alertspanel.js";
import { shortcuts } from "./shortcuts.js";

const charted = Promise.all([import("./fleetchart.js"), import("./hostdetail.js"), import("./exec.js"),
  import("./termpanel.js"), import("./recordings.js"), import("./copyform.js")]);

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
    showJob: null,
    target: null,
    tab: "fleet",
    alerts: alertModel(),
    alertRules: { metrics: new Map(), error: null },
    shell: null,
  });
  const conn = createConnection(store);
  conn.on("hello", (frame) => {
    store.set("me", { user: frame.user, role: frame.role });
    conn.online("live");
  });
  conn.on("error", (frame) => console.warn("fleetdeck:", frame.code, frame.message, frame.ref || ""));

  layout(store);
  shortcuts(store);
  zoneToggle();
  fleetFeed(store, conn);
  fleetView(store);
  selectionBar(store);
  hostList(store);
  jobsList(store, conn);
  chatPanel(store, conn);
  alertsPanel(store, alertsFeed(store, conn));
  conn.connect();

  const [{ fleetChart }, { hostDetail }, { execPanel }, { termPanel }, { recordingsPanel }, { copyForm }] = await charted;
  fleetChart(store);
  hostDetail(store, conn);
  copyForm(store, execPanel(store, conn));
  termPanel(store, conn);
  recordingsPanel(store);
  // Every panel is wired from here on; the browser tests wait for this before they click.
  document.documentElement.dataset.ready = "true";
}

main();
