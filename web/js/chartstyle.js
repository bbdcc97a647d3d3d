// What every ECharts chart on the page shares: colours that suit the dark page, a time axis that
// stays readable in the zone chosen, a tooltip in percent headed by the time and its zone.
import { timeAxis } from "./timeaxis.js";
import { fullTime, zoneName } from "./timerange.js";
import { isUtc } from "./timezone.js";

export const MUTED = "#7d8b99";
export const LINE = "#263241";

/** The x axis for points from firstMs to lastMs. */
export const xAxis = (firstMs, lastMs) => timeAxis(firstMs, lastMs, { color: MUTED, fontSize: 10 }, isUtc());

const pct = (v) => (v == null ? "–" : v.toFixed(1) + "%");
const escape = (text) => String(text).replace(/[&<>"]/g, (c) => "&#" + c.charCodeAt(0) + ";");

/** A 0–100 % y axis. */
export const percentAxis = () => ({
  type: "value", min: 0, max: 100, interval: 25,
  axisLabel: { color: MUTED, fontSize: 10, formatter: "{value}%" },
  splitLine: { lineStyle: { color: LINE } },
});

/** An axis tooltip: the time in the zone chosen, then each line's value (markers say nothing here). */
export const tooltip = () => ({
  trigger: "axis", confine: true,
  formatter(items) {
    const lines = items.filter((item) => item.seriesType === "line");
    if (!lines.length) return "";
    const ms = lines[0].value[0];
    return escape(fullTime(ms, isUtc()) + " " + zoneName(isUtc(), ms)) + lines.map((item) =>
      "<br>" + item.marker + escape(item.seriesName) + " <b>" + pct(item.value[1]) + "</b>").join("");
  },
});

/** A legend along the top, scrolling when there are many series (64 cores). */
export const legend = (names) => ({
  type: "scroll", top: 0, left: 0, right: 0, data: names, itemWidth: 14, itemHeight: 8,
  textStyle: { color: MUTED, fontSize: 11 }, pageTextStyle: { color: MUTED }, pageIconColor: MUTED,
});

export const line = (name, data, extra = {}) => ({
  name, type: "line", showSymbol: false, data, animation: false, ...extra,
});
