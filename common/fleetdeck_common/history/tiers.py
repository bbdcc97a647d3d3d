"""History tiers: the step and retention of each, parsed from `1s:1h,1m:7d,1h:90d`, and their chunks. Pure.

A tier is stored in chunks that fill one Redis allocation: `RECORDS_PER_CHUNK` (408) records of
10 bytes in 4 KiB, or 438 of the finest tier's 14 bytes in 6 KiB (it is `wide`: its records keep
load5 and load15 too; a 6 KiB chunk keeps its chunks as long as the others, so an agent reserves
one as seldom). A chunk covers a fixed window of time whose start names it,
so a record's time is its slot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .codec import RECORD_SIZE, WIDE_RECORD_SIZE

DEFAULT_TIERS = "1s:1h,1m:7d,1h:90d"
RECORDS_PER_CHUNK = 408
CHUNK_BYTES = RECORDS_PER_CHUNK * RECORD_SIZE  # 4,080: one 4 KiB allocation, header included
WIDE_RECORDS_PER_CHUNK = 438
WIDE_CHUNK_BYTES = WIDE_RECORDS_PER_CHUNK * WIDE_RECORD_SIZE  # 6,132: one 6 KiB allocation
MAX_RECORDS_PER_TIER = 1_000_000  # a bound on memory per host, whatever the setting says
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d{1,7})([smhdw])")
TIERS_FORMS = "STEP:RETENTION pairs separated by commas, finest first, like 1s:1h,1m:7d,1h:90d"


@dataclass(frozen=True)
class Tier:
    """Every `step` seconds one record, kept `retention` seconds."""

    step: int
    retention: int
    wide: bool = False  # records of WIDE_RECORD_SIZE (the finest tier's, what `history` frames read)

    @property
    def record_size(self) -> int:
        return WIDE_RECORD_SIZE if self.wide else RECORD_SIZE

    @property
    def per_chunk(self) -> int:
        """Slots in one chunk."""
        return WIDE_RECORDS_PER_CHUNK if self.wide else RECORDS_PER_CHUNK

    @property
    def chunk_bytes(self) -> int:
        return self.per_chunk * self.record_size

    @property
    def window(self) -> int:
        """Seconds one chunk covers."""
        return self.step * self.per_chunk

    @property
    def records(self) -> int:
        return self.retention // self.step

    def chunk_start(self, ts: float) -> int:
        return int(ts // self.window) * self.window

    def slot_start(self, ts: float) -> int:
        """The start of the step `ts` falls in."""
        return int(ts // self.step) * self.step

    def expires_at(self, chunk_start: int) -> int:
        """When the newest record of the chunk starting at `chunk_start` is older than the retention."""
        return chunk_start + self.window + self.retention

    def label(self) -> str:
        return f"{_duration(self.step)}:{_duration(self.retention)}"


def _duration(seconds: int) -> str:
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        if seconds % size == 0 and unit != "w":
            return f"{seconds // size}{unit}"
    return f"{seconds}s"  # pragma: no cover - 1 divides everything


def _seconds(text: str, what: str) -> int:
    match = _DURATION.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{what} {text.strip()!r} is not a duration like 1s, 5m, 1h, 7d or 2w")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_tiers(text: str) -> tuple[Tier, ...]:
    """The tiers in `text`; ValueError with a sentence saying what is wrong."""
    tiers: list[Tier] = []
    for part in text.split(","):
        step_text, colon, retention_text = part.partition(":")
        if not colon:
            raise ValueError(f"must be {TIERS_FORMS}; {part.strip()!r} has no ':'")
        tier = Tier(_seconds(step_text, "step"), _seconds(retention_text, "retention"))
        if tier.retention < tier.step:
            raise ValueError(f"tier {part.strip()}: the retention must be at least the step")
        if tier.records > MAX_RECORDS_PER_TIER:
            raise ValueError(f"tier {part.strip()}: more than {MAX_RECORDS_PER_TIER:,} records per host")
        if tiers and tier.step <= tiers[-1].step:
            raise ValueError(f"tier {part.strip()}: steps must grow from one tier to the next")
        if tiers and tier.step % tiers[-1].step:
            raise ValueError(f"tier {part.strip()}: its step must be a multiple of the previous step")
        tiers.append(tier)
    # The finest tier keeps load5 and load15 as well: it is what the v1 `history` frame is made of.
    return (Tier(tiers[0].step, tiers[0].retention, wide=True), *tiers[1:])


def tiers_text(tiers: tuple[Tier, ...]) -> str:
    return ",".join(t.label() for t in tiers)
