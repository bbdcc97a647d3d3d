// Recent jobs, newest first, in aligned columns: when, outcome (coloured by what happened on the
// hosts, not by the job's state alone), command, targets, who. Click one to show it in the terminal.
import { $, h, onNextFrame } from "./dom.js";
import { jobOutcome, summaryText } from "./outcome.js";
import { clock } from "./format.js";

const SHOWN = 30;

export function jobsList(store, conn) {
  const protocol = store.get("protocol");
  const finished = (state) => protocol.finished_states.includes(state);
  // Announcements can arrive out of order across reconnects; never step a job back.
  const rank = (state) => (finished(state) ? protocol.job_states.length : protocol.job_states.indexOf(state));

  conn.whenLive(() => conn.send({ type: "subscribe", topics: ["jobs"], ref: conn.nextRef("jobs") }));
  conn.on("job", (frame) => {
    store.update("jobs", (jobs) => {
      const known = jobs.get(frame.job);
      if (!known || rank(frame.state) >= rank(known.state)) jobs.set(frame.job, frame);
      return frame.job;
    });
  });

  const render = onNextFrame(() => {
    const current = store.get("currentJob");
    const newest = [...store.get("jobs").values()].sort((a, b) => b.ts - a.ts).slice(0, SHOWN);
    const head = h("li", { class: "head", "aria-hidden": "true" },
      h("span", null, "when"), h("span", null, "outcome"), h("span", null, "command"),
      h("span", null, "targets"), h("span", null, "by"));
    $("job-list").replaceChildren(head, ...newest.map((job) => {
      const outcome = jobOutcome(job, protocol);
      const summary = summaryText(job.summary, protocol);
      return h("li", {
        class: "job" + (job.job === current ? " current" : ""),
        dataset: { job: job.job, state: job.state, outcome: outcome.tone },
        title: [job.state, job.hosts + " hosts", summary, job.error].filter(Boolean).join(" · "),
        tabIndex: 0,
      },
      h("span", { class: "when muted" }, clock(job.ts)),
      h("span", { class: "outcome outcome-" + outcome.tone }, outcome.text),
      h("code", { class: "command" }, job.copy ? "copy → " + job.copy.dest : job.command),
      h("code", { class: "targets", title: (job.resolved_targets || job.targets) + " (" + job.hosts + " hosts)" }, job.targets),
      h("span", { class: "by muted" }, job.by));
    }));
    $("jobs-empty").hidden = newest.length > 0;
  });
  store.subscribe("jobs", render);
  store.subscribe("currentJob", render);

  const list = $("job-list");
  const show = (event) => {
    const li = event.target.closest("li.job");
    if (li) store.set("showJob", li.dataset.job);
  };
  list.addEventListener("click", show);
  list.addEventListener("keydown", (event) => { if (event.key === "Enter") show(event); });
}
