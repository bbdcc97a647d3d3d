"""Redis backend (redis-py asyncio): one pub/sub connection per process, retries with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .base import (
    Broker,
    BrokerUnavailable,
    Event,
    Fenced,
    HashSet,
    Publish,
    PushCapped,
    StreamEntry,
    Submission,
    Write,
)
from .fanout import Fanout
from .retry import persist
from .sentinel import SCHEME as SENTINEL_SCHEME
from .sentinel import sentinel_pool

logger = logging.getLogger(__name__)

T = TypeVar("T")
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)

# Server-side scripts, so that checking a lease and acting on it cannot be interleaved.
_HOLD_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""
_ENQUEUE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
redis.call('XADD', KEYS[3], '*', unpack(ARGV, 6))
redis.call('PUBLISH', ARGV[5], ARGV[1])
return 1
"""
_FENCED_XADD = """
local holder = redis.call('GET', KEYS[1])
if holder == false then return -2 end
if holder ~= ARGV[1] then return -1 end
if tonumber(ARGV[2]) <= tonumber(redis.call('GET', KEYS[3]) or '0') then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[3], ARGV[2], 'KEEPTTL')
return 1
"""
_FENCED = {1: Fenced.WRITTEN, 0: Fenced.DUPLICATE, -1: Fenced.NOT_HOLDER, -2: Fenced.NO_LEASE}

# How long a blocking stream read may wait; the socket timeout must stay above it.
MAX_BLOCK_SECONDS = 2.0


BURST_LIMIT = 1000  # messages handed over in one go before others get a turn


