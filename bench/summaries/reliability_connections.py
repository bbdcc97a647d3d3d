"""What the 10,000-connection benchmark aims at (docs/reliability.md), and its results summed up."""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..measure import counted, fleet_frames, quantiles, ready_counts, total
from ..reliability_common import LoadRun

# RSS as for the gateway at 1,000 clients (docs/benchmarks.md); frames: of the tick (the gateway keeps up)
TARGET = {"rss_kib": 20.0, "p99_s": 1.5, "frames_per_s": 0.99}


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    results = raw["results"]
    connected, failed = ready_counts(raw)
    held = raw["gateway_clients_start"]
    held = connected if math.isnan(held) else held
    per_connection = (raw["rss_window_kib"] - raw["rss_before_kib"]) / held if held else math.nan
    s = {
        "clients_connected": connected,
        "clients_failed": failed,
        "clients_pending": max(0, args.clients - connected - failed),
        "failures": counted(raw["ready"], "failures"),
        "clients_closed_in_window": total(results, "closed"),
        "ended": counted(results, "ended"),
        "rss_per_connection_kib": per_connection,
        **quantiles(results, "latency_hist", "latency"),
        **quantiles(results, "tick_delay_hist", "tick_delay"),
        **fleet_frames(results, connected, raw["window_s"]),
    }
    s["met"] = {
        "connected": connected >= args.clients,
        "held": all(raw[f"gateway_clients_{at}"] >= args.clients for at in ("start", "end")),
        "rss": per_connection < TARGET["rss_kib"],
        "frames": s["frames_per_client_per_s"] >= TARGET["frames_per_s"],
        "p99": s["latency_p99_ms"] / 1000 < TARGET["p99_s"],
    }
    return s


RUN = LoadRun(
    name="reliability_connections",
    title="10,000 connections on one gateway",
    options={"clients": 10000, "hosts": 1000, "duration": 60.0, "ping_interval": 20.0, "no_batch": False}
    | {"processes": 0, "probes": 50, "connect_concurrency": 50, "connect_timeout": 300.0},
    helps={
        "processes": "client processes (0: one per 1,250)",
        "connect_concurrency": "handshakes at once per process",
        "connect_timeout": "seconds the clients have to connect",
    },
    head="""{clients_connected:,} of {clients:,} WebSocket clients connected to one gateway process (pings
    every {ping_interval:g} s), following `fleet` with {hosts:,} simulated hosts at 1 Hz; {window_s:.0f} s
    window; {context}.""",
    target=TARGET,
    targets="""
connected (first `fleet` frame received) | {clients_connected:,} of {clients:,} | {clients:,} | connected
held by the gateway at the window's start and end
    | {gateway_clients_start:,.0f} and {gateway_clients_end:,.0f} | {clients:,} | held
RSS per connection | {rss_per_connection_kib:.1f} KiB | < {target[rss_kib]:.0f} KiB | rss
gateway CPU | {gateway_cpu_pct:.0f}% of one core
fleet frames per client per second | {frames_per_client_per_s:.2f} | >= {target[frames_per_s]} | frames
sample → client, p50 | {latency_p50_ms:ms}
sample → client, p99 | {latency_p99_ms:ms} | < {target[p99_s]} s | p99
""",
    also="""
clients asked / connected / failed / still connecting at the timeout
    | {clients:,} / {clients_connected:,} / {clients_failed:,} / {clients_pending:,}
why connections failed | {failures:counts}
time until every connected client had its first frame / client processes
    | {connect_seconds:.1f} s / {processes}
connections ended in the window / closed as too slow (1013)
    | {clients_closed_in_window:,} / {slow_disconnects:,.0f}
how connections ended before the end (close code, from the start) | {ended:counts}
tick → client (frame `ts` to receipt, every client), p50 / p99
    | {tick_delay_p50_ms:ms} / {tick_delay_p99_ms:ms}
sample → client, max (probe clients: one in {probe_every:,}) | {latency_max_ms:ms}
frame size / host entries per frame | {frame_kib:.1f} KiB / {hosts_per_frame:.0f}
gateway RSS without clients / in the window | {rss_before_kib:KiB:MiB} / {rss_window_kib:KiB:MiB}
ERROR lines / tracebacks in the gateway's log | {log[error]} / {log[traceback]}
CPU of the agent / Redis / client processes
    | {agent_cpu_pct:.0f}% / {redis_cpu_pct:.0f}% / {clients_cpu_pct:.0f}%
""",
    summarize=summarize,
)
