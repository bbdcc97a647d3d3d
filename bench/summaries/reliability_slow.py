"""What the slow-consumer benchmark aims at, and its results summed up and rendered."""

from __future__ import annotations

import argparse
import math
from typing import Any

from fleetdeck_gateway.ws.outbox import DEFAULT_BYTES_LIMIT

from ..harness import ms, verdict
from ..measure import Context, histogram
from ..reliability_common import add_counts, command_line, counts, details, quantiles, ready_counts, report
from . import columns

NAME = "reliability_slow"
TARGET_P99_DELTA_MS = 100.0
SOCKET_BUFFERS = 5 * 2**20  # what the kernel may hold for a stalled peer on loopback, both ends
RSS = ("rss_before_kib", "rss_baseline_kib", "rss_max_stall_kib", "rss_end_stall_kib", "rss_after_resume_kib")
DEFAULTS = {
    "clients": 1000,
    "hosts": 1000,
    "duration": 30.0,
    "stall_seconds": 0.0,
    "mode": "fleet",
    "ping_interval": 20.0,
    "chat_rate": 0.0,
    "chat_chars": 2000,
    "no_batch": False,
    "stalled": -1,
    "max_stall": 600.0,
    "processes": 2,
    "probe_every": 10,
    "name": NAME,
}


def default_stalled(clients: int) -> int:
    return max(1, round(clients / 100))


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    base, during = raw["baseline"], raw["during"]
    held_end = raw["held"][-1][1] if raw["held"] else 0
    connected, failed = ready_counts(raw)
    s: dict[str, Any] = {"clients_connected": connected, "clients_failed": failed, "stalled": raw["stalled"]}
    s |= quantiles(base, "latency_hist", "baseline") | quantiles(during, "latency_hist", "stall")
    return s | {
        "p99_delta_ms": s["stall_p99_ms"] - s["baseline_p99_ms"],
        "timed_baseline": sum(histogram(r["latency_hist"] for r in base).values()),
        "timed_stall": sum(histogram(r["latency_hist"] for r in during).values()),
        "others_closed_during_stall": sum(r["closed"] for r in during),
        "released": raw["stalled"] - held_end,
        # The gateway stopped serving a stalled client when it closed its socket (the keepalive
        # does) or closed it as too slow (1013, it may keep the socket): whichever counted more.
        "dropped": min(raw["stalled"], max(raw["stalled"] - held_end, int(raw["slow_disconnects"] or 0))),
        "closed_as_too_slow": raw["slow_disconnects"],
        "closed_as_too_slow_before_stall": raw["slow_disconnects_before_stall"],
        "drop_times_s": raw["released"],
        "stalled_sockets_held_at_end": held_end,
        "stalled_sockets_held_after_resume": raw["held_after_resume"],
        "stalled_ended": add_counts(r.get("ended") for r in raw["resumed"]),
        "rss_growth_kib": raw["rss_max_stall_kib"] - raw["rss_baseline_kib"],
        "rss_bound_kib": raw["stalled"] * DEFAULT_BYTES_LIMIT / 1024,
        "frames_per_client_per_s_stall": sum(r["frames"] for r in during)
        / max(1, sum(r["ready"] for r in during) - raw["stalled"])
        / raw["stall_s"],
    }


