// The fleet overview: one canvas, a cell per host coloured by CPU, offline hosts crossed out, hosts
// where an alert fires outlined in the colour of its worst severity.
// Hover (or tap) shows the host; click selects, shift/ctrl-click (or a tap) adds, drag selects a
// rectangle, double-click opens the host's chart. Only the cells of hosts that changed are repainted, in the
// next animation frame.
import { $, h, onNextFrame, onResize } from "./dom.js";
import { compareNames } from "./hostquery.js";
import { gridLayout, cellOrigin, cellAt, cellsIn } from "./fleetgrid.js";
import { cpuColor, cpuGradient, percent, load, lastSeen } from "./format.js";
import { watchedNames, openHost } from "./watched.js";
import { outlineOf } from "./alertsmodel.js";

const OFFLINE_FILL = "#1b2128";
const OFFLINE_MARK = "#a0484a";
const UNSAMPLED = "#3a4654";
const SELECTED = "#ffffff";
const WATCHED = "#58a6ff";
const ALERT = { critical: "#f85149", warning: "#d29922", info: "#58a6ff", silenced: "#7d8b99" };
const ALERT_INNER = "#0f1419"; // a dark ring inside the outline, so it shows on a cell of any colour
const ALERT_ORDER = Object.keys(ALERT);

// A cell's colour for each tenth of a percent (what compact frames carry), made once.
const FILLS = [];
const fillOf = (total) => {
  const tenths = Math.round(Math.min(100, Math.max(0, total)) * 10);
  return FILLS[tenths] ?? (FILLS[tenths] = cpuColor(tenths / 10));
};

