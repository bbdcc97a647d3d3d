"""What the fan-out comparison aims at (docs/benchmarks.md), and its rounds summed up and rendered."""

from __future__ import annotations

import argparse
import math
import statistics
from typing import Any

from ..harness import fill, listing, reproduce
from ..measure import Context, spread

NAME = "fanout_peers"
SYSTEMS = ("fleetdeck", "fleetdeck-batch", "websockets", "broadcaster")
LABELS = {
    "fleetdeck": "fleetdeck gateway",
    "fleetdeck-batch": "fleetdeck gateway, `/ws?batch=1`",
    "websockets": "plain `websockets` + redis-py",
    "broadcaster": "Starlette + broadcaster (uvicorn)",
}
SPREAD = (
    "cpu_us_per_sample",
    "reach",
    "latency_p50_ms",
    "latency_p99_ms",
    "rss_per_connection_kib",
    "server_cpu_pct",
)
SYSTEM = (
    """server | CPU per delivered sample, µs | reach | latency p50 | latency p99 | RSS per connection
    | server CPU""",
    """{label} | {cpu_us_per_sample:.1f} | {reach:.3f} | {latency_p50_ms[median]:ms} | {latency_p99_ms:ms}
    | {rss_per_connection_kib[median]:.1f} KiB | {server_cpu_pct[median]:.0f}%""",
)
ROUND = (
    """round | server | µs / sample | reach | p50 | p99 | age of what arrived, p50 | delivered | RSS / conn
    | server CPU | per 1,000 samples: server slept / preempted, clients slept | clients' CPU
    | other processes""",
    """{round}{disturbed} | {system} | {cpu_us_per_sample:.1f} | {reach:.3f} | {latency_p50_ms:ms}
    | {latency_p99_ms:ms} | {age_p50_ms:ms} | {delivered:,} | {rss_per_connection_kib:.1f} KiB
    | {server_cpu_pct:.0f}% | {switches_per_1000[0]:.1f} / {switches_per_1000[1]:.1f},
    {switches_per_1000[2]:.1f} | {clients_cpu_pct:.0f}% | {others_cpu_pct:.0f}%""",
)
INTRO = """{hosts} hosts at 1 Hz, {clients:,.0f} clients following every host's samples; {pinned}; {rounds}
alternating rounds of {duration:g} s per server, median [min, max]; {context}."""
TARGET = """Target: fleetdeck's CPU per delivered sample at most 1.2 times the plain `websockets` server's
({cpu[websockets]:.1f} µs, medians): one frame per message (v1 clients) {cpu[fleetdeck]:.1f} µs
({ratio[0]:.2f} times), {met[0]:met}; batched as the dashboard asks for it {cpu[fleetdeck-batch]:.1f} µs
({ratio[1]:.2f} times), {met[1]:met}."""
WHY = """Why pinned (since 2026-12-07, issue 24): unpinned on a quiet machine the plain `websockets`
peer measured 20.1 µs (2026-11-26), pinned 9.4-11.0 µs, with the same code. Most of either server's
CPU per sample is the write of each frame into its socket, and placement changes how often a server
and its readers trade the core; why the peer's figure doubled unpinned is not settled.
docs/benchmarks.md says more, with a profile of where the gateway's cost goes."""
OPTIONS: dict[str, Any] = {"rounds": 3, "hosts": 20, "clients": 1000, "processes": 2, "duration": 20.0}
OPTIONS["systems"] = list(SYSTEMS)
HELPS = {"duration": "seconds measured per server and round", "systems": "servers measured"}
PINNED = {False: "server on core 0, Redis, publisher and clients on core 1", True: "nothing pinned"}


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The figures summed up per server."""
    return {
        system: {key: spread([r[key] for r in raw["rounds"] if r["system"] == system]) for key in SPREAD}
        for system in SYSTEMS
        if any(r["system"] == system for r in raw["rounds"])
    }


def render(
    summary: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context
) -> str | tuple[str, str]:
    """The full summary and, of the default run only, its short form (the README's)."""
    rounds = raw["rounds"]
    cpu = {s: summary.get(s, {}).get("cpu_us_per_sample", {}).get("median", math.nan) for s in SYSTEMS}
    figures = {**vars(args), "cpu": cpu, "context": ctx.sentence()}
    figures["clients"] = statistics.median(r["clients"] for r in rounds)
    figures["ratio"] = [cpu[s] / (cpu["websockets"] or math.nan) for s in ("fleetdeck", "fleetdeck-batch")]
    figures["met"] = [ratio <= 1.2 for ratio in figures["ratio"]]
    figures["pinned"] = PINNED[args.no_pin]
    target = fill(" ".join(TARGET.split()), figures)
    table = listing(*SYSTEM, [s | {"label": LABELS[name]} for name, s in summary.items()])
    short = fill(" ".join(INTRO.split()), figures) + "\n\n" + table + "\n\n" + target
    command = reproduce(NAME, args, OPTIONS | {"no_pin": False, "name": NAME})
    per_round = listing(*ROUND, [r | {"disturbed": " (disturbed)" if r["disturbed"] else ""} for r in rounds])
    why = "\n\n" + " ".join(WHY.split()) if not args.no_pin else ""
    full = short + why + "\n\nEvery round:\n\n" + per_round + f"\n\nReproduce: `{command}`"
    return (full, short) if args.name == NAME else full
