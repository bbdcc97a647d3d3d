// Jobs on a host's chart: a mark at each job's start, coloured by that host's status in it (the
// tones are the server's, from /api/protocol); clicking one shows the job in the run pane. The
// marks are fetched when the chart opens, when its range changes (those queued in the range, not
// only the last 100 jobs) and again once a job finishes.
import { hostJobs } from "./historyapi.js";
import { themeColor } from "./chartstyle.js";

const TONE_VARS = { good: "--ok", bad: "--bad", slow: "--warn", unreachable: "--violet", muted: "--muted" };

/** The page's colour for a tone (a status still running: the accent colour). */
const toneColor = (tone) => themeColor(TONE_VARS[tone] || "--accent");

/**
 * Marks for `host`'s chart; `changed()` redraws it. `range()` is the span the chart shows
 * ({since, until}, unix seconds), null while it is live (then: the last 100 jobs).
 */
export function jobMarks(store, host, target, changed, range = () => null) {
  const protocol = store.get("protocol");
  let jobs = [];
  let asked = 0;

  async function refresh() {
    asked += 1;
    const mine = asked;
    try {
      const shown = range();
      const found = await hostJobs(host, shown && { since: Math.floor(shown.since), until: Math.ceil(shown.until) });
      if (mine !== asked) return;
      jobs = found;
    } catch (error) {
      console.warn("fleetdeck: jobs of", host, error);
      return;
    }
    target.dataset.marks = String(jobs.length);
    changed(true);
  }

  // A finished job may be one of this host's: ask again, at most once a second.
  let timer = null;
  const finished = (job) => job && protocol.finished_states.includes(job.state);
  const unsubscribe = store.subscribe("jobs", (all, id) => {
    if (timer || !finished(all.get(id))) return;
    timer = setTimeout(() => { timer = null; refresh(); }, 1000);
  });

  /** The marks as an ECharts scatter series, at the top of a 0–100 % chart. */
  function series() {
    return {
      name: "jobs", type: "scatter", symbol: "triangle", symbolRotate: 180, symbolSize: 11, clip: true, z: 5,
      animation: false, cursor: "pointer",
      data: jobs.map((job) => ({
        value: [job.ts * 1000, 96], job: job.job,
        name: job.command + " · " + (job.host_status || job.state),
        itemStyle: { color: toneColor(job.host_status ? protocol.status_tones[job.host_status] : "running"),
          borderColor: themeColor("--bg"), borderWidth: 1 },
      })),
    };
  }

  /** Clicking a mark shows its job (on a narrow screen, in the Run tab). */
  function attach(chart) {
    chart.on("click", { seriesName: "jobs" }, (event) => {
      store.set("showJob", event.data.job);
      store.set("tab", "run");
    });
  }

  function dispose() {
    unsubscribe();
    clearTimeout(timer);
  }

  refresh();
  return { series, attach, refresh, dispose, count: () => jobs.length };
}
