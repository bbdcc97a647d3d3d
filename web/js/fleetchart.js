// The fleet's CPU over time on one ECharts chart: mean, p95 and max of the online hosts. Live by
// default, filled from stored history at page load so a reload does not start it empty; the range
// buttons and drag-to-zoom show longer or finer stretches of GET /api/fleet/history.
import { $, afterNextFrame, onResize } from "./dom.js";
import { echarts } from "./vendor.js";
import { xAxis, percentAxis, tooltip, legend, line, seriesColors, onThemeChange } from "./chartstyle.js";
import { historyView } from "./historyview.js";
import { fleetHistory } from "./historyapi.js";
import { LIVE, lastWindow, seedSeries } from "./timerange.js";
import { onZoneChange } from "./timezone.js";
import { SERIES_POINTS } from "./fleetfeed.js";

const NAMES = ["max", "p95", "mean"];

const asPoints = (samples) => samples.map((s) => ({ t: s.ts * 1000, mean: s.mean, p95: s.p95, max: s.max }));

export function fleetChart(store) {
  const el = $("fleet-chart");
  const chart = echarts.init(el, null, { renderer: "canvas" });
  chart.setOption({
    animation: false,
    grid: { left: 40, right: 10, top: 28, bottom: 22 },
    legend: legend(NAMES),
    yAxis: percentAxis(),
    xAxis: xAxis(Date.now(), Date.now()),
    tooltip: tooltip(),
    color: seriesColors(),
    series: NAMES.map((name) => line(name, [], { lineStyle: { width: name === "mean" ? 2 : 1 } })),
  });
  const history = historyView(el, fleetHistory, () => draw());
  el.before(history.bar);
  history.attach(chart);

  const draw = afterNextFrame(() => {
    const past = history.shown();
    const series = past ? asPoints(past.samples) : store.get("fleetSeries");
    const [first, last] = past ? [past.since * 1000, past.until * 1000]
      : series.length ? [series[0].t, series[series.length - 1].t] : [Date.now(), Date.now()];
    chart.setOption({
      xAxis: xAxis(first, last),
      series: NAMES.map((name) => ({ name, data: series.map((p) => [p.t, p[name]]) })),
    });
    el.dataset.points = String(series.length);
  });
  store.subscribe("fleetSeries", () => { if (!history.shown()) draw(); });
  onZoneChange(draw);
  onThemeChange(() => {
    chart.setOption({ legend: legend(NAMES), yAxis: percentAxis(), tooltip: tooltip(), color: seriesColors() });
    draw();
  });
  onResize(el, () => chart.resize());
  draw();

  // The live view's last 15 minutes from history, under the points that arrived meanwhile.
  fleetHistory(lastWindow(LIVE.seconds, Date.now()))
    .then(({ samples }) => store.update("fleetSeries", (series) => {
      series.splice(0, series.length, ...seedSeries(asPoints(samples), series, SERIES_POINTS));
      el.dataset.seeded = String(samples.length);
      return null;
    }))
    .catch((error) => console.warn("fleetdeck: fleet history", error));
}
