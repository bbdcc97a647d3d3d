"""Benchmark: a soak. 5,000 clients connecting, following `fleet` and leaving again, with 1,000
simulated hosts, for 10 minutes: does the gateway's memory or its open files grow, and does it log
errors?

What it measures and how: docs/reliability.md. Its summary: bench/reliability_soak.md
(raw figures in bench/results/).

    scripts/bench reliability_soak                   # 5,000 clients, 1,000 hosts, 600 s
    scripts/bench reliability_soak --clients 300 --hosts 100 --duration 60
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from .harness import RELIABILITY, ROOT, Result, measured, publish, record
from .measure import CpuWindow, rss_kib
from .reliability_common import fleet_clients, gather, gather_ready, load_parser, log_problems, open_window
from .stack import Stack
from .summaries.reliability_soak import DEFAULTS, NAME, plot, render, summarize
from .watch import Reading, Watch, fd_count, mean, sockets_of

CLIENTS = "fleetdeck_gateway_clients"


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp) as stack:
        redis, _, token, gateway, agent = stack.gateway_with_fleet(args.hosts)
        assert redis.service is not None
        pid = gateway.service.pid
        with Watch(pid, args.sample_every, gateway) as watch:
            time.sleep(args.settle)
            before = watch.between(0, watch.now())
            sockets_before = sockets_of(pid, redis.port, gateway.port)
            processes = args.processes or max(1, math.ceil(args.clients / 1000))
            spread = fleet_clients(
                stack,
                [gateway.ws_url],
                args,
                processes,
                token=token,
                redis=redis.url,
                max_seconds=args.duration + 1200,
                probe_every=max(1, args.clients // max(1, args.probes)),
                churn_lifetime=f"{args.lifetime:g}",
                cpu_hosts=args.cpu_hosts,
                ready_timeout=300,
            )
            started = watch.now()
            _, end = open_window(spread, args.duration, grace=2, delay=0)
            ready = gather_ready(spread, 420)
            ours = [pid, agent.pid, redis.service.pid, *(p.pid for p, _, _ in spread)]
            cpu_window = CpuWindow(ours)
            while time.time() < end:
                time.sleep(min(30.0, max(0.0, end - time.time())))
                print(
                    f"  {watch.now() - started:5.0f} s: RSS {rss_kib(pid) / 1024:.1f} MiB, "
                    f"{fd_count(pid)} open files",
                    flush=True,
                )
            cpu, machine = cpu_window.close()
            results = [r for r in gather(spread, "result", 120) if r is not None]
            finished = watch.now()
            for process, _, _ in spread:
                process.stop()
            time.sleep(args.cooldown)
            after = watch.between(watch.now() - min(5.0, args.cooldown), watch.now())
            sockets_after = sockets_of(pid, redis.port, gateway.port)
        log = log_problems(gateway.service.log_path)
    return {
        "ready": ready,
        "results": results,
        "processes": processes,
        "started_at": started,
        "finished_at": finished,
        "readings": [
            {
                "t": round(r.t - started, 2),
                "rss_kib": r.rss_kib,
                "fds": r.fds,
                "cpu_s": r.cpu_s,
                "clients": r.metrics.get(CLIENTS),
            }
            for r in watch.readings
        ],
        "before": _means(before),
        "after": _means(after),
        "sockets_before": sockets_before,
        "sockets_after": sockets_after,
        "gateway_cpu_pct": cpu[pid],
        "agent_cpu_pct": cpu[agent.pid],
        "redis_cpu_pct": cpu[redis.service.pid],
        "clients_cpu_pct": sum(cpu[p.pid] for p, _, _ in spread),
        **machine,
        "log": log,
    }


def _means(readings: list[Reading]) -> dict[str, float]:
    return {
        "rss_kib": mean(r.rss_kib for r in readings),
        "fds": mean(r.fds for r in readings),
        "clients": mean(r.metrics[CLIENTS] for r in readings if CLIENTS in r.metrics),
    }


def main() -> None:
    helps = {
        "duration": "seconds of churn",
        "lifetime": "mean seconds a client stays connected",
        "cpu_hosts": "hosts' charts each session opens",
        "warmup": "seconds before the first span",
        "compare": "seconds of each span",
        "sample_every": "seconds between readings",
        "cooldown": "seconds watched after the clients left",
        "processes": "client processes (0: one per 1,000)",
    }
    args = load_parser(__doc__, DEFAULTS, helps).parse_args()
    raw, ctx = measured(args, lambda tmp: measure(args, tmp), needed_fds=args.clients + 200)
    s = summarize(raw, args)
    in_bench = args.out.resolve() == (ROOT / "bench").resolve()
    full = render(s, raw, args, ctx, f"{NAME}.svg")
    data, svg = record(ctx, args, s, raw), plot(raw, s, args, ctx)
    quoted = render(s, raw, args, ctx, f"../bench/{NAME}.svg" if in_bench else "")
    publish(args, Result(NAME, "Soak", full, data, page=RELIABILITY, plot=svg, quoted=quoted))


if __name__ == "__main__":
    main()
