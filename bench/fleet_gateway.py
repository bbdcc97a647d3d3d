"""Benchmark: one gateway, 1,000 simulated hosts at 1 Hz, 1,000 WebSocket clients following `fleet`.

What it measures and how: docs/benchmarks.md. Its summary: bench/fleet_gateway.md.

    scripts/bench fleet_gateway        # or: .venv/bin/python -m bench.fleet_gateway
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from .harness import Report, Result, common_options, pin, run
from .measure import fleet_frames, idle, quantiles, total
from .stack import Stack, follow_window

REPORT = Report(
    name="fleet_gateway",
    title="Gateway at scale",
    options={"hosts": 1000, "clients": 1000, "duration": 30.0},
    target={"gateway_cpu_pct": 50, "latency_p99_ms": 1500, "rss_per_connection_kib": 20},
    head="""{hosts:,} simulated hosts at 1 Hz, {clients_connected:,} WebSocket clients following `fleet`,
    one gateway process; {context}.""",
    targets="""
gateway CPU | {gateway_cpu_pct:.1f}% of one core | < {target[gateway_cpu_pct]}% | gateway_cpu_pct
sample → client, p50 | {latency_p50_ms:ms}
sample → client, p99 | {latency_p99_ms:ms} | < {target[latency_p99_ms]:ms} | latency_p99_ms
RSS per connection | {rss_per_connection_kib:.1f} KiB | < {target[rss_per_connection_kib]} KiB
    | rss_per_connection_kib
""",
    also="""
window | {window_s:.1f} s
clients connected / failed / dropped | {clients_connected} / {clients_failed} / {clients_closed}
time to connect and get the first full frame | {connect_seconds:.1f} s
fleet frames per client per second
    | {frames_per_client_per_s:.2f} (fewest to one client: {frames_per_client_min})
host entries per frame | {hosts_per_frame:.0f}
frame size | {frame_kib:.1f} KiB
of which sample → tick (sample `ts` to the frame's `ts`), p50 / p99
    | {tick_wait_p50_ms:ms} / {tick_wait_p99_ms:ms}
of which tick → client (frame `ts` to receipt), p50 / p99 | {tick_delay_p50_ms:ms} / {tick_delay_p99_ms:ms}
sample → client, max | {latency_max_ms:ms}
host entries shown offline (not timed) | {offline_entries:,}
host entries timed (probe clients) / unmatched | {latency_count:,} / {latency_unmatched:,}
gateway CPU with the fleet and no clients | {gateway_cpu_pct_without_clients:.1f}%
gateway RSS without / with clients | {rss_before_kib:KiB:MiB} / {rss_with_clients_kib:KiB:MiB}
CPU of the agent / Redis / client processes
    | {agent_cpu_pct:.0f}% / {redis_cpu_pct:.0f}% / {clients_cpu_pct:.0f}%
""",
)


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp) as stack:
        redis, _, token, gateway, agent = stack.gateway_with_fleet(args.hosts)
        assert redis.service is not None
        pid = gateway.service.pid
        time.sleep(args.settle)
        # The gateway alone with the fleet: what ingesting its samples costs.
        idle_cpu, rss_before = idle(pid, args.settle)
        # Only probes parse whole frames (the others are `light`): clients slower than the gateway
        # would leave frames in its socket buffers, and that would count as memory per connection.
        # `batch` as the dashboard connects.
        options = {"token": token, "mode": "fleet", "redis": redis.url, "probe_every": args.probe_every}
        options |= {"max_seconds": args.duration + 600, "batch": True, "light": True}
        processes = stack.spread([gateway.ws_url], args.clients, args.processes, **options).processes
        pin(args, [pid], [agent.pid, redis.service.pid, *(p.pid for p in processes)])
        connect_started = time.monotonic()
        ready = [p.expect("ready", 300) for p in processes]
        connect_seconds = time.monotonic() - connect_started
        time.sleep(args.settle)
        ours = [pid, agent.pid, redis.service.pid, *(p.pid for p in processes)]
        cpu, machine, rss_readings, results = follow_window(processes, pid, ours, args, 3, REPORT.name)
    return {
        "ready": ready,
        "connect_seconds": connect_seconds,
        "results": results,
        **machine,
        "gateway_cpu_pct": cpu[pid],
        "gateway_cpu_pct_without_clients": idle_cpu,
        "agent_cpu_pct": cpu[agent.pid],
        "redis_cpu_pct": cpu[redis.service.pid],
        "clients_cpu_pct": sum(cpu[p.pid] for p in processes),
        "rss_before_kib": rss_before,
        "rss_with_clients_kib": int(statistics.median(rss_readings)),
    }


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    results = raw["results"]
    clients = total(results, "ready")
    per_client = sorted(n for r in results for n in r["frames_per_client"])
    return {
        "clients_connected": clients,
        "clients_failed": total(results, "failed"),
        "clients_closed": total(results, "closed"),
        "gateway_cpu_pct": raw["gateway_cpu_pct"],
        **quantiles(results, "latency_hist", "latency"),
        "latency_unmatched": total(results, "unmatched"),
        **quantiles(results, "tick_delay_hist", "tick_delay"),
        **quantiles(results, "tick_wait_hist", "tick_wait"),
        "rss_per_connection_kib": (raw["rss_with_clients_kib"] - raw["rss_before_kib"]) / max(1, clients),
        "frames_per_client_min": per_client[0] if per_client else 0,
        **fleet_frames(results, clients, raw["window_s"]),
        "bad_frames": total(results, "bad"),
        "offline_entries": total(results, "offline"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=REPORT.options["hosts"])
    parser.add_argument("--clients", type=int, default=REPORT.options["clients"])
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--duration", type=float, default=REPORT.options["duration"], help="seconds measured")
    parser.add_argument("--probe-every", type=int, default=20, help="one client in N times every entry")
    parser.add_argument("--profile", type=Path, help="folder for a py-spy profile of the gateway")
    common_options(parser, attempts=3)
    run(parser.parse_args(), measure, summarize, REPORT.summary, Result(REPORT.name, REPORT.title, "", {}))


if __name__ == "__main__":
    main()
