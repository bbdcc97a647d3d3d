"""Rollup arithmetic: a step's record is the mean of each value over the records in it and the
highest `total_max`; a value absent from every record stays absent. Pure.

`Rollups` follows one host's finest-tier records as they come and hands back each coarser
record once its step is over (a record falls outside it, whichever way the clock moved).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .codec import Record
from .tiers import Tier

_MEANS = ("total", "mem", "load1", "disk", "net_rx", "net_tx")


@dataclass
class Accumulator:
    """Sums and counts of each value over one step."""

    sums: list[float] = field(default_factory=lambda: [0.0] * len(_MEANS))
    counts: list[int] = field(default_factory=lambda: [0] * len(_MEANS))
    highest: float = 0.0

    def add(self, record: Record) -> None:
        # Once per sample per coarser tier: written out rather than looped (the agent's hot path).
        sums, counts = self.sums, self.counts
        total, peak, mem, load1, disk, rx, tx = record[:7]
        sums[0] += total
        counts[0] += 1
        if mem is not None:
            sums[1] += mem
            counts[1] += 1
        if load1 is not None:
            sums[2] += load1
            counts[2] += 1
        if disk is not None:
            sums[3] += disk
            counts[3] += 1
        if rx is not None:
            sums[4] += rx
            counts[4] += 1
        if tx is not None:
            sums[5] += tx
            counts[5] += 1
        self.highest = max(self.highest, peak)

    def result(self) -> Record | None:
        """The step's record; None when nothing was added."""
        if not self.counts[0]:
            return None
        total, mem, load1, disk, rx, tx = (
            s / n if n else None for s, n in zip(self.sums, self.counts, strict=True)
        )
        assert total is not None
        return Record(total, max(self.highest, total), mem, load1, disk, rx, tx)


def rollup(records: Iterable[Record | None]) -> Record | None:
    """One record for all of `records` (gaps, None, are left out); None if there are none."""
    acc = Accumulator()
    for record in records:
        if record is not None:
            acc.add(record)
    return acc.result()


@dataclass(frozen=True)
class Finished:
    """A coarser tier's record whose step is over: tier index, the step's start, the record."""

    tier: int
    ts: int
    record: Record


@dataclass
class _Open:
    start: int
    acc: Accumulator


class Rollups:
    """One host's open steps in every tier above the first, fed the first tier's records."""

    def __init__(self, tiers: tuple[Tier, ...]) -> None:
        self._tiers = tiers
        self._open: dict[int, _Open] = {}

    def open_step(self, tier: int) -> int | None:
        """The start of the step tier `tier` is gathering, if any."""
        current = self._open.get(tier)
        return current.start if current else None

    def seed(self, tier: int, start: int, records: Iterable[Record | None]) -> None:
        """Resume the step starting at `start` in tier `tier` from records of the tier below it
        (what was stored before the agent restarted)."""
        acc = Accumulator()
        for record in records:
            if record is not None:
                acc.add(record)
        self._open[tier] = _Open(start, acc)

    def add(self, ts: float, record: Record) -> list[Finished]:
        """A record of the finest tier at `ts`; the coarser records this finishes."""
        return self._feed(1, ts, record)

    def _feed(self, tier: int, ts: float, record: Record) -> list[Finished]:
        done = self._advance(tier, ts)
        if tier < len(self._tiers):
            current = self._open.get(tier)
            if current is None:
                current = self._open[tier] = _Open(self._tiers[tier].slot_start(ts), Accumulator())
            current.acc.add(record)
        return done

    def _advance(self, tier: int, ts: float) -> list[Finished]:
        """Time has reached `ts`: finish the open step of `tier` (and of coarser tiers) if `ts`
        falls outside it, so an hour is written as soon as its last minute is."""
        current = self._open.get(tier)
        if current is None or current.start == self._tiers[tier].slot_start(ts):
            return []
        del self._open[tier]
        done = self._close(tier, current)
        return done + self._advance(tier + 1, ts)

    def _close(self, tier: int, step: _Open) -> list[Finished]:
        record = step.acc.result()
        if record is None:
            return []
        return [Finished(tier, step.start, record), *self._feed(tier + 1, step.start, record)]

    def close_all(self) -> list[Finished]:
        """Finish every open step now (the agent stops): partial steps are written as they are."""
        done: list[Finished] = []
        for tier in range(1, len(self._tiers)):
            current = self._open.pop(tier, None)
            if current is not None:
                done.extend(self._close(tier, current))
        return done
