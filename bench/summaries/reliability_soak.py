"""What the soak aims at, and its results summed up, plotted and rendered."""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..chart import Panel, Series, svg_chart
from ..harness import ms, verdict
from ..measure import Context
from ..reliability_common import add_counts, command_line, counts, details, quantiles, ready_counts, report
from ..watch import mean

NAME = "reliability_soak"
TARGET_GROWTH = 0.10
DEFAULTS = {
    "clients": 5000,
    "hosts": 1000,
    "duration": 600.0,
    "lifetime": 60.0,
    "cpu_hosts": 0,
    "warmup": 60.0,
    "compare": 60.0,
    "no_batch": False,
    "sample_every": 5.0,
    "cooldown": 15.0,
    "processes": 0,
    "probes": 50,
}


def phases(args: argparse.Namespace) -> tuple[float, float, float]:
    """The warm-up's end and the comparison span, shortened to fit a short run."""
    warmup = min(args.warmup, args.duration / 4)
    compare = min(args.compare, (args.duration - warmup) / 3)
    return warmup, compare, args.duration


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    results = raw["results"]
    readings = raw["readings"]
    warmup, compare, duration = phases(args)
    early = [r for r in readings if warmup <= r["t"] <= warmup + compare]
    late = [r for r in readings if duration - compare <= r["t"] <= duration]

    def growth(key: str) -> tuple[float, float, float]:
        first, last = mean(r[key] for r in early), mean(r[key] for r in late)
        return first, last, (last - first) / first if first else math.nan

    rss_first, rss_last, rss_growth = growth("rss_kib")
    fds_first, fds_last, fds_growth = growth("fds")
    connected, failed = ready_counts(raw)
    during = [r for r in readings if 0 <= r["t"] <= duration]
    held = [r["clients"] for r in during if r["clients"] is not None]
    return {
        "clients": args.clients,
        "first_connected": connected,
        "first_failed": failed,
        "connects": sum(r["connects"] for r in results),
        "connect_failed": add_counts(r["connect_failed"] for r in results),
        "slow_handshakes": sum(r["slow_handshakes"] for r in results),
        **quantiles(results, "handshake_hist", "handshake"),
        **quantiles(results, "first_frame_hist", "first_frame"),
        **quantiles(results, "latency_hist", "latency"),
        "closed_clean": sum(r["closed_clean"] for r in results),
        "closed_abort": sum(r["closed_abort"] for r in results),
        "server_closed": add_counts(r["server_closed"] for r in results),
        "error_frames": add_counts(r["errors"] for r in results),
        "held_mean": mean(held),
        "held_max": max(held, default=math.nan),
        "warmup_s": warmup,
        "compare_s": compare,
        "rss_first_kib": rss_first,
        "rss_last_kib": rss_last,
        "rss_growth": rss_growth,
        "fds_first": fds_first,
        "fds_last": fds_last,
        "fds_growth": fds_growth,
        "log_errors": raw["log"]["error"],
        "log_tracebacks": raw["log"]["traceback"],
        "log_warnings": raw["log"]["warning"],
    }


