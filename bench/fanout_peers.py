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
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from testbed.procs import ROOT, free_port, wait_until

from .harness import Result, common_options, pin, publish, record, rotations
from .measure import Context, best_of, quantiles, raise_fd_limit, rss_median, total
from .stack import Stack, follow_window, make_token
from .summaries.fanout_peers import NAME, SYSTEMS, render

HISTORY = 10  # samples of history per host: what a `cpu` subscriber is sent first
GRACE = 10.0  # seconds after the window that a sample of the window may still arrive to count


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def start_server(stack: Stack, system: str, feed: Feed, name: str) -> tuple[int, str]:
    """Start one of the systems; its pid and WebSocket URL once it listens."""
    if system.startswith("fleetdeck"):
        gateway = stack.gateway(feed.redis_url, feed.tokens, name=name)
        return gateway.service.pid, gateway.ws_url
    port = free_port()
    argv = [sys.executable, "-m", f"bench.peer_{system}", "--port", str(port), "--redis", feed.redis_url]
    service = stack.service(name, argv, {"PYTHONPATH": str(ROOT)})
    wait_until(lambda: _listening(port), 90, what=f"{system} on {port}")
    return service.pid, f"ws://127.0.0.1:{port}/ws"


class Feed(NamedTuple):
    """What feeds every server of the run: Redis and the publisher (their pids), a token file."""

    redis_url: str
    tokens: Path
    token: str
    pids: list[int]


def one_round(system: str, stem: str, feed: Feed, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """One server measured: started afresh, its clients connected, a window followed."""
    with Stack(tmp) as stack:
        pid, url = start_server(stack, system, feed, stem)
        time.sleep(2)
        rss_before = rss_median(pid, 2)
        batch = system == "fleetdeck-batch"
        options = {"token": feed.token, "mode": "cpu", "redis": feed.redis_url, "batch": batch}
        options["max_seconds"] = args.duration + 600
        processes = stack.spread([url], args.clients, args.processes, f"clients-{stem}", **options).processes
        pin(args, [pid], [p.pid for p in processes])
        for process in processes:
            process.expect("ready", 300)
        time.sleep(args.settle)
        ours = [pid, *(p.pid for p in processes), *feed.pids]
        cpu, machine, rss_readings, results = follow_window(
            processes, pid, ours, args, GRACE, f"{NAME}-{stem}"
        )
    delivered, clients = total(results, "frames"), total(results, "ready")
    rss = statistics.median(rss_readings)
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
        "clients_cpu_pct": sum(cpu[p.pid] for p in processes),
        # per 1,000 delivered samples: how often the server slept, how often it was preempted, and
        # how often the client processes slept (each sleep ends in a wakeup the server pays for)
        "switches_per_1000": [
            1000 * machine.pop(n) / max(1, delivered)
            for n in ("server_slept", "server_preempted", "clients_slept")
        ],
        **machine,  # window_s, the others' CPU, interrupts, stolen
    }


def measure(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    """Every round: each chosen server in a rotating order, the least disturbed of its attempts."""
    rounds: list[dict[str, Any]] = []
    with Stack(tmp) as stack:
        redis = stack.redis()
        token = make_token(tmp / "tokens.txt")
        publisher = stack.simulated_fleet(redis.url, args.hosts, FLEETDECK_HISTORY_SIZE=str(HISTORY))
        assert redis.service is not None
        feed = Feed(redis.url, tmp / "tokens.txt", token, [publisher.pid, redis.service.pid])
        pin(args, [], feed.pids)
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
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--duration", type=float, default=20, help="seconds measured per server and round")
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles of every server")
    parser.add_argument(
        "--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS), help="servers measured"
    )
    parser.add_argument("--name", default=NAME, help=f"of the results files and docs block (default {NAME})")
    common_options(parser, attempts=2, settle=3)
    args = parser.parse_args()
    raise_fd_limit()
    ctx = Context.now()
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-") as tmp:
        rounds = measure(args, Path(tmp))
    ctx = ctx.finished()
    full, short, summary = render(rounds, args, ctx)
    data = record(ctx, args, summary, {"rounds": rounds}, drop=())
    readme = short if args.name == NAME else None  # the README quotes the default run only
    publish(args, Result(args.name, "Per-sample fan-out against peers", full, data, NAME, short=readme))


if __name__ == "__main__":
    main()
