// Charts of the hosts a person opened or pinned, and only those: a card with an ECharts chart is
// made when a host is opened and disposed of when it is closed, and `cpu` is subscribed with
// `hosts` = exactly those hosts (no host open: not subscribed at all). Per-core lines on demand,
// with a legend. An offline host says when it was last seen. Under the chart: disk, network and
// uptime from the latest sample, and the host's file systems (hostmounts.js). Range buttons and
// drag-to-zoom show stored history (historyview.js) with the highest value of each step as a faint
// line; marks show the jobs that ran on the host (jobmarks.js). "Shell" opens a terminal on the host
// (termpanel.js); viewers see it disabled with the reason.
import { $, h, onNextFrame, onResize } from "./dom.js";
import { echarts } from "./vendor.js";
import { xAxis, percentAxis, tooltip, legend, line, themeColor, onThemeChange } from "./chartstyle.js";
import { compareNames } from "./hostquery.js";
import { percent, load, lastSeen, rate, duration } from "./format.js";
import { followMounts } from "./hostmounts.js";
import { watchedNames, togglePin, closeHost, savePins } from "./watched.js";
import { points } from "./timeaxis.js";
import { historyView } from "./historyview.js";
import { hostHistory } from "./historyapi.js";
import { jobMarks } from "./jobmarks.js";
import { onZoneChange } from "./timezone.js";

const POINTS = 900; // samples kept per open host: 15 minutes at 1 s

/** Samples merged by time, each once, oldest first, at most POINTS. */
function mergeSamples(have, more) {
  const byTs = new Map();
  for (const s of have) byTs.set(s.ts, s);
  for (const s of more) byTs.set(s.ts, s);
  return [...byTs.values()].sort((a, b) => a.ts - b.ts).slice(-POINTS);
}

