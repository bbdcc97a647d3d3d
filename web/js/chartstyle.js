// What every ECharts chart on the page shares: colours that suit the dark page, a time axis that
// stays readable, a tooltip in percent.
import { timeAxis } from "./timeaxis.js";

export const MUTED = "#7d8b99";
export const LINE = "#263241";

/** The x axis for points from firstMs to lastMs. */
export const xAxis = (firstMs, lastMs) => timeAxis(firstMs, lastMs, { color: MUTED, fontSize: 10 });

/** A 0–100 % y axis. */
export const percentAxis = () => ({
  type: "value", min: 0, max: 100, interval: 25,
  axisLabel: { color: MUTED, fontSize: 10, formatter: "{value}%" },
  splitLine: { lineStyle: { color: LINE } },
});

export const tooltip = () => ({
  trigger: "axis", confine: true,
  valueFormatter: (v) => (v == null ? "–" : v.toFixed(1) + "%"),
});

/** A legend along the top, scrolling when there are many series (64 cores). */
export const legend = (names) => ({
  type: "scroll", top: 0, left: 0, right: 0, data: names, itemWidth: 14, itemHeight: 8,
  textStyle: { color: MUTED, fontSize: 11 }, pageTextStyle: { color: MUTED }, pageIconColor: MUTED,
});

export const line = (name, data, extra = {}) => ({
  name, type: "line", showSymbol: false, data, animation: false, ...extra,
});
