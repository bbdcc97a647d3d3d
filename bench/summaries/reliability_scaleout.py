"""What the scale-out benchmark aims at; its results summed up, estimated at 100,000 hosts, rendered."""

from __future__ import annotations

import argparse
import math
import statistics
from typing import Any

from ..harness import ms, verdict
from ..measure import Context
from ..reliability_common import add_counts, command_line, counts, details, quantiles, ready_counts, report
from . import Column, columns

NAME = "reliability_scaleout"
TARGET_REACH = 1.0
TARGET_P99_S = 1.5
DEFAULTS = {"gateways": 3, "hosts": 1000, "clients": 1000, "duration": 30.0, "no_batch": False}
DEFAULTS |= {"processes": 0, "probe_every": 20, "idle": 10.0}
PER_SAMPLE_COMMANDS = ("rpush", "ltrim", "hset", "publish")  # what an agent sends per sample


def _reach(results: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(probe, sample) pairs expected, delivered, and missed as superseded (latest-wins)."""
    expected = sum(r["reach_samples"] * r["reach_probes"] for r in results)
    return (
        expected,
        sum(r["reach_delivered"] for r in results),
        sum(r["reach_superseded_missed"] for r in results),
    )


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else math.nan


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    results = [r for r in raw["results"] if r is not None]
    samples, delivered, superseded_missed = _reach(results)
    per_gateway = []
    for g in range(args.gateways):
        mine = [r for r, gw in zip(raw["results"], raw["gateway_of_process"], strict=True) if gw == g and r]
        g_samples, g_delivered, g_missed = _reach(mine)
        measured = ("cpu_pct", "cpu_pct_without_clients", "rss_kib", "rss_without_clients_kib")
        per_gateway.append(
            {key: raw[f"gateway_{key}"][g] for key in measured}
            | {
                "gateway": g,
                "clients": sum(r["ready"] for r in mine),
                "held": raw["gateway_clients"][g],
                "p99_ms": quantiles(mine, "latency_hist", "latency")["latency_p99_ms"],
                "reach": _ratio(g_delivered, g_samples - g_missed),
                "redis_reconnects": raw["redis_reconnects"][g],
                "log_errors": raw["logs"][g]["error"] + raw["logs"][g]["traceback"],
            }
        )
    frames = sum(r["frames"] for r in results)
    connected, failed = ready_counts(raw)
    return {
        "clients_connected": connected,
        "clients_failed": failed,
        "clients_closed": sum(r["closed"] for r in results),
        "reach_updates": _ratio(delivered, samples - superseded_missed),
        "reach_samples": _ratio(delivered, samples),
        "reach_pairs_expected": samples,
        "reach_pairs_delivered": delivered,
        "reach_pairs_superseded": superseded_missed,
        "reach_probes": sum(r["reach_probes"] for r in results),
        "samples_in_window": max((r["reach_samples"] for r in results), default=0),
        "superseded_samples": sum(r["reach_superseded_samples"] for r in results),
        **quantiles(results, "latency_hist", "latency"),
        "latency_unmatched": sum(r["unmatched"] for r in results),
        "frames_per_client_per_s": frames / max(1, connected) / raw["window_s"],
        "frame_bytes": sum(r["frame_bytes"] for r in results) / max(1, frames),
        "hosts_per_frame": sum(r["entries"] for r in results)
        / max(1, frames - sum(r.get("light_frames", 0) for r in results)),  # parsed frames only
        "error_frames": add_counts(r.get("errors") for r in results),
        "per_gateway": per_gateway,
        "estimate": estimate(raw, args, connected, frames),
    }


def estimate(raw: dict[str, Any], args: argparse.Namespace, connected: int, frames: int) -> dict[str, Any]:
    """Cost per host and per client from the measured figures, and what they add up to at scale."""
    results = [r for r in raw["results"] if r is not None]
    samples_per_s = args.hosts  # 1 Hz
    # Redis: CPU per sample with S subscribers on the sample channel, measured at two S (the
    # gateways alone, then with the client processes' own subscribers too).
    s0, s1 = raw["subscribers_without_clients"], raw["subscribers"]
    redis_quiet = raw["redis_cpu_pct_without_fleet"]
    redis_us0 = max(0.0, raw["redis_cpu_pct_without_clients"] - redis_quiet) / 100 * 1e6 / samples_per_s
    redis_us1 = max(0.0, raw["redis_cpu_pct"] - redis_quiet) / 100 * 1e6 / samples_per_s
    per_subscriber = max(0.0, (redis_us1 - redis_us0) / (s1 - s0)) if s1 > s0 else math.nan
    redis_base = redis_us0 - (per_subscriber if not math.isnan(per_subscriber) else 0.0) * s0
    commands = raw["redis_commands_without_clients"]
    stored = sum(commands.get(c, {}).get("usec_per_s", 0.0) for c in PER_SAMPLE_COMMANDS) / samples_per_s
    # Gateway: ingest (every gateway reads every sample) and fan-out (per client, per byte sent).
    ingest_pct = [
        max(0.0, c - q)
        for c, q in zip(
            raw["gateway_cpu_pct_without_clients"], raw["gateway_cpu_pct_without_fleet"], strict=True
        )
    ]
    ingest_us = statistics.fmean(ingest_pct) / 100 * 1e6 / samples_per_s
    fanout_cpu_s = sum(
        max(0.0, c - i)
        for c, i in zip(raw["gateway_cpu_pct"], raw["gateway_cpu_pct_without_clients"], strict=True)
    )
    fanout_cpu_s /= 100
    bytes_per_s = sum(r["frame_bytes"] for r in results) / raw["window_s"]
    us_per_kib = fanout_cpu_s * 1e6 / (bytes_per_s / 1024) if bytes_per_s else math.nan
    entry_bytes = (sum(r["frame_bytes"] for r in results) / max(1, frames)) / max(1, args.hosts)
    # What Redis writes per sample and subscriber (the sample as RESP), without the clients.
    sample_bytes = raw["redis_out_bytes_per_s_without_clients"] / samples_per_s / max(1, s0)
    rows = []
    for hosts in (1_000, 10_000, 100_000):
        redis_core = hosts * (redis_base + per_subscriber * args.gateways) / 1e6
        ingest_core = hosts * ingest_us / 1e6
        client_kib = hosts * entry_bytes / 1024
        fanout_core_per_1000 = 1000 * client_kib * us_per_kib / 1e6
        rows.append(
            {
                "hosts": hosts,
                "redis_cores": redis_core,
                "redis_out_mib_s": hosts * sample_bytes * args.gateways / 2**20,
                "gateway_ingest_cores": ingest_core,
                "fleet_frame_kib": client_kib,
                "fanout_cores_per_1000_clients": fanout_core_per_1000,
            }
        )
    return {
        "redis_us_per_sample_base": redis_base,
        "redis_us_per_sample_per_subscriber": per_subscriber,
        "redis_command_us_per_sample": stored,
        "subscribers": [s0, s1],
        "gateway_ingest_us_per_sample": ingest_us,
        "gateway_fanout_us_per_kib": us_per_kib,
        "fleet_entry_bytes": entry_bytes,
        "sample_bytes": sample_bytes,
        "at": rows,
    }


GATEWAY_COLUMNS: list[Column] = [
    ("gateway", lambda g: str(g["gateway"])),
    ("clients", lambda g: f"{g['clients']:,}"),
    ("CPU (no clients)", lambda g: f"{g['cpu_pct']:.0f}% ({g['cpu_pct_without_clients']:.0f}%)"),
    (
        "RSS (no clients)",
        lambda g: f"{g['rss_kib'] / 1024:.0f} MiB ({g['rss_without_clients_kib'] / 1024:.0f} MiB)",
    ),
    ("p99", lambda g: ms(g["p99_ms"])),
    ("reach", lambda g: f"{g['reach']:.4f}"),
    ("Redis reconnects", lambda g: f"{g['redis_reconnects']:.0f}"),
    ("log errors", lambda g: str(g["log_errors"])),
]


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    rows = [
        (
            "reach: fleet updates delivered (superseded samples not expected)",
            f"{s['reach_updates']:.4f}",
            f"{TARGET_REACH:.3f}",
            verdict(s["reach_updates"] >= TARGET_REACH),
        ),
        ("reach: samples delivered (strict)", f"{s['reach_samples']:.4f}", "", ""),
        ("sample → client, p50", ms(s["latency_p50_ms"]), "", ""),
        (
            "sample → client, p99",
            ms(s["latency_p99_ms"]),
            f"< {TARGET_P99_S} s",
            verdict(s["latency_p99_ms"] / 1000 < TARGET_P99_S),
        ),
    ]
    head = (
        f"{args.gateways} gateway processes behind one Redis, {args.hosts:,} simulated hosts at 1 Hz, "
        f"{s['clients_connected']:,} of {args.clients:,} clients following `fleet` spread over them; "
        f"{raw['window_s']:.0f} s window; {ctx.sentence()}.\n\n"
    )
    gateways = columns(GATEWAY_COLUMNS, s["per_gateway"])
    commands = raw["redis_commands"]
    also = details(
        (
            "clients connected / failed / dropped in the window",
            f"{s['clients_connected']:,} / {s['clients_failed']:,} / {s['clients_closed']:,}",
        ),
        ("time to connect and get the first frame", f"{raw['connect_seconds']:.1f} s"),
        (
            "samples published in the window / superseded before a tick (latest-wins; summed over "
            "the client processes, each on its gateway)",
            f"{s['samples_in_window']:,} / {s['superseded_samples']:,}",
        ),
        (
            "(probe, sample) pairs expected / delivered / superseded",
            f"{s['reach_pairs_expected']:,} / {s['reach_pairs_delivered']:,} / "
            f"{s['reach_pairs_superseded']:,} ({s['reach_probes']} probe clients)",
        ),
        ("sample → client, max", ms(s["latency_max_ms"])),
        ("fleet frames per client per second", f"{s['frames_per_client_per_s']:.2f}"),
        (
            "frame size / host entries per frame",
            f"{s['frame_bytes'] / 1024:.1f} KiB / {s['hosts_per_frame']:.0f}",
        ),
        ("`error` frames received", counts(s["error_frames"])),
        (
            "Redis CPU with the client processes' own subscribers / without clients / without the fleet",
            f"{raw['redis_cpu_pct']:.1f}% / {raw['redis_cpu_pct_without_clients']:.1f}% / "
            f"{raw['redis_cpu_pct_without_fleet']:.1f}%",
        ),
        (
            "subscribers of the sample channel without / with the client processes",
            f"{raw['subscribers_without_clients']} / {raw['subscribers']}",
        ),
        (
            "Redis commands per second (µs of Redis time per second)",
            ", ".join(
                f"{name} {v['calls_per_s']:,.0f} ({v['usec_per_s']:,.0f})"
                for name, v in sorted(commands.items(), key=lambda kv: -kv[1]["usec_per_s"])[:8]
            ),
        ),
        (
            "CPU of the agent / client processes",
            f"{raw['agent_cpu_pct']:.0f}% / {raw['clients_cpu_pct']:.0f}%",
        ),
        raw=raw,
        args=args,
    )
    paper = render_estimate(s["estimate"], args)
    return report(head, rows, gateways, also, paper, reproduce=command_line(NAME, args, DEFAULTS))


def render_estimate(e: dict[str, Any], args: argparse.Namespace) -> str:
    def cores(value: float) -> str:
        return f"{value:.2f}" if value < 10 else f"{value:.0f}"

    at = columns(
        [
            ("hosts (1 Hz)", lambda r: f"{r['hosts']:,}"),
            (f"Redis, cores ({args.gateways} gateways subscribed)", lambda r: cores(r["redis_cores"])),
            ("Redis → gateways", lambda r: f"{r['redis_out_mib_s']:.0f} MiB/s"),
            ("each gateway: ingest, cores", lambda r: cores(r["gateway_ingest_cores"])),
            ("`fleet` frame per client per second", lambda r: f"{r['fleet_frame_kib']:,.0f} KiB"),
            ("fan-out per 1,000 clients, cores", lambda r: cores(r["fanout_cores_per_1000_clients"])),
        ],
        e["at"],
    )
    per_sub = e["redis_us_per_sample_per_subscriber"]
    per_sub_text = f"{per_sub:.2f} µs" if not math.isnan(per_sub) else "(not measured)"
    ingest_us = e["gateway_ingest_us_per_sample"]
    biggest = e["at"][-1]
    return (
        "**On paper, from these figures.** Per host (one sample a second): Redis spends "
        f"{e['redis_us_per_sample_base']:.1f} µs storing and publishing it (of which its commands "
        f"{e['redis_command_us_per_sample']:.1f} µs: RPUSH, LTRIM, HSET, PUBLISH) plus {per_sub_text} "
        f"for each subscriber it goes to (measured with {e['subscribers'][0]} and {e['subscribers'][1]} "
        f"subscribers), and sends {e['sample_bytes']:.0f} bytes to each. Every gateway spends "
        f"{ingest_us:.0f} µs reading it (pub/sub, validation, presence, the fleet summary, the history "
        "cache), whether or not anyone follows the host. Per client following `fleet`: a frame a "
        f"second with every host that changed ({e['fleet_entry_bytes']:.0f} bytes a host), which costs "
        f"the gateway {e['gateway_fanout_us_per_kib']:.1f} µs per KiB sent. Scaled linearly (the costs "
        "that grow; per-tick overheads left out):\n\n"
        + at
        + "\n\nEvery gateway reads every sample, so adding gateways adds room for clients, not for "
        f"hosts: ingest alone takes a whole core at about {1e6 / max(ingest_us, 1e-9):,.0f} hosts, and "
        f"a `fleet` follower of {biggest['hosts']:,} hosts would get {biggest['fleet_frame_kib']:,.0f} KiB "
        "every second. Sharding the sample channel by host group (`cpu:GROUP`; sharded pub/sub on a "
        "Redis cluster) would spread Redis's publishing over shards and let a gateway subscribe only "
        "to the groups its clients follow, which helps clients narrowed to some hosts (`cpu` with "
        "`hosts`). It changes nothing for `fleet` followers, who need every group: for them each "
        "group's summary would have to be built once (one process per group, published once per "
        "tick), so that a gateway reads one summary per group instead of every sample, and a "
        "dashboard of 100,000 hosts would follow groups rather than every host."
    )
