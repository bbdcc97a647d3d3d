// What every ECharts chart on the page shares: the page's colours (dark or light, style.css's
// variables, read each time a chart is drawn), a time axis that stays readable in the zone chosen,
// a tooltip in percent headed by the time and its zone.
import { timeAxis } from "./timeaxis.js";
import { fullTime, zoneName } from "./timerange.js";
import { isUtc } from "./timezone.js";

// The dark theme's values, for when there is no page to read them from.
const DARK = { "--muted": "#7d8b99", "--line": "#263241", "--bad": "#f85149", "--warn": "#d29922",
  "--accent": "#58a6ff", "--bg": "#0f1419", "--panel": "#171e26", "--text": "#d7dee6" };

/** A colour of the theme in use (a style.css variable such as "--muted"). */
export function themeColor(name) {
  const value = typeof document === "undefined" ? ""
    : getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || DARK[name] || "";
}

const LIGHT_QUERY = "(prefers-color-scheme: light)";

/** Call `fn` when the system switches between dark and light, so charts redraw in the new colours. */
export function onThemeChange(fn) {
  if (typeof window !== "undefined" && window.matchMedia) window.matchMedia(LIGHT_QUERY).addEventListener("change", fn);
}

/** The fleet chart's max, p95 and mean lines. */
export const seriesColors = () => [themeColor("--bad"), themeColor("--warn"), themeColor("--accent")];

/** The x axis for points from firstMs to lastMs. */
export const xAxis = (firstMs, lastMs) =>
  timeAxis(firstMs, lastMs, { color: themeColor("--muted"), fontSize: 10 }, isUtc());

const pct = (v) => (v == null ? "–" : v.toFixed(1) + "%");
const escape = (text) => String(text).replace(/[&<>"]/g, (c) => "&#" + c.charCodeAt(0) + ";");

/** A 0–100 % y axis. */
export const percentAxis = () => ({
  type: "value", min: 0, max: 100, interval: 25,
  axisLabel: { color: themeColor("--muted"), fontSize: 10, formatter: "{value}%" },
  splitLine: { lineStyle: { color: themeColor("--line") } },
});

/** An axis tooltip: the time in the zone chosen, then each line's value (markers say nothing here). */
export const tooltip = () => ({
  trigger: "axis", confine: true, backgroundColor: themeColor("--panel"), borderColor: themeColor("--line"),
  textStyle: { color: themeColor("--text"), fontSize: 12 },
  formatter(items) {
    const lines = items.filter((item) => item.seriesType === "line");
    if (!lines.length) return "";
    const ms = lines[0].value[0];
    return escape(fullTime(ms, isUtc()) + " " + zoneName(isUtc(), ms)) + lines.map((item) =>
      "<br>" + item.marker + escape(item.seriesName) + " <b>" + pct(item.value[1]) + "</b>").join("");
  },
});

/** A legend along the top, scrolling when there are many series (64 cores). */
export function legend(names) {
  const muted = themeColor("--muted");
  return {
    type: "scroll", top: 0, left: 0, right: 0, data: names, itemWidth: 14, itemHeight: 8,
    textStyle: { color: muted, fontSize: 11 }, pageTextStyle: { color: muted }, pageIconColor: muted,
  };
}

export const line = (name, data, extra = {}) => ({
  name, type: "line", showSymbol: false, data, animation: false, ...extra,
});
