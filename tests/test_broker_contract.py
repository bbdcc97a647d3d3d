"""One contract, two backends: the in-memory broker behaves like the Redis one.

Time moves without waiting: the memory broker runs on a fake clock, and on Redis the test's own
keys are aged by Redis itself (`tests/support/later.py`). TTL is far longer than a slow machine
takes between two calls; LATER is past it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from fleetdeck_common.broker import Broker, ByteRange, Reserve, SetRange, create_broker
from tests.support.later import Backend

TTL = 20.0
LATER = 35.0


@pytest.fixture
def broker(backend: Backend) -> Broker:
    return backend.broker


@pytest.fixture
def name() -> str:
    return f"test:{uuid.uuid4().hex}"


@pytest.fixture
def later(backend: Backend, name: str) -> Callable[[float], Awaitable[None]]:
    """Move this test's time on by some seconds."""
    return lambda seconds: backend.later(name + "*", seconds)


async def test_published_messages_reach_every_subscriber_in_order(broker: Broker, name: str) -> None:
    async with broker.subscribe([name, name + ":other"]) as first, broker.subscribe([name]) as second:
        # A subscription is live once it yields: nothing published from here on is missed.
        for i in range(5):
            await broker.publish(name, f"m{i}")
        await broker.publish(name + ":other", "x")
        got_first = [await asyncio.wait_for(anext(first), 5) for _ in range(6)]
        got_second = [await asyncio.wait_for(anext(second), 5) for _ in range(5)]
    assert [e.data for e in got_first] == ["m0", "m1", "m2", "m3", "m4", "x"]
    assert got_first[-1].channel == name + ":other"
    assert [e.data for e in got_second] == [f"m{i}" for i in range(5)]


async def test_capped_list_keeps_the_newest_oldest_first(broker: Broker, name: str) -> None:
    for i in range(10):
        await broker.push_capped(name, str(i), 4)
    assert await broker.read_list(name) == ["6", "7", "8", "9"]
    assert await broker.read_list(name + ":missing") == []


async def test_hash_operations(broker: Broker, name: str) -> None:
    await broker.hash_set(name, "a", "1")
    assert await broker.hash_set_if_absent(name, "a", "2") is False
    assert await broker.hash_set_if_absent(name, "b", "3") is True
    assert await broker.hash_get_all(name) == {"a": "1", "b": "3"}
    await broker.hash_delete(name, "a")
    assert await broker.hash_get_all(name) == {"b": "3"}


async def test_values_expire(broker: Broker, name: str, later: Callable[[float], Awaitable[None]]) -> None:
    await broker.set(name, "v", ttl=TTL)
    assert await broker.get(name) == "v"
    await later(LATER)
    assert await broker.get(name) is None
    await broker.set(name, "w")
    await broker.delete(name)
    assert await broker.get(name) is None


async def test_every_kind_of_key_expires(
    broker: Broker, name: str, later: Callable[[float], Awaitable[None]]
) -> None:
    await broker.push_capped(name + ":list", "a", 10)
    await broker.hash_set(name + ":hash", "f", "v")
    await broker.stream_add(name + ":stream", {"n": "1"})
    await broker.set(name + ":value", "v")
    for kind in ("list", "hash", "stream", "value"):
        await broker.expire(f"{name}:{kind}", TTL)
    await broker.expire(name + ":missing", TTL)  # nothing to expire is no error
    assert await broker.read_list(name + ":list") == ["a"]
    await later(LATER)
    assert await broker.read_list(name + ":list") == []
    assert await broker.hash_get_all(name + ":hash") == {}
    assert await broker.stream_range(name + ":stream") == []
    assert await broker.get(name + ":value") is None


async def test_setting_a_value_again_without_ttl_keeps_it(
    broker: Broker, name: str, later: Callable[[float], Awaitable[None]]
) -> None:
    await broker.set(name, "v", ttl=TTL)
    await broker.set(name, "w")
    await later(LATER)
    assert await broker.get(name) == "w"


