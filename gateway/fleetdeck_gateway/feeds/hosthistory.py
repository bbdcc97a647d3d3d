"""Each host's `history` frame, read and encoded once and shared by every subscriber.

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
from collections.abc import Callable
from dataclasses import dataclass, field

from fleetdeck_common.hoststore import HostStore
from fleetdeck_common.messages import dump


@dataclass
class _Entry:
    samples: deque[str]
    used: float
    frame: str | None = None  # encoded on demand, until the next sample arrives
    loaded: asyncio.Event = field(default_factory=asyncio.Event)


class HistoryCache:
    def __init__(
        self,
        store: HostStore,
        limit: int = 900,
        keep: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
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
        stored = [dump(sample) for sample in await self._store.history(host, self._limit)]
        # Live samples that arrived during the read are already in the entry: keep them last.
        newer = list(entry.samples)
        already = set(stored[-len(newer) - 1 :])
        entry.samples.clear()
        entry.samples.extend(stored)
        entry.samples.extend(s for s in newer if s not in already)
        entry.loaded.set()

    def observe(self, host: str, frame: str) -> None:
        """A live sample (already validated): cached histories stay current."""
        entry = self._entries.get(host)
        if entry is not None:
            entry.samples.append(frame)
            entry.frame = None

    def forget(self, host: str) -> None:
        self._entries.pop(host, None)

    def sweep(self) -> None:
        """Drop entries nobody asked for lately (memory stays bounded by what is in use)."""
        stale = self._clock() - self._keep
        for host in [h for h, e in self._entries.items() if e.used < stale and e.loaded.is_set()]:
            del self._entries[host]
