"""What the long-history benchmark aims at, and its figures rendered."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from ..harness import goals, table
from ..measure import Context

NAME = "history"
TITLE = "Long history: storage, ingest and queries"
BYTES_TARGET = 192 * 1024  # per host, full default retention
COMMANDS_TARGET = 2.0  # Redis commands per sample, PUBLISH and heartbeat included
UPKEEP_TARGET = 25.0  # % of one core for the tiers
HOST_TARGET_MS = 150.0
FLEET_TARGET_MS = 1000.0


def summarize(raw: dict[str, Any], args: argparse.Namespace, records: int) -> dict[str, Any]:
    """The figures; storage and queries from `raw["storage_run"]` (an earlier run) when given."""
    earlier = raw.get("storage_run")
    stored, opts = (earlier["raw"], earlier["args"]) if earlier else (raw, vars(args))
    hosts = int(opts["hosts"])
    per_host = stored["history_bytes"] / hosts
    return {
        "bytes_per_host": per_host,
        "used_per_host": stored["used_memory_delta"] / hosts,
        "records_per_host": records,
        "json_per_host": stored["json_per_host"],
        "json_ratio": stored["json_per_host"] / per_host,
        "json_hosts": int(opts["json_hosts"]),
        "hosts": hosts,
        "repeats": int(opts["repeats"]),
        "storage_from": earlier["context"] if earlier else None,
        "ingest": raw["ingest"],
        "upkeep": raw["upkeep"],
        "window_s": args.window,
        "warmup_s": args.warmup,
        "queries": {
            "host_ms": statistics.median(stored["host_ms"]),
            "host_max_ms": max(stored["host_ms"]),
            "fleet_ms": statistics.median(stored["fleet_ms"]),
            "host_points": stored["host_points"],
            "fleet_points": stored["fleet_points"],
            "fleet_hosts": stored["fleet_hosts"],
        },
    }


def bytes_sentence(s: dict[str, Any]) -> str:
    """The bytes-per-host figure, as docs/history.md quotes it."""
    return (
        f"**{s['bytes_per_host'] / 1024:.1f} KiB per host** for the full default retention "
        f"({s['records_per_host']:,} records, {s['bytes_per_host'] / s['records_per_host']:.1f} bytes each "
        f"all-in; Redis `used_memory` grew {s['used_per_host'] / 1024:.1f} KiB per host); the same records "
        f"as JSON `cpu` frames in Redis lists would take {s['json_per_host'] / 1024 / 1024:.1f} MiB, "
        f"{s['json_ratio']:.0f} times as much. Target ≤ {BYTES_TARGET // 1024} KiB."
    )


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    counts = list(s["ingest"])
    first = s["ingest"][counts[0]]
    new = first["new"]
    kept = s["upkeep"]["spacings"]["1"]
    q = s["queries"]
    figures = {
        "kib": s["bytes_per_host"] / 1024,
        "commands": new["commands_per_sample"],
        "upkeep": kept["tiers"]["core_pct_at_1hz"],
        "host_ms": q["host_ms"],
        "fleet_ms": q["fleet_ms"],
    }
    limits = {"kib": BYTES_TARGET / 1024, "commands": COMMANDS_TARGET, "upkeep": UPKEEP_TARGET}
    limits |= {"host_ms": HOST_TARGET_MS, "fleet_ms": FLEET_TARGET_MS}
    head = goals(
        [
            ("Redis memory per host, 90 days", "{kib:.1f} KiB", "≤ 192 KiB", "kib"),
            (f"Redis commands per sample ({int(counts[0]):,} hosts)", "{commands:.2f}", "≤ 2", "commands"),
            (
                f"CPU keeping the tiers, {s['upkeep']['hosts']:,} hosts at 1 Hz (measured alone)",
                "{upkeep:.0f}% of a core",
                "≤ 25%",
                "upkeep",
            ),
            ("one host, 7 days at 1 min", "{host_ms:ms}", "≤ 150 ms", "host_ms"),
            (
                f"fleet series, 24 h at 1 min, {s['queries']['fleet_hosts']:,} hosts",
                "{fleet_ms:ms}",
                "≤ 1 s",
                "fleet_ms",
            ),
        ],
        {**figures, "met": {key: figures[key] <= limit for key, limit in limits.items()}},
    )
    ingest = table(
        (
            "hosts",
            "path",
            "samples/s",
            "Redis commands/s",
            "per sample",
            "agent CPU (% of a core)",
            "commands",
        ),
        [
            (
                f"{int(count):,}",
                name,
                f"{r['samples_per_s']:,.0f}",
                f"{r['commands_per_s']:,.0f}",
                f"{r['commands_per_sample']:.2f}",
                f"{r['cpu_pct']:.0f}",
                ", ".join(f"{c} {n:.2f}" for c, n in r["per_sample"].items()),
            )
            for count in counts
            for name, r in (
                ("tiers (this version)", s["ingest"][count]["new"]),
                ("one JSON list (before)", s["ingest"][count]["old"]),
            )
        ],
    )
    up = s["upkeep"]
    upkeep = upkeep_table(up)
    earlier = s["storage_from"]
    storage_run = (
        f"From an earlier full run ({earlier['date']}, code {earlier['code']}; load average before "
        f"{earlier['load_before'][0]:.2f}), kept here because the fill takes ~40 minutes; this run "
        "(`--ingest-only`) measured the ingest alone. "
        if earlier
        else ""
    )
    return f"""{head}

