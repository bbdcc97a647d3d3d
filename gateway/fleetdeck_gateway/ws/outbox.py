"""One client's outgoing frames, bounded: samples are latest-value-wins, the rest is never dropped.

A client that falls too far behind on frames that must not be dropped (its queue is full, or a
replay waited too long for room) is marked `overflowed` and is disconnected; it catches up with
`watch` after reconnecting.

There is one of these per socket, so it is kept small: plain lists, and futures made only while
someone waits (an idle asyncio.Event or deque costs most of a kilobyte; a gateway holds thousands).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

DEFAULT_BYTES_LIMIT = 8 * 1024 * 1024
Message = str | bytes  # a text frame (JSON), or a binary one (compact fleet frames)
DEFAULT_ROOM_TIMEOUT = 10.0


class Outbox:
    __slots__ = (
        "_latest",
        "_limit",
        "_queue",
        "_queued_bytes",
        "_room",
        "_taken",
        "_waiter",
        "dropped",
        "on_overflow",
        "overflowed",
    )

    def __init__(
        self, bytes_limit: int = DEFAULT_BYTES_LIMIT, on_overflow: Callable[[], None] | None = None
    ) -> None:
        self._limit = bytes_limit
        self._queue: list[str] = []
        self._queued_bytes = 0
        self._latest: dict[str, Message] = {}
        self._waiter: asyncio.Future[None] | None = None  # the sender, waiting for a frame
        self._room: asyncio.Future[None] | None = None  # replays, waiting for the queue to drain
        self._taken: asyncio.Future[None] | None = None  # terminals, waiting for the sender to take all
        self.dropped = 0
        self.overflowed = False
        self.on_overflow = on_overflow  # the socket's owner: close it

    def __len__(self) -> int:
        return len(self._queue) + len(self._latest)

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes + sum(len(f) for f in self._latest.values())

    def put(self, frame: str) -> None:
        """A frame that must arrive (results, chat, history)."""
        if self._queued_bytes + len(frame) > self._limit:
            self._overflow()
        else:
            self._queue.append(frame)
            self._queued_bytes += len(frame)
        self._wake()

    def put_latest(self, key: str, frame: Message) -> None:
        """A frame only worth sending if nothing newer with the same key came meanwhile."""
        if key in self._latest:
            self.dropped += 1
        self._latest[key] = frame
        self._wake()

    def pending(self, key: str) -> bool:
        """Whether a latest-wins frame with this key is still waiting to be sent."""
        return key in self._latest

    async def wait_room(self, timeout: float = DEFAULT_ROOM_TIMEOUT) -> bool:
        """Wait until the queue is at most half full (flow control for replays and history).

        A client that makes no room within `timeout` seconds is too slow: it is marked
        overflowed and False is returned.
        """
        if self._queued_bytes <= self._limit // 2:
            await asyncio.sleep(0)  # a long replay still lets the loop (and a newer `watch`) in
            return True
        if self._room is None or self._room.done():
            self._room = asyncio.get_running_loop().create_future()
        # asyncio.wait, not wait_for: a timeout here must not cancel the future others wait on.
        done, _ = await asyncio.wait({self._room}, timeout=timeout)
        if not done:
            self._overflow()
            return False
        return True

    async def taken(self) -> None:
        """Wait until the sender has taken every frame queued now (a terminal's flow control: its
        output is acknowledged to the worker only once its socket has it)."""
        if not self._queue and not self._latest:
            return
        if self._taken is None or self._taken.done():
            self._taken = asyncio.get_running_loop().create_future()
        await asyncio.wait({self._taken})

    async def take(self) -> list[Message]:
        """Everything queued, oldest first, then the latest samples; waits while there is none."""
        while not self._queue and not self._latest and not self.overflowed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        frames: list[Message] = [*self._queue, *self._latest.values()]
        self._queue = []
        self._latest.clear()
        self._queued_bytes = 0
        for future in (self._room, self._taken):
            if future is not None and not future.done():
                future.set_result(None)
        return frames

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _overflow(self) -> None:
        if not self.overflowed:
            self.overflowed = True
            if self.on_overflow is not None:
                self.on_overflow()
        self._wake()
