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
from .stack import Stack
from .summaries.reliability_soak import RUN
from .watch import Watch

CLIENTS = "fleetdeck_gateway_clients"


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp, args) as load:
        load.start()
        with Watch(load.pids[0], args.sample_every, load.gateways[0]) as watch:
            time.sleep(args.settle)
            processes = args.processes or max(1, math.ceil(args.clients / 1000))
            options = {"churn_lifetime": f"{args.lifetime:g}", "cpu_hosts": args.cpu_hosts}
            options |= {"ready_timeout": 300, "max_seconds": args.duration + 1200}
            spread = load.follow(args.clients, processes, **options)
            started = watch.now()
            _, end = load.window(args.duration, grace=2, delay=0)
            ready = spread.gather("ready", 420)
            window, _ = load.window()
            time.sleep(max(0.0, end - time.time()))
            cpu, machine = window.close()
            results = [r for r in spread.gather("result", 120) if r is not None]
            for process in spread.processes:
                process.stop()
            time.sleep(args.cooldown)
        log = common.logs(load)[0]
    readings = [
        {"t": round(r.t - started, 2), "rss_kib": r.rss_kib, "fds": r.fds, "clients": r.metrics.get(CLIENTS)}
        for r in watch.readings
    ]
    return (
        machine
        | load.costs(cpu)
        | {
            "ready": ready,
            "results": results,
            "processes": processes,
            "readings": readings,
            "log": log,
        }
    )


if __name__ == "__main__":
    common.main(RUN, __doc__, measure, needed_fds=lambda args: args.clients + 200)
