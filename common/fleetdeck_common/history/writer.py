"""What an agent keeps of its hosts' history between writes, and which byte ranges to write. Pure.

Finest-tier records are held and written every `flush_every`-th sample of a host (each host at
its own phase, so a simulated fleet does not write all at once), or sooner once the oldest held
one is `FLUSH_WITHIN` seconds old; counting samples rather than seconds keeps a starved agent,
which samples each host less often than its interval, at the same writes per sample. Coarser
records are rolled up here from what the agent saw and go out with the next write at least
`coarse_every` samples after the last that had some (at once at 1 Hz; a starved agent's minutes
go together, not one write each), or once one is `COARSE_WITHIN` seconds old. A write is one
run of slots in one chunk, empty slots between held records written as empty (so records held
seconds apart still take one write); a chunk is reserved (allocated at full size, given its
expiry) on first use by this process and again after `reserve_every` samples of its host (300 s
at 1 Hz), so a chunk Redis lost is given its expiry again.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from .codec import Record, encode
from .rollup import Rollups
from .tiers import Tier

FLUSH_EVERY = 5  # seconds of finest-tier records an agent holds per host at its interval
FLUSH_WITHIN = 60.0  # but never a record older than this; well above a starved agent's spacing
COARSE_EVERY = 30  # samples between writes of coarser records: each minute's at once at 1 Hz
COARSE_WITHIN = 300.0  # but none held longer than this
RESERVE_EVERY = 300  # samples of a host between reservations of one chunk (seconds at 1 Hz)


def samples_per(seconds: float, interval: float) -> int:
    """How many samples `interval` apart make `seconds` (at least one)."""
    return max(1, round(seconds / interval))


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
    samples: int = 0
    held: int = 0  # samples since the last write (from the host's phase after the first)
    oldest: float | None = None  # the time of the oldest finest-tier record held
    coarse_held: int = 0  # samples since coarser records were last written
    coarse_oldest: float | None = None  # when the oldest coarser record held was rolled up
    last: float = 0.0  # the newest sample's time
    high: dict[int, int] = field(default_factory=dict)  # tier -> the newest slot written


def runs_of(
    tier: Tier, slots: Iterable[tuple[int, bytes]], fill_after: float = float("inf")
) -> list[tuple[int, int, bytes]]:
    """Runs of (slot ts, record) within one chunk each: (chunk start, offset, bytes). Slots after
    `fill_after` that hold nothing are written empty when that joins two runs into one."""
    runs: list[tuple[int, int, bytes]] = []
    empty, size = bytes(tier.record_size), tier.record_size
    chunk, first, last, parts = -1, -1, -1, bytearray()
    for ts, record in sorted(slots):
        start = tier.chunk_start(ts)
        if start == chunk and (ts == last + tier.step or last >= fill_after):
            parts += empty * ((ts - last) // tier.step - 1) + record
        else:
            if parts:
                runs.append((chunk, (first - chunk) // tier.step * size, bytes(parts)))
            chunk, first, parts = start, ts, bytearray(record)
        last = ts
    if parts:
        runs.append((chunk, (first - chunk) // tier.step * size, bytes(parts)))
    return runs


class HistoryWriter:
    """The tiers of every host one agent publishes, between writes."""

    def __init__(
        self,
        tiers: tuple[Tier, ...],
        flush_every: int = FLUSH_EVERY,
        flush_within: float = FLUSH_WITHIN,
        reserve_every: int = RESERVE_EVERY,
        coarse_every: int = COARSE_EVERY,
    ) -> None:
        self.tiers = tiers
        self._flush_every = flush_every
        self._flush_within = flush_within
        self._coarse_every = coarse_every
        self._reserve_every = reserve_every
        self._hosts: dict[str, _Host] = {}
        self._reserved: dict[tuple[str, int, int], int] = {}  # (host, tier, chunk) -> host's samples then
        self._sweep_at = 0  # how many reservations before old ones are next looked for
        self.sweeps = 0  # how often they were looked for

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
        finest = self.tiers[0]
        state.pending[(0, int(ts // finest.step) * finest.step)] = encode(record, finest.wide)
        for done in state.rollups.add(ts, record):
            state.pending[(done.tier, done.ts)] = encode(done.record, self.tiers[done.tier].wide)
            state.coarse_oldest = ts if state.coarse_oldest is None else state.coarse_oldest
        state.held += 1
        state.samples += 1
        state.coarse_held += 1
        state.last = ts
        state.oldest = ts if state.oldest is None else min(state.oldest, ts)
        return not state.written or state.held >= self._flush_every or ts - state.oldest >= self._flush_within

    def take(self, host: str, now: float, everything: bool = False) -> list[Run]:
        """The host's held records that are due as runs to write, in tier order (all of them with
        `everything`); held no longer."""
        state = self._hosts.get(host)
        if state is None or not state.pending:
            return []
        # After the first write the count starts at the host's phase, spreading a fleet's writes.
        state.held = 0 if state.written else state.phase
        pending, state.pending, state.written, state.oldest = state.pending, {}, True, None
        coarse = state.coarse_held >= self._coarse_every or (
            state.coarse_oldest is not None and state.last - state.coarse_oldest >= COARSE_WITHIN
        )
        if coarse or everything:
            state.coarse_held, state.coarse_oldest = 0, None
        else:
            state.pending = {key: rec for key, rec in pending.items() if key[0] > 0}
        runs: list[Run] = []
        for index, tier in enumerate(self.tiers if coarse or everything else self.tiers[:1]):
            slots = [(ts, rec) for (t, ts), rec in pending.items() if t == index]
            if not slots:
                continue
            # Empty slots are written only after the newest one written, never over a record.
            fill_after = state.high.get(index, -1)
            state.high[index] = max(fill_after, *(ts for ts, _ in slots))
            for chunk, offset, data in runs_of(tier, slots, fill_after):
                runs.append(Run(host, tier, chunk, offset, data, self._reserve(host, index, chunk)))
        return runs

    def finish(self, host: str, now: float) -> list[Run]:
        """Everything held for `host`, its partial steps included (the agent stops)."""
        state = self._hosts.get(host)
        if state is None:
            return []
        for done in state.rollups.close_all():
            state.pending[(done.tier, done.ts)] = encode(done.record, self.tiers[done.tier].wide)
        return self.take(host, now, everything=True)

    def hosts(self) -> list[str]:
        return list(self._hosts)

    def _reserve(self, host: str, tier: int, chunk: int) -> bool:
        key, samples = (host, tier, chunk), self._hosts[host].samples
        last = self._reserved.get(key)
        if last is not None and samples - last < self._reserve_every:
            return False
        if last is None and len(self._reserved) > max(self._sweep_at, 4 * len(self._hosts) * len(self.tiers)):
            self._forget_old_reservations()
        self._reserved[key] = samples
        return True

    def _forget_old_reservations(self) -> None:
        self.sweeps += 1
        for key in [k for k, at in self._reserved.items() if self._due_again(k[0], at)]:
            del self._reserved[key]
        # The next sweep waits for as many new reservations as are left: linear, not quadratic,
        # when many chunks are reserved at one moment (none is old enough to go then).
        self._sweep_at = 2 * len(self._reserved)

    def _due_again(self, host: str, at: int) -> bool:
        state = self._hosts.get(host)
        return state is None or state.samples - at >= self._reserve_every
