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

  function group({ rule, severity, count, silenced, rows }) {
    const runOn = () => store.set("target", { expr: alertTarget(rule), what: "the hosts where " + rule + " fires now" });
    const openForm = () => {
      if (!forms.has(rule)) forms.set(rule, silenceForm(rule));
      render();
      forms.get(rule).querySelector(".comment").focus();
    };
    return h("div", { class: "alert-rule sev-" + severity, dataset: { rule } },
      h("div", { class: "alert-rule-head" },
        h("span", { class: "sev" }, severity),
        h("strong", { class: "rule" }, rule),
        h("span", { class: "muted" }, count + (count === 1 ? " host" : " hosts") + (silenced ? " · " + silenced + " silenced" : "")),
        h("span", { class: "spacer" }),
        h("button", { type: "button", class: "run", onclick: runOn, title: "put " + alertTarget(rule) + " in the run panel's targets" },
          "Run on these hosts"),
        isOperator() ? h("button", { type: "button", class: "silence", onclick: openForm }, "Silence…") : null),
      isOperator() ? forms.get(rule) : null,
      h("table", { class: "alert-rows" }, h("tbody", null, rows.map((row) =>
        h("tr", { class: row.silenced ? "silenced" : null, dataset: { host: row.host } },
          h("td", { class: "host" }, h("button", { type: "button", class: "link", onclick: () => openHost(store, row.host) }, row.host)),
          h("td", { class: "value" }, row.value),
          h("td", { class: "since" }, sinceText(row.since, Date.now() / 1000, isUtc())),
          h("td", { class: "summary" }, row.summary),
          h("td", { class: "mark" }, row.silenced ? h("span", { class: "silenced-mark", title: "silenced: no notifications" }, "silenced") : null))))),
      count > rows.length ? h("p", { class: "muted more" }, "… and " + (count - rows.length) + " more hosts") : null);
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
    $("alert-groups").replaceChildren(...ruleGroups(model, metrics, ROWS_PER_RULE).map(group));
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

function ruleFires(model, rule) {
  for (const rules of model.byHost.values()) if (rules.has(rule)) return true;
  return false;
}
