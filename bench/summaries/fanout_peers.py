"""What the fan-out comparison aims at, and its rounds summed up and rendered."""

from __future__ import annotations

import argparse
import math
import statistics
from typing import Any

from ..harness import ms, table, verdict
from ..measure import Context, spread

NAME = "fanout_peers"
SYSTEMS = ("fleetdeck", "fleetdeck-batch", "websockets", "broadcaster")
LABELS = {
    "fleetdeck": "fleetdeck gateway",
    "fleetdeck-batch": "fleetdeck gateway, `/ws?batch=1`",
    "websockets": "plain `websockets` + redis-py",
    "broadcaster": "Starlette + broadcaster (uvicorn)",
}


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
    rows = [
        (
            LABELS[system],
            mmm(system, "cpu_us_per_sample", "{:.1f} µs"),
            mmm(system, "reach", "{:.3f}"),
            ms(summary[system]["latency_p50_ms"]["median"]),
            mmm(system, "latency_p99_ms", "{:.0f} ms"),
            f"{summary[system]['rss_per_connection_kib']['median']:.1f} KiB",
            f"{summary[system]['server_cpu_pct']['median']:.0f}%",
        )
        for system in systems
    ]
    header = (
        "server",
        "CPU per delivered sample",
        "reach",
        "latency p50",
        "latency p99",
        "RSS per connection",
        "server CPU",
    )
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
    short = intro + "\n\n" + table(header, rows) + "\n\n" + target
    command = f"scripts/bench {NAME}"
    if args.rounds != 3 or args.clients != 1000 or args.hosts != 20 or args.duration != 20:
        command += f" --rounds {args.rounds} --clients {args.clients} --hosts {args.hosts}"
        command += f" --duration {args.duration:g}"
    per_round = table(
        (
            "round",
            "server",
            "µs / sample",
            "reach",
            "p50",
            "p99",
            "age of what arrived, p50",
            "delivered",
            "RSS / conn",
            "server CPU",
            "clients' CPU",
            "other processes",
        ),
        [
            (
                str(r["round"]) + (" (disturbed)" if r["disturbed"] else ""),
                r["system"],
                f"{r['cpu_us_per_sample']:.1f}",
                f"{r['reach']:.3f}",
                ms(r["latency_p50_ms"]),
                ms(r["latency_p99_ms"]),
                ms(r["age_p50_ms"]),
                f"{r['delivered']:,}",
                f"{r['rss_per_connection_kib']:.1f} KiB",
                f"{r['server_cpu_pct']:.0f}%",
                f"{r['clients_cpu_pct']:.0f}%",
                f"{r['others_cpu_pct']:.0f}%",
            )
            for r in rounds
        ],
    )
    full = short + "\n\nEvery round:\n\n" + per_round + f"\n\nReproduce: `{command}`"
    return full, short, summary
