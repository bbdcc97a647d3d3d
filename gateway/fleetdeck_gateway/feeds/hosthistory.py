"""Each host's `history` frame, read and encoded once and shared by every subscriber.

The stored part comes from the finest history tier (written by agents every few seconds), so it
holds no per-core values: those come only from the live samples this cache has kept since.

A reconnect storm (a gateway restart, a network blip) has every client ask for the history of
every host it follows at once. Here the first request for a host reads it from the store;
concurrent requests wait for that same read; later ones get the cached frame, kept current by
the live samples the relay passes in. Entries nobody asked for in `keep` seconds are dropped.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fleetdeck_common.messages import CpuSample, dump

# A host's latest `limit` stored samples, oldest first.
ReadRecent = Callable[[str, int], Awaitable[list[CpuSample]]]


@dataclass
class _Entry:
    samples: deque[str]
    used: float
    frame: str | None = None  # encoded on demand, until the next sample arrives
    loaded: asyncio.Event = field(default_factory=asyncio.Event)


class HistoryCache:
    def __init__(
        self,
        recent: ReadRecent,
        limit: int = 900,
        keep: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._recent = recent
        self._limit = limit
        self._keep = keep
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self.loads = 0  # reads from the store, for metrics and tests

    async def frame(self, host: str) -> str:
        """The host's `history` frame: its latest samples, oldest first."""
        entry = self._entries.get(host)
        if entry is None:
            entry = _Entry(deque(maxlen=self._limit), self._clock())
            self._entries[host] = entry
            try:
                await self._load(host, entry)
            except BaseException:
                del self._entries[host]
                entry.loaded.set()  # waiters see the entry gone and read for themselves
                raise
        else:
            await entry.loaded.wait()
            if self._entries.get(host) is not entry:
                return await self.frame(host)
        entry.used = self._clock()
        if entry.frame is None:
            samples = ",".join(entry.samples)
            entry.frame = f'{{"type":"history","host":{json.dumps(host)},"samples":[{samples}]}}'
        return entry.frame

    async def _load(self, host: str, entry: _Entry) -> None:
        self.loads += 1
        stored = await self._recent(host, self._limit)
        # Live samples that arrived during the read are already in the entry: keep them, and
        # only the stored samples older than the first of them.
        newer = list(entry.samples)
        oldest_live = _ts(newer[0]) if newer else float("inf")
        entry.samples.clear()
        entry.samples.extend(dump(sample) for sample in stored if sample.ts < oldest_live)
        entry.samples.extend(newer)
        entry.loaded.set()

    def observe(self, host: str, frame: str) -> None:
        """A live sample (already validated): cached histories stay current."""
        entry = self._entries.get(host)
        if entry is not None:
            entry.samples.append(frame)
            entry.frame = None

    def holding(self) -> bool:
        """Whether any host's history is cached (it needs the live samples to stay current)."""
        return bool(self._entries)

    def holds(self, host: str) -> bool:
        """Whether this host's history is cached."""
        return host in self._entries

    def forget(self, host: str) -> None:
        self._entries.pop(host, None)

    def sweep(self) -> None:
        """Drop entries nobody asked for lately (memory stays bounded by what is in use)."""
        stale = self._clock() - self._keep
        for host in [h for h, e in self._entries.items() if e.used < stale and e.loaded.is_set()]:
            del self._entries[host]


def _ts(frame: str) -> float:
    ts: float = json.loads(frame)["ts"]
    return ts