def _span(times: list[float]) -> str:
    return f"{times[0]:g} s" if len(set(times)) == 1 else f"{min(times):g}-{max(times):g} s"


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    fleet = args.mode == "fleet"
    drops = s["drop_times_s"]
    stalling = s["stalled"] > 0  # --stalled 0 is the control run: nothing stalls, nothing to drop
    chat = (
        f"; an operator posts {args.chat_rate:g} chat messages a second ({args.chat_chars:,} characters), "
        "which the stalling clients follow"
        if args.chat_rate > 0
        else ""
    )
    rows = [
        ("others' p99, baseline (everyone reading)", ms(s["baseline_p99_ms"]), "", ""),
        (
            "others' p99 while some are stalled",
            f"{ms(s['stall_p99_ms'])} ({s['p99_delta_ms']:+.0f} ms)",
            f"baseline + {TARGET_P99_DELTA_MS:.0f} ms",
            verdict(s["p99_delta_ms"] <= TARGET_P99_DELTA_MS),
        ),
        (
            "stalled clients dropped by the gateway",
            f"{s['dropped']} of {s['stalled']}",
            f"{s['stalled']}" if stalling else "",
            verdict(s["dropped"] >= s["stalled"]) if stalling else "",
        ),
        (
            "closed as too slow (1013, outbox full: `slow_disconnects`)",
            f"{s['closed_as_too_slow']:.0f}",
            "",
            "",
        ),
        (
            "their sockets closed by the gateway by the end of the stall",
            f"{s['released']} of {s['stalled']}" + (f", after {_span(drops)}" if drops else ""),
            "",
            "",
        ),
        (
            "gateway RSS growth during the stall",
            f"{s['rss_growth_kib'] / 1024:.1f} MiB",
            f"< {s['rss_bound_kib'] / 1024:.0f} MiB (their outbox limits)" if stalling else "",
            verdict(s["rss_growth_kib"] < s["rss_bound_kib"]) if stalling else "",
        ),
    ]
    what = "`fleet`" if fleet else "every host's samples (`cpu`)"
    qb, qs = raw["queues_baseline"], raw["queues_stall"]
    head = (
        f"{s['clients_connected']:,} clients following {what} with {args.hosts:,} simulated hosts on one "
        f"gateway (pings every {args.ping_interval:g} s); {s['stalled']} stop reading for "
        f"{raw['stall_s']:.0f} s after a {args.duration:g} s baseline{chat}; {ctx.sentence()}.\n\n"
    )
    reproduce = command_line(NAME, args, {**DEFAULTS, "stalled": default_stalled(args.clients), "name": NAME})
    also = details(
        ("clients connected / failed", f"{s['clients_connected']:,} / {s['clients_failed']:,}"),
        ("others' p50, baseline / stalled", f"{ms(s['baseline_p50_ms'])} / {ms(s['stall_p50_ms'])}"),
        ("others' latency max while stalled", ms(s["stall_max_ms"])),
        ("entries timed, baseline / stalled", f"{s['timed_baseline']:,} / {s['timed_stall']:,}"),
        ("other clients dropped during the stall", f"{s['others_closed_during_stall']:,}"),
        (
            "bytes the others had not read yet (their kernel receive buffers), most at once, "
            "baseline / stalled",
            f"{_mib(qb['unread'])} / {_mib(qs['unread'])} (one client: {_mib(qb['unread_max'])} / "
            f"{_mib(qs['unread_max'])})",
        ),
        (
            "others with over two seconds of frames unread in their buffers, most at once, "
            "baseline / stalled",
            f"{qb['behind']:,} / {qs['behind']:,}",
        ),
        (
            "bytes the gateway had not got out to the others (its kernel send buffers), most at once, "
            "baseline / stalled",
            f"{_mib(qb['unsent'])} / {_mib(qs['unsent'])}",
        ),
        (
            "what a stalling client read per second in the baseline (`fleet` frames)",
            f"{raw['bytes_per_client_s'] / 1024:.1f} KiB/s",
        ),
        (
            "chat messages posted / failed",
            f"{raw['chat']['sent']:,} / {sum(raw['chat']['failed'].values()):,}",
        ),
        (
            "seconds from the stall to each drop (the gateway's socket gone)",
            ", ".join(f"{t:g}" for t in drops) if drops else "no drop",
        ),
        (
            "TCP sockets the gateway held to the stalled clients at the end / after they read again",
            f"{s['stalled_sockets_held_at_end']} / {s['stalled_sockets_held_after_resume']}",
        ),
        (
            "how the stalled clients' connections had ended (what they read on resuming)",
            counts(s["stalled_ended"], "-"),
        ),
        (
            "gateway RSS before clients / baseline / largest while stalled / end of stall / after resume",
            " / ".join(f"{raw[k] / 1024:.1f} MiB" for k in RSS),
        ),
        (
            "gateway CPU, baseline / stalled",
            f"{raw['gateway_cpu_pct_baseline']:.0f}% / {raw['gateway_cpu_pct_stall']:.0f}%",
        ),
        (
            "ERROR lines / tracebacks in the gateway's log",
            f"{raw['log']['error']} / {raw['log']['traceback']}",
        ),
        raw=raw,
        args=args,
    )
    every = max(1, round(raw["stall_s"] / 12))
    shown: dict[int, dict[str, float]] = {}  # the first reading in each `every` seconds
    for r in raw["timeline"]:
        if 0 <= r["t"] <= raw["stall_s"] + 1:
            shown.setdefault(int(r["t"] // every), r)
    kernel = raw["queues_timeline"]

    def waiting(t: float) -> tuple[float, float, float]:
        """The kernel-queue reading nearest to `t`."""
        return min(kernel, key=lambda q: abs(q[0] - t)) if kernel else (t, math.nan, math.nan)

    timeline = columns(
        [
            ("s after the stall", lambda r: f"{r['t']:.0f}"),
            ("clients held", lambda r: _num(r["held"])),
            ("gateway RSS", lambda r: f"{r['rss'] / 1024:.1f} MiB"),
            ("closed as too slow", lambda r: _num(r["slow"])),
            ("bytes queued in outboxes", lambda r: _num(r["queued"] / 2**20, " MiB")),
            ("unread by the others (kernel)", lambda r: _mib(waiting(r["t"])[1])),
            ("unsent to the others (kernel)", lambda r: _mib(waiting(r["t"])[2])),
        ],
        shown.values(),
    )
    return report(head, rows, also, timeline, reproduce=reproduce)


def _mib(value: float) -> str:
    return "-" if math.isnan(value) else f"{value / 2**20:,.1f} MiB"


def _num(value: float, unit: str = "") -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}{unit}" if unit else f"{value:,.0f}"