async def test_setting_a_value_with_keep_ttl_keeps_its_expiry(
    broker: Broker, name: str, later: Callable[[float], Awaitable[None]]
) -> None:
    await broker.set(name, "v", ttl=TTL)
    await broker.set(name, "w", keep_ttl=True)
    await broker.set(name + ":plain", "x", keep_ttl=True)  # no expiry to keep: none after
    assert await broker.get(name) == "w"
    await later(LATER)
    assert await broker.get(name) is None
    assert await broker.get(name + ":plain") == "x"


async def test_stream_range_after_an_id(broker: Broker, name: str) -> None:
    ids = [await broker.stream_add(name, {"n": str(i)}) for i in range(5)]
    assert [e.fields["n"] for e in await broker.stream_range(name)] == ["0", "1", "2", "3", "4"]
    assert [e.fields["n"] for e in await broker.stream_range(name, ids[2])] == ["3", "4"]
    assert await broker.stream_range(name + ":missing") == []


async def test_stream_range_reads_in_pages(broker: Broker, name: str) -> None:
    ids = [await broker.stream_add(name, {"n": str(i)}) for i in range(7)]
    assert [e.fields["n"] for e in await broker.stream_range(name, count=3)] == ["0", "1", "2"]
    assert [e.fields["n"] for e in await broker.stream_range(name, ids[2], count=3)] == ["3", "4", "5"]
    assert [e.fields["n"] for e in await broker.stream_range(name, ids[5], count=3)] == ["6"]
    assert await broker.stream_range(name, ids[6], count=3) == []
    # Paging from id to id reads every entry once, in order.
    seen: list[str] = []
    after: str | None = None
    while page := await broker.stream_range(name, after, count=2):
        seen.extend(e.fields["n"] for e in page)
        after = page[-1].id
    assert seen == [str(i) for i in range(7)]
    assert await broker.stream_range(name + ":missing", count=2) == []


async def test_a_capped_stream_keeps_its_newest_entries_and_pages_newest_first(
    broker: Broker, name: str
) -> None:
    keep = 100
    ids = [await broker.stream_append(name, {"n": str(i)}, keep) for i in range(350)]
    assert [e.fields["n"] for e in await broker.stream_before(name, None, 3)] == ["349", "348", "347"]
    assert [e.fields["n"] for e in await broker.stream_before(name, ids[300], 2)] == ["299", "298"]
    assert [e.id for e in await broker.stream_before(name, ids[349], 1)] == [ids[348]]
    kept = await broker.stream_before(name, None, 1000)
    # At least `keep` stay; Redis trims in whole blocks (MAXLEN ~), so a block's worth more may.
    assert keep <= len(kept) < 2 * keep
    assert [e.fields["n"] for e in kept[:keep]] == [str(i) for i in range(349, 349 - keep, -1)]
    assert await broker.stream_before(name, ids[0], 5) == []
    assert await broker.stream_before(name + ":missing", None, 5) == []


async def test_consumer_group_shares_entries_and_claims_stale_ones(
    broker: Broker, name: str, later: Callable[[float], Awaitable[None]]
) -> None:
    group = "g"
    await broker.group_ensure(name, group)
    await broker.group_ensure(name, group)  # idempotent
    for i in range(4):
        await broker.stream_add(name, {"job": str(i)})
    a = await broker.group_read(name, group, "a", count=2, block=0.1)
    b = await broker.group_read(name, group, "b", count=5, block=0.1)
    assert [e.fields["job"] for e in a] == ["0", "1"]
    assert [e.fields["job"] for e in b] == ["2", "3"]
    assert await broker.group_read(name, group, "a", count=1, block=0.1) == []
    await broker.group_ack(name, group, a[0].id)
    # "a" keeps entry 1 alive; "b" goes silent, so "c" takes over its entries.
    await later(LATER)
    await broker.group_touch(name, group, "a", [a[1].id])
    claimed = await broker.group_claim_stale(name, group, "c", min_idle=TTL, count=10)
    assert sorted(e.fields["job"] for e in claimed) == ["2", "3"]
    assert await broker.group_claim_stale(name, group, "d", min_idle=TTL, count=10) == []


async def test_group_read_waits_for_new_entries(backend: Backend, name: str) -> None:
    broker = backend.broker
    await broker.group_ensure(name, "g")
    reader = asyncio.create_task(broker.group_read(name, "g", "a", count=1, block=2.0))
    while not await backend.reading():  # the entry must come while it waits
        await asyncio.sleep(0.01)
    await broker.stream_add(name, {"job": "late"})
    entries = await asyncio.wait_for(reader, 3)
    assert [e.fields["job"] for e in entries] == ["late"]