class RedisBroker:
    def __init__(self, url: str, connections: int = 50, timeout: float = 5.0) -> None:
        self.reconnects = 0
        self._timeout = timeout
        self._down_since: float | None = None
        # A blocking pool: a call waits (up to its timeout) for a free connection instead of
        # failing, so a burst of work is queued rather than reported as an outage.
        options: dict[str, Any] = {
            "max_connections": connections,
            "timeout": timeout * 0.8,  # before the call's own deadline, so the error says why
            "decode_responses": True,
            "retry": Retry(EqualJitterBackoff(cap=0.5, base=0.05), retries=2),
            "retry_on_error": [RedisConnectionError, RedisTimeoutError],
            "socket_connect_timeout": min(2.0, timeout),
            "socket_timeout": MAX_BLOCK_SECONDS + timeout,
            "health_check_interval": 15,
        }
        pool: BlockingConnectionPool
        if url.startswith(SENTINEL_SCHEME):
            pool = sentinel_pool(url, **options)
        else:
            pool = BlockingConnectionPool.from_url(url, **options)
        self._client: aioredis.Redis = aioredis.Redis.from_pool(pool)
        self._fanout = Fanout()
        self._pubsub: PubSub | None = None
        self._pubsub_lock = asyncio.Lock()
        self._pubsub_gap = False  # the pub/sub connection was made again under our feet
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Broker:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    async def connect(self) -> None:
        # Nothing to do eagerly: services must start (and report not ready) while Redis is down.
        return None

    async def disconnect(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        await self._close_pubsub()
        await self._client.aclose()

    async def _call(self, awaitable: Awaitable[T], extra_time: float = 0.0) -> T:
        """Every command goes through here: bounded in time, outages logged once each way."""
        try:
            result = await asyncio.wait_for(awaitable, self._timeout + extra_time)
        except TimeoutError as exc:
            self._went_down(f"no answer within {self._timeout:g}s")
            raise BrokerUnavailable(f"Redis did not answer within {self._timeout:g}s") from exc
        except _TRANSIENT as exc:
            if "No connection available" in str(exc):
                # Redis is fine; this process has every pooled connection busy.
                raise BrokerUnavailable(
                    f"every Redis connection of this process stayed busy for {self._timeout:g}s"
                ) from exc
            self._went_down(str(exc))
            raise BrokerUnavailable(f"Redis unreachable: {exc}") from exc
        if self._down_since is not None:
            logger.warning("Redis answers again (after %.1fs)", time.monotonic() - self._down_since)
            self._down_since = None
        return result

    def _went_down(self, why: str) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning("Redis unreachable (%s); retrying quietly until it answers", why)

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._client.ping(), 2.0))
        except (*_TRANSIENT, TimeoutError):
            return False

    # --- pub/sub: one connection for every local subscriber --------------------------------

    async def publish(self, channel: str, data: str) -> None:
        await self._call(self._client.publish(channel, data))

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
                self._reader = asyncio.create_task(self._read(), name="redis-pubsub")
            yield subscriber.events()
        finally:
            self._fanout.discard(subscriber)

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
            except (*_TRANSIENT, TimeoutError) as exc:
                await self._close_pubsub()
                raise BrokerUnavailable(f"Redis unreachable: {exc}") from exc

    def _pubsub_reconnected(self, connection: object) -> None:
        self._pubsub_gap = True

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None and pubsub.connection is not None:
            pubsub.connection.deregister_connect_callback(self._pubsub_reconnected)
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _read(self) -> None:
        """Hand every message to the local subscribers; reconnect and resubscribe after a loss."""
        while True:
            pubsub = self._pubsub
            if pubsub is None:
                await persist("subscribing to Redis", self._subscribe_connection, logger)
                self._fanout.gap()
                continue
            try:
                message = await asyncio.wait_for(pubsub.get_message(timeout=1.0), self._timeout + 1.0)
            except (*_TRANSIENT, TimeoutError) as exc:
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

    async def push_capped(self, key: str, value: str, limit: int) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.rpush(key, value)
            pipe.ltrim(key, -limit, -1)
            await self._call(pipe.execute())

    async def write_batch(self, writes: Sequence[Write]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for write in writes:
                if isinstance(write, PushCapped):
                    pipe.rpush(write.key, write.value)
                    pipe.ltrim(write.key, -write.limit, -1)
                elif isinstance(write, HashSet):
                    pipe.hset(write.key, write.field, write.value)
                elif isinstance(write, Publish):
                    pipe.publish(write.channel, write.data)
            await self._call(pipe.execute())

    async def read_list(self, key: str) -> list[str]:
        return cast(list[str], await self._call(self._client.lrange(key, 0, -1)))

    async def hash_set(self, key: str, field: str, value: str) -> None:
        await self._call(self._client.hset(key, field, value))

    async def hash_set_if_absent(self, key: str, field: str, value: str) -> bool:
        return bool(await self._call(self._client.hsetnx(key, field, value)))

    async def hash_get_all(self, key: str) -> dict[str, str]:
        return cast(dict[str, str], await self._call(self._client.hgetall(key)))

    async def hash_delete(self, key: str, field: str) -> None:
        await self._call(self._client.hdel(key, field))

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        await self._call(self._client.set(key, value, px=int(ttl * 1000) if ttl else None))

    async def get(self, key: str) -> str | None:
        return cast(str | None, await self._call(self._client.get(key)))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._call(self._client.delete(*keys))

    async def expire(self, key: str, ttl: float) -> None:
        await self._call(self._client.pexpire(key, int(ttl * 1000)))

    async def enqueue(self, submission: Submission) -> bool:
        flat = [item for pair in submission.entry.items() for item in pair]
        keys = (submission.record_key, submission.index_key, submission.stream)
        added = await self._call(
            self._client.eval(
                _ENQUEUE,
                len(keys),
                *keys,
                submission.record,
                int(submission.ttl * 1000),
                submission.index_value,
                submission.index_limit,
                submission.channel,
                *flat,
            )
        )
        return bool(added)

    async def stream_add(self, stream: str, fields: Mapping[str, str]) -> str:
        return cast(str, await self._call(self._client.xadd(stream, dict(fields))))  # type: ignore[arg-type]

    async def stream_append(self, stream: str, fields: Mapping[str, str], keep: int) -> str:
        entry_id = await self._call(
            self._client.xadd(stream, dict(fields), maxlen=max(keep, 1), approximate=True)  # type: ignore[arg-type]
        )
        return cast(str, entry_id)

    async def stream_before(self, stream: str, before: str | None, count: int) -> list[StreamEntry]:
        if count <= 0:
            return []
        newest = f"({before}" if before else "+"
        rows = cast(
            list[Any], await self._call(self._client.xrevrange(stream, max=newest, min="-", count=count))
        )
        return [StreamEntry(entry_id, fields) for entry_id, fields in rows]

    async def stream_range(
        self, stream: str, after: str | None = None, count: int | None = None
    ) -> list[StreamEntry]:
        start = f"({after}" if after else "-"
        rows = cast(list[Any], await self._call(self._client.xrange(stream, min=start, max="+", count=count)))
        return [StreamEntry(entry_id, fields) for entry_id, fields in rows]

    async def group_ensure(self, stream: str, group: str) -> None:
        try:
            await self._call(self._client.xgroup_create(stream, group, id="0", mkstream=True))
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def group_read(
        self, stream: str, group: str, consumer: str, count: int, block: float
    ) -> list[StreamEntry]:
        block_ms = int(min(block, MAX_BLOCK_SECONDS) * 1000)
        try:
            reply = cast(
                list[Any],
                await self._call(
                    self._client.xreadgroup(
                        group, consumer, {stream: ">"}, count=count, block=block_ms or None
                    ),
                    extra_time=block_ms / 1000,
                ),
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis lost its data (restarted without persistence): recreate the group.
            logger.warning("consumer group %s on %s was missing; recreating it", group, stream)
            await self.group_ensure(stream, group)
            return []
        return [StreamEntry(i, f) for _name, rows in reply or [] for i, f in rows if f is not None]

    async def group_claim_stale(
        self, stream: str, group: str, consumer: str, min_idle: float, count: int
    ) -> list[StreamEntry]:
        try:
            reply: list[Any] = await self._call(
                self._client.xautoclaim(stream, group, consumer, int(min_idle * 1000), "0-0", count=count)
            )
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                return []
            raise
        return [StreamEntry(i, f) for i, f in reply[1] if f is not None]

    async def group_touch(self, stream: str, group: str, consumer: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        try:
            await self._call(self._client.xclaim(stream, group, consumer, 0, list(ids), justid=True))
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise  # a lost group (Redis restarted empty) has nothing left to keep

    async def group_ack(self, stream: str, group: str, entry_id: str) -> None:
        try:
            await self._call(self._client.xack(stream, group, entry_id))
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise  # a lost group has nothing left to acknowledge

    async def hold_lease(self, key: str, owner: str, ttl: float) -> bool:
        held = await self._call(self._client.eval(_HOLD_LEASE, 1, key, owner, int(ttl * 1000)))
        return bool(held)

    async def release_lease(self, key: str, owner: str) -> None:
        await self._call(self._client.eval(_RELEASE_LEASE, 1, key, owner))

    async def stream_add_fenced(
        self, stream: str, fields: Mapping[str, str], lease: str, owner: str, marker: str, position: int
    ) -> Fenced:
        flat = [item for pair in fields.items() for item in pair]
        outcome = await self._call(
            self._client.eval(_FENCED_XADD, 3, lease, stream, marker, owner, position, *flat)
        )
        return _FENCED[int(outcome)]
