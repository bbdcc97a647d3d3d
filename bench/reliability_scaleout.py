"""Benchmark: three gateway processes behind one Redis, 1,000 simulated hosts at 1 Hz, 1,000 clients
following `fleet` spread over them. What it measures and how: docs/reliability.md.

    scripts/bench reliability_scaleout               # 3 gateways, 1,000 hosts, 1,000 clients, 30 s
    scripts/bench reliability_scaleout --hosts 100 --clients 200 --duration 20
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from pathlib import Path
from typing import Any

from fleetdeck_common import topics

from . import reliability_common as common
from .measure import CpuWindow, rss_median
from .stack import Stack
from .summaries.reliability_scaleout import RUN
from .watch import gateway_metrics, per_second, redis_counters

RECONNECTS = "fleetdeck_gateway_redis_reconnects"


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp, args) as load:
        gateways, pids = load.start(args.gateways, fleet=False).gateways, load.pids
        redis_now = functools.partial(redis_counters, load.redis_url, topics.CPU_CHANNEL)

        # Redis and the gateways with no fleet yet: what they spend anyway (timers, presence polls).
        quiet_window = CpuWindow([*pids, load.feed[0]])
        time.sleep(args.idle)
        quiet = quiet_window.close()[0]
        load.start_fleet()
        time.sleep(args.settle)
        # The fleet and the gateways, no clients: what ingesting the samples costs.
        idle_window, idle_start = CpuWindow([*pids, load.feed[0]]), redis_now()
        rss_idle = [rss_median(p, args.idle) for p in pids]
        idle_cpu, idle = idle_window.close()[0], per_second(idle_start, redis_now())

        # --reach is measured on the probes, as latency is.
        options = {"reach": True, "probe_every": args.probe_every, "max_seconds": args.duration + 900}
        spread = load.follow(args.clients, args.processes or 2 * args.gateways, **options)
        connect_t = time.monotonic()
        ready = spread.gather("ready", 300)
        connect_seconds = time.monotonic() - connect_t
        time.sleep(args.settle)
        metrics_start, subscribers = [gateway_metrics(g) for g in gateways], redis_now()["subscribers"]
        cpu, machine, rss, results = load.follow_window(4, RUN.name)
        metrics_end = [gateway_metrics(g) for g in gateways]
        logs = common.logs(load)
    return (
        machine
        | load.costs(cpu, listed=True)
        | {
            "ready": ready,
            "results": results,
            "gateway_of_process": [g for _, _, g in spread],
            "connect_seconds": connect_seconds,
            "gateway_cpu_pct_without_clients": [idle_cpu[p] for p in pids],
            "gateway_cpu_pct_without_fleet": [quiet[p] for p in pids],
            "gateway_rss_without_clients_kib": rss_idle,
            "gateway_rss_kib": [int(statistics.median(rss[p])) for p in pids],
            "redis_reconnects": [
                e.get(RECONNECTS, 0.0) - s.get(RECONNECTS, 0.0)
                for s, e in zip(metrics_start, metrics_end, strict=True)
            ],
            "redis_cpu_pct_without_clients": idle_cpu[load.feed[0]],
            "redis_cpu_pct_without_fleet": quiet[load.feed[0]],
            "redis_without_clients": idle,  # a second: µs in each command, `out_bytes`; `subscribers`
            "subscribers": subscribers,
            "logs": logs,
        }
    )


if __name__ == "__main__":
    common.main(RUN, __doc__, measure, needed_fds=lambda args: 2 * args.clients + 200, attempts=2)
