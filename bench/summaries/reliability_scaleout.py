"""What the scale-out benchmark aims at (docs/reliability.md); its results summed up and estimated
at 100,000 hosts."""

from __future__ import annotations

import argparse
import math
import statistics
from typing import Any

from fleetdeck_common.broker.redis_commands import COMMANDS

from ..harness import fill, listing
from ..measure import fleet_frames, quantiles, ready_counts, total
from ..reliability_common import LoadRun

TARGET = {"reach": 1.0, "p99_s": 1.5}
AGENT_WRITES = COMMANDS["write_batch"]  # what the agent's batched writes may send
GATEWAYS = (
    "gateway | clients | CPU (no clients) | RSS (no clients) | p99 | reach | Redis reconnects | log errors",
    """{gateway} | {clients:,} | {cpu_pct:.0f}% ({cpu_pct_without_clients:.0f}%)
    | {rss_kib:KiB:MiB} ({rss_without_clients_kib:KiB:MiB}) | {p99_ms:ms} | {reach:.4f}
    | {redis_reconnects:.0f} | {log_errors}""",
)
AT = (
    "hosts (1 Hz) | Redis, cores ({gateways} gateways subscribed) | Redis → gateways | each gateway: ingest,"
    " cores | `fleet` frame per client per second | fan-out per 1,000 clients, cores",
    "{hosts:,} | {redis_cores:.3g} | {redis_out_mib_s:.0f} MiB/s | {gateway_ingest_cores:.3g}"
    " | {fleet_frame_kib:,.0f} KiB | {fanout_cores_per_1000_clients:.3g}",
)
PAPER = """**On paper, from these figures.** Per host (one sample a second): Redis spends
{redis_us_per_sample_base:.1f} µs storing and publishing it (of which the agent's batched writes
{redis_command_us_per_sample:.1f} µs) plus
{redis_us_per_sample_per_subscriber:.2f} µs for each subscriber it goes to (measured with
{subscribers[0]:.0f} and {subscribers[1]:.0f} subscribers), and sends {sample_bytes:.0f} bytes to each. Every
gateway spends {gateway_ingest_us_per_sample:.0f} µs reading it (pub/sub, validation, presence, the
fleet summary, the history cache), whether or not anyone follows the host, so ingest alone takes a whole
core at about {ingest_hosts_per_core:,.0f} hosts. Per client following `fleet`: a frame a second with
every host that changed ({fleet_entry_bytes:.0f} bytes a host), which costs the gateway
{gateway_fanout_us_per_kib:.1f} µs per KiB sent. Scaled linearly (the costs that grow; per-tick
overheads left out; what this means for 100,000 hosts: docs/reliability.md):"""


def _reach(results: list[dict[str, Any]]) -> dict[str, float]:
    """Of the (probe, sample) pairs, the shares delivered of the updates (samples superseded before a
    tick, latest-wins, not expected) and of every sample."""
    expected = sum(r["reach_samples"] * r["reach_probes"] for r in results)
    delivered, superseded = total(results, "reach_delivered"), total(results, "reach_superseded_missed")
    return {
        "updates": delivered / (expected - superseded) if expected > superseded else math.nan,
        "samples": delivered / expected if expected else math.nan,
    }


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    results = [r for r in raw["results"] if r is not None]
    per_gateway = []
    for g in range(args.gateways):
        mine = [r for r, gw in zip(raw["results"], raw["gateway_of_process"], strict=True) if gw == g and r]
        measured = ("cpu_pct", "cpu_pct_without_clients", "rss_kib", "rss_without_clients_kib")
        per_gateway.append(
            {key: raw[f"gateway_{key}"][g] for key in measured}
            | {
                "gateway": g,
                "clients": total(mine, "ready"),
                "p99_ms": quantiles(mine, "latency_hist", "latency")["latency_p99_ms"],
                "reach": _reach(mine)["updates"],
                "redis_reconnects": raw["redis_reconnects"][g],
                "log_errors": raw["logs"][g]["error"] + raw["logs"][g]["traceback"],
            }
        )
    connected, failed = ready_counts(raw)
    s = {
        "clients_connected": connected,
        "clients_failed": failed,
        "clients_closed": total(results, "closed"),
        "reach": _reach(results),
        **quantiles(results, "latency_hist", "latency"),
        **fleet_frames(results, connected, raw["window_s"]),
        "per_gateway": per_gateway,
        "estimate": estimate(raw, args, results),
    }
    s["met"] = {
        "reach": s["reach"]["updates"] >= TARGET["reach"],
        "p99": s["latency_p99_ms"] / 1000 < TARGET["p99_s"],
    }
    return s


def _us(pct: float, hosts: int) -> float:
    """µs per sample from the % of a core spent on `hosts` samples a second (1 Hz)."""
    return max(0.0, pct) * 1e4 / hosts


