"""Benchmark: one gateway, 10,000 simulated hosts at 1 Hz, 1,000 WebSocket clients following `fleet`,
in JSON and in compact frames (one after the other in the same run).

What it measures and how: docs/benchmarks.md. Its summary: bench/fleet_gateway.md.

    scripts/bench fleet_gateway        # or: .venv/bin/python -m bench.fleet_gateway [--format json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from .cli import parser
from .harness import Result, fill, reproduce, rows, run, table, verdict
from .measure import Context, CpuWindow, counted, fleet_frames, quantiles, rss_median, total
from .stack import Stack

NAME, TITLE = "fleet_gateway", "Gateway at scale"
OPTIONS: dict[str, Any] = {
    "hosts": 10000,
    "clients": 1000,
    "duration": 30.0,
    "format": ("both", "json", "compact"),
}
OPTIONS |= {"processes": 2, "probe_every": 200, "no_batch": False}  # `batch` as the dashboard connects
HELPS = {"format": "fleet frames followed", "probe_every": "one client in N decodes and times every entry"}
FORMATS = {"json": ("json",), "compact": ("compact",), "both": ("json", "compact")}
# issue 24's targets, for either format: (figure, limit, True when the figure must be at least it)
TARGETS = {
    "frames_per_client_per_s": (0.95, True),
    "latency_p99_ms": (2000.0, False),
    "gateway_cpu_pct": (100.0, False),
    "rss_per_connection_kib": (20.0, False),
}
GOALS = """
clients that had their first frame / failed | {clients_connected:,} / {clients_failed:,}
fleet frames per client per second | {frames_per_client_per_s:.2f} | >= 0.95 | frames_per_client_per_s
sample → client, p99 | {latency_p99_ms:ms} | <= 2 s | latency_p99_ms
gateway CPU | {gateway_cpu_pct:.1f}% of one core | <= one core | gateway_cpu_pct
RSS per connection | {rss_per_connection_kib:.1f} KiB | <= 20 KiB | rss_per_connection_kib
bytes per client per second (frames' payload) | {bytes_per_client_per_s:B:KiB}/s
"""
ALSO = """
clients connected / failed / dropped | {clients_connected} / {clients_failed} / {clients_closed}
time to connect and get the first full frame | {connect_seconds:.1f} s
fewest frames to one client in the window | {frames_per_client_min}
host entries per frame (probes) | {hosts_per_frame:.0f}
frame size | {frame_kib:.1f} KiB
sample → client, p50 / max | {latency_p50_ms:ms} / {latency_max_ms:ms}
of which sample → tick (sample `ts` to the frame's `ts`), p50 / p99
    | {tick_wait_p50_ms:ms} / {tick_wait_p99_ms:ms}
of which tick → client (frame `ts` to receipt), p50 / p99 | {tick_delay_p50_ms:ms} / {tick_delay_p99_ms:ms}
host entries timed (probe clients) / unmatched / shown offline | {latency_count:,} / {latency_unmatched:,}
    / {offline_entries:,}
frames not decoded / `error` frames | {bad_frames} / {errors:counts}
gateway CPU with the fleet and no clients | {gateway_cpu_pct_without_clients:.1f}%
gateway RSS without / with clients | {rss_before_kib:KiB:MiB} / {rss_with_clients_kib:KiB:MiB}
CPU of the agent / Redis / client processes
    | {agent_cpu_pct:.0f}% / {redis_cpu_pct:.0f}% / {clients_cpu_pct:.0f}%
CPU of the other processes on the machine | {others_cpu_pct:.0f}%
kernel interrupt work / CPU stolen by the hypervisor | {softirq_cpu_pct:.0f}% / {stolen_cpu_pct:.0f}%
window | {window_s:.1f} s
"""


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Each format in turn, on a stack of its own."""
    runs = {}
    for fleet_format in FORMATS[args.format]:
        (tmp / fleet_format).mkdir()
        runs[fleet_format] = measure_one(args, tmp / fleet_format, fleet_format)
    return {"formats": runs, "others_cpu_pct": max(r["others_cpu_pct"] for r in runs.values())}


def measure_one(args: argparse.Namespace, tmp: Path, fleet_format: str) -> dict[str, Any]:
    with Stack(tmp, args) as stack:
        pid = stack.start().pids[0]
        time.sleep(args.settle)
        # The gateway alone with the fleet: what ingesting its samples costs.
        idle = CpuWindow([pid])
        rss_before, idle_cpu = rss_median(pid, args.settle), idle.close()[0][pid]
        # Only probes parse whole frames (the others are `light`): clients slower than the gateway
        # would leave frames in its socket buffers, and that would count as memory per connection.
        options = {"probe_every": args.probe_every, "max_seconds": args.duration + 600}
        spread = stack.follow(args.clients, args.processes, fleet_format=fleet_format, **options)
        connect_started = time.monotonic()
        ready = spread.gather("ready", 300)
        connect_seconds = time.monotonic() - connect_started
        time.sleep(args.settle)
        cpu, machine, rss, results = stack.follow_window(3, f"{NAME}-{fleet_format}")
    return {
        "ready": ready,
        "connect_seconds": connect_seconds,
        "results": [r for r in results if r is not None],
        **machine,
        **stack.costs(cpu),
        "gateway_cpu_pct_without_clients": idle_cpu,
        "rss_before_kib": rss_before,
        "rss_with_clients_kib": int(statistics.median(rss[pid])),
    }


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Each format's figures, and whether it met each target."""
    out = {}
    for fleet_format, one in raw["formats"].items():
        figures = summarize_one(one)
        figures["met"] = {
            key: figures[key] >= limit if at_least else figures[key] <= limit
            for key, (limit, at_least) in TARGETS.items()
        }
        out[fleet_format] = figures
    return out


def summarize_one(raw: dict[str, Any]) -> dict[str, Any]:
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
        "bytes_per_client_per_s": total(results, "frame_bytes") / max(1, clients) / raw["window_s"],
        "bad_frames": total(results, "bad"),
        "errors": counted(results, "errors"),
        "offline_entries": total(results, "offline"),
    }


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> tuple[str, str]:
    """Targets and the rest, a column for each format."""
    formats = list(s)
    figures = {f: {**args.__dict__, **raw["formats"][f], **s[f]} for f in formats}
    head = (
        f"{args.hosts:,} simulated hosts at 1 Hz, {args.clients:,} WebSocket clients following `fleet` "
        f"({' then '.join(formats)} frames, `?batch=1` as the dashboard), one gateway process "
        f"{'unpinned' if args.no_pin else 'pinned to a core'}; {ctx.sentence()}."
    )
    goals = []
    for what, measured, target, key in ([*row, "", ""][:4] for row in rows(GOALS)):
        cells = [
            fill(measured, figures[f]) + (f" ({verdict(figures[f]['met'][key])})" if key else "")
            for f in formats
        ]
        goals.append([what, *cells, target])
    short = head + "\n\n" + table(("", *formats, "target"), goals)
    also = [[what, *(fill(measured, figures[f]) for f in formats)] for what, measured in rows(ALSO)]
    command = f"Reproduce: `{reproduce(NAME, args, OPTIONS)}`"
    return "\n\n".join([short, table(("also measured", *formats), also), command]), short


def main() -> None:
    args = parser(__doc__, OPTIONS, HELPS, profile=True, attempts=3).parse_args()
    run(args, measure, summarize, render, Result(NAME, TITLE, "", {}))


if __name__ == "__main__":
    main()
