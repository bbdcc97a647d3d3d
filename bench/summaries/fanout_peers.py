"""What the fan-out comparison aims at, and its rounds summed up and rendered."""

from __future__ import annotations

import argparse
import math
import statistics
from typing import Any

from ..harness import ms, verdict
from ..measure import Context, spread
from . import Column, columns

NAME = "fanout_peers"
SYSTEMS = ("fleetdeck", "fleetdeck-batch", "websockets", "broadcaster")
LABELS = {
    "fleetdeck": "fleetdeck gateway",
    "fleetdeck-batch": "fleetdeck gateway, `/ws?batch=1`",
    "websockets": "plain `websockets` + redis-py",
    "broadcaster": "Starlette + broadcaster (uvicorn)",
}


ROUND_COLUMNS: list[Column] = [
    ("round", lambda r: str(r["round"]) + (" (disturbed)" if r["disturbed"] else "")),
    ("server", lambda r: str(r["system"])),
    ("µs / sample", lambda r: f"{r['cpu_us_per_sample']:.1f}"),
    ("reach", lambda r: f"{r['reach']:.3f}"),
    ("p50", lambda r: ms(r["latency_p50_ms"])),
    ("p99", lambda r: ms(r["latency_p99_ms"])),
    ("age of what arrived, p50", lambda r: ms(r["age_p50_ms"])),
    ("delivered", lambda r: f"{r['delivered']:,}"),
    ("RSS / conn", lambda r: f"{r['rss_per_connection_kib']:.1f} KiB"),
    ("server CPU", lambda r: f"{r['server_cpu_pct']:.0f}%"),
    ("clients' CPU", lambda r: f"{r['clients_cpu_pct']:.0f}%"),
    ("other processes", lambda r: f"{r['others_cpu_pct']:.0f}%"),
]


def render(
    rounds: list[dict[str, Any]], args: argparse.Namespace, ctx: Context
) -> tuple[str, str, dict[str, Any]]:
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in rounds)]
    by_system = {s: [r for r in rounds if r["system"] == s] for s in systems}
    summary: dict[str, Any] = {}
    for system, outcomes in by_system.items():
        summary[system] = {
            key: spread([r[key] for r in outcomes])
            for key in (
                "cpu_us_per_sample",
                "reach",
                "latency_p50_ms",
                "latency_p99_ms",
                "rss_per_connection_kib",
                "server_cpu_pct",
                "others_cpu_pct",
            )
        }

    def mmm(system: str, key: str, fmt: str) -> str:
        s = summary[system][key]
        if any(math.isnan(v) for v in s.values()):
            return "-"
        return f"{fmt.format(s['median'])} [{fmt.format(s['min'])}, {fmt.format(s['max'])}]"

    nan = {"median": float("nan")}
    ours = summary.get("fleetdeck", {}).get("cpu_us_per_sample", nan)["median"]
    batched = summary.get("fleetdeck-batch", {}).get("cpu_us_per_sample", nan)["median"]
    plain = summary.get("websockets", {}).get("cpu_us_per_sample", nan)["median"]
    main: list[Column] = [
        ("server", lambda system: LABELS[system]),
        ("CPU per delivered sample", lambda system: mmm(system, "cpu_us_per_sample", "{:.1f} µs")),
        ("reach", lambda system: mmm(system, "reach", "{:.3f}")),
        ("latency p50", lambda system: ms(summary[system]["latency_p50_ms"]["median"])),
        ("latency p99", lambda system: mmm(system, "latency_p99_ms", "{:.0f} ms")),
        (
            "RSS per connection",
            lambda system: f"{summary[system]['rss_per_connection_kib']['median']:.1f} KiB",
        ),
        ("server CPU", lambda system: f"{summary[system]['server_cpu_pct']['median']:.0f}%"),
    ]
    clients = statistics.median(r["clients"] for r in rounds)
    intro = (
        f"{args.hosts} hosts at 1 Hz, {clients:,.0f} clients following every host's samples; "
        f"{args.rounds} alternating rounds of {args.duration:g} s per server, median [min, max]; "
        f"{ctx.sentence()}."
    )
    target = (
        f"Target: fleetdeck's CPU per delivered sample at most the plain `websockets` server's "
        f"({plain:.1f} µs, medians): one frame per message (v1 clients) {ours:.1f} µs, "
        f"{verdict(ours <= plain)}; batched as the dashboard asks for it {batched:.1f} µs, "
        f"{verdict(batched <= plain)}."
    )
    short = intro + "\n\n" + columns(main, systems) + "\n\n" + target
    command = f"scripts/bench {NAME}"
    if args.rounds != 3 or args.clients != 1000 or args.hosts != 20 or args.duration != 20:
        command += f" --rounds {args.rounds} --clients {args.clients} --hosts {args.hosts}"
        command += f" --duration {args.duration:g}"
    per_round = columns(ROUND_COLUMNS, rounds)
    full = short + "\n\nEvery round:\n\n" + per_round + f"\n\nReproduce: `{command}`"
    return full, short, summary
