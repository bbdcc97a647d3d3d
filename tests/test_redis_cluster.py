"""Sharded pub/sub on a real Redis Cluster of three masters on loopback (docs/scaling.md): a
subscriber keeps receiving samples on group channels across a master's restart and a slot's move,
and says where messages may have been missed."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot

from fleetdeck_common import topics
from fleetdeck_common.broker import GAP, Event
from fleetdeck_common.broker.redis_sharded import ShardedSubscription
from fleetdeck_common.messages import CpuSample, dump
from testbed.rediscluster import RedisCluster, missing_reason
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(missing_reason() is not None, reason=f"no Redis Cluster here: {missing_reason()}"),
]

# Group channels as docs/scaling.md names them: the sample channel, a hash tag per group of hosts.
GROUPS = [f"{topics.CPU_CHANNEL}:{{g{n:04d}}}" for n in range(12)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    nodes = RedisCluster(Path(tmp_path_factory.mktemp("cluster")))
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@dataclass
class Received:
    """What the subscriber got: samples per channel, and gaps."""

    samples: Counter[str] = field(default_factory=Counter)
    gaps: int = 0

    def more_than(self, before: Counter[str], channels: list[str], by: int = 3) -> bool:
        return not self.behind(before, channels, by)

    def behind(self, before: Counter[str], channels: list[str], by: int = 3) -> list[str]:
        """The channels that got fewer than `by` samples since `before`."""
        return [c for c in channels if self.samples[c] < before[c] + by]

    async def until_more(self, channels: list[str], within: float, what: str) -> None:
        """Until each of `channels` has had 3 more samples; a failure names those that had not."""
        before = Counter(self.samples)
        try:
            await eventually(lambda: self.more_than(before, channels), within, what)
        except TimeoutError:
            raise AssertionError(f"{what}: no samples since for {self.behind(before, channels)}") from None


async def _publish(client: ClusterClient, stop: asyncio.Event) -> None:
    """Every group's sample every 50 ms, each channel on its own (a dead master delays only its own)."""
    sequence = 0

    async def one(channel: str) -> None:
        sample = CpuSample(host=channel, ts=sequence, total=1, percpu=[1.0], mem=1, load=[0, 0, 0])
        with contextlib.suppress(Exception):  # its master is down: an agent retries next round
            await asyncio.wait_for(client.spublish(channel, dump(sample)), 0.5)

    while not stop.is_set():
        sequence += 1
        await asyncio.gather(*(one(channel) for channel in GROUPS))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


async def _collect(events: AsyncIterator[Event], received: Received) -> None:
    async for event in events:
        if event is GAP:
            received.gaps += 1
        else:
            CpuSample.model_validate_json(event.data)
            received.samples[event.channel] += 1


@contextlib.asynccontextmanager
async def _running(cluster: RedisCluster) -> AsyncIterator[Received]:
    """A subscriber to every group and a publisher to them, until the block ends."""
    subscriber_client = ClusterClient.from_url(cluster.url, decode_responses=True)
    publisher_client = ClusterClient.from_url(cluster.url, decode_responses=True)
    subscription = ShardedSubscription(subscriber_client)
    received, stop = Received(), asyncio.Event()
    try:
        async with subscription.subscribe(GROUPS) as events:
            tasks = [
                asyncio.create_task(_collect(events, received)),
                asyncio.create_task(_publish(publisher_client, stop)),
            ]
            try:
                await eventually(lambda: received.more_than(Counter(), GROUPS, 1), 15, "every group")
                yield received
            finally:
                stop.set()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await subscription.close()
        assert not subscription.reading, "the sharded subscription's reader outlived close()"
        await subscriber_client.aclose()
        await publisher_client.aclose()


def _groups_on(cluster: RedisCluster) -> dict[int, list[str]]:
    served: dict[int, list[str]] = {port: [] for port in cluster.ports}
    for channel in GROUPS:
        served[cluster.owner(key_slot(channel.encode()))].append(channel)
    return served


def test_groups_fall_on_every_master(cluster: RedisCluster) -> None:
    """The test below means something only if every master serves some group."""
    assert all(_groups_on(cluster).values()), _groups_on(cluster)


async def test_samples_keep_coming_across_a_master_restart(cluster: RedisCluster) -> None:
    served = _groups_on(cluster)
    victim = cluster.ports[1]
    healthy = [c for port, channels in served.items() if port != victim for c in channels]
    async with _running(cluster) as received:
        gaps = received.gaps
        cluster.kill_node(victim)
        await received.until_more(healthy, 15, "the healthy masters' groups")
        await asyncio.to_thread(cluster.start_node, victim)
        await received.until_more(GROUPS, 30, "every group after the restart")
        assert received.gaps > gaps, "a lost master's samples were missed without a GAP"


async def test_samples_keep_coming_across_a_slot_move(cluster: RedisCluster) -> None:
    served = _groups_on(cluster)
    channel = served[cluster.ports[0]][0]
    slot, target = key_slot(channel.encode()), cluster.ports[2]
    async with _running(cluster) as received:
        gaps = received.gaps
        await asyncio.to_thread(cluster.move_slot, slot, target)
        await received.until_more(GROUPS, 30, "every group after the move")
        assert channel in cluster.command(target, "PUBSUB", "SHARDCHANNELS")
        assert channel not in cluster.command(cluster.ports[0], "PUBSUB", "SHARDCHANNELS")
        assert received.gaps > gaps, "a moved slot's samples were missed without a GAP"
