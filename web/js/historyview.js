// What a chart shows: the live view (the default, streaming) or a stretch of stored history picked
// with the range buttons or by dragging across the chart (a zoom, which the API answers with the
// finest step it holds for that span). One per chart; `shown()` is null while live.
import { h } from "./dom.js";
import { RANGES, LIVE, lastWindow, zoomWindow, stepText } from "./timerange.js";
import { themeColor } from "./chartstyle.js";

/**
 * `load(window)` fetches `{step, samples}` for `{since, until}`; `changed()` redraws. The chart's
 * element gets data-range ("live", a button's label or "zoom"), data-step and data-since/until.
 */
export function historyView(target, load, changed) {
  let state = null; // null: live; else {label, since, until, step, samples}
  let asked = 0; // answers to older requests are dropped
  const note = h("span", { class: "range-note muted", role: "status" });
  const live = h("button", { type: "button", class: "live", title: "back to the live view", hidden: true,
    onclick: () => backToLive() }, "live");
  const buttons = RANGES.map((range) => h("button", {
    type: "button", class: "range", dataset: { range: range.label }, title: range === LIVE ? "the live view" : "the last " + range.label,
    onclick: () => (range === LIVE ? backToLive() : fetchWindow(range.label, lastWindow(range.seconds, Date.now()))),
  }, range.label));
  const bar = h("div", { class: "range-bar", role: "toolbar", "aria-label": "time range" }, buttons, live, note);

  function mark(label) {
    for (const button of buttons) button.setAttribute("aria-pressed", String(button.dataset.range === label));
    live.hidden = label === LIVE.label;
    target.dataset.range = label === LIVE.label ? "live" : label;
  }

  async function fetchWindow(label, window) {
    asked += 1;
    const mine = asked;
    mark(label);
    note.textContent = "loading…";
    target.dataset.loading = "1";
    try {
      const { step, samples } = await load(window);
      if (mine !== asked) return;
      state = { label, ...window, step, samples };
      note.textContent = samples.length ? "step " + stepText(step) : "no history stored for this span";
      Object.assign(target.dataset, { step: String(step), since: String(window.since), until: String(window.until) });
    } catch (error) {
      if (mine !== asked) return;
      note.textContent = String(error.message || error);
      state = { label, ...window, step: null, samples: [] };
    }
    delete target.dataset.loading;
    changed(true);
  }

  function backToLive() {
    asked += 1;
    state = null;
    note.textContent = "";
    delete target.dataset.step;
    mark(LIVE.label);
    changed(true);
  }

  /** Drag across the chart to zoom: a brush along x, always on, cleared once it has been read. */
  function attach(chart) {
    chart.setOption({
      toolbox: { show: false },
      brush: { toolbox: [], xAxisIndex: 0, brushType: "lineX", brushMode: "single", transformable: false,
        brushStyle: { color: themeColor("--accent") + "26", borderColor: themeColor("--accent"), borderWidth: 1 } },
    });
    chart.dispatchAction({ type: "takeGlobalCursor", key: "brush", brushOption: { brushType: "lineX", brushMode: "single" } });
    chart.on("brushEnd", (event) => {
      const area = event.areas && event.areas[0];
      setTimeout(() => chart.dispatchAction({ type: "brush", areas: [] })); // not while ECharts is in its handler
      const window = area && zoomWindow(area.coordRange[0], area.coordRange[1]);
      if (window) fetchWindow("zoom", window);
    });
  }

  mark(LIVE.label);
  return { bar, attach, shown: () => state, live: backToLive };
}
