// The strip under the top bar (firing alerts per severity) and the alerts panel: one group per
// rule with its hosts (value, since, summary, a silenced mark), "Run on these hosts" (the run
// panel's target becomes `@alert=RULE`) and, for operators, "Silence…" (a duration and a comment).
import { $, h, onNextFrame } from "./dom.js";
import { severityCounts, stripText, ruleGroups, sinceText, alertTarget, silenceRequest, SILENCE_FOR } from "./alertsmodel.js";
import { openHost } from "./watched.js";
import { isUtc, onZoneChange } from "./timezone.js";

const ROWS_PER_RULE = 25; // a rule firing on thousands of hosts lists the first ones; the count says how many
const TICK_MS = 15_000; // "5 min ago" stays true while nothing changes

export function alertsPanel(store, feed) {
  if (!feed) return;
  const forms = new Map(); // rule -> its open silence form, kept across redraws so typing survives
  const isOperator = () => (store.get("me") || {}).role === "operator";

  function silenceForm(rule) {
    const duration = h("select", { class: "for", "aria-label": "silence for" },
      SILENCE_FOR.map((d) => h("option", { value: d, selected: d === "2h" }, d)));
    const comment = h("input", { class: "comment", placeholder: "why (required)", "aria-label": "comment", maxLength: 500 });
    const targets = h("input", { class: "targets", placeholder: "only these targets (optional)", "aria-label": "targets",
                                 spellcheck: false });
    const why = h("p", { class: "error", role: "alert" });
    const form = h("form", { class: "silence-form" },
      "Silence ", h("strong", null, rule), " for ", duration, comment, targets,
      h("button", { type: "submit" }, "Silence"),
      h("button", { type: "button", class: "cancel", onclick: () => { forms.delete(rule); render(); } }, "Cancel"),
      why);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const request = silenceRequest(rule, duration.value, comment.value, targets.value);
      if (request.error) { why.textContent = request.error; return; }
      why.textContent = "";
      try {
        await feed.silence(request.body);
        forms.delete(rule);
        render();
      } catch (error) {
        why.textContent = error.message;
      }
    });
    return form;
  }

  // Each rule's group and each host's row are built once and then updated in place: a redraw (an
  // alert arrives every second on a busy fleet) must not replace the button under the mouse
  // between its mousedown and mouseup, which would lose the click.
  const groups = new Map(); // rule -> its parts

  function buildGroup(rule) {
    const runOn = () => store.set("target", { expr: alertTarget(rule), what: "the hosts where " + rule + " fires now" });
    const openForm = () => {
      if (!forms.has(rule)) forms.set(rule, silenceForm(rule));
      render();
      forms.get(rule).querySelector(".comment").focus();
    };
    const parts = {
      sev: h("span", { class: "sev" }),
      count: h("span", { class: "muted" }),
      silence: h("button", { type: "button", class: "silence", onclick: openForm }, "Silence…"),
      silenceSlot: h("span", { class: "silence-button" }), // operators only
      form: h("div", { class: "silence-slot" }),
      rows: h("tbody"),
      more: h("p", { class: "muted more" }),
      byHost: new Map(), // host -> its row
    };
    parts.el = h("div", { dataset: { rule } },
      h("div", { class: "alert-rule-head" },
        parts.sev,
        h("strong", { class: "rule" }, rule),
        parts.count,
        h("span", { class: "spacer" }),
        h("button", { type: "button", class: "run", onclick: runOn, title: "put " + alertTarget(rule) + " in the run panel's targets" },
          "Run on these hosts"),
        parts.silenceSlot),
      parts.form,
      h("table", { class: "alert-rows" }, parts.rows),
      parts.more);
    return parts;
  }

  function buildRow(host) {
    const cell = (name) => h("td", { class: name });
    const row = { host: h("td", { class: "host" }, h("button", { type: "button", class: "link", onclick: () => openHost(store, host) }, host)),
                  value: cell("value"), since: cell("since"), summary: cell("summary"), mark: cell("mark") };
    row.el = h("tr", { dataset: { host } }, row.host, row.value, row.since, row.summary, row.mark);
    return row;
  }

  function group({ rule, severity, count, silenced, rows }) {
    if (!groups.has(rule)) groups.set(rule, buildGroup(rule));
    const parts = groups.get(rule);
    parts.el.className = "alert-rule sev-" + severity;
    parts.sev.textContent = severity;
    parts.count.textContent = count + (count === 1 ? " host" : " hosts") + (silenced ? " · " + silenced + " silenced" : "");
    if (Boolean(parts.silenceSlot.firstChild) !== isOperator()) {
      parts.silenceSlot.replaceChildren(...(isOperator() ? [parts.silence] : []));
    }
    const form = isOperator() ? forms.get(rule) : null;
    if (parts.form.firstChild !== (form || null)) parts.form.replaceChildren(...(form ? [form] : []));
    const shown = new Set(rows.map((r) => r.host));
    for (const host of [...parts.byHost.keys()]) if (!shown.has(host)) parts.byHost.delete(host);
    const trs = rows.map((r) => {
      if (!parts.byHost.has(r.host)) parts.byHost.set(r.host, buildRow(r.host));
      const row = parts.byHost.get(r.host);
      row.el.className = r.silenced ? "silenced" : "";
      row.value.textContent = r.value;
      row.since.textContent = sinceText(r.since, Date.now() / 1000, isUtc());
      row.summary.textContent = r.summary;
      if (Boolean(row.mark.firstChild) !== r.silenced) {
        row.mark.replaceChildren(...(r.silenced ? [h("span", { class: "silenced-mark", title: "silenced: no notifications" }, "silenced")] : []));
      }
      return row.el;
    });
    keepOrder(parts.rows, trs);
    parts.more.hidden = count <= rows.length;
    parts.more.textContent = count > rows.length ? "… and " + (count - rows.length) + " more hosts" : "";
    return parts.el;
  }

  const render = onNextFrame(() => {
    const model = store.get("alerts");
    const counts = severityCounts(model);
    const { metrics, error } = store.get("alertRules");
    const strip = $("alert-strip");
    strip.hidden = counts.total === 0 && !error;
    $("alert-rules-error").hidden = !error;
    $("alert-rules-error").textContent = error ? "Rules file not reloaded, the previous rules stay in use: " + error : "";
    $("alert-show").hidden = counts.total === 0;
    $("alert-counts").replaceChildren(...["critical", "warning", "info", "silenced"].filter((key) => counts[key])
      .map((key) => h("span", { class: "count sev-" + key, dataset: { severity: key } }, counts[key] + " " + key)));
    strip.title = stripText(counts);
    for (const rule of [...forms.keys()]) if (!ruleFires(model, rule)) forms.delete(rule);
    $("pane-alerts").hidden = counts.total === 0;
    const listed = ruleGroups(model, metrics, ROWS_PER_RULE);
    const firing = new Set(listed.map((g) => g.rule));
    for (const rule of [...groups.keys()]) if (!firing.has(rule)) groups.delete(rule);
    keepOrder($("alert-groups"), listed.map(group));
  });

  store.subscribe("alerts", render);
  store.subscribe("alertRules", render);
  store.subscribe("me", render);
  onZoneChange(render);
  setInterval(() => { if (!$("pane-alerts").hidden) render(); }, TICK_MS);
  $("alert-show").addEventListener("click", () => {
    store.set("tab", "fleet");
    $("pane-alerts").scrollIntoView({ block: "start" });
  });
  render();

  /** Read-only hooks for tests: counts per severity, and each rule's hosts as listed. */
  window.fleetdeckAlerts = {
    counts: () => severityCounts(store.get("alerts")),
    rules: () => ruleGroups(store.get("alerts"), store.get("alertRules").metrics).map((g) => ({ rule: g.rule, hosts: g.rows.map((r) => r.host) })),
  };
}

/** Make `children` the children of `parent`, touching the DOM only if they differ. */
function keepOrder(parent, children) {
  const now = parent.children;
  if (now.length === children.length && children.every((child, i) => now[i] === child)) return;
  parent.replaceChildren(...children);
}

function ruleFires(model, rule) {
  for (const rules of model.byHost.values()) if (rules.has(rule)) return true;
  return false;
}