export function hostDetail(store, conn) {
  const container = $("details");
  const cards = new Map(); // host -> {el, box, status, now, pin, chart, resize, samples, cores}
  let subscribed = null; // the host list cpu is narrowed to, as last sent

  const watchedHosts = () => [...watchedNames(store.get("watched"))].sort(compareNames);

  // ---------------------------------------------------------------- the cpu subscription
  function subscribe() {
    const hosts = watchedHosts();
    const key = hosts.join("\n");
    if (key === subscribed) return;
    if (hosts.length) {
      if (conn.send({ type: "subscribe", topics: ["cpu"], hosts, ref: conn.nextRef("cpu") })) subscribed = key;
    } else if (subscribed !== null) {
      if (conn.send({ type: "unsubscribe", topics: ["cpu"], ref: conn.nextRef("cpu") })) subscribed = null;
    }
  }
  conn.whenLive(() => { subscribed = null; subscribe(); });

  // ---------------------------------------------------------------- cards
  function open(host) {
    const status = h("span", { class: "status" });
    const now = h("span", { class: "now" });
    const cores = h("button", { type: "button", class: "cores", title: "a line per core" }, "cores");
    const pin = h("button", { type: "button", class: "pin", title: "keep this chart open" }, "pin");
    const close = h("button", { type: "button", class: "close", title: "close", "aria-label": "close" }, "×");
    const shell = h("button", { type: "button", class: "shell", onclick: () => store.set("shell", host) }, "Shell");
    const box = h("div", { class: "chart" });
    const machine = h("div", { class: "machine" });
    const mounts = h("ul", { class: "mounts", hidden: true });
    const el = h("article", { class: "chart-card", dataset: { host, points: "0" } },
      h("header", null, h("span", { class: "host" }, host), h("span", { class: "spacer" }), shell, cores, pin, close),
      h("div", { class: "facts" }, status, now),
      box, machine, mounts);
    const card = { el, box, status, now, machine, pin, shell, chart: null, resize: null, samples: [], cores: false };
    const redraw = () => { if (cards.get(host) === card) draw(card, true); };
    // A new range asks for the marks of that range too.
    card.history = historyView(el, (window) => hostHistory(host, window), () => { card.marks.refresh(); redraw(); });
    card.marks = jobMarks(store, host, el, redraw, () => card.history.shown());
    box.before(card.history.bar);
    cores.addEventListener("click", () => {
      card.cores = !card.cores;
      cores.textContent = card.cores ? "total" : "cores";
      cores.setAttribute("aria-pressed", String(card.cores));
      el.classList.toggle("with-cores", card.cores);
      card.chart.resize();
      draw(card, true);
    });
    pin.addEventListener("click", () => togglePin(store, host));
    close.addEventListener("click", () => closeHost(store, host));
    cards.set(host, card);
    place();
    card.chart = echarts.init(box, null, { renderer: "canvas" });
    card.resize = onResize(box, () => card.chart.resize());
    card.unfollow = followMounts(host, mounts);
    card.history.attach(card.chart);
    card.marks.attach(card.chart);
    updateStatus(host);
    mayShell(card);
  }

  // Operators open shells; everyone else sees why they cannot.
  function mayShell(card) {
    const me = store.get("me");
    const why = !me ? "connecting to the gateway…"
      : me.role !== "operator" ? "You are logged in as " + me.user + ", a viewer: only operators open shells on hosts." : "";
    card.shell.disabled = !!why;
    card.shell.title = why || "open a terminal on this host";
  }
  store.subscribe("me", () => { for (const card of cards.values()) mayShell(card); });

  function dispose(host) {
    const card = cards.get(host);
    card.resize.disconnect();
    card.unfollow();
    card.marks.dispose();
    card.chart.dispose();
    card.el.remove();
    cards.delete(host);
  }

  // Cards in host order, the one just opened (not pinned) first.
  function place() {
    const { opened } = store.get("watched");
    const names = [...cards.keys()].sort(compareNames);
    if (opened && cards.has(opened)) {
      names.splice(names.indexOf(opened), 1);
      names.unshift(opened);
    }
    container.replaceChildren(...names.map((name) => cards.get(name).el));
    $("pane-detail").hidden = !names.length;
  }

  store.subscribe("watched", sync);
  function sync(watched) {
    savePins(watched.pinned);
    const want = new Set(watchedHosts());
    for (const host of [...cards.keys()]) if (!want.has(host)) dispose(host);
    let fresh = false;
    for (const host of want) {
      if (!cards.has(host)) { open(host); fresh = true; }
    }
    for (const [host, card] of cards) {
      card.pin.classList.toggle("on", watched.pinned.has(host));
      card.pin.setAttribute("aria-pressed", String(watched.pinned.has(host)));
    }
    place();
    subscribe();
    if (watched.opened && cards.has(watched.opened) && fresh) {
      cards.get(watched.opened).el.scrollIntoView({ block: "nearest" });
    }
  }

  // ---------------------------------------------------------------- samples
  function updateStatus(host) {
    const card = cards.get(host);
    const info = store.get("hosts").get(host);
    const online = info ? info.online : true;
    card.el.classList.toggle("offline", !online);
    card.status.textContent = online ? "" : "offline · " + lastSeen(info && info.lastSeen);
    const last = card.samples[card.samples.length - 1];
    if (last) {
      card.now.textContent = (online ? "" : "last: ") + percent(last.total, 1) + " · mem " + percent(last.mem) +
        " · load " + load(last.load[0]);
      showMachine(card, last);
    }
  }

  // Fields of protocol v1.2: an older agent's samples have none, and then the line stays empty.
  function showMachine(card, last) {
    const facts = [];
    if (last.disk != null) facts.push(h("span", { class: "disk" }, "disk " + percent(last.disk)));
    if (last.net_rx != null || last.net_tx != null) {
      facts.push(h("span", { class: "net", title: "network, received and sent (loopback left out)" },
        "↓ " + rate(last.net_rx) + " ↑ " + rate(last.net_tx)));
    }
    if (last.uptime != null) facts.push(h("span", { class: "uptime" }, "up " + duration(last.uptime)));
    card.machine.replaceChildren(...facts);
  }

  conn.on("history", (frame) => {
    const card = cards.get(frame.host);
    if (!card) return;
    card.samples = mergeSamples(card.samples, frame.samples);
    updateStatus(frame.host);
    schedule(card);
  });

  conn.on("cpu", (frame) => {
    const card = cards.get(frame.host);
    if (!card) return;
    const last = card.samples[card.samples.length - 1];
    if (last && frame.ts <= last.ts) card.samples = mergeSamples(card.samples, [frame]);
    else {
      card.samples.push(frame);
      if (card.samples.length > POINTS) card.samples.shift();
    }
    updateStatus(frame.host);
    schedule(card);
  });

  store.subscribe("hosts", (hosts, change) => {
    for (const host of cards.keys()) if (change.changed.has(host)) updateStatus(host);
  });
  // "last seen … ago" keeps counting while a host stays away.
  setInterval(() => {
    const hosts = store.get("hosts");
    for (const host of cards.keys()) if (hosts.get(host) && !hosts.get(host).online) updateStatus(host);
  }, 10_000);

  // ---------------------------------------------------------------- drawing
  const pending = new Set();
  const flush = onNextFrame(() => {
    for (const card of pending) if (cards.get(card.el.dataset.host) === card) draw(card, false);
    pending.clear();
  });
  function schedule(card) {
    pending.add(card);
    flush();
  }

  onZoneChange(() => { for (const card of cards.values()) draw(card, false); });
  onThemeChange(() => { for (const card of cards.values()) draw(card, false); });

  function draw(card, reshape) {
    const past = card.history.shown(); // null while live
    const samples = past ? past.samples : card.samples;
    const total = points(samples, (s) => s.total);
    const series = [line("total", total, { lineStyle: { width: 2 }, areaStyle: { opacity: 0.15 }, z: 3 })];
    const names = ["total"];
    if (past) {
      series.push(line("max", points(samples, (s) => s.total_max),
        { lineStyle: { width: 1, opacity: 0.45 }, color: themeColor("--bad") }));
    }
    if (card.cores && !past) {
      const count = samples.reduce((n, s) => Math.max(n, s.percpu.length), 0);
      for (let i = 0; i < count; i += 1) {
        names.push("cpu" + i);
        series.push(line("cpu" + i, points(samples, (s) => s.percpu[i] ?? null),
          { lineStyle: { width: 1, opacity: 0.7 } }));
      }
    }
    series.push(card.marks.series());
    const first = past ? past.since * 1000 : samples.length ? samples[0].ts * 1000 : Date.now();
    const last = past ? past.until * 1000 : samples.length ? samples[samples.length - 1].ts * 1000 : Date.now();
    card.chart.setOption({
      animation: false,
      grid: { left: 40, right: 10, top: card.cores ? 30 : 10, bottom: 22 },
      legend: card.cores ? legend(names) : { show: false },
      xAxis: xAxis(first, last),
      yAxis: percentAxis(),
      tooltip: tooltip(),
      series,
    }, { replaceMerge: reshape || series.length !== card.drawn ? ["series", "legend"] : [] });
    card.drawn = series.length;
    card.el.dataset.points = String(samples.length);
  }

  sync(store.get("watched"));
}
