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
from .measure import CpuWindow, rss_kib
from .stack import Stack, open_window
from .summaries.reliability_soak import RUN
from .watch import Watch, fd_count, sockets_of

CLIENTS = "fleetdeck_gateway_clients"


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp) as stack:
        fleet = stack.gateway_with_fleet(args.hosts)
        redis, gateway, agent = fleet.redis.service, fleet.gateway, fleet.agent
        assert redis is not None
        pid, redis_port = gateway.service.pid, fleet.redis.port
        with Watch(pid, args.sample_every, gateway) as watch:
            time.sleep(args.settle)
            sockets_before = sockets_of(pid, redis_port, gateway.port)
            processes = args.processes or max(1, math.ceil(args.clients / 1000))
            spread = common.fleet_clients(
                stack,
                fleet,
                args,
                processes,
                max_seconds=args.duration + 1200,
                churn_lifetime=f"{args.lifetime:g}",
                cpu_hosts=args.cpu_hosts,
                ready_timeout=300,
            )
            started = watch.now()
            _, end = open_window([p for p, _, _ in spread], args.duration, grace=2, delay=0)
            ready = common.gather_ready(spread, 420)
            window = CpuWindow([pid, agent.pid, redis.pid, *(p.pid for p, _, _ in spread)])
            while time.time() < end:
                time.sleep(min(30.0, max(0.0, end - time.time())))
                rss, files = rss_kib(pid) / 1024, fd_count(pid)
                print(f"  {watch.now() - started:5.0f} s: RSS {rss:.1f} MiB, {files} open files", flush=True)
            cpu, machine = window.close()
            results = [r for r in common.gather(spread, "result", 120) if r is not None]
            for process, _, _ in spread:
                process.stop()
            time.sleep(args.cooldown)
            sockets_after = sockets_of(pid, redis_port, gateway.port)
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
        "sockets_before": sockets_before,
        "sockets_after": sockets_after,
        "gateway_cpu_pct": cpu[pid],
        "agent_cpu_pct": cpu[agent.pid],
        "redis_cpu_pct": cpu[redis.pid],
        "clients_cpu_pct": sum(cpu[p.pid] for p, _, _ in spread),
        "log": log,
    }


if __name__ == "__main__":
    common.main(RUN, __doc__, measure, needed_fds=lambda args: args.clients + 200)
