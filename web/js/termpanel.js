// Shells on hosts: "Shell" on a host's card (store key `shell`) opens a terminal tab here, a
// full-size xterm.js that follows its panel (every size change sent as term_resize), keys sent as
// term_input (paced: termsend.js), output written as it comes, and each tab's state (termmodel.js)
// in words.
import { $, h, onResize } from "./dom.js";
import { Terminal, FitAddon } from "./vendor.js";
import { createTerms, stateText, isLive } from "./termmodel.js";
import { createSender } from "./termsend.js";

export function termPanel(store, conn) {
  const model = createTerms();
  const views = new Map(); // tab key -> {term, fit, screen, observer}
  const pane = $("pane-shell");

  const sender = createSender((frame) => conn.send({ ...frame, ref: conn.nextRef("term-" + frame.type) }));

  function draw() {
    pane.hidden = !model.tabs.length;
    const active = model.active;
    $("shell-tabs").replaceChildren(...model.tabs.map((tab) => h("span", {
      class: "shell-tab", role: "tab", "aria-selected": String(tab === active), dataset: { key: tab.key, state: tab.state },
      title: stateText(tab), onclick: () => { model.select(tab.key); draw(); },
    }, tab.host, h("button", {
      type: "button", class: "close", title: isLive(tab) ? "close this shell" : "remove this tab", "aria-label": "close",
      onclick: (event) => { event.stopPropagation(); close(tab); },
    }, "×"))));
    for (const [key, view] of views) view.screen.hidden = !active || active.key !== key;
    const line = $("shell-state");
    line.textContent = active ? stateText(active) : "";
    line.dataset.state = active ? active.state : "";
    const view = active && views.get(active.key);
    $("shell-copy").disabled = !view;
    $("shell-paste").disabled = !view || active.state !== "open";
    if (view) {
      view.fit.fit();
      if (active.state === "open") view.term.focus();
    }
  }

  function open(host) {
    const why = model.whyNot();
    if (why) {
      pane.hidden = false;
      $("shell-state").textContent = why;
      return;
    }
    const screen = h("div", { class: "terminal shell-screen" });
    $("shell-screens").append(screen);
    pane.hidden = false;
    const term = new Terminal({ fontSize: 13, scrollback: 5000, cursorBlink: true, theme: { background: "#000000" } });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(screen);
    fit.fit();
    const ref = conn.nextRef("term-open");
    const tab = model.open(host, ref, term.cols, term.rows);
    const observer = onResize(screen, () => { if (screen.clientWidth) fit.fit(); });
    views.set(tab.key, { term, fit, screen, observer });
    term.onData((data) => { if (tab.state === "open") sender.input(tab.term, data); });
    term.onResize(({ cols, rows }) => { if (model.resized(tab, cols, rows)) sender.resize(tab.term, cols, rows); });
    // Ctrl+Shift+C copies the selection, Ctrl+Shift+V pastes (the browser's paste event does it).
    term.attachCustomKeyEventHandler((event) => {
      if (event.type !== "keydown" || !event.ctrlKey || !event.shiftKey) return true;
      if (event.code === "KeyC") { copy(term); return false; }
      return event.code !== "KeyV";
    });
    if (!conn.send({ type: "term_open", host, cols: term.cols, rows: term.rows, ref })) {
      model.refused(ref, "not connected to the gateway; try again once it reconnects");
    }
    draw();
    pane.scrollIntoView({ block: "nearest" });
  }

  function copy(term) {
    const text = term.getSelection();
    if (text && navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
  }

  function close(tab) {
    // A live tab ends first and shows how (term_closed); the × on an ended tab removes it.
    if (tab.state === "open") { sender.close(tab.term); return; }
    if (tab.state === "connecting") { tab.closing = true; return; }
    const view = views.get(tab.key);
    view.observer.disconnect();
    view.term.dispose();
    view.screen.remove();
    views.delete(tab.key);
    model.remove(tab.key);
    draw();
  }

  function ended(tab) {
    const view = views.get(tab.key);
    view.term.write("\r\n\x1b[90m[" + stateText(tab) + "]\x1b[0m\r\n");
    view.term.options.cursorBlink = false;
    draw();
  }

  store.subscribe("shell", (host) => open(host));
  conn.on("term_opened", (frame) => {
    const tab = model.opened(frame);
    if (!tab) return;
    if (tab.closing) { sender.close(tab.term); return; }
    const { term } = views.get(tab.key);
    // The panel may have changed size while the terminal was opening.
    if (model.resized(tab, term.cols, term.rows)) sender.resize(tab.term, term.cols, term.rows);
    draw();
  });
  conn.on("term_output", (frame) => {
    const tab = model.byTerm(frame.term);
    if (tab) views.get(tab.key).term.write(frame.data);
  });
  conn.on("term_closed", (frame) => {
    const tab = model.closed(frame);
    if (tab) ended(tab);
  });
  conn.on("error", (frame) => {
    if (!frame.ref || !frame.ref.startsWith("term-open")) return;
    const tab = model.refused(frame.ref, frame.message);
    if (tab) ended(tab);
  });
  store.subscribe("conn", ({ state }) => { if (state !== "online") for (const tab of model.dropped()) ended(tab); });

  $("shell-copy").addEventListener("click", () => { const tab = model.active; if (tab) copy(views.get(tab.key).term); });
  $("shell-paste").addEventListener("click", async () => {
    const tab = model.active;
    if (!tab || !navigator.clipboard) return;
    const text = await navigator.clipboard.readText().catch(() => "");
    if (text) views.get(tab.key).term.paste(text);
  });

  // Lets tests read what a tab's terminal shows.
  window.fleetdeckShells = {
    model,
    text(key) {
      const buffer = views.get(key || model.active.key).term.buffer.active;
      const lines = [];
      for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
      return lines.join("\n");
    },
  };
}