Storage: {storage_run}{s["hosts"]:,} hosts, 90 days of 1 Hz samples written by the agent's own history code
(`HistoryWriter`, `HistoryStore`) on a simulated clock: one sample an hour until 7 days before
the end, one a minute until the last hour, then every second (each chunk is allocated whole, so
the keys and bytes are those of a full fill). {bytes_sentence(s)} JSON measured on
{s["json_hosts"]} hosts' worth of records.

Ingest (this run): `fleetdeck-agent`'s loop with {" and ".join(f"{int(c):,}" for c in counts)} simulated hosts
at 1 Hz for {s["window_s"]:.0f} s after a {s["warmup_s"]:.0f} s warm-up, each path in turn against its
own Redis (`INFO commandstats`, CPU from /proc); "before" is today's write path reproduced (RPUSH +
LTRIM of the JSON sample into a 900-long list, HSET of the heartbeat, PUBLISH), "this version"
holds each host's seconds for 5 of its samples (at most 60 s), writes finished minutes and hours
with the first write 30 samples after the last (at most 5 min), rolls them up in the agent and
refreshes unchanged heartbeats every 10th sample (at most 2 min): counted in samples, so an agent
that reaches each host less than once a second (samples/s under the host count) still writes as
little per sample.

{ingest}

Upkeep (this run), the CPU of keeping the tiers measured alone: the agent's own history code
(`record_of`, `HistoryWriter.add`/`take`, `HistoryStore.writes` and packing the Redis commands,
nothing sent) for {up["hosts"]:,} simulated hosts, {up["rounds"]} samples each on a simulated clock
(the first {up["warmup"]} not counted), process CPU time around that code only; making the samples
is the sampler's cost and not counted. Against it, in the same run, today's path's share (the
JSON sample packed as RPUSH + LTRIM). "every" is the time between a host's samples: 1 s when
the agent keeps up, longer as starved as in the ingest above. "minute written" is how long after
a minute ends its rollup is in a write (median, max).

{upkeep}

Queries through the gateway's HTTP API on that Redis ({storage_run and "the earlier run; "}median of
{s["repeats"]} each; the slowest in the raw results): one host 7 days at 1 min ({q["host_points"]:,} points)
{q["host_ms"]:.0f} ms; the fleet series 24 h at 1 min over {q["fleet_hosts"]:,} hosts
({q["fleet_points"]:,} points) {q["fleet_ms"]:.0f} ms.

Machine (this run): {ctx.sentence()}; the rest of the machine used {raw["others_cpu_pct"]:.0f}% of a
core during the ingest windows.
"""


def upkeep_table(upkeep: dict[str, Any]) -> str:
    """The upkeep figures: per sample CPU of both paths at each spacing."""
    hosts, rows = upkeep["hosts"], []
    for spacing, paths in upkeep["spacings"].items():
        for name, r in (("tiers (this version)", paths["tiers"]), ("one JSON list (before)", paths["list"])):
            lag = (
                f"{r['minute_lag_median_s']:.0f} s, {r['minute_lag_max_s']:.0f} s"
                if r["minute_lag_median_s"] is not None
                else "none made"
            )
            rows.append(
                (
                    f"{spacing} s",
                    name,
                    f"{r['cpu_us_per_sample']:.1f}",
                    f"{r['core_pct_at_1hz']:.0f}%",
                    f"{r['bytes_per_sample']:.0f}",
                    lag,
                )
            )
    header = (
        "every",
        "path",
        "CPU µs per sample",
        f"% of a core at {hosts:,} samples/s",
        "bytes to Redis per sample",
        "minute written",
    )
    return table(header, rows)
