"""Look at what the services wrote through the same stores they use, from synchronous tests too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from fleetdeck_common.broker import create_broker
from fleetdeck_common.hoststore import HostStore
from fleetdeck_common.jobs import JobStore

T = TypeVar("T")


def in_hosts(redis_url: str, action: Callable[[HostStore], Awaitable[T]]) -> T:
    """Run `action` on a HostStore over `redis_url` and return its result (no loop may be running)."""

    async def run() -> T:
        async with create_broker(redis_url) as broker:
            return await action(HostStore(broker))

    return asyncio.run(run())


def in_jobs(redis_url: str, action: Callable[[JobStore], Awaitable[T]]) -> T:
    """Run `action` on a JobStore over `redis_url` and return its result (no loop may be running)."""

    async def run() -> T:
        async with create_broker(redis_url) as broker:
            return await action(JobStore(broker))

    return asyncio.run(run())


@asynccontextmanager
async def job_store(redis_url: str) -> AsyncIterator[JobStore]:
    """A JobStore over `redis_url`, for async tests."""
    async with create_broker(redis_url) as broker:
        yield JobStore(broker)
