"""The broker interface: pub/sub plus the few storage shapes fleetdeck needs.

Two backends implement it: Redis (`redis://`, `rediss://`, `unix://`) for a fleet, and memory
(`memory://`) for one process. One contract test suite runs against both.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """One published message."""

    channel: str
    data: str


@dataclass(frozen=True)
class StreamEntry:
    id: str
    fields: Mapping[str, str]


class BrokerUnavailable(Exception):
    """The broker could not be reached (after the backend's own retries)."""


class Broker(abc.ABC):
    """Everything the services say to the broker goes through these methods."""

    def __init__(self) -> None:
        self.reconnects = 0

    async def __aenter__(self) -> Broker:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def disconnect(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the broker answers now (readiness)."""

    # pub/sub -----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def publish(self, channel: str, data: str) -> None: ...

    @abc.abstractmethod
    def subscribe(self, channels: Sequence[str]) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """Receive what is published on `channels` until the context exits.

        The iterator survives broker restarts: it reconnects and resubscribes by itself.
        """

    # capped lists (oldest first) ---------------------------------------------------------------

    @abc.abstractmethod
    async def push_capped(self, key: str, value: str, limit: int) -> None: ...

    @abc.abstractmethod
    async def read_list(self, key: str) -> list[str]: ...

    # hashes ------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def hash_set(self, key: str, field: str, value: str) -> None: ...

    @abc.abstractmethod
    async def hash_set_if_absent(self, key: str, field: str, value: str) -> bool:
        """Set the field only if it is not there yet; True if this call set it."""

    @abc.abstractmethod
    async def hash_get_all(self, key: str) -> dict[str, str]: ...

    @abc.abstractmethod
    async def hash_delete(self, key: str, field: str) -> None: ...

    # plain values ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def set(self, key: str, value: str, ttl: float | None = None) -> None: ...

    @abc.abstractmethod
    async def get(self, key: str) -> str | None: ...

    @abc.abstractmethod
    async def delete(self, *keys: str) -> None: ...

    @abc.abstractmethod
    async def expire(self, key: str, ttl: float) -> None: ...

    # streams -----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def stream_add(self, stream: str, fields: Mapping[str, str]) -> str: ...

    @abc.abstractmethod
    async def stream_range(self, stream: str, after: str | None = None) -> list[StreamEntry]:
        """Entries after the id `after` (exclusive), or all of them, oldest first."""

    @abc.abstractmethod
    async def group_ensure(self, stream: str, group: str) -> None:
        """Create the consumer group (and the stream) if missing."""

    @abc.abstractmethod
    async def group_read(
        self, stream: str, group: str, consumer: str, count: int, block: float
    ) -> list[StreamEntry]:
        """New entries for this consumer, waiting up to `block` seconds."""

    @abc.abstractmethod
    async def group_claim_stale(
        self, stream: str, group: str, consumer: str, min_idle: float, count: int
    ) -> list[StreamEntry]:
        """Take over entries another consumer has not touched for `min_idle` seconds."""

    @abc.abstractmethod
    async def group_touch(self, stream: str, group: str, consumer: str, ids: Sequence[str]) -> None:
        """Reset the idle time of entries this consumer still works on (its heartbeat)."""

    @abc.abstractmethod
    async def group_ack(self, stream: str, group: str, entry_id: str) -> None: ...

    # leases: one owner at a time, and writes fenced by it -------------------------------------

    @abc.abstractmethod
    async def hold_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Take the lease if free, or extend it if `owner` holds it; False if someone else does."""

    @abc.abstractmethod
    async def release_lease(self, key: str, owner: str) -> None:
        """Give the lease up if `owner` holds it."""

    @abc.abstractmethod
    async def stream_add_fenced(
        self, stream: str, fields: Mapping[str, str], lease: str, owner: str
    ) -> str | None:
        """Append only while `owner` holds `lease` (atomically); None if it does not."""
