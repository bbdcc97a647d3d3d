"""Sharded pub/sub on a Redis Cluster (SSUBSCRIBE, Redis >= 7): the sharded twin of
`redis_pubsub.SharedSubscription`. One subscription for every local subscriber of a process, each
channel kept on the master that serves its slot across a master's restart and a slot's move, with
a `GAP` wherever messages may have been missed. Not wired into the services yet: docs/scaling.md."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.asyncio.cluster import ClusterPubSub, RedisCluster

from .base import Event
from .fanout import Fanout
from .redis_pubsub import TRANSIENT

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05  # one pass over the masters waits at most this long (redis-py splits it)
RETRY_SECONDS = 0.5  # between attempts to put back channels a slot move took away


class ShardedSubscription:
    """Every local subscriber of a process, served by one `ClusterPubSub` (a connection per master)
    of `cluster`, a client made with `decode_responses=True`."""

    def __init__(self, cluster: RedisCluster, timeout: float = 5.0) -> None:
        self.reconnects = 0  # times messages may have been missed: a master lost, a slot moved
        self._cluster = cluster
        self._timeout = timeout
        self._fanout = Fanout()
        self._pubsub: ClusterPubSub = cluster.pubsub()
        self._lock = asyncio.Lock()
        self._lost: set[str] = set()  # channels a slot move unsubscribed, to subscribe again
        self._hooked: set[int] = set()  # connections whose reconnects we hear of
        self._gap = False
        self._reader: asyncio.Task[None] | None = None

    @property
    def reading(self) -> bool:
        """Whether the reader task is still running (it must not outlive `close`)."""
        return self._reader is not None and not self._reader.done()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            done, _pending = await asyncio.wait([self._reader], timeout=self._timeout)
            if not done:
                logger.warning("sharded subscription: the reader did not stop within %gs", self._timeout)
            else:
                self._reader = None
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()

    @contextlib.asynccontextmanager
    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[AsyncIterator[Event]]:
        """Subscribed (on each channel's master) before it yields, as `SharedSubscription.subscribe`."""
        subscriber = self._fanout.add(channels)
        try:
            async with self._lock:
                await self._ssubscribe(sorted(set(channels) - self._subscribed()))
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read(), name="redis-sharded-pubsub")
            yield subscriber.events()
        finally:
            self._fanout.discard(subscriber)

    def _subscribed(self) -> set[str]:
        return {str(channel) for channel in self._pubsub.shard_channels}

    async def _ssubscribe(self, channels: Sequence[str]) -> None:
        if channels:
            await asyncio.wait_for(self._pubsub.ssubscribe(*channels), self._timeout)
        for node_pubsub in self._pubsub.node_pubsub_mapping.values():
            connection = node_pubsub.connection
            if connection is not None and id(connection) not in self._hooked:
                # redis-py reconnects a master's connection and replays its SSUBSCRIBEs by
                # itself; this is how we learn that messages may have been missed meanwhile.
                connection.register_connect_callback(self._reconnected)
                self._hooked.add(id(connection))

    def _reconnected(self, connection: object) -> None:
        self._gap = True

    async def _read(self) -> None:
        """Hand every message to the local subscribers; follow lost masters and moved slots."""
        while True:
            if self._lost:
                await self._resubscribe_lost()
            started = time.monotonic()
            try:
                # Each master's read is bounded by the poll's time (redis-py splits it).
                message = await self._pubsub.get_sharded_message(timeout=POLL_SECONDS)
            except (*TRANSIENT, TimeoutError) as exc:
                # Raised only when every master failed in the same pass.
                self._missed(f"every master unreachable ({exc or 'no answer'})")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            except Exception:
                # Whatever it was, the subscription must outlive it.
                logger.exception("sharded subscription failed unexpectedly; reading on")
                self._missed("a read failed")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if self._gap:
                self._gap = False
                self._missed("a master's connection was lost and made again")
            if message is None:
                idle = POLL_SECONDS - (time.monotonic() - started)
                if idle > 0:  # a pass with no connection to read returns at once: do not spin
                    await asyncio.sleep(idle)
                continue
            self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        kind, channel = str(message["type"]), str(message["channel"])
        if kind == "smessage":
            self._fanout.deliver(Event(channel, str(message["data"])))
        elif kind == "sunsubscribe" and channel in self._fanout.channels():
            # Sent by the server when the channel's slot moved to another master.
            self._lost.add(channel)
            self._missed(f"{channel} moved to another master")

    def _missed(self, why: str) -> None:
        self.reconnects += 1
        logger.warning("sharded subscription: %s; messages may have been missed", why)
        self._fanout.gap()

    async def _resubscribe_lost(self) -> None:
        """Ask the cluster who serves each slot now, then subscribe the lost channels there."""
        lost = sorted(self._lost)
        try:
            async with self._lock:
                await asyncio.wait_for(self._cluster.nodes_manager.initialize(), self._timeout)
                await self._ssubscribe(lost)
        except (*TRANSIENT, TimeoutError) as exc:
            logger.warning("sharded subscription: cannot subscribe moved channels yet (%s)", exc)
            await asyncio.sleep(RETRY_SECONDS)
            return
        self._lost.difference_update(lost)
