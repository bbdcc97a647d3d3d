// What a job came to, from its state and summary: the word and tone the jobs list shows. Pure;
// statuses, tones and states come from the server's protocol description.

/**
 * {tone, text} for a job frame. Tones: good (every host ok), partial (some hosts did not succeed),
 * bad (none did), running, muted (cancelled, expired, nothing ran).
 */
export function jobOutcome(job, protocol) {
  if (!protocol.finished_states.includes(job.state)) return { tone: "running", text: job.state + " (" + job.hosts + ")" };
  const summary = job.summary || {};
  const total = Object.values(summary).reduce((a, b) => a + b, 0);
  const good = Object.entries(summary)
    .filter(([status]) => protocol.status_tones[status] === "good")
    .reduce((n, [, count]) => n + count, 0);
  const failed = total - good;
  if (job.error) return { tone: "bad", text: "refused" };
  if (job.state !== "done") {
    return { tone: "muted", text: job.state + (good ? " · " + good + "/" + total + " ok" : "") };
  }
  if (!total) return { tone: "muted", text: "no hosts" };
  if (!failed) return { tone: "good", text: "ok " + good + "/" + total };
  if (!good) return { tone: "bad", text: "failed " + failed + "/" + total };
  return { tone: "partial", text: "failed " + failed + "/" + total };
}

/** `ok 18, failed 2` in the protocol's order of statuses. */
export function summaryText(summary, protocol) {
  if (!summary) return "";
  return protocol.host_statuses.filter((s) => summary[s]).map((s) => s + " " + summary[s]).join(", ");
}

/** What `{host}` in a group's output means, said once under it. */
export const HOST_LEGEND = "{host} is each host's own name or address";

/** The legend line for a group ({hosts, count, output}) whose output shows `{host}`, else "". */
export const hostLegend = (group) => (group.count > 1 && group.output.includes("{host}") ? HOST_LEGEND : "");
