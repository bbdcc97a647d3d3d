"""What the slow-consumer benchmark aims at (docs/reliability.md), and its results summed up."""

from __future__ import annotations

import argparse
from typing import Any

from fleetdeck_gateway.ws.outbox import DEFAULT_BYTES_LIMIT

from ..harness import fill, listing
from ..measure import counted, quantiles, ready_counts
from ..reliability_common import LoadRun

NAME = "reliability_slow"
TARGET = {"p99_delta_ms": 100.0}
CHATTING = (
    "; an operator posts {chat_rate:g} chat messages a second ({chat_chars:,} characters), which the "
    "stalling clients follow"
)
TIMELINE = (
    "s after the stall | clients held | gateway RSS | closed as too slow | bytes queued in outboxes"
    " | unread by the others (kernel) | unsent to the others (kernel)",
    "{t:.0f} | {held:,.0f} | {rss:KiB:MiB} | {slow:,.0f} | {queued:B:MiB} | {unread:B:MiB} | {unsent:B:MiB}",
)


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    base, during, stalled = raw["baseline"], raw["during"], raw["stalled"]
    connected, failed = ready_counts(raw)
    s: dict[str, Any] = {"clients_connected": connected, "clients_failed": failed}
    s |= quantiles(base, "latency_hist", "baseline") | quantiles(during, "latency_hist", "stall")
    s |= {
        "p99_delta_ms": s["stall_p99_ms"] - s["baseline_p99_ms"],
        "released": len(raw["released"]),
        # The gateway stopped serving a stalled client when it closed its socket (the keepalive
        # does) or closed it as too slow (1013, it may keep the socket): whichever counted more.
        "dropped": min(stalled, max(len(raw["released"]), int(raw["slow_disconnects"] or 0))),
        "stalled_ended": counted(raw["resumed"], "ended"),
        "rss_growth_kib": raw["rss_max_stall_kib"] - raw["rss_baseline_kib"],
        "rss_bound_kib": stalled * DEFAULT_BYTES_LIMIT / 1024,
        "chat_failed": sum(raw["chat"]["failed"].values()),
        "after": f", after {_span(raw['released'])}" if raw["released"] else "",
        "timeline": timeline(raw),
        "following": "`fleet`" if args.mode == "fleet" else "every host's samples (`cpu`)",
        "chatting": fill(CHATTING, vars(args)) if args.chat_rate > 0 else "",
    }
    stalling = stalled > 0  # --stalled 0 is the control run: nothing stalls, nothing to drop
    s["met"] = {
        "p99": s["p99_delta_ms"] <= TARGET["p99_delta_ms"],
        "dropped": s["dropped"] >= stalled if stalling else None,
        "rss": s["rss_growth_kib"] < s["rss_bound_kib"] if stalling else None,
    }
    return s


def timeline(raw: dict[str, Any]) -> list[dict[str, float]]:
    """About a dozen of the readings during the stall: the first in each twelfth of it."""
    every = max(1, round(raw["stall_s"] / 12))
    shown: dict[int, dict[str, float]] = {}
    for r in raw["timeline"]:
        if 0 <= r["t"] <= raw["stall_s"] + 1:
            shown.setdefault(int(r["t"] // every), r)
    return list(shown.values())


def _span(times: list[float]) -> str:
    return f"{times[0]:g} s" if len(set(times)) == 1 else f"{min(times):g}-{max(times):g} s"


RUN = LoadRun(
    name=NAME,
    title="Slow consumers",
    options={"clients": 1000, "hosts": 1000, "duration": 30.0, "stall_seconds": 0.0, "mode": ("fleet", "cpu")}
    | {"ping_interval": 20.0, "chat_rate": 0.0, "chat_chars": 2000, "no_batch": False, "stalled": -1}
    | {"max_stall": 600.0, "processes": 2, "probe_every": 10, "name": NAME},
    helps={
        "duration": "baseline window, s",
        "stalled": "clients that stop reading (default 1%%)",
        "mode": "what the clients follow",
        "stall_seconds": "how long they stall (0: until their outboxes fill)",
        "max_stall": "upper bound on the automatic stall",
        "chat_rate": "chat messages a second, followed by the stalling clients",
        "chat_chars": "characters of each chat message",
        "name": f"of the results files and the docs/reliability.md block (default {NAME})",
    },
    target=TARGET,
    head="""{clients_connected:,} clients following {following} with {hosts:,} simulated hosts on one gateway
    (pings every {ping_interval:g} s); {stalled} stop reading for {stall_s:.0f} s after a {duration:g} s
    baseline{chatting}; {context}.""",
    targets="""
others' p99, baseline (everyone reading) | {baseline_p99_ms:ms}
others' p99 while some are stalled | {stall_p99_ms:ms} ({p99_delta_ms:+.0f} ms)
    | baseline + {target[p99_delta_ms]:.0f} ms | p99
stalled clients dropped by the gateway | {dropped} of {stalled} | {stalled} | dropped
closed as too slow (1013, outbox full: `slow_disconnects`) | {slow_disconnects:.0f}
their sockets closed by the gateway by the end of the stall | {released} of {stalled}{after}
gateway RSS growth during the stall | {rss_growth_kib:KiB:MiB}
    | < {rss_bound_kib:KiB:MiB} (their outbox limits) | rss
""",
    also="""
clients connected / failed | {clients_connected:,} / {clients_failed:,}
others' p50, baseline / stalled | {baseline_p50_ms:ms} / {stall_p50_ms:ms}
others' latency max while stalled | {stall_max_ms:ms}
bytes the others had not read yet (their kernel receive buffers), most at once, baseline / stalled
    | {queues_baseline[unread]:B:MiB} / {queues_stall[unread]:B:MiB} (one client:
    {queues_baseline[unread_max]:B:MiB} / {queues_stall[unread_max]:B:MiB})
others with over two seconds of frames unread in their buffers, most at once, baseline / stalled
    | {queues_baseline[behind]:,} / {queues_stall[behind]:,}
bytes the gateway had not got out to the others (its kernel send buffers), most at once, baseline /
    stalled | {queues_baseline[unsent]:B:MiB} / {queues_stall[unsent]:B:MiB}
what a stalling client read per second in the baseline (`fleet` frames) | {bytes_per_client_s:B:KiB}/s
chat messages posted / failed | {chat[sent]:,} / {chat_failed:,}
how the stalled clients' connections had ended (what they read on resuming) | {stalled_ended:counts}
ERROR lines / tracebacks in the gateway's log | {log[error]} / {log[traceback]}
""",
    summarize=summarize,
    sections=lambda s, args: [listing(*TIMELINE, s["timeline"])],
)