async def test_ping(broker: Broker) -> None:
    assert await broker.ping() is True


async def test_local_subscribers_share_one_redis_subscription(redis_url: str, name: str) -> None:
    """Fan-out happens in the process: two subscriptions to a channel are one subscriber to Redis."""
    observer = aioredis.Redis.from_url(redis_url, decode_responses=True)
    broker = create_broker(redis_url)
    async with broker, broker.subscribe([name]) as first, broker.subscribe([name, name + ":b"]) as second:
        counts = dict(await observer.pubsub_numsub(name, name + ":b"))
        assert counts == {name: 1, name + ":b": 1}
        await broker.publish(name, "m")
        assert (await asyncio.wait_for(anext(first), 5)).data == "m"
        assert (await asyncio.wait_for(anext(second), 5)).data == "m"
    await observer.aclose()


async def test_a_channel_nobody_here_wants_any_more_is_let_go_in_redis(redis_url: str, name: str) -> None:
    """The gateway takes full samples in only while someone watches: once its last local
    subscriber of a channel leaves, Redis stops sending it, and the other channels go on."""
    observer = aioredis.Redis.from_url(redis_url, decode_responses=True)
    broker = create_broker(redis_url)
    try:
        async with broker, broker.subscribe([name]) as kept:
            async with broker.subscribe([name + ":b"]):
                assert dict(await observer.pubsub_numsub(name + ":b")) == {name + ":b": 1}
            async with asyncio.timeout(5):
                while dict(await observer.pubsub_numsub(name + ":b")) != {name + ":b": 0}:
                    await asyncio.sleep(0.01)
            assert dict(await observer.pubsub_numsub(name)) == {name: 1}
            await broker.publish(name, "still")
            assert (await asyncio.wait_for(anext(kept), 5)).data == "still"
            async with broker.subscribe([name + ":b"]) as again:  # and taken up again when wanted
                await broker.publish(name + ":b", "back")
                assert (await asyncio.wait_for(anext(again), 5)).data == "back"
    finally:
        await observer.aclose()


async def test_more_concurrent_calls_than_connections_wait_for_one_instead_of_failing(
    redis_url: str, name: str
) -> None:
    """A burst bigger than the pool is queued, not reported as the broker being unreachable."""
    async with create_broker(redis_url, connections=4, timeout=10) as broker:
        await broker.set(name, "v")
        values = await asyncio.gather(*(broker.get(name) for _ in range(300)))
        assert values == ["v"] * 300


async def test_byte_strings_are_reserved_written_in_place_and_read_by_range(
    broker: Broker, name: str
) -> None:
    await broker.write_batch([Reserve(name, 16, TTL), SetRange(name, 4, b"\x01\x02\xff")])
    await broker.write_batch([Reserve(name, 16, TTL), SetRange(name, 6, b"\x00\x80")])  # reserved: kept
    got = await broker.read_ranges([ByteRange(name, 0, 16), ByteRange(name, 5, 7), ByteRange(name, 3, 3)])
    assert got == [bytes(4) + b"\x01\x02\x00\x80" + bytes(8), b"\x02\x00", b""]
    assert await broker.read_ranges([ByteRange(name + ":missing", 0, 4), ByteRange(name, 14, 40)]) == [
        b"",
        bytes(2),
    ]


async def test_set_range_past_the_end_fills_the_gap_with_zeros(broker: Broker, name: str) -> None:
    await broker.write_batch([SetRange(name, 3, b"ab"), SetRange(name, 0, b"z")])
    assert await broker.read_ranges([ByteRange(name, 0, 10)]) == [b"z\x00\x00ab"]


async def test_reserved_byte_strings_expire(
    broker: Broker, name: str, later: Callable[[float], Awaitable[None]]
) -> None:
    await broker.write_batch([Reserve(name, 8, TTL), SetRange(name, 0, b"x")])
    await later(LATER)
    assert await broker.read_ranges([ByteRange(name, 0, 8)]) == [b""]
