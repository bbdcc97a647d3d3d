"""Redis backend (redis-py asyncio): one pub/sub connection per process, retries with backoff."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .base import Broker, BrokerUnavailable, ByteRange, Event, StreamEntry, Write
from .redis_denied import NamingClient, Refusals, is_refusal
from .redis_errors import TLS_SCHEME, explain
from .redis_pubsub import TRANSIENT, SharedSubscription
from .redis_writes import queue_reads, queue_write, replies
from .sentinel import SCHEME as SENTINEL_SCHEME
from .sentinel import sentinel_pool

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How long a blocking stream read may wait; the socket timeout must stay above it.
MAX_BLOCK_SECONDS = 2.0


class RedisBroker:
    """The broker over Redis. Code that needs Redis itself (a server-side script) uses `client`
    through `call`, so it gets the same time bound and outage reporting as every command here."""

    def __init__(self, url: str, connections: int = 50, timeout: float = 5.0) -> None:
        self._timeout = timeout
        self._tls = url.startswith(TLS_SCHEME)
        self._down_since: float | None = None
        self._down_reason = ""
        self._answered = False  # once Redis has answered, a dropped connection is an outage
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
        self._client: aioredis.Redis = NamingClient.from_pool(pool)
        self.refusals = Refusals()  # sticky: a missing grant needs a new ACL and a restart
        self._subscription = SharedSubscription(self._client, timeout)

    @property
    def client(self) -> aioredis.Redis:
        """The pooled client every command of this broker uses."""
        return self._client

    @property
    def reconnects(self) -> int:
        return self._subscription.reconnects

    @property
    def down_reason(self) -> str:
        return self.refusals.reason or self._down_reason

    async def __aenter__(self) -> Broker:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    async def connect(self) -> None:
        # Nothing to do eagerly: services must start (and report not ready) while Redis is down.
        return None

    async def disconnect(self) -> None:
        await self._subscription.close()
        await self._client.aclose()

    async def call(self, awaitable: Awaitable[T], extra_time: float = 0.0) -> T:
        """Every command goes through here: bounded in time, outages logged once each way."""
        try:
            result = await asyncio.wait_for(awaitable, self._timeout + extra_time)
        except TimeoutError as exc:
            self._went_down(f"no answer within {self._timeout:g}s")
            raise BrokerUnavailable(f"Redis did not answer within {self._timeout:g}s") from exc
        except TRANSIENT as exc:
            if "No connection available" in str(exc):
                # Redis is fine; this process has every pooled connection busy.
                raise BrokerUnavailable(
                    f"every Redis connection of this process stayed busy for {self._timeout:g}s"
                ) from exc
            why = self._went_down_on(exc)
            raise BrokerUnavailable(f"Redis unreachable: {why}") from exc
        except ResponseError as exc:
            if not is_refusal(exc):
                raise
            raise self.refusals.denied(exc) from exc
        self._answered = True
        if self._down_since is not None:
            logger.warning("Redis answers again (after %.1fs)", time.monotonic() - self._down_since)
            self._down_since = None
            self._down_reason = ""
        return result

    def _went_down_on(self, exc: BaseException) -> str:
        why, mistake = explain(exc, self._tls, self._answered)
        if mistake:
            # Waiting will not fix it: say so loudly, once, and again only if the reason changes.
            if why != self._down_reason:
                logger.error("cannot use Redis: %s; retrying until that is fixed", why)
            self._down_since = self._down_since or time.monotonic()
            self._down_reason = why
            return why
        self._went_down(why)
        return why

    def _went_down(self, why: str) -> None:
        self._down_reason = why
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning("Redis unreachable (%s); retrying quietly until it answers", why)

    async def ping(self) -> bool:
        if self.refusals.reason:
            return False
        try:
            answered = bool(await asyncio.wait_for(self._client.ping(), 2.0))
        except TimeoutError:
            self._down_reason = "no answer within 2s"
            return False
        except TRANSIENT as exc:
            why, mistake = explain(exc, self._tls, self._answered)
            if mistake:
                self._went_down_on(exc)
            self._down_reason = why
            return False
        self._answered = self._answered or answered
        if answered and self._down_since is None:
            self._down_reason = ""
        return answered

    # --- pub/sub: one connection for every local subscriber --------------------------------

    async def publish(self, channel: str, data: str) -> None:
        await self.call(self._client.publish(channel, data))

    def subscribe(self, channels: Sequence[str]) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        return self._subscription.subscribe(channels)

    # --- keys ------------------------------------------------------------------------------

    async def push_capped(self, key: str, value: str, limit: int) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.rpush(key, value)
            pipe.ltrim(key, -limit, -1)
            await self.call(pipe.execute())

    async def write_batch(self, writes: Sequence[Write]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for write in writes:
                queue_write(pipe, write)
            await self.call(pipe.execute())

    async def read_ranges(self, ranges: Sequence[ByteRange]) -> list[bytes]:
        async with self._client.pipeline(transaction=False) as pipe:
            queue_reads(pipe, ranges)
            return replies(ranges, await self.call(pipe.execute()) if len(pipe) else [])

    async def read_list(self, key: str) -> list[str]:
        return cast(list[str], await self.call(self._client.lrange(key, 0, -1)))

    async def hash_set(self, key: str, field: str, value: str) -> None:
        await self.call(self._client.hset(key, field, value))

    async def hash_set_if_absent(self, key: str, field: str, value: str) -> bool:
        return bool(await self.call(self._client.hsetnx(key, field, value)))

    async def hash_get_all(self, key: str) -> dict[str, str]:
        return cast(dict[str, str], await self.call(self._client.hgetall(key)))

    async def hash_delete(self, key: str, field: str) -> None:
        await self.call(self._client.hdel(key, field))

    async def set(self, key: str, value: str, ttl: float | None = None, keep_ttl: bool = False) -> None:
        px = int(ttl * 1000) if ttl else None
        await self.call(self._client.set(key, value, px=px, keepttl=keep_ttl and px is None))

    async def get(self, key: str) -> str | None:
        return cast(str | None, await self.call(self._client.get(key)))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self.call(self._client.delete(*keys))

    async def expire(self, key: str, ttl: float) -> None:
        await self.call(self._client.pexpire(key, int(ttl * 1000)))

    # --- streams ---------------------------------------------------------------------------

    async def stream_add(self, stream: str, fields: Mapping[str, str]) -> str:
        return cast(str, await self.call(self._client.xadd(stream, dict(fields))))  # type: ignore[arg-type]

    async def stream_append(self, stream: str, fields: Mapping[str, str], keep: int) -> str:
        entry_id = await self.call(
            self._client.xadd(stream, dict(fields), maxlen=max(keep, 1), approximate=True)  # type: ignore[arg-type]
        )
        return cast(str, entry_id)

    async def stream_before(self, stream: str, before: str | None, count: int) -> list[StreamEntry]:
        if count <= 0:
            return []
        newest = f"({before}" if before else "+"
        rows = cast(
            list[Any], await self.call(self._client.xrevrange(stream, max=newest, min="-", count=count))
        )
        return [StreamEntry(entry_id, fields) for entry_id, fields in rows]

    async def stream_range(
        self, stream: str, after: str | None = None, count: int | None = None
    ) -> list[StreamEntry]:
        start = f"({after}" if after else "-"
        rows = cast(list[Any], await self.call(self._client.xrange(stream, min=start, max="+", count=count)))
        return [StreamEntry(entry_id, fields) for entry_id, fields in rows]

    async def group_ensure(self, stream: str, group: str) -> None:
        try:
            await self.call(self._client.xgroup_create(stream, group, id="0", mkstream=True))
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
                await self.call(
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
            reply: list[Any] = await self.call(
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
            await self.call(self._client.xclaim(stream, group, consumer, 0, list(ids), justid=True))
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise  # a lost group (Redis restarted empty) has nothing left to keep

    async def group_ack(self, stream: str, group: str, entry_id: str) -> None:
        try:
            await self.call(self._client.xack(stream, group, entry_id))
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise  # a lost group has nothing left to acknowledge
