"""Which tier answers a span and at what step, and the series made from its records. Pure.

A step coarser than the tier's is computed from that tier (`rollup`), whether or not it is a
multiple of the tier's step (each record counts in the step its start falls in); the fleet series
takes each selected host's mean `total` per step and gives their mean, p95 (nearest rank, as the
dashboard), max and how many hosts had a value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetdeck_common.history import Record, Tier, rollup, span

MAX_POINTS = 20_000  # steps in one answer


@dataclass(frozen=True)
class Plan:
    """Read slots [first, end) of `tiers[tier]`; answer one point per `step` seconds."""

    tier: int
    step: int
    first: int
    end: int


def plan(tiers: Sequence[Tier], since: float, until: float, step: int | None, now: float) -> Plan:
    """The tier and step for since..until; ValueError with a sentence naming the parameter."""
    if until <= since:
        raise ValueError("until must be later than since")
    back = now - since
    covering = next((i for i, t in enumerate(tiers) if back <= t.retention), len(tiers) - 1)
    if step is None:
        index, step = covering, tiers[covering].step
    elif step < tiers[0].step:
        raise ValueError(f"step must be at least {tiers[0].step} seconds (the finest tier's step)")
    elif step >= tiers[covering].step:
        # Computed from the tier that holds the span, a multiple of its step or not (step=90
        # over 7 days: from the minutes, each counted in the step its start falls in).
        index = covering
    else:
        # Finer than the tier holding `since` keeps: from the coarsest tier fine enough, over
        # the part of the span it still holds.
        index = max(i for i, t in enumerate(tiers) if t.step <= step)
    if (until - since) / step > MAX_POINTS:
        raise ValueError(
            f"step {step} gives more than {MAX_POINTS:,} points from since to until; use a larger step"
        )
    first, end = span(tiers[index], since, until, now)
    return Plan(index, step, first, end)


def _round(record: Record) -> dict[str, Any]:
    def one(value: float | None, digits: int) -> float | None:
        return None if value is None else round(value, digits)

    return {
        "total": round(record.total, 1),
        "total_max": round(record.total_max, 1),
        "mem": one(record.mem, 1),
        "load1": one(record.load1, 2),
        "disk": one(record.disk, 1),
        "net_rx": one(record.net_rx, 0),
        "net_tx": one(record.net_tx, 0),
    }


def host_series(records: Sequence[tuple[int, Record]], tier_step: int, step: int) -> list[dict[str, Any]]:
    """One sample per step that has records, oldest first: the mean of each value, the highest total."""
    if step == tier_step:
        return [{"ts": ts, **_round(record)} for ts, record in records]
    buckets: dict[int, list[Record | None]] = {}
    for ts, record in records:
        buckets.setdefault(ts // step * step, []).append(record)
    samples = []
    for ts, group in buckets.items():
        merged = rollup(group)
        if merged is not None:
            samples.append({"ts": ts, **_round(merged)})
    return samples


def _per_step(totals: Sequence[float | None], offset: int, per: int, count: int) -> list[float | None]:
    """One host's mean total in each of `count` steps of `per` slots (the first `offset` slots short)."""
    means: list[float | None] = [None] * count
    for index in range(count):
        low = max(0, index * per - offset)
        values = [v for v in totals[low : (index + 1) * per - offset] if v is not None]
        means[index] = sum(values) / len(values) if values else None
    return means


def _bucketed(
    totals: Sequence[float | None], lead: int, tier_step: int, step: int, count: int
) -> list[float | None]:
    """One host's mean total in each of `count` steps of `step` seconds, its slots `tier_step`
    apart from `lead` seconds after the first step's start (a step not a multiple of the tier's:
    each slot counts in the step its start falls in)."""
    sums, counts = [0.0] * count, [0] * count
    for index, value in enumerate(totals):
        if value is not None:
            bucket = (lead + index * tier_step) // step
            sums[bucket] += value
            counts[bucket] += 1
    return [total / n if n else None for total, n in zip(sums, counts, strict=True)]


def fleet_series(
    totals: Mapping[str, Sequence[float | None]], first: int, tier_step: int, step: int
) -> list[dict[str, Any]]:
    """mean, p95, max and online per step over the hosts' totals (each from slot `first` on)."""
    columns: list[Sequence[float | None]] = list(totals.values())
    start = first // step * step
    slots = max((len(c) for c in columns), default=0)
    if step % tier_step:
        count = (first - start + slots * tier_step - 1) // step + 1 if slots else 0
        columns = [_bucketed(c, first - start, tier_step, step, count) for c in columns]
    elif step != tier_step:
        per, offset = step // tier_step, (first - start) // tier_step
        count = (offset + slots + per - 1) // per
        columns = [_per_step(c, offset, per, count) for c in columns]
    samples = []
    for index, column in enumerate(zip(*columns, strict=False)):
        values = sorted(v for v in column if v is not None)
        if not values:
            continue
        ts = start + index * step
        rank = min(len(values) - 1, max(0, math.ceil(0.95 * len(values)) - 1))
        samples.append(
            {
                "ts": ts,
                "mean": round(sum(values) / len(values), 1),
                "p95": round(values[rank], 1),
                "max": round(values[-1], 1),
                "online": len(values),
            }
        )
    return samples