def plot(raw: dict[str, Any], s: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    points = [r for r in raw["readings"] if r["t"] >= -min(30.0, args.duration / 10)]
    t_end = args.duration

    def line(name: str, color: str, key: str, unit: float = 1.0) -> list[Series]:
        return [Series(name, color, [(r["t"], r[key] / unit) for r in points if r[key] is not None])]

    return svg_chart(
        f"Soak: {args.clients:,} churning clients, {args.hosts:,} hosts, one gateway ({ctx.date})",
        [
            Panel("RSS (MiB)", line("gateway RSS", "#1f5fbf", "rss_kib", 1024)),
            Panel("open files", line("gateway fds", "#c0392b", "fds")),
            Panel("clients held", line("clients", "#2e8b57", "clients")),
        ],
        "seconds since the clients started (before 0: the gateway with the fleet only)",
        spans=[
            (s["warmup_s"], s["warmup_s"] + s["compare_s"], "first"),
            (t_end - s["compare_s"], t_end, "last"),
        ],
        marks=[(s["warmup_s"], "warm-up ends"), (t_end, "clients leave")],
    )


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context, image: str) -> str:
    errors = s["log_errors"] + s["log_tracebacks"]
    rows = [
        (
            "gateway RSS: first → last span after warm-up",
            f"{s['rss_first_kib'] / 1024:.1f} → {s['rss_last_kib'] / 1024:.1f} MiB ({s['rss_growth']:+.1%})",
            f"< +{TARGET_GROWTH:.0%}",
            verdict(s["rss_growth"] < TARGET_GROWTH),
        ),
        (
            "gateway open files: first → last span after warm-up",
            f"{s['fds_first']:,.0f} → {s['fds_last']:,.0f} ({s['fds_growth']:+.1%})",
            f"< +{TARGET_GROWTH:.0%}",
            verdict(s["fds_growth"] < TARGET_GROWTH),
        ),
        (
            "ERROR lines and tracebacks in the gateway's log",
            f"{s['log_errors']} + {s['log_tracebacks']}",
            "0",
            verdict(errors == 0),
        ),
    ]
    head = (
        f"{args.clients:,} clients connecting, following `fleet` for about {args.lifetime:g} s and leaving, "
        f"over and over, with {args.hosts:,} simulated hosts and one gateway, for {args.duration:g} s; "
        f"spans of {s['compare_s']:g} s compared, the first after a {s['warmup_s']:g} s warm-up; "
        f"{ctx.sentence()}.\n\n"
    )
    failed = s["connect_failed"]
    also = details(
        (
            "connects / failed / handshakes over 30 s",
            f"{s['connects']:,} / {sum(failed.values()):,} / {s['slow_handshakes']:,}",
        ),
        ("why connects failed", counts(failed)),
        (
            "handshake p50 / p99 / max",
            f"{ms(s['handshake_p50_ms'])} / {ms(s['handshake_p99_ms'])} / {ms(s['handshake_max_ms'])}",
        ),
        ("handshake → first `fleet` frame, p99", ms(s["first_frame_p99_ms"])),
        ("sample → client p99 (probe clients)", ms(s["latency_p99_ms"])),
        (
            "sessions left cleanly / by dropping the connection / ended by the gateway",
            f"{s['closed_clean']:,} / {s['closed_abort']:,} / {sum(s['server_closed'].values()):,}"
            + (f" ({counts(s['server_closed'])})" if s["server_closed"] else ""),
        ),
        ("`error` frames received", counts(s["error_frames"])),
        ("clients held by the gateway, mean / most", f"{s['held_mean']:,.0f} / {s['held_max']:,.0f}"),
        (
            "gateway RSS / open files with the fleet before the clients / after they left",
            f"{raw['before']['rss_kib'] / 1024:.1f} MiB, {raw['before']['fds']:.0f} / "
            f"{raw['after']['rss_kib'] / 1024:.1f} MiB, {raw['after']['fds']:.0f}",
        ),
        (
            "gateway's TCP sockets to Redis / of clients / other, before the clients / after",
            " / ".join(str(raw["sockets_before"][k]) for k in ("redis", "clients", "other"))
            + " before, "
            + " / ".join(str(raw["sockets_after"][k]) for k in ("redis", "clients", "other"))
            + " after",
        ),
        ("WARNING lines in the gateway's log", f"{s['log_warnings']:,}"),
        (
            "CPU of the gateway / agent / Redis / client processes",
            " / ".join(
                f"{raw[key]:.0f}%"
                for key in ("gateway_cpu_pct", "agent_cpu_pct", "redis_cpu_pct", "clients_cpu_pct")
            ),
        ),
        raw=raw,
        args=args,
    )
    shown = [f"    {line}" for kind in ("error", "traceback") for line in raw["log"]["examples"][kind]]
    if shown:
        also += "\n\nFirst ERROR lines and tracebacks of the gateway's log:\n\n" + "\n".join(shown)
    picture = [f"![RSS, open files and clients of the gateway over the soak]({image})"] if image else []
    return report(head, rows, *picture, also, reproduce=command_line(NAME, args, DEFAULTS))
