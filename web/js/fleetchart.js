// The fleet's CPU over time on one ECharts chart: mean, p95 and max of the online hosts.
import { $, onNextFrame, onResize } from "./dom.js";
import { echarts } from "./vendor.js";
import { xAxis, percentAxis, tooltip, legend, line } from "./chartstyle.js";

const NAMES = ["max", "p95", "mean"];

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
    color: ["#f85149", "#d29922", "#58a6ff"],
    series: NAMES.map((name) => line(name, [], { lineStyle: { width: name === "mean" ? 2 : 1 } })),
  });

  const draw = onNextFrame(() => {
    const series = store.get("fleetSeries");
    if (!series.length) return;
    chart.setOption({
      xAxis: xAxis(series[0].t, series[series.length - 1].t),
      series: NAMES.map((name) => ({ name, data: series.map((p) => [p.t, p[name]]) })),
    });
    el.dataset.points = String(series.length);
  });
  store.subscribe("fleetSeries", draw);
  onResize(el, () => chart.resize());
  draw();
}
