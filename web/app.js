"use strict";
// The fleetdeck dashboard: one WebSocket (reconnects with backoff), live CPU charts per host,
// host presence, team chat, and a batch-exec terminal that resumes a job after a reconnect.
(function () {
  const HISTORY_POINTS = 900;
  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- connection
  const state = { ws: null, attempt: 0, refs: 0, user: null, role: null };
  const handlers = {};

  function setConnState(name, text) {
    const badge = $("conn-state");
    badge.className = "badge " + name;
    badge.dataset.state = name;
    badge.textContent = text;
  }

  function send(frame) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
    state.ws.send(JSON.stringify(frame));
    return true;
  }

  function nextRef(prefix) {
    state.refs += 1;
    return prefix + state.refs;
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + "/ws");
    state.ws = ws;
    setConnState("connecting", "connecting…");
    ws.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      const handler = handlers[frame.type];
      if (handler) handler(frame);
    };
    ws.onclose = () => {
      state.ws = null;
      scheduleReconnect();
    };
  }

  async function scheduleReconnect() {
    // A refused handshake looks like any other close; ask the API whether we are still logged in.
    try {
      const me = await fetch("/api/me", { credentials: "same-origin" });
      if (me.status === 401) { location.replace("/login"); return; }
    } catch (e) { /* gateway down: keep retrying */ }
    state.attempt += 1;
    const delay = Math.min(10000, 500 * 2 ** Math.min(state.attempt - 1, 5)) * (0.5 + Math.random() / 2);
    setConnState("reconnecting", "reconnecting in " + Math.ceil(delay / 1000) + "s");
    setTimeout(connect, delay);
  }

  handlers.hello = (frame) => {
    state.attempt = 0;
    state.user = frame.user;
    state.role = frame.role;
    $("whoami").textContent = frame.user + " (" + frame.role + ")";
    setConnState("online", "live");
    document.body.dataset.role = frame.role;
    $("exec-run").disabled = frame.role !== "operator";
    $("exec-cancel").disabled = true;
    send({ type: "subscribe", topics: ["cpu", "hosts", "chat", "jobs"] });
    exec.resume();
  };

  handlers.error = (frame) => {
    if (frame.ref && frame.ref.startsWith("exec")) exec.refused(frame);
    else if (frame.ref && frame.ref.startsWith("chat")) $("chat-error").textContent = frame.message;
    else console.warn("fleetdeck error", frame.code, frame.message);
  };

  // ---------------------------------------------------------------- charts
  const charts = new Map(); // host -> {card, chart, points, percpu, cores, online}

  function chartOptions(entry) {
    const series = [{
      name: "total", type: "line", showSymbol: false, data: entry.points,
      lineStyle: { width: 2 }, areaStyle: { opacity: 0.15 },
    }];
    if (entry.cores) {
      entry.percpu.forEach((points, i) => series.push({
        name: "cpu" + i, type: "line", showSymbol: false, data: points, lineStyle: { width: 1, opacity: 0.6 },
      }));
    }
    return {
      animation: false,
      grid: { left: 36, right: 8, top: 8, bottom: 22 },
      xAxis: { type: "time", axisLabel: { color: "#7d8b99", fontSize: 10 }, splitLine: { show: false } },
      yAxis: { type: "value", min: 0, max: 100, axisLabel: { color: "#7d8b99", fontSize: 10, formatter: "{value}%" },
               splitLine: { lineStyle: { color: "#263241" } } },
      tooltip: { trigger: "axis", valueFormatter: (v) => (v == null ? "" : v.toFixed(1) + "%") },
      series,
    };
  }

  function ensureChart(host) {
    let entry = charts.get(host);
    if (entry) return entry;
    const card = document.createElement("article");
    card.className = "chart-card";
    card.dataset.host = host;
    const header = document.createElement("header");
    const name = document.createElement("span");
    name.className = "host";
    name.textContent = host;
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.textContent = "cores";
    toggle.title = "show every core";
    const now = document.createElement("span");
    now.className = "now";
    header.append(name, toggle, now);
    const box = document.createElement("div");
    box.className = "chart";
    card.append(header, box);
    // Keep cards in host order.
    const sorted = [...charts.keys(), host].sort();
    const before = charts.get(sorted[sorted.indexOf(host) + 1]);
    $("charts").insertBefore(card, before ? before.card : null);
    $("no-hosts").hidden = true;
    entry = { card, box, now, chart: echarts.init(box, null, { renderer: "canvas" }), points: [], percpu: [],
              cores: false, dirty: true, lastTs: 0 };
    toggle.addEventListener("click", () => {
      entry.cores = !entry.cores;
      toggle.textContent = entry.cores ? "total" : "cores";
      entry.chart.setOption(chartOptions(entry), { replaceMerge: ["series"] });
    });
    charts.set(host, entry);
    return entry;
  }

  function addSample(entry, sample) {
    if (sample.ts <= entry.lastTs) return;
    entry.lastTs = sample.ts;
    const t = sample.ts * 1000;
    entry.points.push([t, sample.total]);
    sample.percpu.forEach((v, i) => {
      if (!entry.percpu[i]) entry.percpu[i] = [];
      entry.percpu[i].push([t, v]);
      if (entry.percpu[i].length > HISTORY_POINTS) entry.percpu[i].shift();
    });
    if (entry.points.length > HISTORY_POINTS) entry.points.shift();
    entry.now.textContent = sample.total.toFixed(1) + "% · mem " + sample.mem.toFixed(0) + "% · load " +
      sample.load[0].toFixed(2);
    entry.dirty = true;
  }

  handlers.history = (frame) => {
    const entry = ensureChart(frame.host);
    // Live samples may have arrived first: put the older history in front of them.
    const firstLive = entry.points.length ? entry.points[0][0] / 1000 : Infinity;
    const older = frame.samples.filter((s) => s.ts < firstLive);
    const live = { points: entry.points, percpu: entry.percpu, lastTs: entry.lastTs };
    entry.points = [];
    entry.percpu = [];
    entry.lastTs = 0;
    older.forEach((s) => addSample(entry, s));
    entry.points.push(...live.points);
    live.percpu.forEach((points, i) => { entry.percpu[i] = (entry.percpu[i] || []).concat(points); });
    entry.lastTs = Math.max(entry.lastTs, live.lastTs);
    entry.points.splice(0, Math.max(0, entry.points.length - HISTORY_POINTS));
    entry.percpu.forEach((points) => points.splice(0, Math.max(0, points.length - HISTORY_POINTS)));
    entry.dirty = true;
  };
  handlers.cpu = (frame) => addSample(ensureChart(frame.host), frame);

  function redraw() {
    charts.forEach((entry) => {
      if (!entry.dirty) return;
      entry.dirty = false;
      entry.chart.setOption(chartOptions(entry));
      entry.card.dataset.points = String(entry.points.length);
    });
  }
  setInterval(redraw, 500);
  window.addEventListener("resize", () => charts.forEach((e) => e.chart.resize()));

  // ---------------------------------------------------------------- hosts
  handlers.hosts = (frame) => {
    const list = $("host-list");
    list.replaceChildren();
    let online = 0;
    frame.hosts.forEach((h) => {
      const li = document.createElement("li");
      li.className = h.online ? "online" : "offline";
      li.dataset.host = h.host;
      const dot = document.createElement("span");
      dot.className = "dot";
      const name = document.createElement("span");
      name.textContent = h.host;
      const info = document.createElement("span");
      info.className = "muted";
      info.textContent = h.online ? h.cpus + " cpus" : "offline";
      li.append(dot, name, info);
      list.append(li);
      if (h.online) online += 1;
      const entry = ensureChart(h.host);
      entry.card.classList.toggle("offline", !h.online);
    });
    $("host-count").textContent = online + "/" + frame.hosts.length + " online";
  };

  // ---------------------------------------------------------------- chat
  const chatSeen = new Set();
  handlers.chat = (frame) => {
    if (frame.id) {
      if (chatSeen.has(frame.id)) return;
      chatSeen.add(frame.id);
    }
    const li = document.createElement("li");
    const ts = document.createElement("span");
    ts.className = "ts";
    ts.textContent = new Date(frame.ts * 1000).toLocaleTimeString();
    const from = document.createElement("span");
    from.className = "from";
    from.textContent = frame.from;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = frame.text;
    li.append(ts, from, text);
    const log = $("chat-log");
    log.append(li);
    while (log.children.length > 200) log.firstChild.remove();
    log.scrollTop = log.scrollHeight;
  };

  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("chat-input");
    const text = input.value.trim();
    if (!text) return;
    $("chat-error").textContent = "";
    if (send({ type: "chat", text, ref: nextRef("chat") })) input.value = "";
    else $("chat-error").textContent = "Not connected; the message was not sent.";
  });

  $("logout").addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
    location.replace("/login");
  });

  // ---------------------------------------------------------------- exec terminal
  const term = new Terminal({ convertEol: true, fontSize: 13, scrollback: 5000, disableStdin: true,
                              theme: { background: "#000000" } });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open($("terminal"));
  fit.fit();
  window.addEventListener("resize", () => fit.fit());
  window.fleetdeckTerminal = term; // lets tests read what the terminal shows

  // Statuses and their tones come from the server (/api/protocol); only the colours are ours.
  const ANSI = { good: 32, bad: 31, slow: 33, unreachable: 35, muted: 90 };
  const toneOf = (status) => protocol.status_tones[status] || "muted";
  const paint = (text, status) => "\x1b[" + (ANSI[toneOf(status)] || 0) + "m" + text + "\x1b[0m";
  const finished = (jobState) => protocol.finished_states.includes(jobState);
  // Output comes from hosts we do not control: no escape sequence of theirs may reach the terminal.
  const clean = (text) => String(text).replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g,
    (c) => "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0"));
  const pad = (text, width) => (text + " ".repeat(width)).slice(0, Math.max(width, text.length));

  const exec = {
    job: null, total: 0, lastSeq: 0, counts: {}, pendingRef: null, done: false, retryTargets: "",

    start(targets, command, timeout) {
      this.pendingRef = nextRef("exec");
      if (!send({ type: "exec", targets, command, timeout, ref: this.pendingRef })) {
        term.writeln(paint("not connected; nothing was run", "failed"));
        this.pendingRef = null;
      }
    },

    refused(frame) {
      term.writeln(paint("refused: " + clean(frame.message), "failed"));
      this.pendingRef = null;
      if (frame.code === "not_found") sessionStorage.removeItem("fleetdeck.job");
    },

    accepted(frame) {
      this.job = frame.job;
      this.command = frame.command;
      this.timeout = frame.timeout;
      this.total = frame.hosts;
      this.lastSeq = 0;
      this.counts = {};
      this.done = false;
      this.pendingRef = null;
      $("exec-outputs").replaceChildren();
      term.writeln("");
      term.writeln("\x1b[1m$ " + clean(frame.command) + "\x1b[0m  on " + clean(frame.targets) +
                   " (" + frame.hosts + " hosts, job " + frame.job + ")");
      $("exec-cancel").disabled = state.role !== "operator" || finished(frame.state);
      $("exec-rerun").disabled = true;
      sessionStorage.setItem("fleetdeck.job", frame.job);
      renderJobs();
      this.progress();
    },

    resume() {
      // After a reconnect, ask for exactly the results we have not seen; after a page reload,
      // show the job this tab was following.
      if (this.job && !this.done) send({ type: "watch", job: this.job, after: this.lastSeq, ref: nextRef("watch") });
      else if (!this.job && sessionStorage.getItem("fleetdeck.job")) this.view(sessionStorage.getItem("fleetdeck.job"));
    },

    view(id) {
      this.pendingRef = nextRef("exec-view");
      send({ type: "watch", job: id, after: 0, ref: this.pendingRef });
    },

    result(frame) {
      if (frame.job !== this.job || frame.seq <= this.lastSeq) return;
      this.lastSeq = frame.seq;
      this.counts[frame.status] = (this.counts[frame.status] || 0) + 1;
      const first = (frame.stdout || frame.stderr || frame.error || "").trim().split("\n")[0].slice(0, 160);
      const code = frame.exit_code === null ? "-" : String(frame.exit_code);
      term.writeln(paint(pad(clean(frame.host), 16) + " " + pad(frame.status, 11) + " exit " + pad(code, 4) + " " +
                         String(frame.duration_ms).padStart(6) + "ms", frame.status) + "  " + clean(first));
      this.addOutput(frame);
      this.progress();
    },

    addOutput(frame) {
      const box = document.createElement("details");
      box.className = "host-output";
      box.dataset.host = frame.host;
      const summary = document.createElement("summary");
      summary.className = "tone-" + toneOf(frame.status);
      summary.dataset.status = frame.status;
      summary.textContent = frame.host + " — " + frame.status + (frame.truncated ? " (output truncated)" : "");
      box.append(summary);
      for (const [label, text] of [["stdout", frame.stdout], ["stderr", frame.stderr], ["error", frame.error]]) {
        if (!text) continue;
        const pre = document.createElement("pre");
        pre.className = label;
        pre.textContent = text;
        box.append(pre);
      }
      $("exec-outputs").append(box);
    },

    progress() {
      const parts = protocol.host_statuses.filter((s) => this.counts[s]).map((s) => s + " " + this.counts[s]);
      const doneCount = Object.values(this.counts).reduce((a, b) => a + b, 0);
      $("exec-progress").textContent = (this.done ? "finished " : "running ") + doneCount + "/" + this.total +
        (parts.length ? " — " + parts.join(", ") : "");
    },

    finished(frame) {
      if (frame.job !== this.job || this.done) return;
      this.done = true;
      const total = Object.values(frame.summary).reduce((a, b) => a + b, 0);
      term.writeln("\x1b[1m--- " + total + " hosts in " + (frame.duration_ms / 1000).toFixed(1) + "s\x1b[0m");
      if (frame.error) term.writeln(paint("no host ran: " + clean(frame.error), "error"));
      for (const group of frame.groups) {
        term.writeln(paint(clean(group.hosts) + " (" + group.count + ") " + group.status, group.status));
        const lines = group.output.split("\n");
        lines.slice(0, 10).forEach((line) => { if (line) term.writeln("    " + clean(line)); });
        if (lines.length > 10 || group.output_truncated) term.writeln("    \x1b[90m… (full output per host below)\x1b[0m");
      }
      this.retryTargets = frame.retry_targets;
      $("exec-rerun").disabled = !frame.retry_targets || state.role !== "operator";
      $("exec-cancel").disabled = true;
      this.progress();
    },
  };
  window.fleetdeckExec = exec;

  // ---------------------------------------------------------------- recent jobs
  const jobs = new Map(); // id -> latest job frame
  function renderJobs() {
    const list = $("job-list");
    const newest = [...jobs.values()].sort((a, b) => b.ts - a.ts).slice(0, 30);
    list.replaceChildren(...newest.map((job) => {
      const li = document.createElement("li");
      li.dataset.job = job.job;
      li.classList.toggle("current", job.job === exec.job);
      const cells = [
        [new Date(job.ts * 1000).toLocaleTimeString(), "muted"],
        [job.state, "state-" + job.state],
        [job.command, "code"],
        [job.targets + " (" + job.hosts + ")", "code"],
        [job.by + (job.summary ? " · " + Object.entries(job.summary).map(([s, n]) => s + " " + n).join(", ") : ""), "muted"],
      ];
      for (const [text, kind] of cells) {
        const cell = document.createElement(kind === "code" ? "code" : "span");
        if (kind !== "code") cell.className = kind;
        cell.textContent = text;
        li.append(cell);
      }
      li.addEventListener("click", () => exec.view(job.job));
      return li;
    }));
  }

  handlers.job = (frame) => {
    const known = jobs.get(frame.job);
    // Announcements can arrive out of order across reconnects; never step a job back.
    const rank = (jobState) => (finished(jobState) ? protocol.job_states.length : protocol.job_states.indexOf(jobState));
    if (!known || rank(frame.state) >= rank(known.state)) jobs.set(frame.job, frame);
    renderJobs();
    if (exec.pendingRef && frame.ref === exec.pendingRef) exec.accepted(frame);
    else if (frame.job === exec.job && finished(frame.state)) $("exec-cancel").disabled = true;
  };
  handlers.result = (frame) => exec.result(frame);
  handlers.done = (frame) => exec.finished(frame);

  $("exec-form").addEventListener("submit", (event) => {
    event.preventDefault();
    exec.start($("exec-targets").value.trim(), $("exec-command").value,
               Number($("exec-timeout").value) || protocol.limits.default_timeout_seconds);
  });
  $("exec-cancel").addEventListener("click", () => {
    if (exec.job) send({ type: "cancel", job: exec.job, ref: nextRef("cancel") });
  });
  $("exec-rerun").addEventListener("click", () => {
    if (!exec.retryTargets) return;
    $("exec-targets").value = exec.retryTargets;
    $("exec-command").value = exec.command;
    exec.start(exec.retryTargets, exec.command, exec.timeout);
  });

  // The protocol's values (statuses, states, limits) are the server's; nothing here copies them.
  let protocol = null;
  async function loadProtocol() {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const answer = await fetch("/api/protocol", { credentials: "same-origin" });
        if (answer.status === 401) { location.replace("/login"); return; }
        if (answer.ok) { protocol = await answer.json(); break; }
      } catch (e) { /* gateway restarting: try again */ }
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** attempt)));
    }
    const { limits } = protocol;
    $("chat-input").maxLength = limits.chat_chars;
    $("exec-command").maxLength = limits.command_chars;
    $("exec-targets").maxLength = limits.targets_chars;
    $("exec-timeout").max = String(limits.timeout_seconds);
    $("exec-timeout").value = String(limits.default_timeout_seconds);
    connect();
  }
  loadProtocol();
})();
