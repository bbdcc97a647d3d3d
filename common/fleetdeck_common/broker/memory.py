"""In-memory broker for `fleetdeck up`: one process, no Redis, the same semantics as the Redis backend.

Every key of every kind can expire, as in Redis: dropped when next touched, and every expired key
at most once a minute on a batch of writes (history chunks nobody touches again do not stay). No
call suspends except a blocking `group_read`, so calls with nothing else awaited in between
happen as one step (the job store relies on it).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import (
    Broker,
    ByteRange,
    Event,
    HashSet,
    Publish,
    PushCapped,
    Reserve,
    SetRange,
    StreamEntry,
    Write,
)
from .fanout import Fanout
from .memory_bytes import drop_expired, get_range, set_range


@dataclass
class _Group:
    delivered: int = 0  # index into the stream's entries of the next undelivered entry
    pending: dict[str, tuple[str, float]] = field(default_factory=dict)  # id -> (consumer, touched)


@dataclass
class _Stream:
    entries: list[StreamEntry] = field(default_factory=list)
    groups: dict[str, _Group] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryBroker:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.reconnects = 0
        self.down_reason = ""  # in this process: it always answers
        self._clock = clock
        self._fanout = Fanout()
        self._values: dict[str, str] = {}
        self._lists: dict[str, deque[str]] = {}
        self._hashes: dict[str, dict[str, str]] = {}
        self._streams: dict[str, _Stream] = {}
        self._bytes: dict[str, bytearray] = {}
        self._deadlines: dict[str, float] = {}
        self._next_id = 0
        self._next_sweep = 0.0

    async def __aenter__(self) -> Broker:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    # --- expiry ----------------------------------------------------------------------------

    def _drop_if_expired(self, key: str) -> None:
        deadline = self._deadlines.get(key)
        if deadline is not None and deadline <= self._clock():
            self._remove(key)

    def _kinds(self) -> tuple[dict[str, Any], ...]:
        return (self._deadlines, self._values, self._lists, self._hashes, self._streams, self._bytes)

    def _remove(self, key: str) -> None:
        for kind in self._kinds():
            kind.pop(key, None)

    def _exists(self, key: str) -> bool:
        self._drop_if_expired(key)
        return any(key in kind for kind in self._kinds()[1:])

    def _sweep(self) -> None:
        if (now := self._clock()) >= self._next_sweep:
            self._next_sweep = now + 60.0
            drop_expired(self._deadlines, now, self._remove)

    async def expire(self, key: str, ttl: float) -> None:
        if self._exists(key):
            self._deadlines[key] = self._clock() + ttl

    # --- pub/sub ---------------------------------------------------------------------------

    async def publish(self, channel: str, data: str) -> None:
        self._fanout.deliver(Event(channel, data))

    @contextlib.asynccontextmanager
    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[AsyncIterator[Event]]:
        subscriber = self._fanout.add(channels)
        try:
            yield subscriber.events()
        finally:
            self._fanout.discard(subscriber)

    # --- key-value -------------------------------------------------------------------------

    async def set(self, key: str, value: str, ttl: float | None = None, keep_ttl: bool = False) -> None:
        self._drop_if_expired(key)
        deadline = self._deadlines.get(key) if keep_ttl else None
        self._remove(key)
        self._values[key] = value
        if ttl:
            self._deadlines[key] = self._clock() + ttl
        elif deadline is not None:
            self._deadlines[key] = deadline

    async def get(self, key: str) -> str | None:
        self._drop_if_expired(key)
        return self._values.get(key)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._remove(key)

    async def push_capped(self, key: str, value: str, limit: int) -> None:
        self._drop_if_expired(key)
        items = self._lists.get(key)
        if items is None or items.maxlen != limit:
            items = deque(items or (), maxlen=limit)
            self._lists[key] = items
        items.append(value)

    async def read_list(self, key: str) -> list[str]:
        self._drop_if_expired(key)
        return list(self._lists.get(key, ()))

    async def hash_set(self, key: str, field: str, value: str) -> None:
        self._drop_if_expired(key)
        self._hashes.setdefault(key, {})[field] = value

    async def hash_set_if_absent(self, key: str, field: str, value: str) -> bool:
        self._drop_if_expired(key)
        fields = self._hashes.setdefault(key, {})
        if field in fields:
            return False
        fields[field] = value
        return True

    async def hash_get_all(self, key: str) -> dict[str, str]:
        self._drop_if_expired(key)
        return dict(self._hashes.get(key, {}))

    async def hash_delete(self, key: str, field: str) -> None:
        self._drop_if_expired(key)
        fields = self._hashes.get(key)
        if fields is not None:
            fields.pop(field, None)
            if not fields:
                self._remove(key)

    async def write_batch(self, writes: Sequence[Write]) -> None:
        self._sweep()
        for write in writes:
            if isinstance(write, PushCapped):
                await self.push_capped(write.key, write.value, write.limit)
            elif isinstance(write, HashSet):
                await self.hash_set(write.key, write.field, write.value)
            elif isinstance(write, Publish):
                await self.publish(write.channel, write.data)
            elif isinstance(write, Reserve):
                if not self._exists(write.key):
                    self._bytes[write.key] = bytearray(write.size)
                await self.expire(write.key, write.ttl)
            elif isinstance(write, SetRange):
                set_range(self._bytes, write, self._drop_if_expired)

    async def read_ranges(self, ranges: Sequence[ByteRange]) -> list[bytes]:
        return [get_range(self._bytes, item, self._drop_if_expired) for item in ranges]

    # --- streams and consumer groups ------------------------------------------------------

    def _stream(self, stream: str) -> _Stream:
        self._drop_if_expired(stream)
        return self._streams.setdefault(stream, _Stream())

    async def stream_add(self, stream: str, fields: Mapping[str, str]) -> str:
        self._next_id += 1
        entry = StreamEntry(f"{self._next_id}-0", dict(fields))
        state = self._stream(stream)
        state.entries.append(entry)
        state.changed.set()
        state.changed = asyncio.Event()
        return entry.id

    async def stream_range(
        self, stream: str, after: str | None = None, count: int | None = None
    ) -> list[StreamEntry]:
        self._drop_if_expired(stream)
        state = self._streams.get(stream)
        entries = state.entries if state is not None else []
        start = 0
        if after is not None:
            # Ids grow with every entry, so the entries are sorted by them: find the cut by bisection.
            cutoff = int(after.split("-")[0])
            start = bisect.bisect_right(entries, cutoff, key=lambda e: int(e.id.split("-")[0]))
        end = len(entries) if count is None else start + max(count, 0)
        return entries[start:end]

    async def group_ensure(self, stream: str, group: str) -> None:
        self._stream(stream).groups.setdefault(group, _Group())

    async def group_read(
        self, stream: str, group: str, consumer: str, count: int, block: float
    ) -> list[StreamEntry]:
        state = self._stream(stream)
        if group not in state.groups:
            # As in the Redis backend: a lost group is recreated and read again later.
            await self.group_ensure(stream, group)
            return []
        cursor = state.groups[group]
        if cursor.delivered >= len(state.entries) and block > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.changed.wait(), block)
        taken = state.entries[cursor.delivered : cursor.delivered + count]
        cursor.delivered += len(taken)
        now = self._clock()
        for entry in taken:
            cursor.pending[entry.id] = (consumer, now)
        return taken

    async def group_claim_stale(
        self, stream: str, group: str, consumer: str, min_idle: float, count: int
    ) -> list[StreamEntry]:
        state = self._stream(stream)
        cursor = state.groups.get(group)
        if cursor is None:
            return []
        now = self._clock()
        by_id = {e.id: e for e in state.entries}
        claimed: list[StreamEntry] = []
        for entry_id, (_owner, touched) in list(cursor.pending.items()):
            if now - touched >= min_idle and entry_id in by_id and len(claimed) < count:
                cursor.pending[entry_id] = (consumer, now)
                claimed.append(by_id[entry_id])
        return claimed

    async def group_touch(self, stream: str, group: str, consumer: str, ids: Sequence[str]) -> None:
        cursor = self._stream(stream).groups.get(group)
        if cursor is None:
            return
        now = self._clock()
        for entry_id in ids:
            if entry_id in cursor.pending:
                cursor.pending[entry_id] = (consumer, now)

    async def group_ack(self, stream: str, group: str, entry_id: str) -> None:
        cursor = self._stream(stream).groups.get(group)
        if cursor is not None:
            cursor.pending.pop(entry_id, None)

    # --- capped logs -----------------------------------------------------------------------

    async def stream_append(self, stream: str, fields: Mapping[str, str], keep: int) -> str:
        entry_id = await self.stream_add(stream, fields)
        state = self._stream(stream)
        excess = len(state.entries) - max(keep, 1)
        if excess > 0:
            del state.entries[:excess]
            for group in state.groups.values():
                group.delivered = max(0, group.delivered - excess)
        return entry_id

    async def stream_before(self, stream: str, before: str | None, count: int) -> list[StreamEntry]:
        self._drop_if_expired(stream)
        state = self._streams.get(stream)
        entries = state.entries if state is not None else []
        if before is not None:
            cutoff = _id_order(before)
            entries = [e for e in entries if _id_order(e.id) < cutoff]
        return entries[::-1][: max(count, 0)]


def _id_order(entry_id: str) -> tuple[int, int]:
    """A stream id (`123-0`) as something to compare."""
    first, _, second = entry_id.partition("-")
    return int(first), int(second or 0)
