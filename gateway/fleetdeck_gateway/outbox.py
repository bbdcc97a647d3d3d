"""One client's outgoing frames, bounded: samples are latest-value-wins, the rest is never dropped.

A client that falls too far behind on frames that must not be dropped (its queue is full, or a
replay waited too long for room) is marked `overflowed` and is disconnected; it catches up with
`watch` after reconnecting.
"""

from __future__ import annotations

import asyncio
from collections import deque

DEFAULT_BYTES_LIMIT = 8 * 1024 * 1024
DEFAULT_ROOM_TIMEOUT = 10.0


class Outbox:
    def __init__(self, bytes_limit: int = DEFAULT_BYTES_LIMIT) -> None:
        self._limit = bytes_limit
        self._queue: deque[str] = deque()
        self._queued_bytes = 0
        self._latest: dict[str, str] = {}
        self._ready = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self.dropped = 0
        self.overflow = asyncio.Event()

    @property
    def overflowed(self) -> bool:
        return self.overflow.is_set()

    def __len__(self) -> int:
        return len(self._queue) + len(self._latest)

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes + sum(len(f) for f in self._latest.values())

    def put(self, frame: str) -> None:
        """A frame that must arrive (results, chat, history)."""
        if self._queued_bytes + len(frame) > self._limit:
            self.overflow.set()
        else:
            self._queue.append(frame)
            self._queued_bytes += len(frame)
            if self._queued_bytes > self._limit // 2:
                self._drained.clear()
        self._ready.set()

    def put_latest(self, key: str, frame: str) -> None:
        """A frame only worth sending if nothing newer with the same key came meanwhile."""
        if key in self._latest:
            self.dropped += 1
        self._latest[key] = frame
        self._ready.set()

    def pending(self, key: str) -> bool:
        """Whether a latest-wins frame with this key is still waiting to be sent."""
        return key in self._latest

    async def wait_room(self, timeout: float = DEFAULT_ROOM_TIMEOUT) -> bool:
        """Wait until the queue is at most half full (flow control for replays and history).

        A client that makes no room within `timeout` seconds is too slow: it is marked
        overflowed and False is returned.
        """
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
        except TimeoutError:
            self.overflow.set()
            return False
        return True

    async def take(self) -> list[str]:
        """Everything queued, oldest first, then the latest samples; waits while there is none."""
        while not self._queue and not self._latest and not self.overflowed:
            self._ready.clear()
            await self._ready.wait()
        frames = list(self._queue)
        frames.extend(self._latest.values())
        self._queue.clear()
        self._latest.clear()
        self._queued_bytes = 0
        self._drained.set()
        return frames
