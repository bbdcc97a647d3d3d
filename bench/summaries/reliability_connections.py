"""What the 10,000-connection benchmark aims at, and its results summed up and rendered."""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..harness import ms, verdict
from ..measure import Context, histogram
from ..reliability_common import add_counts, command_line, counts, details, quantiles, ready_counts, report

NAME = "reliability_connections"
TARGET_RSS_KIB = 20.0  # as for the gateway at 1,000 clients (docs/benchmarks.md)
TARGET_P99_S = 1.5
TARGET_FRAMES_PER_S = 0.99  # of the tick: the gateway keeps up
DEFAULTS = {"clients": 10000, "hosts": 1000, "duration": 60.0, "ping_interval": 20.0, "no_batch": False}
DEFAULTS |= {"processes": 0, "probes": 50, "connect_concurrency": 50, "connect_timeout": 300.0}


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    results = raw["results"]
    connected, failed = ready_counts(raw)
    frames = sum(r["frames"] for r in results)
    per_client = [n for r in results for n in r["frames_per_client"]]
    probe_frames = frames - sum(r.get("light_frames", 0) for r in results)
    held = raw["gateway_clients_start"]
    held = held if not math.isnan(held) else connected
    timeline = raw["clients_timeline"]
    reached_at = next((t for t, n in timeline if n >= connected > 0), math.nan)
    return {
        "clients_asked": args.clients,
        "clients_connected": connected,
        "clients_failed": failed,
        "clients_pending": max(0, args.clients - connected - failed),
        "failures": add_counts(r.get("failures") for r in raw["ready"]),
        "clients_closed_in_window": sum(r["closed"] for r in results),
        "ended": add_counts(r.get("ended") for r in results),
        "gateway_held_at_window_start": held,
        "gateway_held_at_window_end": raw["gateway_clients_end"],
        "seconds_to_all_connected": reached_at,
        "gateway_cpu_pct": raw["gateway_cpu_pct"],
        "rss_per_connection_kib": (raw["rss_window_kib"] - raw["rss_before_kib"]) / held
        if held
        else math.nan,
        **quantiles(results, "latency_hist", "latency"),
        "latency_entries": sum(histogram(r["latency_hist"] for r in results).values()),
        **quantiles(results, "tick_delay_hist", "tick_delay"),
        "frames_per_client_per_s": frames / max(1, connected) / raw["window_s"],
        "clients_without_frames": sum(1 for n in per_client if n == 0) - (args.clients - connected),
        "frame_kib": sum(r["frame_bytes"] for r in results) / max(1, frames) / 1024,
        "hosts_per_frame": sum(r["entries"] for r in results) / max(1, probe_frames),
        "error_frames": add_counts(r.get("errors") for r in results),
        "bad_frames": sum(r["bad"] for r in results),
        "slow_disconnects": raw["slow_disconnects"],
    }


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    p99_s = s["latency_p99_ms"] / 1000
    all_in = s["clients_connected"] >= args.clients
    held = (s["gateway_held_at_window_start"], s["gateway_held_at_window_end"])
    rows = [
        (
            "connected (first `fleet` frame received)",
            f"{s['clients_connected']:,} of {args.clients:,}",
            f"{args.clients:,}",
            verdict(all_in),
        ),
        (
            "held by the gateway at the window's start and end",
            f"{held[0]:,.0f} and {held[1]:,.0f}",
            f"{args.clients:,}",
            verdict(all(h >= args.clients for h in held)),
        ),
        (
            "RSS per connection",
            "-" if math.isnan(s["rss_per_connection_kib"]) else f"{s['rss_per_connection_kib']:.1f} KiB",
            f"< {TARGET_RSS_KIB:.0f} KiB",
            verdict(s["rss_per_connection_kib"] < TARGET_RSS_KIB),
        ),
        ("gateway CPU", f"{s['gateway_cpu_pct']:.0f}% of one core", "", ""),
        (
            "fleet frames per client per second",
            f"{s['frames_per_client_per_s']:.2f}",
            f">= {TARGET_FRAMES_PER_S}",
            verdict(s["frames_per_client_per_s"] >= TARGET_FRAMES_PER_S),
        ),
        ("sample → client, p50", ms(s["latency_p50_ms"]), "", ""),
        (
            "sample → client, p99",
            ms(s["latency_p99_ms"]),
            f"< {TARGET_P99_S} s",
            verdict(p99_s < TARGET_P99_S),
        ),
    ]
    head = (
        f"{s['clients_connected']:,} of {args.clients:,} WebSocket clients connected to one gateway process "
        f"(pings every {args.ping_interval:g} s), following `fleet` with {args.hosts:,} simulated hosts at "
        f"1 Hz; {raw['window_s']:.0f} s window; {ctx.sentence()}.\n\n"
    )
    also = details(
        (
            "clients asked / connected / failed / still connecting at the timeout",
            f"{args.clients:,} / {s['clients_connected']:,} / {s['clients_failed']:,} / "
            f"{s['clients_pending']:,}",
        ),
        ("why connections failed", counts(s["failures"])),
        (
            "time until every connected client had its first frame",
            f"{raw['connect_seconds']:.1f} s ({raw['processes']} client process"
            + ("es)" if raw["processes"] != 1 else ")"),
        ),
        (
            "connections ended in the window / closed as too slow (1013)",
            f"{s['clients_closed_in_window']:,} / {s['slow_disconnects']:,.0f}",
        ),
        ("how connections ended before the end (close code, from the start)", counts(s["ended"])),
        ("clients that got no frame in the window", f"{max(0, s['clients_without_frames']):,}"),
        (
            "tick → client (frame `ts` to receipt, every client), p50 / p99",
            f"{ms(s['tick_delay_p50_ms'])} / {ms(s['tick_delay_p99_ms'])}",
        ),
        ("sample → client, max", ms(s["latency_max_ms"])),
        (f"host entries timed (probe clients: one in {raw['probe_every']:,})", f"{s['latency_entries']:,}"),
        ("frame size / host entries per frame", f"{s['frame_kib']:.1f} KiB / {s['hosts_per_frame']:.0f}"),
        ("`error` frames received", counts(s["error_frames"])),
        ("gateway CPU with the fleet and no clients", f"{raw['gateway_cpu_pct_without_clients']:.1f}%"),
        (
            "gateway RSS without clients / in the window / largest",
            f"{raw['rss_before_kib'] / 1024:.1f} MiB / {raw['rss_window_kib'] / 1024:.1f} MiB / "
            f"{raw['rss_max_kib'] / 1024:.1f} MiB",
        ),
        ("gateway open files without clients / largest", f"{raw['fds_before']:,} / {raw['fds_max']:,}"),
        (
            "ERROR lines / tracebacks in the gateway's log",
            f"{raw['log']['error']} / {raw['log']['traceback']}",
        ),
        (
            "CPU of the agent / Redis / client processes",
            f"{raw['agent_cpu_pct']:.0f}% / {raw['redis_cpu_pct']:.0f}% / {raw['clients_cpu_pct']:.0f}%",
        ),
        raw=raw,
        args=args,
    )
    return report(head, rows, also, reproduce=command_line(NAME, args, DEFAULTS))
