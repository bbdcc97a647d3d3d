"""Benchmark: per-sample fan-out to 1,000 clients, fleetdeck's gateway against two peers, one run.

What it measures and how: docs/benchmarks.md. Its summary: bench/fanout_peers.md.

    scripts/bench fanout_peers        # or: .venv/bin/python -m bench.fanout_peers --rounds 3
"""

from __future__ import annotations

import argparse
import functools
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from testbed.procs import ROOT, free_port, wait_until

from .cli import parser
from .harness import Result, pin, rotations, run
from .measure import best_of, quantiles, rss_median, total
from .stack import Stack
from .summaries.fanout_peers import HELPS, NAME, OPTIONS, SYSTEMS, render, summarize

HISTORY = 10  # samples of history per host: what a `cpu` subscriber is sent first
GRACE = 10.0  # seconds after the window that a sample of the window may still arrive to count


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def start_server(stack: Stack, system: str, name: str) -> str:
    """Start one of the systems, pinned as the server measured; its WebSocket URL once it listens."""
    if system.startswith("fleetdeck"):
        gateway = stack.gateway(stack.redis_url, stack.tokens, name=name)
        pid, url = gateway.service.pid, gateway.ws_url
    else:
        port = free_port()
        argv = [sys.executable, "-m", f"bench.peer_{system}", "--port", str(port), "--redis", stack.redis_url]
        pid, url = stack.service(name, argv, {"PYTHONPATH": str(ROOT)}).pid, f"ws://127.0.0.1:{port}/ws"
        wait_until(lambda: _listening(port), 90, what=f"{system} on {port}")
    stack.pids = [pid]
    pin(stack.args, stack.pids)
    return url


def one_round(system: str, stem: str, feed: Stack, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """One server measured: started afresh, its clients connected, a window followed."""
    with Stack(tmp, args, feed) as stack:
        url = start_server(stack, system, stem)
        pid = stack.pids[0]
        time.sleep(2)
        rss_before = rss_median(pid, 2)
        options = {"mode": "cpu", "light": False, "batch": system == "fleetdeck-batch"}
        spread = stack.follow(args.clients, args.processes, f"clients-{stem}", urls=[url], **options)
        spread.gather("ready", 300)
        time.sleep(args.settle)
        cpu, machine, rss_readings, answers = stack.follow_window(GRACE, f"{NAME}-{stem}")
    results = [r for r in answers if r is not None]
    delivered, clients = total(results, "frames"), total(results, "ready")
    rss = statistics.median(rss_readings[pid])
    return {
        "system": system,
        "clients": clients,
        "delivered": delivered,
        "server_cpu_pct": cpu[pid],
        "cpu_us_per_sample": cpu[pid] * machine["window_s"] / 100 / max(1, delivered) * 1e6,
        "reach": total(results, "reached") / max(1, sum(r["ready"] * r["published"] for r in results)),
        **quantiles(results, "latency_hist", "latency"),
        "age_p50_ms": quantiles(results, "age_hist", "age")["age_p50_ms"],
        "rss_per_connection_kib": (rss - rss_before) / max(1, clients),
        "clients_cpu_pct": sum(cpu[p] for p in stack.clients.pids),
        # per 1,000 delivered samples: how often the server slept, how often it was preempted, and
        # how often the client processes slept (each sleep ends in a wakeup the server pays for)
        "switches_per_1000": [
            1000 * machine.pop(n) / max(1, delivered)
            for n in ("server_slept", "server_preempted", "clients_slept")
        ],
        **machine,  # window_s, the others' CPU, interrupts, stolen
    }


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Every round: each chosen server in a rotating order, the least disturbed of its attempts."""
    rounds: list[dict[str, Any]] = []
    with Stack(tmp, args) as feed:
        feed.start(gateways=0, fleet=False).start_fleet(FLEETDECK_HISTORY_SIZE=str(HISTORY))
        time.sleep(3)
        chosen = [s for s in SYSTEMS if s in args.systems]
        for number, system in rotations(chosen, args.rounds):
            stem = f"{system}-r{number + 1}"
            outcome, _ = best_of(args, functools.partial(one_round, system, stem, feed, args))
            outcome |= {"round": number + 1, "disturbed": outcome["others_cpu_pct"] > args.max_others}
            print(
                f"round {number + 1} {system}: {outcome['cpu_us_per_sample']:.1f} us/sample, "
                f"reach {outcome['reach']:.3f}, p99 {outcome['latency_p99_ms']:.0f} ms",
                flush=True,
            )
            rounds.append(outcome)
    return {"rounds": rounds}  # whose others' CPU counts, round by round


def main() -> None:
    options = OPTIONS | {"name": NAME}
    helps = HELPS | {"name": f"of the results files and docs block (default {NAME})"}
    args = parser(__doc__, options, helps, profile=True, attempts=2, settle=3).parse_args()
    result = Result(args.name, "Per-sample fan-out against peers", "", {}, NAME)
    run(args, measure, summarize, render, result, drop=())


if __name__ == "__main__":
    main()