export function fleetView(store) {
  const box = $("fleet-box");
  const canvas = $("fleet-canvas");
  const tip = $("fleet-tip");
  const marquee = $("fleet-marquee");
  const ctx = canvas.getContext("2d");
  $("fleet-scale").style.background = cpuGradient();

  let order = []; // host names in cell order
  const index = new Map(); // name -> cell index
  let layout = null;
  let drawn = 0; // cells painted by the last full draw
  let relayout = true;
  const dirty = new Set();
  // What each cell shows now (its fill, and its marks as bits), so a host whose values changed but
  // whose look did not is not painted again: most of a tick's 10,000 changes move no colour.
  let shownFill = [];
  let shownMarks = new Uint8Array(0);
  let hovered = null;
  const schedule = onNextFrame(draw);

  const watchedSet = () => watchedNames(store.get("watched"));

  function draw() {
    const hosts = store.get("hosts");
    if (relayout) {
      relayout = false;
      dirty.clear();
      order = [...hosts.keys()].sort(compareNames);
      index.clear();
      order.forEach((name, i) => index.set(name, i));
      const width = box.clientWidth;
      if (!width) { relayout = true; return; } // a hidden tab: drawn when shown
      const maxHeight = Math.max(140, Math.min(380, window.innerHeight * 0.42));
      layout = gridLayout(width, order.length, maxHeight);
      const dpr = window.devicePixelRatio || 1;
      canvas.style.width = layout.width + "px";
      canvas.style.height = layout.height + "px";
      canvas.width = Math.round(layout.width * dpr);
      canvas.height = Math.round(layout.height * dpr);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, layout.width, layout.height);
      shownFill = new Array(order.length);
      shownMarks = new Uint8Array(order.length);
      const selection = store.get("selection");
      const watched = watchedSet();
      order.forEach((name, i) => paint(i, hosts.get(name), selection, watched));
      drawn = order.length;
      canvas.dataset.cells = String(drawn);
      $("fleet-empty").hidden = order.length > 0;
    } else {
      const selection = store.get("selection");
      const watched = watchedSet();
      for (const name of dirty) {
        const i = index.get(name);
        if (i !== undefined) paint(i, hosts.get(name), selection, watched);
      }
    }
    dirty.clear();
  }

  function paint(i, host, selection, watched) {
    const fill = !host.online ? OFFLINE_FILL : host.total == null ? UNSAMPLED : fillOf(host.total);
    const alert = outlineOf(store.get("alerts"), host.host);
    const marks = (alert ? 1 + ALERT_ORDER.indexOf(alert) : 0) | (selection.has(host.host) ? 8 : 0)
      | (watched.has(host.host) ? 16 : 0);
    if (shownFill[i] === fill && shownMarks[i] === marks) return;
    shownFill[i] = fill;
    shownMarks[i] = marks;
    const { x, y } = cellOrigin(layout, i);
    const s = layout.size;
    ctx.clearRect(x, y, s, s);
    if (!host.online) {
      ctx.fillStyle = OFFLINE_FILL;
      ctx.fillRect(x, y, s, s);
      ctx.strokeStyle = OFFLINE_MARK;
      ctx.lineWidth = Math.max(1, s / 10);
      ctx.beginPath();
      ctx.moveTo(x + s * 0.25, y + s * 0.25);
      ctx.lineTo(x + s * 0.75, y + s * 0.75);
      ctx.moveTo(x + s * 0.75, y + s * 0.25);
      ctx.lineTo(x + s * 0.25, y + s * 0.75);
      ctx.stroke();
    } else if (host.total == null) {
      ctx.strokeStyle = UNSAMPLED;
      ctx.lineWidth = 1;
      ctx.strokeRect(x + 0.5, y + 0.5, s - 1, s - 1);
    } else {
      ctx.fillStyle = fill;
      ctx.fillRect(x, y, s, s);
    }
    if (alert) {
      ctx.strokeStyle = ALERT_INNER;
      ctx.lineWidth = 1;
      ctx.strokeRect(x + 2.5, y + 2.5, s - 5, s - 5);
      ctx.strokeStyle = ALERT[alert];
      ctx.lineWidth = 2;
      ctx.strokeRect(x + 1, y + 1, s - 2, s - 2);
    }
    if (marks & 8) {
      // Inside an alert's outline, so both show.
      const inset = alert && s >= 14 ? 4 : 1;
      ctx.strokeStyle = SELECTED;
      ctx.lineWidth = 2;
      ctx.strokeRect(x + inset, y + inset, s - 2 * inset, s - 2 * inset);
    }
    if (marks & 16) {
      const t = Math.max(4, s / 3);
      ctx.fillStyle = WATCHED;
      ctx.beginPath();
      ctx.moveTo(x + s - t, y);
      ctx.lineTo(x + s, y);
      ctx.lineTo(x + s, y + t);
      ctx.fill();
    }
  }

  // ------------------------------------------------------------------ data and selection changes
  store.subscribe("hosts", (hosts, change) => {
    if (change.added) relayout = true;
    else for (const name of change.changed) dirty.add(name);
    if (hovered && change.changed.has(hovered)) showTip(hovered);
    schedule();
  });
  const markDiff = (a, b) => {
    for (const name of a) if (!b.has(name)) dirty.add(name);
    for (const name of b) if (!a.has(name)) dirty.add(name);
    schedule();
  };
  store.subscribe("alerts", (model, change) => {
    for (const name of change.hosts) dirty.add(name);
    schedule();
  });
  store.subscribe("selection", (now, before) => markDiff(before || new Set(), now));
  let lastWatched = watchedSet();
  store.subscribe("watched", () => {
    const now = watchedSet();
    markDiff(lastWatched, now);
    lastWatched = now;
  });
  store.subscribe("stats", (stats) => {
    $("fleet-online").textContent = stats.online + " online";
    $("fleet-offline").textContent = stats.offline + " offline";
    $("fleet-offline").classList.toggle("has-offline", stats.offline > 0);
  });
  let lastWidth = 0;
  onResize(box, () => {
    if (box.clientWidth === lastWidth) return;
    lastWidth = box.clientWidth;
    relayout = true;
    schedule();
  });

  // ------------------------------------------------------------------ hover and tap
  function hostAt(event) {
    if (!layout) return null;
    const rect = canvas.getBoundingClientRect();
    const i = cellAt(layout, event.clientX - rect.left, event.clientY - rect.top);
    return i < 0 ? null : order[i];
  }

  function showTip(name) {
    const host = store.get("hosts").get(name);
    if (!host) { hideTip(); return; }
    hovered = name;
    const labels = Object.entries(host.labels).map(([k, v]) => h("span", { class: "chip" }, k + "=" + v));
    tip.replaceChildren(...[
      h("div", { class: "tip-head" }, h("strong", null, host.host),
        h("span", { class: host.online ? "tone-good" : "tone-bad" }, host.online ? "online" : "offline")),
      h("div", null, "CPU " + percent(host.total, 1) + " · mem " + percent(host.mem) + " · load " + load(host.load1) +
        (host.disk != null ? " · disk " + percent(host.disk) : "") + (host.cpus ? " · " + host.cpus + " cores" : "")),
      host.online ? null : h("div", { class: "muted" }, lastSeen(host.lastSeen) + "; values as last seen"),
      host.address && host.address !== host.host ? h("div", { class: "muted" }, "address " + host.address) : null,
      labels.length ? h("div", { class: "chips" }, labels) : null,
      alertLine(store.get("alerts"), name),
    ].filter(Boolean));
    tip.hidden = false;
    const i = index.get(name);
    const { x, y } = cellOrigin(layout, i);
    const left = Math.min(Math.max(0, x + layout.size / 2 - tip.offsetWidth / 2), box.clientWidth - tip.offsetWidth);
    const below = y + layout.size + 6;
    const top = below + tip.offsetHeight > layout.height + 40 && y > tip.offsetHeight + 6 ? y - tip.offsetHeight - 6 : below;
    tip.style.transform = "translate(" + Math.max(0, left) + "px," + top + "px)";
  }

  function hideTip() {
    hovered = null;
    tip.hidden = true;
  }

  // ------------------------------------------------------------------ picking hosts
  let press = null; // {x, y, additive, dragging}

  function local(event) {
    const rect = canvas.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    const { x, y } = local(event);
    // On a touch screen there is no shift key: each tap adds or removes one host.
    const additive = event.shiftKey || event.ctrlKey || event.metaKey || event.pointerType === "touch";
    press = { x, y, additive, dragging: false };
    canvas.setPointerCapture(event.pointerId);
  });

  canvas.addEventListener("pointermove", (event) => {
    if (press) {
      const { x, y } = local(event);
      if (!press.dragging && Math.hypot(x - press.x, y - press.y) > 5) { press.dragging = true; hideTip(); }
      if (press.dragging) {
        Object.assign(marquee.style, {
          left: Math.min(x, press.x) + "px", top: Math.min(y, press.y) + "px",
          width: Math.abs(x - press.x) + "px", height: Math.abs(y - press.y) + "px",
        });
        marquee.hidden = false;
      }
      return;
    }
    const name = hostAt(event);
    if (name === hovered) return;
    if (name) showTip(name);
    else hideTip();
  });

  canvas.addEventListener("pointerup", (event) => {
    if (!press) return;
    const { additive, dragging } = press;
    const start = press;
    press = null;
    marquee.hidden = true;
    const selection = store.get("selection");
    let next;
    if (dragging) {
      const { x, y } = local(event);
      const picked = cellsIn(layout, start.x, start.y, x, y).map((i) => order[i]);
      next = new Set(additive ? [...selection, ...picked] : picked);
    } else {
      const name = hostAt(event);
      if (name) showTip(name);
      if (!name) next = additive ? selection : new Set();
      else if (additive) {
        next = new Set(selection);
        if (next.has(name)) next.delete(name); else next.add(name);
      } else next = selection.size === 1 && selection.has(name) ? new Set() : new Set([name]);
    }
    if (next !== selection) store.set("selection", next, selection);
  });

  canvas.addEventListener("pointercancel", () => { press = null; marquee.hidden = true; });
  canvas.addEventListener("pointerleave", () => { if (!press) hideTip(); });
  canvas.addEventListener("dblclick", (event) => {
    const name = hostAt(event);
    if (name) openHost(store, name);
  });

  // Read-only hooks for tests and benchmarks.
  window.fleetdeckFleet = {
    /** Cells painted by the last full draw: one per host. */
    count: () => drawn,
    /** The outline a host's cell has: its worst alert's severity, "silenced", or null. */
    outline: (name) => outlineOf(store.get("alerts"), name),
    /** The names of the selected hosts. */
    selected: () => [...store.get("selection")],
    /** The page coordinates of a host's cell centre, or null. */
    cell(name) {
      const i = index.get(name);
      if (i === undefined || !layout) return null;
      const rect = canvas.getBoundingClientRect();
      const { x, y } = cellOrigin(layout, i);
      return { x: rect.left + x + layout.size / 2, y: rect.top + y + layout.size / 2, size: layout.size };
    },
  };
}

/** The tip's line naming the alerts firing on a host, or null. */
function alertLine(model, name) {
  const rules = model.byHost.get(name);
  if (!rules) return null;
  const named = [...rules.values()].map((a) => a.rule + " (" + (a.silenced ? "silenced" : a.severity) + ")");
  return h("div", { class: "tip-alerts" }, "alerts: " + named.join(", "));
}
