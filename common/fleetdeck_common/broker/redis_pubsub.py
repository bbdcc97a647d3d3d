"""The Redis backend's subscription: one pub/sub connection per process, fanned out locally,
reconnected and resubscribed by itself, with a `GAP` wherever messages may have been missed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .base import BrokerUnavailable, Event
from .fanout import Fanout
from .retry import persist

logger = logging.getLogger(__name__)

TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
BURST_LIMIT = 1000  # messages handed over in one go before others get a turn


class SharedSubscription:
    """Every local subscriber of a process, served by one Redis pub/sub connection."""

    def __init__(self, client: aioredis.Redis, timeout: float) -> None:
        self.reconnects = 0
        self._client = client
        self._timeout = timeout
        self._fanout = Fanout()
        self._pubsub: PubSub | None = None
        self._pubsub_lock = asyncio.Lock()
        self._pubsub_gap = False  # the pub/sub connection was made again under our feet
        self._reader: asyncio.Task[None] | None = None
        self._releasing: set[asyncio.Task[None]] = set()
        self._closing = False

    async def close(self) -> None:
        # The reader also stops at its next read's end, seeing `_closing`: redis-py 8.2 can swallow
        # the cancel of a read waiting for a message (seen as a close that never ended).
        self._closing = True
        if self._reader is not None:
            self._reader.cancel()
            done, _pending = await asyncio.wait([self._reader], timeout=self._timeout + 2.0)
            if not done:
                logger.warning("the Redis subscription's reader did not stop; closing its connection")
            self._reader = None
        releasing = list(self._releasing)
        for task in releasing:
            task.cancel()
        await asyncio.gather(*releasing, return_exceptions=True)
        await self._close_pubsub()

    @contextlib.asynccontextmanager
    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[AsyncIterator[Event]]:
        subscriber = self._fanout.add(channels)
        try:
            # Subscribed before yielding, so nothing published after this returns is missed
            # (unless Redis is down now: the reader then subscribes as soon as it is back).
            try:
                await self._subscribe_connection()
            except BrokerUnavailable as exc:
                logger.warning("cannot subscribe yet (%s); will keep trying", exc)
            if self._reader is None or self._reader.done():
                self._closing = False  # subscribing again after a close starts reading again
                self._reader = asyncio.create_task(self._read(), name="redis-pubsub")
            yield subscriber.events()
        finally:
            self._fanout.discard(subscriber)
            # Channels nobody here wants any more are let go: Redis stops sending them.
            task = asyncio.create_task(self._unsubscribe_unwanted(), name="redis-unsubscribe")
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)

    async def _subscribe_connection(self) -> None:
        """Make the shared pub/sub connection listen to every channel a local subscriber wants."""
        async with self._pubsub_lock:
            wanted = self._fanout.channels()
            try:
                if self._pubsub is None:
                    self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                missing = wanted - set(self._pubsub.channels)
                if missing:
                    await asyncio.wait_for(self._pubsub.subscribe(*sorted(missing)), self._timeout)
                if self._pubsub.connection is not None:
                    # redis-py reconnects a dropped pub/sub connection by itself inside
                    # get_message(); this is how we learn that messages may have been missed.
                    self._pubsub.connection.register_connect_callback(self._pubsub_reconnected)
            except (*TRANSIENT, TimeoutError) as exc:
                await self._close_pubsub()
                raise BrokerUnavailable(f"Redis unreachable: {exc}") from exc

    async def _unsubscribe_unwanted(self) -> None:
        async with self._pubsub_lock:
            pubsub = self._pubsub
            if pubsub is None:
                return
            unwanted = set(pubsub.channels) - self._fanout.channels()
            if unwanted:
                # A failure is the reader's to notice: it makes the connection again.
                with contextlib.suppress(*TRANSIENT, TimeoutError):
                    await asyncio.wait_for(pubsub.unsubscribe(*sorted(unwanted)), self._timeout)

    def _pubsub_reconnected(self, connection: object) -> None:
        self._pubsub_gap = True

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None and pubsub.connection is not None:
            pubsub.connection.deregister_connect_callback(self._pubsub_reconnected)
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _read(self) -> None:
        """Hand every message to the local subscribers; reconnect and resubscribe after a loss."""
        while not self._closing:
            pubsub = self._pubsub
            if pubsub is None:
                await persist("subscribing to Redis", self._subscribe_connection, logger)
                self._fanout.gap()
                continue
            try:
                message = await asyncio.wait_for(pubsub.get_message(timeout=1.0), self._timeout + 1.0)
            except (*TRANSIENT, TimeoutError) as exc:
                self.reconnects += 1
                logger.warning("Redis subscription lost (%s); reconnecting", exc or "no answer")
                if self._pubsub is pubsub:
                    await self._close_pubsub()
                continue
            except Exception:
                # Whatever it was, the subscription must outlive it: start it over.
                self.reconnects += 1
                logger.exception("Redis subscription failed unexpectedly; reconnecting")
                if self._pubsub is pubsub:
                    await self._close_pubsub()
                await asyncio.sleep(1.0)
                continue
            if self._pubsub_gap:
                self._pubsub_gap = False
                self.reconnects += 1
                logger.warning("Redis subscription was lost and made again; messages may have been missed")
                self._fanout.gap()
            if message is not None and message["type"] == "message":
                self._fanout.deliver(Event(message["channel"], message["data"]))
                await self._deliver_buffered(pubsub)

    async def _deliver_buffered(self, pubsub: PubSub) -> None:
        """Hand over what already arrived with the last message before letting anyone else run:
        a burst (an agent publishes its hosts in one round trip) reaches the subscribers as one
        batch, so each socket is woken once for it rather than once per message. A failure is
        left to the next read, which reports it."""
        for _ in range(BURST_LIMIT):
            try:
                message = await pubsub.get_message(timeout=0.0)
            except Exception:
                return
            if message is None:
                return
            if message["type"] == "message":
                self._fanout.deliver(Event(message["channel"], message["data"]))
