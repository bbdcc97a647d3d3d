// Time axes for ECharts that stay readable with seconds of data or months of it. Pure.
import { timeLabel } from "./timerange.js";

export { timeLabel };

/** The axis always spans at least this much, so a few seconds of data do not crowd the labels. */
export const MIN_SPAN_MS = 60_000;

/** The span the axis will show for data from `firstMs` to `lastMs`. */
export const axisSpan = (firstMs, lastMs) => Math.max(MIN_SPAN_MS, lastMs - firstMs);

/**
 * An ECharts `xAxis` for points from `firstMs` to `lastMs`: at least a minute wide, ticks no closer
 * than 15 s, labels that never overlap, in local time or (`utc`) UTC.
 */
export function timeAxis(firstMs, lastMs, style = {}, utc = false) {
  const span = axisSpan(firstMs, lastMs);
  return {
    type: "time",
    min: lastMs - span,
    max: lastMs,
    minInterval: 15_000,
    splitNumber: 4,
    splitLine: { show: false },
    axisLabel: { ...style, hideOverlap: true, formatter: (value) => timeLabel(value, span, utc) },
  };
}

// A line across a time the host was away would claim values nobody measured: break it instead.
// Two samples are apart when more than 2.5 intervals passed between them, or when the agent's
// sample number went back (it restarted).
export function points(samples, valueOf) {
  const out = [];
  let previous = null;
  for (const sample of samples) {
    if (previous) {
      const interval = sample.interval || previous.interval || 1;
      const restarted = Number.isInteger(sample.n) && Number.isInteger(previous.n) && sample.n <= previous.n;
      if (restarted || sample.ts - previous.ts > 2.5 * interval) {
        out.push([((previous.ts + sample.ts) / 2) * 1000, null]);
      }
    }
    out.push([sample.ts * 1000, valueOf(sample)]);
    previous = sample;
  }
  return out;
}
