// Recordings as data: an asciicast v2 text read into its header and events, and where playback
// stands at a moment (pauses longer than IDLE_CAP are shortened, as `asciinema play -i` does).
// No DOM: recordings.js plays it on xterm.js.

export const IDLE_CAP = 2; // seconds: a longer pause in a recording plays as this long

/** `{header, events: [{t, kind, data}]}` from asciicast v2 text; throws an Error naming the line. */
export function parseCast(text) {
  const lines = String(text).split("\n").filter((line) => line.trim());
  if (!lines.length) throw new Error("the recording is empty");
  let header;
  try { header = JSON.parse(lines[0]); } catch (e) { throw new Error("line 1 of the recording is not JSON"); }
  if (!header || header.version !== 2) throw new Error("the recording is not asciicast version 2");
  const events = [];
  let last = 0;
  let shift = 0; // seconds of pauses cut so far
  lines.slice(1).forEach((line, i) => {
    let event;
    try { event = JSON.parse(line); } catch (e) { throw new Error("line " + (i + 2) + " of the recording is not JSON"); }
    if (!Array.isArray(event) || typeof event[0] !== "number" || typeof event[2] !== "string") {
      throw new Error("line " + (i + 2) + " of the recording is not an event [time, code, data]");
    }
    const gap = event[0] - last;
    if (gap > IDLE_CAP) shift += gap - IDLE_CAP;
    last = Math.max(last, event[0]);
    events.push({ t: Math.max(0, event[0] - shift), kind: event[1], data: event[2] });
  });
  return { header, events, duration: events.length ? events[events.length - 1].t : 0 };
}

/** `"COLSxROWS"` of a resize event as numbers, or null when it is not one. */
export function resizeOf(event) {
  if (event.kind !== "r") return null;
  const match = /^(\d+)x(\d+)$/.exec(event.data);
  return match ? { cols: Number(match[1]), rows: Number(match[2]) } : null;
}

/** How many of `events` are due `elapsed` seconds into playback (they are in time order). */
export function dueCount(events, elapsed) {
  let low = 0;
  let high = events.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (events[mid].t <= elapsed) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** "1:05" for 65 seconds. */
export const clock = (seconds) => {
  const s = Math.max(0, Math.floor(seconds));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
};
