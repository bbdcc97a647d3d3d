// Keyboard shortcuts on the dashboard (keys.js says which key means what): `/` puts the cursor in
// the targets box, Ctrl+Enter runs, Esc closes what is open, `?` (or the top bar's ? button)
// shows them in a small overlay. Shells and the output terminal keep every key for themselves.
import { $, h } from "./dom.js";
import { SHORTCUTS, shortcutFor } from "./keys.js";
import { closeHost } from "./watched.js";

const TYPING = "textarea, select, [contenteditable], " +
  "input:not([type=checkbox]):not([type=radio]):not([type=button]):not([type=submit]):not([type=file])";
const RUN_FORMS = new Set(["exec-form", "copy-form"]);

export function shortcuts(store) {
  const help = $("help");
  $("help-keys").replaceChildren(...SHORTCUTS.flatMap(([keys, what]) =>
    [h("dt", null, ...keys.split("+").flatMap((k, i) => (i ? ["+", h("kbd", null, k)] : [h("kbd", null, k)]))),
      h("dd", null, what)]));
  let returnTo = null;
  function showHelp(on) {
    if (on === !help.hidden) return;
    help.hidden = !on;
    $("help-button").setAttribute("aria-expanded", String(on));
    if (on) {
      returnTo = document.activeElement;
      $("help-close").focus();
    } else if (returnTo && returnTo.isConnected && returnTo.focus) {
      returnTo.focus();
    }
  }
  $("help-button").addEventListener("click", () => showHelp(help.hidden));
  $("help-close").addEventListener("click", () => showHelp(false));
  help.addEventListener("click", (event) => { if (event.target === help) showHelp(false); });

  const copying = () => !$("copy-form").hidden;
  function focusTargets() {
    store.set("tab", "run"); // phones: the Run pane
    const field = copying() ? $("copy-targets") : $("exec-targets");
    field.focus();
    field.select();
  }
  function run(from) {
    const form = from.closest("form");
    if (form && !RUN_FORMS.has(form.id)) return false; // Ctrl+Enter in the chat sends nothing to hosts
    const copy = form ? form.id === "copy-form" : copying();
    const button = copy ? $("copy-run") : $("exec-run");
    if (button.disabled) return false;
    (copy ? $("copy-form") : $("exec-form")).requestSubmit(button);
    return true;
  }
  function close() {
    if (!help.hidden) { showHelp(false); return true; }
    const { opened } = store.get("watched");
    if (opened) { closeHost(store, opened); return true; }
    if ($("exec-details").open) { $("exec-details").open = false; return true; }
    return false;
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target instanceof Element ? event.target : document.body;
    const action = shortcutFor(event, {
      typing: target.matches(TYPING), terminal: !!target.closest(".xterm"), help: !help.hidden,
    });
    let used = true;
    if (action === "help") showHelp(help.hidden);
    else if (action === "targets") focusTargets();
    else if (action === "run") used = run(target);
    else if (action === "close") used = close();
    else if (action === "leave-field") { target.blur(); used = false; } // a search box still clears itself
    else used = false;
    if (used) event.preventDefault();
  });
}
