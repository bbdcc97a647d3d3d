"""What the job-signing benchmark aims at; its rounds summed up and rendered."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from ..harness import filled, goals, reproduce, table
from ..measure import Context, spread

NAME = "job_signing"
TITLE = "Signing cost in exec wall time"
TARGETS = [
    ("exec wall time, signed / unsigned (medians)", "{ratio:.3f}", "≤ 1.010", "ratio"),
    (
        "sign + verify per job, share of an unsigned exec",
        "{per_job_us:.0f} µs = {micro_share:.4%}",
        "≤ 1%",
        "micro_share",
    ),
    ("per result", "0 (results are not signed yet)", "", ""),
]
LIMITS = {"ratio": 1.01, "micro_share": 0.01}  # each figure at most its limit
DEFAULTS = {"hosts": 1000, "rounds": 8, "command": "true", "calls": 2000}
SIDE = ["{wall_s[median]:.2f} s", "{wall_s[min]:.2f} s", "{wall_s[max]:.2f} s", "{duration_s:.2f} s"]
SIDE += ["{gateway_cpu_ms:.0f} ms", "{worker_cpu_ms:.0f} ms"]
ALSO = (
    (
        "signed / unsigned, round by round: median (min-max)",
        "{paired[median]:.3f} ({paired[min]:.3f}-{paired[max]:.3f})",
    ),
    (
        "round-to-round spread, (max - min) / median: signed / unsigned",
        "{sides[signed][round_spread]:.1%} / {sides[unsigned][round_spread]:.1%}",
    ),
    ("`signing.sign` of the queued job, per call", "{micro[sign_us]:.1f} µs"),
    ("`signing.verify` as the worker calls it (with `as_queued`), per call", "{micro[verify_us]:.1f} µs"),
    ("bytes signed (the job's canonical JSON)", "{micro[canonical_bytes]:,}"),
    ("CPU of the other processes on the machine", "{others_cpu_pct:.0f}% of a core"),
    ("rounds' window", "{window_s:.0f} s"),
)


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    rounds = raw["rounds"]
    per: dict[str, dict[str, Any]] = {}
    for variant, runs in rounds.items():
        walls = [r["wall_s"] for r in runs]
        per[variant] = {
            "wall_s": spread(walls),
            "duration_s": statistics.median(r["duration_ms"] for r in runs) / 1000,
            "gateway_cpu_ms": statistics.median(r["gateway_cpu_s"] for r in runs) * 1000,
            "worker_cpu_ms": statistics.median(r["worker_cpu_s"] for r in runs) * 1000,
            "round_spread": (max(walls) - min(walls)) / statistics.median(walls),
        }
    paired = [s["wall_s"] / u["wall_s"] for s, u in zip(rounds["signed"], rounds["unsigned"], strict=True)]
    unsigned_s = per["unsigned"]["wall_s"]["median"]
    per_job_us = raw["micro"]["sign_us"] + raw["micro"]["verify_us"]
    return {
        "sides": per,
        "ratio": per["signed"]["wall_s"]["median"] / unsigned_s,
        "paired": spread(paired),
        "per_job_us": per_job_us,
        "micro_share": per_job_us / 1e6 / unsigned_s,
        "others_cpu_pct": raw["others_cpu_pct"],
        "window_s": raw["window_s"],
    }


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    sides, figures = s["sides"], {**s, "micro": raw["micro"]}
    head = goals(TARGETS, {**figures, "met": {key: figures[key] <= limit for key, limit in LIMITS.items()}})
    rows = [[variant, *filled([SIDE], side)[0]] for variant, side in sides.items()]
    walls = table(("", "wall, median", "min", "max", "job's own duration", "gateway CPU", "worker CPU"), rows)
    also = table(("also measured", "value"), filled(ALSO, figures))
    noise = max(side["round_spread"] for side in sides.values())
    resolved = (
        "a difference this small is noise on this shared 2-core machine;"
        if abs(s["ratio"] - 1) < noise
        else "more than the rounds' spread;"
    )
    return (
        f"`{args.command}` on {args.hosts:,} loopback SSH hosts, exec'd through a gateway and a worker with "
        f"the job key and through another pair without it, {args.rounds} rounds on each side, alternating "
        f"which goes first (docs/benchmarks.md says how); {ctx.sentence()}.\n\n{head}\n\n{walls}\n\n"
        f"{also}\n\nSigning per job: one HMAC at the gateway, one verify and one Redis call at the worker. "
        f"In this run the medians differ by {s['ratio'] - 1:+.1%} while rounds of one side differed by up to "
        f"{noise:.0%} among themselves: {resolved} the timed sign and verify calls ({s['per_job_us']:.0f} µs "
        f"a job) bound what signing adds.\n\nReproduce: `{reproduce(NAME, args, DEFAULTS)}`"
    )
