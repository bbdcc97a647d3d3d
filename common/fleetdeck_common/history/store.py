"""Each host's history tiers in the broker, as chunks of packed records. Owns their keys.

`history:{host}:{step}:{chunk start}` holds `Tier.per_chunk` slots of one tier, the slot's
time implied by its place (`{step}w` for the finest tier's wide records, so they are never read
as the 10-byte records older agents wrote there). A chunk is reserved at full size with its
expiry (once its newest slot is older than the tier keeps), so nothing deletes history: expiry
does, on Redis and on the memory broker alike, and a host gone for longer than the longest tier
leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .. import topics
from ..acl import grant
from ..broker import Batches, ByteRange, ByteStrings, Reserve, SetRange, Write
from .codec import Record, decode_all
from .tiers import Tier
from .writer import Run

# Agents write their hosts' tiers (chunks reserved, then slots overwritten: `writes`) and read them
# back after a restart; gateways read them.
ACCESS = (
    grant(
        topics.key("history", "*"),
        read=["gateway", "agent"],
        write=["agent"],
        batches={"agent": ["Reserve", "SetRange"]},
    ),
)


def chunk_key(host: str, tier: Tier, chunk: int) -> str:
    return topics.key("history", host, f"{tier.step}w" if tier.wide else str(tier.step), str(chunk))


class HistoryBackend(Batches, ByteStrings, Protocol):
    pass


@dataclass(frozen=True)
class Slots:
    """Consecutive slots of one tier from `start` (unix seconds), zero bytes where empty."""

    tier: Tier
    start: int
    data: bytes

    def records(self) -> list[tuple[int, Record]]:
        """The (time, record) of every slot that holds one, oldest first."""
        step = self.tier.step
        records = decode_all(self.data, self.tier.record_size)
        return [(self.start + i * step, r) for i, r in enumerate(records) if r is not None]


def span(tier: Tier, since: float, until: float, now: float) -> tuple[int, int]:
    """The slots [first, end) of `tier` that cover since..until and may still be stored at `now`."""
    oldest = tier.chunk_start(now - tier.retention)
    first = max(tier.slot_start(since), oldest)
    end = tier.slot_start(min(until, now)) + tier.step
    return first, max(first, end)


def _ranges(host: str, tier: Tier, first: int, end: int) -> list[ByteRange]:
    ranges = []
    chunk = tier.chunk_start(first)
    while chunk < end:
        low, high = max(first, chunk), min(end, chunk + tier.window)
        offset = (low - chunk) // tier.step * tier.record_size
        size = (high - low) // tier.step * tier.record_size
        ranges.append(ByteRange(chunk_key(host, tier, chunk), offset, offset + size))
        chunk += tier.window
    return ranges


# A chunk that expires within this long gets its reservation (and expiry) with each write.
RESERVE_WITH_EVERY_WRITE_SECONDS = 600.0


class HistoryStore:
    def __init__(self, broker: HistoryBackend, tiers: tuple[Tier, ...]) -> None:
        self._broker = broker
        self.tiers = tiers

    def writes(self, runs: Iterable[Run], now: float) -> list[Write]:
        """The broker writes that store `runs` (sent by the caller, with its other writes).

        A chunk already past its tier's retention is not written at all, and one that expires
        soon is reserved again with every write: a write landing after the chunk expired would
        make it anew without an expiry, kept for ever (old records written late: a backfill, a
        clock step, an agent resuming)."""
        writes: list[Write] = []
        for run in runs:
            ttl = run.tier.expires_at(run.chunk) - now
            if ttl <= 0:
                continue
            key = chunk_key(run.host, run.tier, run.chunk)
            if run.reserve or ttl < RESERVE_WITH_EVERY_WRITE_SECONDS:
                writes.append(Reserve(key, run.tier.chunk_bytes, max(ttl, 1.0)))
            writes.append(SetRange(key, run.offset, run.data))
        return writes

    async def write(self, runs: Iterable[Run], now: float) -> None:
        writes = self.writes(runs, now)
        if writes:
            await self._broker.write_batch(writes)

    async def read(self, hosts: Sequence[str], tier: Tier, first: int, end: int) -> dict[str, Slots]:
        """The slots [first, end) of `tier` for each host, in one round trip."""
        per_host = [_ranges(host, tier, first, end) for host in hosts]
        found = iter(await self._broker.read_ranges([r for ranges in per_host for r in ranges]))
        result = {}
        for host, ranges in zip(hosts, per_host, strict=True):
            parts = []
            for item in ranges:
                data = next(found)
                parts.append(data + bytes(item.end - item.start - len(data)))
            result[host] = Slots(tier, first, b"".join(parts))
        return result

    async def stored(self, host: str, now: float) -> bool:
        """Whether any of the host's history is still kept (its coarsest tier has a chunk)."""
        tier = self.tiers[-1]
        first = tier.chunk_start(now - tier.retention)
        chunks = range(first, tier.chunk_start(now) + 1, tier.window)
        probes = [ByteRange(chunk_key(host, tier, c), 0, 1) for c in chunks]
        return any(await self._broker.read_ranges(probes))

    async def resume(
        self, hosts: Sequence[str], now: float
    ) -> dict[str, list[tuple[int, int, list[Record | None]]]]:
        """For each host, the open step of every coarser tier as stored so far: what an agent
        that restarts mid-minute (or mid-hour) rolls up from. (tier index, step start, records)."""
        seeds: dict[str, list[tuple[int, int, list[Record | None]]]] = {h: [] for h in hosts}
        for index in range(1, len(self.tiers)):
            below = self.tiers[index - 1]
            start, end = self.tiers[index].slot_start(now), below.slot_start(now)
            if end <= start:
                continue
            for host, slots in (await self.read(hosts, below, start, end)).items():
                seeds[host].append((index, start, list(decode_all(slots.data, below.record_size))))
        return seeds
