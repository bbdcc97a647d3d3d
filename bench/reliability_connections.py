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
from .measure import CpuWindow, rss_median
from .stack import Stack, open_window
from .summaries.reliability_connections import RUN
from .watch import Watch, gateway_metrics


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp) as stack:
        fleet = stack.gateway_with_fleet(args.hosts, FLEETDECK_WS_PING_INTERVAL=f"{args.ping_interval:g}")
        redis, gateway, agent = fleet.redis.service, fleet.gateway, fleet.agent
        assert redis is not None
        pid = gateway.service.pid
        time.sleep(args.settle)
        rss_before = rss_median(pid, args.settle)
        processes = args.processes or max(1, math.ceil(args.clients / 1250))
        probe_every = max(1, args.clients // max(1, args.probes))
        with Watch(pid, 1.0, gateway) as watch:
            options = common.following(fleet, args) | {"probe_every": probe_every}
            options |= {
                "connect_concurrency": args.connect_concurrency,
                "ready_timeout": args.connect_timeout,
            }
            options["max_seconds"] = args.connect_timeout + args.duration + 600
            spread = stack.spread([gateway.ws_url], args.clients, processes, **options)
            ready = common.gather(spread, "ready", args.connect_timeout + 120)
            connect_seconds = watch.now()
            time.sleep(args.settle)
            _, end = open_window([p for p, _, _ in spread], args.duration, grace=3)
            window = CpuWindow([pid, agent.pid, redis.pid, *(p.pid for p, _, _ in spread)])
            metrics_start, w0 = gateway_metrics(gateway, timeout=30), watch.now()
            time.sleep(max(0.0, end - time.time()))
            cpu, machine = window.close()
            w1, metrics_end = watch.now(), gateway_metrics(gateway, timeout=30)
            results = common.gather(spread, "result", 120)
        log = common.log_problems(gateway.service.log_path)
    slow, held = "fleetdeck_gateway_slow_disconnects_total", "fleetdeck_gateway_clients"
    return machine | {
        "ready": ready,
        "results": [r for r in results if r is not None],
        "processes": processes,
        "probe_every": probe_every,
        "connect_seconds": connect_seconds,
        "gateway_cpu_pct": cpu[pid],
        "agent_cpu_pct": cpu[agent.pid],
        "redis_cpu_pct": cpu[redis.pid],
        "clients_cpu_pct": sum(cpu[p.pid] for p, _, _ in spread),
        "rss_before_kib": rss_before,
        "rss_window_kib": statistics.median([r.rss_kib for r in watch.between(w0, w1)] or [rss_before]),
        "gateway_clients_start": metrics_start.get(held, math.nan),
        "gateway_clients_end": metrics_end.get(held, math.nan),
        "slow_disconnects": metrics_end.get(slow, 0.0) - metrics_start.get(slow, 0.0),
        "log": log,
    }


if __name__ == "__main__":
    common.main(RUN, __doc__, measure, needed_fds=lambda args: args.clients + 200)
