"""The evaluation lease and the fenced commit, on each broker backend: a holder whose lease lapsed
goes on with what it holds when no other gateway committed since, and is refused (and reads the
state again) when one did; on real Redis, the lease is renewed while an evaluation runs long."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence

import pytest
import redis.asyncio as aioredis

from fleetdeck_common.alerts.rules import parse_rules
from fleetdeck_common.messages import Alert, HostInfo
from fleetdeck_gateway.alerts.evaluation import Key, Tracked
from fleetdeck_gateway.alerts.evaluator import AlertEvaluator
from fleetdeck_gateway.alerts.store import AlertStore
from fleetdeck_gateway.feeds.fleet import Latest
from tests.conftest import in_database
from tests.support.later import Backend, open_backend
from tests.support.waiting import eventually

DB = 7  # a database of the session Redis no other test uses: these tests clear its alert keys
LEASE = "*:alerts:lease"  # a pattern: keys are named by their stores alone
ALERT_KEYS = "*:alerts:*"
RULES = parse_rules("rules:\n  - {name: hot, expr: total > 90}\n")
HOSTS = [HostInfo(host=h, online=True, last_seen=0, cpus=1, labels={}, address=h) for h in ("web-1", "web-2")]


@pytest.fixture(params=["memory", "redis"])
async def fresh(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    url = "" if request.param == "memory" else in_database(request.getfixturevalue("redis_url"), DB)
    if url:
        await _clear(url)
    async with open_backend(request.param, url) as backend:
        yield backend


async def _clear(url: str) -> None:
    """The alert keys a test before left in this database, gone."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        async for key in client.scan_iter(match=ALERT_KEYS):
            await client.delete(key)
    finally:
        await client.aclose()


class CountingStore(AlertStore):
    """The store, counting how often the whole state is read."""

    reads = 0

    async def states(self) -> dict[Key, Tracked]:
        self.reads += 1
        return await super().states()


class Samples:
    """The latest sample of each host, shared by the gateways under test."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def set(self, host: str, total: float) -> None:
        self.totals[host] = total

    def latest(self, host: str) -> Latest | None:
        total = self.totals.get(host)
        return None if total is None else Latest(total=total, ts=time.time())


def _gateway(
    store: AlertStore, owner: str, samples: Samples, lease_ttl: float = 5.0, interval: float = 1.0
) -> AlertEvaluator:
    return AlertEvaluator(
        store,
        owner,
        lambda: RULES,
        lambda: HOSTS,
        samples.latest,
        _NoSink(),
        lease_ttl=lease_ttl,
        interval=interval,
        settle=0.0,
    )


class _NoSink:
    def evaluated(self, changed: Sequence[Alert], firing: Sequence[Alert]) -> None:
        return None


async def _transitions(store: AlertStore) -> list[tuple[str, str]]:
    return [(a.host, a.state) for a in await store.recent()]


async def test_a_holder_whose_lease_lapsed_goes_on_without_reading_the_state_again(fresh: Backend) -> None:
    store, samples = CountingStore(fresh.broker), Samples()
    gateway = _gateway(store, "gateway-a", samples)
    samples.set("web-1", 95)
    await gateway.tick()
    assert await _transitions(store) == [("web-1", "firing")] and store.reads == 1
    await fresh.later(LEASE, 6.0)  # starved past its lease's TTL; no other gateway took it
    samples.set("web-1", 20)
    await gateway.tick()
    assert await _transitions(store) == [("web-1", "firing"), ("web-1", "resolved")]
    assert store.reads == 1 and gateway.holding


async def test_an_evaluation_after_the_lease_lapsed_is_not_committed_when_another_gateway_committed(
    fresh: Backend,
) -> None:
    samples = Samples()
    first_store, second_store = CountingStore(fresh.broker), AlertStore(fresh.broker)
    first, second = _gateway(first_store, "gateway-a", samples), _gateway(second_store, "gateway-b", samples)
    samples.set("web-1", 95)
    await first.tick()
    await fresh.later(LEASE, 6.0)
    samples.set("web-1", 20)
    await second.tick()  # takes the lease over and resolves what the first one fired
    await second.release()
    samples.set("web-2", 99)
    await first.tick()  # re-takes the free lease, but the state it holds is behind: refused
    assert not first.holding
    assert await _transitions(first_store) == [("web-1", "firing"), ("web-1", "resolved")]
    await first.tick()  # reads the state again and goes on from it
    assert first_store.reads == 2
    assert await _transitions(first_store) == [
        ("web-1", "firing"),
        ("web-1", "resolved"),
        ("web-2", "firing"),
    ]


async def test_the_lease_is_renewed_while_an_evaluation_runs_past_its_ttl(redis_url: str) -> None:
    await _clear(in_database(redis_url, DB))
    async with open_backend("redis", in_database(redis_url, DB)) as backend:
        store, samples = AlertStore(backend.broker), Samples()
        entered, release = threading.Event(), threading.Event()

        def slow(host: str) -> Latest | None:
            entered.set()
            release.wait(60)  # an evaluation held up (a starved gateway) until the test lets it go
            return samples.latest(host)

        gateway = AlertEvaluator(
            store,
            "gateway-a",
            lambda: RULES,
            lambda: HOSTS,
            slow,
            _NoSink(),
            lease_ttl=2.0,
            interval=0.2,
            settle=0,
        )
        samples.set("web-1", 95)
        task = asyncio.create_task(gateway.run())
        try:
            assert await asyncio.to_thread(entered.wait, 60), "the evaluation never began"
            deadline = time.monotonic() + 3 * 2.0  # well past the lease's TTL
            while time.monotonic() < deadline:
                assert not await store.hold_lease("gateway-b", 2.0), "the lease lapsed during the evaluation"
                await asyncio.sleep(0.2)
            release.set()
            await eventually(lambda: _transitions(store), 60, "the held-up evaluation's commit")
            assert await _transitions(store) == [("web-1", "firing")]
        finally:
            release.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
