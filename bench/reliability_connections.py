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

from .measure import CpuWindow, idle
from .reliability_common import fleet_clients, gather, gather_ready, log_problems, main, open_window
from .stack import Stack
from .summaries.reliability_connections import RUN
from .watch import Watch, fd_count, gateway_metrics


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp) as stack:
        redis, _, token, gateway, agent = stack.gateway_with_fleet(
            args.hosts, FLEETDECK_WS_PING_INTERVAL=f"{args.ping_interval:g}"
        )
        assert redis.service is not None
        pid = gateway.service.pid
        time.sleep(args.settle)
        idle_cpu, rss_before = idle(pid, args.settle)
        fds_before = fd_count(pid)
        processes = args.processes or max(1, math.ceil(args.clients / 1250))
        probe_every = max(1, args.clients // max(1, args.probes))
        with Watch(pid, 1.0, gateway) as watch:
            spread = fleet_clients(
                stack,
                [gateway.ws_url],
                args,
                processes,
                token=token,
                redis=redis.url,
                max_seconds=args.connect_timeout + args.duration + 600,
                probe_every=probe_every,
                connect_concurrency=args.connect_concurrency,
                ready_timeout=args.connect_timeout,
            )
            ready = gather_ready(spread, args.connect_timeout + 120)
            connect_seconds = watch.now()
            time.sleep(args.settle)
            _, end = open_window(spread, args.duration, grace=3)
            cpu_window = CpuWindow([pid, agent.pid, redis.service.pid, *(p.pid for p, _, _ in spread)])
            metrics_start, w0 = gateway_metrics(gateway, timeout=30), watch.now()
            time.sleep(max(0.0, end - time.time()))
            cpu, machine = cpu_window.close()
            w1, metrics_end = watch.now(), gateway_metrics(gateway, timeout=30)
            results = gather(spread, "result", 120)
        window = watch.between(w0, w1)
        log = log_problems(gateway.service.log_path)
    slow = "fleetdeck_gateway_slow_disconnects_total"
    return machine | {
        "ready": ready,
        "results": [r for r in results if r is not None],
        "processes": processes,
        "probe_every": probe_every,
        "connect_seconds": connect_seconds,
        "gateway_cpu_pct": cpu[pid],
        "gateway_cpu_pct_without_clients": idle_cpu,
        "agent_cpu_pct": cpu[agent.pid],
        "redis_cpu_pct": cpu[redis.service.pid],
        "clients_cpu_pct": sum(cpu[p.pid] for p, _, _ in spread),
        "rss_before_kib": rss_before,
        "rss_window_kib": int(statistics.median(r.rss_kib for r in window)) if window else rss_before,
        "rss_max_kib": max((r.rss_kib for r in watch.readings), default=rss_before),
        "fds_before": fds_before,
        "fds_max": max((r.fds for r in watch.readings), default=fds_before),
        "gateway_clients_start": metrics_start.get("fleetdeck_gateway_clients", math.nan),
        "gateway_clients_end": metrics_end.get("fleetdeck_gateway_clients", math.nan),
        "slow_disconnects": metrics_end.get(slow, 0.0) - metrics_start.get(slow, 0.0),
        "log": log,
    }


if __name__ == "__main__":
    main(RUN, __doc__, measure, needed_fds=lambda args: args.clients + 200)
