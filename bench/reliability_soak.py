"""Benchmark: a soak. 5,000 clients connecting, following `fleet` and leaving again, with 1,000
simulated hosts, for 10 minutes: does the gateway's memory or its open files grow, and does it log
errors? What it measures and how: docs/reliability.md.

    scripts/bench reliability_soak                   # 5,000 clients, 1,000 hosts, 600 s
    scripts/bench reliability_soak --clients 300 --hosts 100 --duration 60
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from . import reliability_common as common
from .measure import CpuWindow
from .stack import Stack, open_window
from .summaries.reliability_soak import RUN
from .watch import Watch

CLIENTS = "fleetdeck_gateway_clients"


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp) as stack:
        fleet = stack.gateway_with_fleet(args.hosts)
        redis, gateway, agent = fleet.redis.service, fleet.gateway, fleet.agent
        assert redis is not None
        pid = gateway.service.pid
        with Watch(pid, args.sample_every, gateway) as watch:
            time.sleep(args.settle)
            processes = args.processes or max(1, math.ceil(args.clients / 1000))
            options = common.following(fleet, args) | {"churn_lifetime": f"{args.lifetime:g}"}
            options |= {
                "cpu_hosts": args.cpu_hosts,
                "ready_timeout": 300,
                "max_seconds": args.duration + 1200,
            }
            spread = stack.spread([gateway.ws_url], args.clients, processes, **options)
            started = watch.now()
            _, end = open_window([p for p, _, _ in spread], args.duration, grace=2, delay=0)
            ready = common.gather(spread, "ready", 420)
            window = CpuWindow([pid, agent.pid, redis.pid, *(p.pid for p, _, _ in spread)])
            time.sleep(max(0.0, end - time.time()))
            cpu, machine = window.close()
            results = [r for r in common.gather(spread, "result", 120) if r is not None]
            for process, _, _ in spread:
                process.stop()
            time.sleep(args.cooldown)
        log = common.log_problems(gateway.service.log_path)
    readings = [
        {"t": round(r.t - started, 2), "rss_kib": r.rss_kib, "fds": r.fds, "clients": r.metrics.get(CLIENTS)}
        for r in watch.readings
    ]
    return machine | {
        "ready": ready,
        "results": results,
        "processes": processes,
        "readings": readings,
        "gateway_cpu_pct": cpu[pid],
        "agent_cpu_pct": cpu[agent.pid],
        "redis_cpu_pct": cpu[redis.pid],
        "clients_cpu_pct": sum(cpu[p.pid] for p, _, _ in spread),
        "log": log,
    }


if __name__ == "__main__":
    common.main(RUN, __doc__, measure, needed_fds=lambda args: args.clients + 200)
