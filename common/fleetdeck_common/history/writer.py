"""What an agent keeps of its hosts' history between writes, and which byte ranges to write. Pure.

Finest-tier records are held and written every `flush_every` seconds per host (each host at its
own phase, so a simulated fleet does not write all at once); coarser records are rolled up here
from what the agent saw and go out with the next write. A write is one contiguous run of slots
in one chunk; a chunk is reserved (allocated at full size, given its expiry) on first use by this
process and again every `RESERVE_EVERY` seconds, so a chunk Redis lost is given its expiry again.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from .codec import RECORD_SIZE, Record, encode
from .rollup import Rollups
from .tiers import Tier

FLUSH_EVERY = 5  # seconds of finest-tier records an agent holds per host
RESERVE_EVERY = 300.0


@dataclass(frozen=True)
class Run:
    """Bytes to write into one chunk of one host's tier, at `offset`; `reserve`: allocate it first."""

    host: str
    tier: Tier
    chunk: int  # the chunk's start (unix seconds)
    offset: int
    data: bytes
    reserve: bool


@dataclass
class _Host:
    rollups: Rollups
    phase: int
    pending: dict[tuple[int, int], bytes] = field(default_factory=dict)  # (tier, slot ts) -> record
    written: bool = False  # a host's first record goes out at once: its history is never empty


def runs_of(host: str, tier: Tier, slots: Iterable[tuple[int, bytes]]) -> list[tuple[int, int, bytes]]:
    """Contiguous runs of (slot ts, record) within one chunk each: (chunk start, offset, bytes)."""
    runs: list[tuple[int, int, bytes]] = []
    chunk, first, last, parts = -1, -1, -1, bytearray()
    for ts, record in sorted(slots):
        start = tier.chunk_start(ts)
        if start == chunk and ts == last + tier.step:
            parts += record
        else:
            if parts:
                runs.append((chunk, (first - chunk) // tier.step * RECORD_SIZE, bytes(parts)))
            chunk, first, parts = start, ts, bytearray(record)
        last = ts
    if parts:
        runs.append((chunk, (first - chunk) // tier.step * RECORD_SIZE, bytes(parts)))
    return runs


class HistoryWriter:
    """The tiers of every host one agent publishes, between writes."""

    def __init__(self, tiers: tuple[Tier, ...], flush_every: int = FLUSH_EVERY) -> None:
        self.tiers = tiers
        self._flush_every = flush_every
        self._hosts: dict[str, _Host] = {}
        self._reserved: dict[tuple[str, int, int], float] = {}  # (host, tier, chunk) -> when

    def knows(self, host: str) -> bool:
        return host in self._hosts

    def resume(self, host: str, seeds: Iterable[tuple[int, int, list[Record | None]]]) -> None:
        """Start following `host`, its open steps resumed from stored records: (tier, start, records)."""
        rollups = Rollups(self.tiers)
        for tier, start, records in seeds:
            rollups.seed(tier, start, records)
        self._hosts[host] = _Host(rollups, zlib.crc32(host.encode()) % self._flush_every)

    def add(self, host: str, ts: float, record: Record) -> bool:
        """A new sample's record; True when the host's held records are due to be written."""
        state = self._hosts.get(host)
        if state is None:
            self.resume(host, ())
            state = self._hosts[host]
        slot = self.tiers[0].slot_start(ts)
        state.pending[(0, slot)] = encode(record)
        for done in state.rollups.add(ts, record):
            state.pending[(done.tier, done.ts)] = encode(done.record)
        return not state.written or (slot // self.tiers[0].step + state.phase) % self._flush_every == 0

    def take(self, host: str, now: float) -> list[Run]:
        """The host's held records as runs to write, in tier order; held no longer."""
        state = self._hosts.get(host)
        if state is None or not state.pending:
            return []
        pending, state.pending, state.written = state.pending, {}, True
        runs: list[Run] = []
        for index, tier in enumerate(self.tiers):
            slots = [(ts, rec) for (t, ts), rec in pending.items() if t == index]
            for chunk, offset, data in runs_of(host, tier, slots):
                runs.append(Run(host, tier, chunk, offset, data, self._reserve(host, index, chunk, now)))
        return runs

    def finish(self, host: str, now: float) -> list[Run]:
        """Everything held for `host`, its partial steps included (the agent stops)."""
        state = self._hosts.get(host)
        if state is None:
            return []
        for done in state.rollups.close_all():
            state.pending[(done.tier, done.ts)] = encode(done.record)
        return self.take(host, now)

    def hosts(self) -> list[str]:
        return list(self._hosts)

    def _reserve(self, host: str, tier: int, chunk: int, now: float) -> bool:
        key = (host, tier, chunk)
        last = self._reserved.get(key)
        if last is not None and now - last < RESERVE_EVERY:
            return False
        if last is None and len(self._reserved) > 4 * len(self._hosts) * len(self.tiers):
            self._forget_old_reservations(now)
        self._reserved[key] = now
        return True

    def _forget_old_reservations(self, now: float) -> None:
        for key in [k for k, when in self._reserved.items() if now - when >= RESERVE_EVERY]:
            del self._reserved[key]
