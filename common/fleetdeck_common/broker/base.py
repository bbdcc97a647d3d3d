"""The broker's capabilities, each a small interface: connection, pub/sub, key-value, batched
writes, byte strings written in place, streams with consumer groups, capped logs. A message
broker's primitives, nothing more: what a job, a host or a chat message is, and the rules that
keep them, live in the stores.

Two backends implement all of them: Redis (`redis://`, `rediss://`, `unix://`) for a fleet and
memory (`memory://`) for one process; one contract test suite runs against both. Code that uses
the broker is typed against only the capabilities it needs (see the stores), not the whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Event:
    """One published message."""

    channel: str
    data: str


GAP = Event(channel="", data="")
"""Seen in a subscription in place of a message: messages may have been missed just before it
(the broker connection was lost and made again, or the subscriber fell behind). Pub/sub is
at-most-once; a consumer that must not miss anything re-reads the record of truth on a gap."""


@dataclass(frozen=True)
class StreamEntry:
    id: str
    fields: Mapping[str, str]


class BrokerUnavailable(Exception):
    """The broker could not be reached (after the backend's own retries)."""


class BrokerDenied(BrokerUnavailable):
    """The broker refused a command to this service's user: its ACL lacks a grant; waiting will not help."""


class Connection(Protocol):
    @property
    def reconnects(self) -> int:
        """Times the subscription was lost and re-established."""
        ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def ping(self) -> bool:
        """True when the broker answers now (readiness)."""
        ...

    @property
    def down_reason(self) -> str:
        """Why the broker last failed to answer, while it does not ("" when it answers)."""
        ...


class PubSub(Protocol):
    async def publish(self, channel: str, data: str) -> None: ...

    def subscribe(self, channels: Sequence[str]) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """Receive what is published on `channels` until the context exits.

        Subscribed when the context is entered; the iterator survives broker restarts (the
        backend reconnects and resubscribes by itself) and yields `GAP` where messages may have
        been missed.
        """
        ...


class KeyValue(Protocol):
    """Plain values, capped lists (oldest first) and hashes; every key can expire."""

    async def set(self, key: str, value: str, ttl: float | None = None, keep_ttl: bool = False) -> None:
        """Store `value`, expiring after `ttl` seconds if given; `keep_ttl` keeps the expiry the key
        has (Redis `SET KEEPTTL`) instead of clearing it."""
        ...

    async def get(self, key: str) -> str | None: ...

    async def delete(self, *keys: str) -> None: ...

    async def expire(self, key: str, ttl: float) -> None:
        """Drop `key` (of any kind) after `ttl` seconds."""
        ...

    async def push_capped(self, key: str, value: str, limit: int) -> None: ...

    async def read_list(self, key: str) -> list[str]: ...

    async def hash_set(self, key: str, field: str, value: str) -> None: ...

    async def hash_set_if_absent(self, key: str, field: str, value: str) -> bool:
        """Set the field only if it is not there yet; True if this call set it."""
        ...

    async def hash_get_all(self, key: str) -> dict[str, str]: ...

    async def hash_delete(self, key: str, field: str) -> None: ...


@dataclass(frozen=True)
class PushCapped:
    key: str
    value: str
    limit: int


@dataclass(frozen=True)
class HashSet:
    key: str
    field: str
    value: str


@dataclass(frozen=True)
class Publish:
    channel: str
    data: str


@dataclass(frozen=True)
class Reserve:
    """Make `key` a byte string of `size` zero bytes unless it exists, and expire it after `ttl` seconds."""

    key: str
    size: int
    ttl: float


@dataclass(frozen=True)
class SetRange:
    """Overwrite the bytes of `key` from `offset` with `data` (zero-filling a gap; Redis SETRANGE)."""

    key: str
    offset: int
    data: bytes


Write = PushCapped | HashSet | Publish | Reserve | SetRange


class Batches(Protocol):
    async def write_batch(self, writes: Sequence[Write]) -> None:
        """Apply the writes in order, in one round trip where the backend can (not atomically)."""
        ...


@dataclass(frozen=True)
class ByteRange:
    """Bytes `start` (inclusive) to `end` (exclusive) of the byte string at `key`."""

    key: str
    start: int
    end: int


class ByteStrings(Protocol):
    """Byte strings written in place (`Reserve`, `SetRange` in a batch) and read by range."""

    async def read_ranges(self, ranges: Sequence[ByteRange]) -> list[bytes]:
        """Each range's bytes, in one round trip; short or empty where the string is (or is missing)."""
        ...


class Streams(Protocol):
    """Streams with consumer groups: a crashed consumer's entries are noticed and taken over."""

    async def stream_add(self, stream: str, fields: Mapping[str, str]) -> str: ...

    async def stream_range(
        self, stream: str, after: str | None = None, count: int | None = None
    ) -> list[StreamEntry]:
        """Entries after the id `after` (exclusive), or from the start, oldest first; at most
        `count` of them when given (a page: read on from the last id returned)."""
        ...

    async def group_ensure(self, stream: str, group: str) -> None:
        """Create the consumer group (and the stream) if missing."""
        ...

    async def group_read(
        self, stream: str, group: str, consumer: str, count: int, block: float
    ) -> list[StreamEntry]:
        """New entries for this consumer, waiting up to `block` seconds."""
        ...

    async def group_claim_stale(
        self, stream: str, group: str, consumer: str, min_idle: float, count: int
    ) -> list[StreamEntry]:
        """Take over entries another consumer has not touched for `min_idle` seconds."""
        ...

    async def group_touch(self, stream: str, group: str, consumer: str, ids: Sequence[str]) -> None:
        """Reset the idle time of entries this consumer still works on (its heartbeat)."""
        ...

    async def group_ack(self, stream: str, group: str, entry_id: str) -> None: ...


class StreamLog(Protocol):
    """Append-only streams kept to a length and read newest first (the audit trail)."""

    async def stream_append(self, stream: str, fields: Mapping[str, str], keep: int) -> str:
        """Append an entry and return its id. The stream keeps at least its newest `keep` entries;
        older ones are trimmed in whole blocks (Redis `MAXLEN ~`), so somewhat more may stay."""
        ...

    async def stream_before(self, stream: str, before: str | None, count: int) -> list[StreamEntry]:
        """Up to `count` entries older than the id `before` (exclusive), or the newest ones when
        `before` is None; newest first."""
        ...


class Broker(Connection, PubSub, KeyValue, Batches, ByteStrings, Streams, StreamLog, Protocol):
    """All capabilities: what a backend implements and what a process creates from its URL."""

    async def __aenter__(self) -> Broker: ...

    async def __aexit__(self, *exc_info: object) -> None: ...
