// Terminal recordings (operators): the list from GET /api/terms, and playback of one recording
// (GET /api/terms/{id}/cast, asciicast v2) on an xterm.js of its own: play, pause, restart, speed.
import { $, h } from "./dom.js";
import { Terminal } from "./vendor.js";
import { parseCast, resizeOf, dueCount, clock } from "./cast.js";
import { duration } from "./format.js";

const when = (ts) => new Date(ts * 1000).toLocaleString();

export function recordingsPanel(store) {
  const player = { term: null, cast: null, shown: 0, start: 0, offset: 0, timer: null, speed: 1, id: null };

  function explain() {
    const me = store.get("me");
    const operator = me && me.role === "operator";
    $("rec-refresh").disabled = !operator;
    $("rec-why").hidden = !me || operator;
    $("rec-why").textContent = operator || !me ? "" : "Recordings are for operators: you are logged in as " + me.user + ", a viewer.";
  }
  store.subscribe("me", explain);

  async function list() {
    $("rec-note").textContent = "Loading…";
    try {
      const answer = await fetch("/api/terms", { credentials: "same-origin" });
      const body = await answer.json().catch(() => ({}));
      if (!answer.ok) throw new Error(body.message || answer.statusText);
      $("rec-note").textContent = body.terms.length ? "" : "No terminal sessions recorded yet.";
      $("rec-rows").replaceChildren(...body.terms.slice().reverse().map(row));
    } catch (error) {
      $("rec-note").textContent = "Could not list the recordings: " + error.message;
    }
  }

  function row(rec) {
    const ended = rec.end ? (rec.exit_code === null ? "" : "exit " + rec.exit_code + " · ") + duration(rec.end - rec.start) : "running";
    return h("tr", { dataset: { term: rec.id } },
      h("td", null, when(rec.start)),
      h("td", { class: "host" }, rec.host),
      h("td", null, rec.user),
      h("td", { title: rec.reason || "" }, ended + (rec.cut ? " · cut at the cap" : "")),
      h("td", null,
        h("button", { type: "button", class: "play", onclick: () => play(rec.id) }, "Play"), " ",
        h("a", { href: "/api/terms/" + encodeURIComponent(rec.id) + "/cast", download: rec.id + ".cast" }, ".cast")));
  }

  // ---------------------------------------------------------------- playback
  function stop() {
    clearTimeout(player.timer);
    player.timer = null;
    $("rec-pause").textContent = "Play";
  }

  function tick() {
    const elapsed = player.offset + ((performance.now() - player.start) / 1000) * player.speed;
    const due = dueCount(player.cast.events, elapsed);
    let out = "";
    for (; player.shown < due; player.shown++) {
      const event = player.cast.events[player.shown];
      const size = resizeOf(event);
      if (size) { player.term.write(out); out = ""; player.term.resize(size.cols, size.rows); }
      else if (event.kind === "o") out += event.data;
    }
    player.term.write(out);
    $("rec-time").textContent = clock(Math.min(elapsed, player.cast.duration)) + " / " + clock(player.cast.duration);
    if (player.shown >= player.cast.events.length) { stop(); $("rec-pause").textContent = "Replay"; return; }
    const next = player.cast.events[player.shown].t;
    player.timer = setTimeout(tick, Math.max(0, ((next - elapsed) * 1000) / player.speed));
  }

  function resume() {
    player.start = performance.now();
    $("rec-pause").textContent = "Pause";
    tick();
  }

  function restart() {
    stop();
    player.shown = 0;
    player.offset = 0;
    player.term.reset();
    const { width, height } = player.cast.header;
    player.term.resize(width || 80, height || 24);
    resume();
  }

  async function play(id) {
    stop();
    $("rec-player").hidden = false;
    $("rec-title").textContent = "Loading " + id + "…";
    try {
      const answer = await fetch("/api/terms/" + encodeURIComponent(id) + "/cast", { credentials: "same-origin" });
      const text = await answer.text();
      if (!answer.ok) throw new Error(JSON.parse(text).message || answer.statusText);
      player.cast = parseCast(text);
    } catch (error) {
      $("rec-title").textContent = "Could not play " + id + ": " + error.message;
      return;
    }
    player.id = id;
    $("rec-title").textContent = (player.cast.header.title || id) + " — pauses longer than 2 s are shortened";
    if (!player.term) {
      player.term = new Terminal({ fontSize: 12, disableStdin: true, convertEol: false, theme: { background: "#000000" } });
      player.term.open($("rec-screen"));
    }
    restart();
  }

  $("rec-refresh").addEventListener("click", list);
  $("recordings").addEventListener("toggle", () => { if ($("recordings").open && !$("rec-refresh").disabled) list(); });
  $("rec-pause").addEventListener("click", () => {
    if (!player.cast) return;
    if (player.shown >= player.cast.events.length) restart();
    else if (player.timer) {
      player.offset += ((performance.now() - player.start) / 1000) * player.speed;
      stop();
    } else resume();
  });
  $("rec-speed").addEventListener("change", () => {
    if (player.timer) player.offset += ((performance.now() - player.start) / 1000) * player.speed;
    player.start = performance.now();
    player.speed = Number($("rec-speed").value) || 1;
  });
  explain();
  window.fleetdeckPlayer = player; // lets tests read what playback shows
}
