"""Brokers under test whose time moves forward without waiting: the memory broker's clock, or
Redis's own expiry and idle times for the keys of one test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from fleetdeck_common.broker import Broker, create_broker
from fleetdeck_common.broker.memory import MemoryBroker
from tests.support.fakes import FakeClock


async def redis_later(client: aioredis.Redis, pattern: str, seconds: float) -> None:
    """Do to the keys matching `pattern` what `seconds` of waiting would: each expiry comes that
    much closer (Redis itself drops a key whose expiry falls due), and each entry pending in a
    consumer group has been idle that much longer."""
    shift = int(seconds * 1000)
    async for key in client.scan_iter(match=pattern):
        remaining = await client.pttl(key)
        if remaining >= 0:  # -1: no expiry; -2: gone already
            # An expiry at or before now deletes the key, as Redis does once it falls due.
            await client.pexpire(key, remaining - shift)
        if await client.type(key) != "stream":  # "none" once the key has expired
            continue
        for group in await client.xinfo_groups(key):
            pending: list[dict[str, Any]] = await client.xpending_range(key, group["name"], "-", "+", 10_000)
            for entry in pending:
                idle = int(entry["time_since_delivered"]) + shift
                await client.xclaim(
                    key, group["name"], entry["consumer"], 0, [entry["message_id"]], idle=idle, justid=True
                )


@dataclass
class Backend:
    """A broker under test, with the means to move its time and to see a blocked reader."""

    broker: Broker
    later: Callable[[str, float], Awaitable[None]]  # (key pattern, seconds)
    reading: Callable[[], Awaitable[bool]]  # is a read of this broker blocked, waiting for entries?


@asynccontextmanager
async def open_backend(kind: str, redis_url: str) -> AsyncIterator[Backend]:
    """A memory broker on a fake clock, or a Redis broker (`kind` is "memory" or "redis")."""
    if kind == "memory":
        clock = FakeClock(1_000_000.0)

        async def advance(_pattern: str, seconds: float) -> None:
            clock.now += seconds

        async def started() -> bool:
            await asyncio.sleep(0)  # the reader's first step takes it to its wait
            return True

        async with MemoryBroker(clock) as memory:
            yield Backend(memory, advance, started)
        return
    observer = aioredis.Redis.from_url(redis_url, decode_responses=True)
    tag = f"contract-{uuid.uuid4().hex}"  # names this broker's connections in CLIENT LIST

    async def later(pattern: str, seconds: float) -> None:
        await redis_later(observer, pattern, seconds)

    async def reading() -> bool:
        clients = await observer.client_list()
        return any(c["name"] == tag and "b" in c["flags"] and c["cmd"] == "xreadgroup" for c in clients)

    try:
        async with create_broker(f"{redis_url}{'&' if '?' in redis_url else '?'}client_name={tag}") as broker:
            yield Backend(broker, later, reading)
    finally:
        await observer.aclose()
