"""History as the services keep it: an agent's publisher that writes every sample at once, and
a host's recent samples read back through the gateway's reader (from synchronous tests too)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fleetdeck_agent.publisher import Publisher
from fleetdeck_common.broker import Broker, create_broker
from fleetdeck_common.history import DEFAULT_TIERS, HistoryStore, HistoryWriter, Record, parse_tiers
from fleetdeck_common.hoststore import HostStore, Observation
from fleetdeck_common.messages import CpuSample
from fleetdeck_gateway.history.reader import HistoryReader

TIERS = parse_tiers(DEFAULT_TIERS)


def publisher(broker: Broker) -> Publisher:
    """An agent's publisher that writes each sample's history with it (no holding back)."""
    return Publisher(
        HostStore(broker), HistoryStore(broker, TIERS), HistoryWriter(TIERS, flush_every=1, coarse_every=1)
    )


def reader(broker: Broker, clock: Callable[[], float] = time.time) -> HistoryReader:
    return HistoryReader(HistoryStore(broker, TIERS), clock)


def recent(redis_url: str, host: str, limit: int) -> list[CpuSample]:
    """The host's latest `limit` stored samples (no loop may be running)."""

    async def run() -> list[CpuSample]:
        async with create_broker(redis_url) as broker:
            return await reader(broker).recent(host, limit)

    return asyncio.run(run())


def publish_and_finish(redis_url: str, observation: Observation) -> None:
    """Publish one sample as an agent would, then stop that agent (its partial steps written)."""

    async def run() -> None:
        async with create_broker(redis_url) as broker:
            agent = publisher(broker)
            await agent.publish([observation], time.time())
            await agent.finish(time.time())

    asyncio.run(run())


def fill(redis_url: str, host: str, start: float, seconds: int, total: Callable[[int], float]) -> None:
    """One sample a second of `host` from `start` for `seconds`, written as an agent would have
    (tiers and rollups), its total `total(second)`; the agent then stops (partial steps written)."""

    async def run() -> None:
        async with create_broker(redis_url) as broker:
            store, writer = HistoryStore(broker, TIERS), HistoryWriter(TIERS)
            now = time.time()
            for second in range(seconds):
                writer.add(
                    host, start + second, Record(total(second), total(second), 40.0, 0.5, 20.0, 1e3, 2e3)
                )
                if second % 600 == 599:
                    await store.write(writer.take(host, now), now)
            await store.write(writer.finish(host, now), now)

    asyncio.run(run())
