"""In-memory broker for `fleetdeck up`: one process, no Redis, same semantics as the Redis backend."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

from .base import Broker, Event, StreamEntry

logger = logging.getLogger(__name__)

SUBSCRIBER_QUEUE_SIZE = 10_000


@dataclass
class _Group:
    delivered: int = 0  # index into the stream's entries of the next undelivered entry
    pending: dict[str, tuple[str, float]] = field(default_factory=dict)  # id -> (consumer, touched)


@dataclass
class _Stream:
    entries: list[StreamEntry] = field(default_factory=list)
    groups: dict[str, _Group] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryBroker(Broker):
    def __init__(self) -> None:
        super().__init__()
        self._subscribers: dict[str, set[asyncio.Queue[Event]]] = defaultdict(set)
        self._lists: dict[str, deque[str]] = {}
        self._hashes: dict[str, dict[str, str]] = defaultdict(dict)
        self._values: dict[str, tuple[str, float | None]] = {}
        self._streams: dict[str, _Stream] = defaultdict(_Stream)
        self._next_id = 0

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def publish(self, channel: str, data: str) -> None:
        event = Event(channel, data)
        for queue in self._subscribers.get(channel, ()):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                logger.warning("subscriber queue full on %s; message dropped", channel)

    @contextlib.asynccontextmanager
    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[AsyncIterator[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(SUBSCRIBER_QUEUE_SIZE)
        for channel in channels:
            self._subscribers[channel].add(queue)

        async def events() -> AsyncIterator[Event]:
            while True:
                yield await queue.get()

        try:
            yield events()
        finally:
            for channel in channels:
                self._subscribers[channel].discard(queue)

    async def push_capped(self, key: str, value: str, limit: int) -> None:
        items = self._lists.get(key)
        if items is None or items.maxlen != limit:
            items = deque(items or (), maxlen=limit)
            self._lists[key] = items
        items.append(value)

    async def read_list(self, key: str) -> list[str]:
        return list(self._lists.get(key, ()))

    async def hash_set(self, key: str, field: str, value: str) -> None:
        self._hashes[key][field] = value

    async def hash_set_if_absent(self, key: str, field: str, value: str) -> bool:
        fields = self._hashes[key]
        if field in fields:
            return False
        fields[field] = value
        return True

    async def hash_get_all(self, key: str) -> dict[str, str]:
        return dict(self._hashes.get(key, {}))

    async def hash_delete(self, key: str, field: str) -> None:
        self._hashes.get(key, {}).pop(field, None)

    def _expired(self, key: str) -> bool:
        item = self._values.get(key)
        if item is not None and item[1] is not None and item[1] <= time.monotonic():
            del self._values[key]
            return True
        return item is None

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._values[key] = (value, time.monotonic() + ttl if ttl else None)

    async def get(self, key: str) -> str | None:
        if self._expired(key):
            return None
        return self._values[key][0]

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._values.pop(key, None)
            self._lists.pop(key, None)
            self._hashes.pop(key, None)
            self._streams.pop(key, None)

    async def expire(self, key: str, ttl: float) -> None:
        # Only plain values expire here; one process does not outgrow its memory on job records.
        if not self._expired(key):
            self._values[key] = (self._values[key][0], time.monotonic() + ttl)

    async def stream_add(self, stream: str, fields: Mapping[str, str]) -> str:
        self._next_id += 1
        entry = StreamEntry(f"{self._next_id}-0", dict(fields))
        state = self._streams[stream]
        state.entries.append(entry)
        state.changed.set()
        state.changed = asyncio.Event()
        return entry.id

    async def stream_range(self, stream: str, after: str | None = None) -> list[StreamEntry]:
        entries = self._streams[stream].entries if stream in self._streams else []
        if after is None:
            return list(entries)
        cutoff = int(after.split("-")[0])
        return [e for e in entries if int(e.id.split("-")[0]) > cutoff]

    async def group_ensure(self, stream: str, group: str) -> None:
        self._streams[stream].groups.setdefault(group, _Group())

    async def group_read(
        self, stream: str, group: str, consumer: str, count: int, block: float
    ) -> list[StreamEntry]:
        state = self._streams[stream]
        if group not in state.groups:
            raise RuntimeError(f"no consumer group {group!r} on {stream!r}")
        cursor = state.groups[group]
        if cursor.delivered >= len(state.entries) and block > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.changed.wait(), block)
        taken = state.entries[cursor.delivered : cursor.delivered + count]
        cursor.delivered += len(taken)
        now = time.monotonic()
        for entry in taken:
            cursor.pending[entry.id] = (consumer, now)
        return taken

    async def group_claim_stale(
        self, stream: str, group: str, consumer: str, min_idle: float, count: int
    ) -> list[StreamEntry]:
        state = self._streams[stream]
        cursor = state.groups.get(group)
        if cursor is None:
            return []
        now = time.monotonic()
        by_id = {e.id: e for e in state.entries}
        claimed: list[StreamEntry] = []
        for entry_id, (_owner, touched) in list(cursor.pending.items()):
            if now - touched >= min_idle and entry_id in by_id and len(claimed) < count:
                cursor.pending[entry_id] = (consumer, now)
                claimed.append(by_id[entry_id])
        return claimed

    async def group_touch(self, stream: str, group: str, consumer: str, ids: Sequence[str]) -> None:
        cursor = self._streams[stream].groups.get(group)
        if cursor is None:
            return
        now = time.monotonic()
        for entry_id in ids:
            if entry_id in cursor.pending:
                cursor.pending[entry_id] = (consumer, now)

    async def group_ack(self, stream: str, group: str, entry_id: str) -> None:
        cursor = self._streams[stream].groups.get(group)
        if cursor is not None:
            cursor.pending.pop(entry_id, None)

    async def hold_lease(self, key: str, owner: str, ttl: float) -> bool:
        holder = await self.get(key)
        if holder not in (None, owner):
            return False
        await self.set(key, owner, ttl)
        return True

    async def release_lease(self, key: str, owner: str) -> None:
        if await self.get(key) == owner:
            await self.delete(key)

    async def stream_add_fenced(
        self, stream: str, fields: Mapping[str, str], lease: str, owner: str
    ) -> str | None:
        if await self.get(lease) != owner:
            return None
        return await self.stream_add(stream, fields)