def estimate(raw: dict[str, Any], args: argparse.Namespace, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Cost per host and per client from the measured figures, and what they add up to at scale."""
    # Redis: CPU per sample with S subscribers on the sample channel, measured at two S (the
    # gateways alone, then with the client processes' own subscribers too).
    redis_idle, quiet = raw["redis_without_clients"], raw["redis_cpu_pct_without_fleet"]
    s0, s1 = redis_idle["subscribers"], raw["subscribers"]
    redis_us0 = _us(raw["redis_cpu_pct_without_clients"] - quiet, args.hosts)
    redis_us1 = _us(raw["redis_cpu_pct"] - quiet, args.hosts)
    per_subscriber = max(0.0, (redis_us1 - redis_us0) / (s1 - s0)) if s1 > s0 else math.nan
    redis_base = redis_us0 - (0.0 if math.isnan(per_subscriber) else per_subscriber) * s0
    stored = sum(redis_idle.get(c, 0.0) for c in AGENT_WRITES) / args.hosts
    # Gateway: ingest (every gateway reads every sample) and fan-out (per client, per byte sent).
    idle = raw["gateway_cpu_pct_without_clients"]
    quiet_gateways = zip(idle, raw["gateway_cpu_pct_without_fleet"], strict=True)
    ingest_us = statistics.fmean(_us(i - q, args.hosts) for i, q in quiet_gateways)
    fanout_cpu_s = sum(max(0.0, c - i) for c, i in zip(raw["gateway_cpu_pct"], idle, strict=True)) / 100
    sent = total(results, "frame_bytes")
    us_per_kib = fanout_cpu_s * 1e6 / (sent / raw["window_s"] / 1024) if sent else math.nan
    entry_bytes = sent / max(1, total(results, "frames")) / max(1, args.hosts)
    # What Redis writes per sample and subscriber (the sample as RESP), without the clients.
    sample_bytes = redis_idle["out_bytes"] / args.hosts / max(1, s0)
    at = [
        {
            "hosts": hosts,
            "redis_cores": hosts * (redis_base + per_subscriber * args.gateways) / 1e6,
            "redis_out_mib_s": hosts * sample_bytes * args.gateways / 2**20,
            "gateway_ingest_cores": hosts * ingest_us / 1e6,
            "fleet_frame_kib": hosts * entry_bytes / 1024,
            "fanout_cores_per_1000_clients": 1000 * hosts * entry_bytes / 1024 * us_per_kib / 1e6,
        }
        for hosts in (1_000, 10_000, 100_000)
    ]
    return {
        "redis_us_per_sample_base": redis_base,
        "redis_us_per_sample_per_subscriber": per_subscriber,
        "redis_command_us_per_sample": stored,
        "subscribers": [s0, s1],
        "gateway_ingest_us_per_sample": ingest_us,
        "ingest_hosts_per_core": 1e6 / ingest_us if ingest_us > 0 else math.nan,
        "gateway_fanout_us_per_kib": us_per_kib,
        "fleet_entry_bytes": entry_bytes,
        "sample_bytes": sample_bytes,
        "at": at,
    }


def sections(s: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Each gateway's figures, and the estimate at up to 100,000 hosts."""
    at = listing(fill(AT[0], vars(args)), AT[1], s["estimate"]["at"])
    return [listing(*GATEWAYS, s["per_gateway"]), fill(" ".join(PAPER.split()), s["estimate"]) + "\n\n" + at]


RUN = LoadRun(
    name="reliability_scaleout",
    title="Three gateways behind one Redis",
    options={"gateways": 3, "hosts": 1000, "clients": 1000, "duration": 30.0, "no_batch": False}
    | {"processes": 0, "probe_every": 20, "idle": 10.0},
    helps={
        "gateways": "gateway processes",
        "processes": "client processes (0: two per gateway)",
        "idle": "seconds measuring Redis and the gateways without fleet/clients",
    },
    target=TARGET,
    head="""{gateways} gateway processes behind one Redis, {hosts:,} simulated hosts at 1 Hz,
    {clients_connected:,} of {clients:,} clients following `fleet` spread over them; {window_s:.0f} s window;
    {context}.""",
    targets="""
reach: fleet updates delivered (superseded samples not expected) | {reach[updates]:.4f} | {target[reach]:.3f}
    | reach
reach: samples delivered (strict) | {reach[samples]:.4f}
sample → client, p50 | {latency_p50_ms:ms}
sample → client, p99 | {latency_p99_ms:ms} | < {target[p99_s]} s | p99
""",
    also="""
clients connected / failed / dropped in the window
    | {clients_connected:,} / {clients_failed:,} / {clients_closed:,}
time to connect and get the first frame | {connect_seconds:.1f} s
fleet frames per client per second | {frames_per_client_per_s:.2f}
frame size / host entries per frame | {frame_kib:,.1f} KiB / {hosts_per_frame:.0f}
Redis CPU with the client processes' own subscribers / without clients / without the fleet
    | {redis_cpu_pct:.1f}% / {redis_cpu_pct_without_clients:.1f}% / {redis_cpu_pct_without_fleet:.1f}%
CPU of the agent / client processes | {agent_cpu_pct:.0f}% / {clients_cpu_pct:.0f}%
""",
    summarize=summarize,
    sections=sections,
)
