"""Benchmark: 10,000 WebSocket connections held by one gateway process, pings on, every one following
`fleet` with 1,000 simulated hosts. What it measures and how: docs/reliability.md.

    scripts/bench reliability_connections            # 10,000 clients, 1,000 hosts, 60 s window
    scripts/bench reliability_connections --clients 200 --hosts 100 --duration 20
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

from . import reliability_common as common
from .measure import rss_median
from .stack import Stack
from .summaries.reliability_connections import RUN
from .watch import gateway_metrics


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp, args) as load:
        load.start(FLEETDECK_WS_PING_INTERVAL=f"{args.ping_interval:g}")
        gateway, pid = load.gateways[0], load.pids[0]
        time.sleep(args.settle)
        rss_before = rss_median(pid, args.settle)
        processes = args.processes or max(1, math.ceil(args.clients / 1250))
        probe_every = max(1, args.clients // max(1, args.probes))
        options = {"probe_every": probe_every, "connect_concurrency": args.connect_concurrency}
        options |= {"ready_timeout": args.connect_timeout}
        options["max_seconds"] = args.connect_timeout + args.duration + 600
        started = time.monotonic()
        ready = load.follow(args.clients, processes, **options).gather("ready", args.connect_timeout + 120)
        connect_seconds = time.monotonic() - started
        time.sleep(args.settle)
        metrics_start = gateway_metrics(gateway, timeout=30)
        cpu, machine, rss, results = load.follow_window(3, RUN.name)
        metrics_end = gateway_metrics(gateway, timeout=30)
        log = common.logs(load)[0]
    slow, held = "fleetdeck_gateway_slow_disconnects_total", "fleetdeck_gateway_clients"
    return (
        machine
        | load.costs(cpu)
        | {
            "ready": ready,
            "results": [r for r in results if r is not None],
            "processes": processes,
            "probe_every": probe_every,
            "connect_seconds": connect_seconds,
            "rss_before_kib": rss_before,
            "rss_window_kib": statistics.median(rss[pid] or [rss_before]),
            "gateway_clients_start": metrics_start.get(held, math.nan),
            "gateway_clients_end": metrics_end.get(held, math.nan),
            "slow_disconnects": metrics_end.get(slow, 0.0) - metrics_start.get(slow, 0.0),
            "log": log,
        }
    )


if __name__ == "__main__":
    common.main(RUN, __doc__, measure, needed_fds=lambda args: args.clients + 200)
