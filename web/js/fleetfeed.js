// The fleet's data from the socket into the store: `fleet` frames (every host's latest summary,
// then only changes, at most once a second) and `hosts` frames (presence, labels, addresses: the
// list, then only what changed), plus
// the fleet's CPU over time (mean, p95, max of the online hosts), one point per `fleet` frame.
// `fleet` frames come compact (binary, decoded by the connection) unless the page's URL asks for
// `?fleet_format=json`.
import { applyFleetFrame, applyHostsFrame, fleetStats } from "./fleetmodel.js";

export const SERIES_POINTS = 900; // 15 minutes at one frame a second

export function fleetFeed(store, conn) {
  const format = new URLSearchParams(location.search).get("fleet_format") === "json" ? "json" : "compact";
  // Presence as the list once, then only what changed: the whole list is 700 KB at 10,000 hosts.
  conn.whenLive(() => conn.send({ type: "subscribe", topics: ["fleet", "hosts"], fleet_format: format,
                                  hosts_format: "changes", ref: conn.nextRef("fleet") }));

  conn.on("fleet", (frame) => {
    store.update("hosts", (hosts) => applyFleetFrame(hosts, frame));
    const stats = fleetStats(store.get("hosts"));
    store.set("stats", stats);
    if (stats.sampled) {
      store.update("fleetSeries", (series) => {
        const point = { t: frame.ts * 1000, mean: stats.mean, p95: stats.p95, max: stats.max };
        // A resubscription after a reconnect starts again with a full frame: keep time moving forward.
        if (series.length && series[series.length - 1].t >= point.t) return null;
        series.push(point);
        if (series.length > SERIES_POINTS) series.splice(0, series.length - SERIES_POINTS);
        return point;
      });
    }
  });

  conn.on("hosts", (frame) => {
    store.update("hosts", (hosts) => applyHostsFrame(hosts, frame));
    store.set("stats", fleetStats(store.get("hosts")));
  });
}
