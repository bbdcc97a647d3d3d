"""Benchmark: three gateway processes behind one Redis, 1,000 simulated hosts at 1 Hz, 1,000 clients
following `fleet` spread over them.

What it measures and how: docs/reliability.md. Its summary: bench/reliability_scaleout.md
(raw figures in bench/results/).

    scripts/bench reliability_scaleout               # 3 gateways, 1,000 hosts, 1,000 clients, 30 s
    scripts/bench reliability_scaleout --hosts 100 --clients 200 --duration 20
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

from fleetdeck_common import topics

from .harness import RELIABILITY, Result, run
from .measure import CpuWindow, cpu_seconds, rss_kib, rss_median
from .reliability_common import fleet_clients, gather, gather_ready, load_parser, log_problems, open_window
from .stack import Gateway, Stack, make_token, wait_for_hosts
from .summaries.reliability_scaleout import DEFAULTS, NAME, render, summarize
from .watch import (
    command_rates,
    cpu_over,
    gateway_metrics,
    redis_cpu_and_commands,
    redis_out_bytes,
    subscribers,
)


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp) as stack:
        redis = stack.redis()
        assert redis.service is not None
        redis_pid = redis.service.pid
        tokens = tmp / "tokens.txt"
        token = make_token(tokens)
        gateways: list[Gateway] = [
            stack.gateway(redis.url, tokens, name=f"gateway-{i}") for i in range(args.gateways)
        ]
        pids = [g.service.pid for g in gateways]
        # Redis and the gateways with no fleet yet: what they spend anyway (timers, presence polls).
        quiet = cpu_over([*pids, redis_pid], args.idle)
        agent = stack.simulated_fleet(redis.url, args.hosts)
        for gateway in gateways:
            wait_for_hosts(gateway, token, args.hosts)
        time.sleep(args.settle)
        # The fleet and the gateways, no clients: what ingesting the samples costs.
        idle_cpu0 = {p: cpu_seconds(p) for p in pids}
        redis_cpu0, commands0 = redis_cpu_and_commands(redis.url, redis_pid)
        out0 = redis_out_bytes(redis.url)
        idle_t = time.monotonic()
        rss_idle = {p: rss_median(p, args.idle) for p in pids}
        idle_s = time.monotonic() - idle_t
        redis_cpu1, commands1 = redis_cpu_and_commands(redis.url, redis_pid)
        out1 = redis_out_bytes(redis.url)
        idle_cpu = {p: (cpu_seconds(p) - idle_cpu0[p]) / idle_s * 100 for p in pids}
        subscribers_idle = subscribers(redis.url, topics.CPU_CHANNEL)

        spread = fleet_clients(
            stack,
            [g.ws_url for g in gateways],
            args,
            args.processes or 2 * args.gateways,
            token=token,
            redis=redis.url,
            max_seconds=args.duration + 900,
            reach=True,  # measured on the probes, as latency is
            probe_every=args.probe_every,
        )
        connect_t = time.monotonic()
        ready = gather_ready(spread, 300)
        connect_seconds = time.monotonic() - connect_t
        time.sleep(args.settle)
        _, end = open_window(spread, args.duration, grace=4)
        ours = [*pids, agent.pid, redis_pid, *(p.pid for p, _, _ in spread)]
        cpu_window = CpuWindow(ours)
        _, commands2 = redis_cpu_and_commands(redis.url, redis_pid)
        metrics_start = [gateway_metrics(g) for g in gateways]
        rss_readings: dict[int, list[int]] = {p: [] for p in pids}
        while time.time() < end:
            for p in pids:
                rss_readings[p].append(rss_kib(p))
            time.sleep(min(1.0, max(0.0, end - time.time())))
        cpu, machine = cpu_window.close()
        _, commands3 = redis_cpu_and_commands(redis.url, redis_pid)
        subscribers_window = subscribers(redis.url, topics.CPU_CHANNEL)
        metrics_end = [gateway_metrics(g) for g in gateways]
        results = gather(spread, "result", 120)
        logs = [log_problems(g.service.log_path) for g in gateways]
    return {
        "ready": ready,
        "results": results,
        "gateway_of_process": [g for _, _, g in spread],
        "clients_of_process": [n for _, n, _ in spread],
        "connect_seconds": connect_seconds,
        **machine,
        "gateway_cpu_pct": [cpu[p] for p in pids],
        "gateway_cpu_pct_without_clients": [idle_cpu[p] for p in pids],
        "gateway_cpu_pct_without_fleet": [quiet[p] for p in pids],
        "redis_cpu_pct_without_fleet": quiet[redis_pid],
        "gateway_rss_without_clients_kib": [rss_idle[p] for p in pids],
        "gateway_rss_kib": [int(statistics.median(rss_readings[p])) for p in pids],
        "gateway_clients": [m.get("fleetdeck_gateway_clients", math.nan) for m in metrics_end],
        "redis_reconnects": [
            e.get("fleetdeck_gateway_redis_reconnects", 0.0)
            - s.get("fleetdeck_gateway_redis_reconnects", 0.0)
            for s, e in zip(metrics_start, metrics_end, strict=True)
        ],
        "agent_cpu_pct": cpu[agent.pid],
        "redis_cpu_pct": cpu[redis_pid],
        "redis_cpu_pct_without_clients": (redis_cpu1 - redis_cpu0) / idle_s * 100,
        "redis_commands_without_clients": command_rates(commands0, commands1, idle_s),
        "redis_commands": command_rates(commands2, commands3, machine["window_s"]),
        "redis_out_bytes_per_s_without_clients": (out1 - out0) / idle_s,
        "subscribers_without_clients": subscribers_idle,
        "subscribers": subscribers_window,
        "clients_cpu_pct": sum(cpu[p.pid] for p, _, _ in spread),
        "logs": logs,
    }


def main() -> None:
    helps = {
        "gateways": "gateway processes",
        "duration": "seconds measured",
        "processes": "client processes (0: two per gateway)",
        "idle": "seconds measuring Redis and the gateways without fleet/clients",
    }
    args = load_parser(__doc__, DEFAULTS, helps, attempts=2).parse_args()
    result = Result(NAME, "Three gateways behind one Redis", "", {}, page=RELIABILITY)
    run(args, measure, summarize, render, result, 2 * args.clients + 200)


if __name__ == "__main__":
    main()
