"""What the soak aims at (docs/reliability.md), and its results summed up and plotted."""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Iterable
from typing import Any

from ..chart import Panel, svg_chart
from ..harness import counts
from ..measure import Context, counted, quantiles, total
from ..reliability_common import LoadRun

TARGET = {"growth": 0.10}


def mean(values: Iterable[float | None]) -> float:
    """The mean of the values there are; NaN for none."""
    listed = [v for v in values if v is not None]
    return statistics.fmean(listed) if listed else math.nan


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    results, readings = raw["results"], raw["readings"]
    # The warm-up's end and the spans compared, shortened to fit a short run.
    warmup = min(args.warmup, args.duration / 4)
    compare = min(args.compare, (args.duration - warmup) / 3)
    early = [r for r in readings if warmup <= r["t"] <= warmup + compare]
    late = [r for r in readings if args.duration - compare <= r["t"] <= args.duration]
    held = [r["clients"] for r in readings if 0 <= r["t"] <= args.duration]
    settled = readings[-1]["t"] - min(5.0, args.cooldown) if readings else 0.0
    s: dict[str, Any] = {"warmup_s": warmup, "compare_s": compare}
    for key in ("rss_kib", "fds"):
        first, last = mean(r[key] for r in early), mean(r[key] for r in late)
        s |= {
            f"{key}_first": first,
            f"{key}_last": last,
            f"{key}_growth": last / first - 1 if first else math.nan,
        }
    server_closed = counted(results, "server_closed")
    s |= {
        "connects": total(results, "connects"),
        "connect_failed": counted(results, "connect_failed"),
        "slow_handshakes": total(results, "slow_handshakes"),
        **quantiles(results, "handshake_hist", "handshake"),
        "closed_clean": total(results, "closed_clean"),
        "closed_abort": total(results, "closed_abort"),
        "server_closed": sum(server_closed.values()),
        "server_closed_by": f" ({counts(server_closed)})" if server_closed else "",
        "error_frames": counted(results, "errors"),
        "held_mean": mean(held),
        "held_max": max((h for h in held if h is not None), default=math.nan),
        # With the fleet before the clients came, and over the last seconds after they left.
        "before": {k: mean(r[k] for r in readings if r["t"] < 0) for k in ("rss_kib", "fds")},
        "after": {k: mean(r[k] for r in readings if r["t"] >= settled) for k in ("rss_kib", "fds")},
    }
    s["connect_failures"] = sum(s["connect_failed"].values())
    log = raw["log"]
    shown = "\n".join(f"    {line}" for kind in ("error", "traceback") for line in log["examples"][kind])
    s["log_examples"] = f"First ERROR lines and tracebacks of the gateway's log:\n\n{shown}" if shown else ""
    s["met"] = {
        "rss": s["rss_kib_growth"] < TARGET["growth"],
        "fds": s["fds_growth"] < TARGET["growth"],
        "log": log["error"] + log["traceback"] == 0,
    }
    return s


def plot(raw: dict[str, Any], s: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    """The gateway's RSS, open files and clients over the run."""
    points = [r for r in raw["readings"] if r["t"] >= -min(30.0, args.duration / 10)]

    def line(key: str, unit: float = 1.0) -> list[tuple[float, float]]:
        return [(r["t"], r[key] / unit) for r in points if r[key] is not None]

    warmed, end = s["warmup_s"], args.duration
    return svg_chart(
        f"Soak: {args.clients:,} churning clients, {args.hosts:,} hosts, one gateway ({ctx.date})",
        [
            Panel("RSS (MiB)", "#1f5fbf", line("rss_kib", 1024)),
            Panel("open files", "#c0392b", line("fds")),
            Panel("clients held", "#2e8b57", line("clients")),
        ],
        "seconds since the clients started (before 0: the gateway with the fleet only)",
        spans=[(warmed, warmed + s["compare_s"], "first"), (end - s["compare_s"], end, "last")],
        marks=[(warmed, "warm-up ends"), (end, "clients leave")],
    )


RUN = LoadRun(
    name="reliability_soak",
    title="Soak",
    options={"clients": 5000, "hosts": 1000, "duration": 600.0, "lifetime": 60.0, "cpu_hosts": 0}
    | {"warmup": 60.0, "compare": 60.0, "no_batch": False, "sample_every": 5.0, "cooldown": 15.0}
    | {"processes": 0},
    helps={
        "duration": "seconds of churn",
        "lifetime": "mean seconds a client stays connected",
        "cpu_hosts": "hosts' charts each session opens",
        "warmup": "seconds before the first span",
        "compare": "seconds of each span",
        "sample_every": "seconds between readings",
        "cooldown": "seconds watched after the clients left",
        "processes": "client processes (0: one per 1,000)",
    },
    target=TARGET,
    head="""{clients:,} clients connecting, following `fleet` for about {lifetime:g} s and leaving, over and
    over, with {hosts:,} simulated hosts and one gateway, for {duration:g} s; spans of {compare_s:g} s
    compared, the first after a {warmup_s:g} s warm-up; {context}.""",
    targets="""
gateway RSS: first → last span after warm-up
    | {rss_kib_first:KiB:MiB} → {rss_kib_last:KiB:MiB} ({rss_kib_growth:+.1%}) | < +{target[growth]:.0%} | rss
gateway open files: first → last span after warm-up
    | {fds_first:,.0f} → {fds_last:,.0f} ({fds_growth:+.1%}) | < +{target[growth]:.0%} | fds
ERROR lines and tracebacks in the gateway's log | {log[error]} + {log[traceback]} | 0 | log
""",
    also="""
connects / failed / handshakes over 30 s | {connects:,} / {connect_failures:,} / {slow_handshakes:,}
why connects failed | {connect_failed:counts}
handshake p50 / p99 / max | {handshake_p50_ms:ms} / {handshake_p99_ms:ms} / {handshake_max_ms:ms}
sessions left cleanly / by dropping the connection / ended by the gateway
    | {closed_clean:,} / {closed_abort:,} / {server_closed:,}{server_closed_by}
`error` frames received | {error_frames:counts}
clients held by the gateway, mean / most | {held_mean:,.0f} / {held_max:,.0f}
gateway RSS / open files with the fleet before the clients / after they left
    | {before[rss_kib]:KiB:MiB}, {before[fds]:.0f} / {after[rss_kib]:KiB:MiB}, {after[fds]:.0f}
CPU of the gateway / agent / Redis / client processes
    | {gateway_cpu_pct:.0f}% / {agent_cpu_pct:.0f}% / {redis_cpu_pct:.0f}% / {clients_cpu_pct:.0f}%
""",
    summarize=summarize,
    sections=lambda s, args: [s["log_examples"]] if s["log_examples"] else [],
    plot=plot,
    plot_alt="RSS, open files and clients of the gateway over the soak",
)
