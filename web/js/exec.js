// The run panel: a command on a target expression, one line per host in an xterm.js terminal as
// each finishes (as wide as its pane, which "Wider" widens), progress, the grouped summary, cancel,
// re-run on the hosts that failed, full output per host; after a reconnect it asks for exactly the
// results it has not seen, and after a reload it shows the job this tab followed.
import { $, h, onResize } from "./dom.js";
import { Terminal, FitAddon } from "./vendor.js";
import { hostLegend, summaryText } from "./outcome.js";

const JOB_KEY = "fleetdeck.job";
// Statuses and their tones come from the server (/api/protocol); only the colours are ours.
const ANSI = { good: 32, bad: 31, slow: 33, unreachable: 35, muted: 90 };

// Output comes from hosts we do not control: no escape sequence of theirs may reach the terminal.
const clean = (text) => String(text).replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g,
  (c) => "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0"));
const pad = (text, width) => (text + " ".repeat(width)).slice(0, Math.max(width, text.length));

export function execPanel(store, conn) {
  const protocol = store.get("protocol");
  const toneOf = (status) => protocol.status_tones[status] || "muted";
  const paint = (text, status) => "\x1b[" + (ANSI[toneOf(status)] || 0) + "m" + text + "\x1b[0m";
  const finished = (jobState) => protocol.finished_states.includes(jobState);
  const isOperator = () => (store.get("me") || {}).role === "operator";

  const term = new Terminal({ convertEol: true, fontSize: 13, scrollback: 5000, disableStdin: true,
                              theme: { background: "#000000" } });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open($("terminal"));
  onResize($("terminal"), () => { if ($("terminal").clientWidth) fit.fit(); });

  // The terminal fills its pane (fit); on a wide screen the pane itself can take more of the window.
  const WIDE_KEY = "fleetdeck.runWide";
  function widen(on) {
    document.body.classList.toggle("run-wide", on);
    $("run-wide").setAttribute("aria-pressed", String(on));
    $("run-wide").textContent = on ? "Narrower" : "Wider";
    localStorage.setItem(WIDE_KEY, on ? "1" : "");
  }
  $("run-wide").addEventListener("click", () => widen(!document.body.classList.contains("run-wide")));
  widen(localStorage.getItem(WIDE_KEY) === "1");

  // ---------------------------------------------------------------- who may run, and why not
  function explain() {
    const me = store.get("me");
    const live = store.get("conn").state === "online";
    let why = "";
    if (!me) why = "Connecting to the gateway…";
    else if (me.role !== "operator") {
      why = "You are logged in as " + me.user + ", a viewer: viewers watch jobs but cannot run commands. " +
            "Ask for an operator token to run them.";
    } else if (!live) why = "Not connected to the gateway: reconnecting…";
    $("exec-run").disabled = !!why;
    $("copy-run").disabled = !!why;
    $("copy-run").title = why || "copy the file to every target host";
    $("exec-run").title = why || "run the command on every target host (Ctrl+Enter)";
    $("exec-why").textContent = why;
    $("exec-why").hidden = !why;
  }
  store.subscribe("me", explain);
  store.subscribe("conn", explain);

  // ---------------------------------------------------------------- is any worker there to run it
  store.subscribe("workers", (alive) => {
    const note = $("exec-workers");
    note.hidden = alive !== 0;
    note.textContent = alive === 0
      ? "No exec worker is running: a command you run now waits in the queue, and expires without " +
        "running if no worker starts in time."
      : "";
  });
  conn.whenLive((hello) => store.set("workers", Number.isInteger(hello.workers) ? hello.workers : null));
  conn.on("workers", (frame) => store.set("workers", frame.alive));

  // ---------------------------------------------------------------- targets picked elsewhere
  store.subscribe("target", ({ expr, what }) => {
    const field = $("exec-targets");
    field.value = expr;
    const tooLong = expr.length > protocol.limits.targets_chars;
    $("exec-target-note").textContent = tooLong
      ? "Targets: " + what + " — " + expr.length + " characters, more than the " + protocol.limits.targets_chars +
        " a target expression may have; narrow the selection."
      : "Targets: " + what + ".";
    $("exec-target-note").classList.toggle("error", tooLong);
    store.set("tab", "run");
    $("exec-command").focus({ preventScroll: true });
  });
  $("exec-targets").addEventListener("input", () => { $("exec-target-note").textContent = ""; });

  // ---------------------------------------------------------------- following one job
  const exec = {
    job: null, total: 0, lastSeq: 0, counts: {}, pendingRef: null, done: false, retryTargets: "",

    // `copy` ({file, dest, mode}: an uploaded file) instead of `command` makes it a copy job; the
    // batch and max failures fields of the form it came from make it a rolling one.
    start(targets, command, timeout, copy = null) {
      this.pendingRef = conn.nextRef("exec");
      const what = copy ? { copy } : { command };
      const rolling = rollingFields(copy ? "copy" : "exec");
      if (!conn.send({ type: "exec", targets, ...what, timeout, ...rolling, ref: this.pendingRef })) {
        term.writeln(paint("not connected; nothing was run", "failed"));
        this.pendingRef = null;
      }
    },

    refused(frame) {
      term.writeln(paint("refused: " + clean(frame.message), "failed"));
      this.pendingRef = null;
      if (frame.code === "not_found") sessionStorage.removeItem(JOB_KEY);
    },

    accepted(frame) {
      this.job = frame.job;
      this.command = frame.command;
      this.copy = frame.copy || null;
      this.timeout = frame.timeout;
      this.total = frame.hosts;
      this.wave = null;
      this.lastSeq = 0;
      this.counts = {};
      this.done = false;
      this.pendingRef = null;
      $("exec-outputs").replaceChildren();
      term.writeln("");
      const what = frame.copy ? "copy to " + frame.copy.dest + " (mode " + frame.copy.mode + ")" : "$ " + frame.command;
      term.writeln("\x1b[1m" + clean(what) + "\x1b[0m  on " + clean(frame.targets) +
                   " (" + frame.hosts + " hosts, job " + frame.job + ")");
      $("exec-cancel").disabled = !isOperator() || finished(frame.state);
      $("exec-rerun").disabled = true;
      sessionStorage.setItem(JOB_KEY, frame.job);
      store.set("currentJob", frame.job);
      this.progress();
    },

    resume() {
      // After a reconnect, ask for exactly the results we have not seen; after a page reload,
      // show the job this tab was following.
      if (this.job && !this.done) conn.send({ type: "watch", job: this.job, after: this.lastSeq, ref: conn.nextRef("watch") });
      else if (!this.job && sessionStorage.getItem(JOB_KEY)) this.view(sessionStorage.getItem(JOB_KEY));
    },

    view(id) {
      this.pendingRef = conn.nextRef("exec-view");
      conn.send({ type: "watch", job: id, after: 0, ref: this.pendingRef });
    },

    result(frame) {
      if (frame.job !== this.job || frame.seq <= this.lastSeq) return;
      this.lastSeq = frame.seq;
      this.counts[frame.status] = (this.counts[frame.status] || 0) + 1;
      const first = (frame.stdout || frame.stderr || frame.error || "").trim().split("\n")[0].slice(0, 160);
      const code = frame.exit_code === null ? "-" : String(frame.exit_code);
      // Narrow terminals (phones) get tighter columns, so the status stays on the host's line.
      const [host, status, exit, ms] = term.cols < 64 ? [15, 8, 3, 5] : [16, 11, 4, 6];
      term.writeln(paint(pad(clean(frame.host), host) + " " + pad(frame.status, status) + " exit " + pad(code, exit) +
                         " " + String(frame.duration_ms).padStart(ms) + "ms", frame.status) + "  " + clean(first));
      this.addOutput(frame);
      this.progress();
    },

    addOutput(frame) {
      const outputs = [["stdout", frame.stdout], ["stderr", frame.stderr], ["error", frame.error]]
        .filter(([, text]) => text)
        .map(([label, text]) => h("pre", { class: label }, text));
      $("exec-outputs").append(h("details", { class: "host-output", dataset: { host: frame.host } },
        h("summary", { class: "tone-" + toneOf(frame.status), dataset: { status: frame.status } },
          frame.host + " — " + frame.status + (frame.truncated ? " (output truncated)" : "")),
        outputs));
    },

    progress() {
      const done = Object.values(this.counts).reduce((a, b) => a + b, 0);
      const parts = summaryText(this.counts, protocol);
      const wave = this.wave && !this.done ? ", wave " + this.wave : "";
      $("exec-progress").textContent = (this.done ? "finished " : "running ") + done + "/" + this.total + wave +
        (parts ? " — " + parts : "");
    },

    finished(frame) {
      if (frame.job !== this.job || this.done) return;
      this.done = true;
      const total = Object.values(frame.summary).reduce((a, b) => a + b, 0);
      term.writeln("\x1b[1m--- " + total + " hosts in " + (frame.duration_ms / 1000).toFixed(1) + "s\x1b[0m");
      if (frame.error) term.writeln(paint("no host ran: " + clean(frame.error), "error"));
      let legend = "";
      for (const group of frame.groups) {
        term.writeln(paint(clean(group.hosts) + " (" + group.count + ") " + group.status, group.status));
        const lines = group.output.split("\n");
        lines.slice(0, 10).forEach((text) => { if (text) term.writeln("    " + clean(text)); });
        if (lines.length > 10 || group.output_truncated) term.writeln("    \x1b[90m… (full output per host below)\x1b[0m");
        const note = legend ? "" : hostLegend(group); // said once, where {host} first shows
        if (note) {
          legend = note;
          term.writeln("    \x1b[90m" + note + "\x1b[0m");
        }
      }
      this.retryTargets = frame.retry_targets;
      $("exec-rerun").disabled = !frame.retry_targets || !isOperator();
      $("exec-cancel").disabled = true;
      this.progress();
    },
  };

  conn.whenLive(() => {
    $("exec-cancel").disabled = true;
    exec.resume();
  });
  conn.on("job", (frame) => {
    if (exec.pendingRef && frame.ref === exec.pendingRef) exec.accepted(frame);
    else if (frame.job === exec.job && finished(frame.state)) $("exec-cancel").disabled = true;
    if (frame.job === exec.job && frame.waves) { exec.wave = frame.wave + " of " + frame.waves; exec.progress(); }
  });
  store.subscribe("showJob", (id) => exec.view(id));
  conn.on("result", (frame) => exec.result(frame));
  conn.on("done", (frame) => exec.finished(frame));
  conn.on("error", (frame) => { if (frame.ref && frame.ref.startsWith("exec")) exec.refused(frame); });

  $("exec-form").addEventListener("submit", (event) => {
    event.preventDefault();
    exec.start($("exec-targets").value.trim(), $("exec-command").value,
               Number($("exec-timeout").value) || protocol.limits.default_timeout_seconds);
  });
  $("exec-cancel").addEventListener("click", () => {
    if (exec.job) conn.send({ type: "cancel", job: exec.job, ref: conn.nextRef("cancel") });
  });
  $("exec-rerun").addEventListener("click", () => {
    if (!exec.retryTargets) return;
    $("exec-targets").value = exec.retryTargets;
    if (!exec.copy) $("exec-command").value = exec.command;
    exec.start(exec.retryTargets, exec.command, exec.timeout, exec.copy);
  });

  const { limits } = protocol;
  $("exec-command").maxLength = limits.command_chars;
  $("exec-targets").maxLength = limits.targets_chars;
  $("exec-timeout").max = String(limits.timeout_seconds);
  $("exec-timeout").value = String(limits.default_timeout_seconds);
  explain();

  window.fleetdeckTerminal = term; // lets tests read what the terminal shows
  window.fleetdeckExec = exec;
  return exec;
}

/** `batch` and `max_failures` from a form's fields (`PREFIX-batch`, `PREFIX-max-failures`), each
 * left out when empty; the gateway checks what they say. */
function rollingFields(prefix) {
  const rolling = {};
  const batch = $(prefix + "-batch").value.trim(), maxFailures = $(prefix + "-max-failures").value.trim();
  if (batch) rolling.batch = batch;
  if (maxFailures) rolling.max_failures = maxFailures;
  return rolling;
}
