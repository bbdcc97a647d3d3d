// The dashboard's reads of stored history and of a host's jobs over HTTP (the socket carries only
// the live view). Each answer's samples carry the step as `interval`, so lines break at gaps.
import { historyQuery } from "./timerange.js";

async function getJson(url) {
  const answer = await fetch(url, { credentials: "same-origin" });
  if (!answer.ok) {
    let why = answer.statusText;
    try { why = (await answer.json()).message || why; } catch (e) { /* not JSON */ }
    throw new Error(url.split("?")[0] + ": " + answer.status + " " + why);
  }
  return answer.json();
}

const withStep = (body) => ({ ...body, samples: body.samples.map((s) => ({ ...s, interval: body.step })) });

/** GET /api/hosts/{host}/history for a window `{since, until, step?}`. */
export const hostHistory = async (host, window) =>
  withStep(await getJson("/api/hosts/" + encodeURIComponent(host) + "/history" + historyQuery(window)));

/** GET /api/fleet/history for a window `{since, until?, step?, targets?}`. */
export const fleetHistory = async (window) => withStep(await getJson("/api/fleet/history" + historyQuery(window)));

/**
 * GET /api/jobs?host=…: the jobs that ran on a host, each with that host's `host_status`: those
 * queued within `window` ({since, until}, unix seconds) when given, else the last 100.
 */
export const hostJobs = async (host, window) => {
  const range = window ? "&since=" + window.since + "&until=" + window.until : "";
  return (await getJson("/api/jobs?host=" + encodeURIComponent(host) + range)).jobs;
};
