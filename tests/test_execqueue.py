"""The exec queue as the gateway sees it (`feeds.execqueue`), on the memory broker with a fake
clock: workers alive told to `jobs` subscribers on a change, queued jobs expired when overdue."""

from __future__ import annotations

import json

from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.jobs import JobStore, WorkerInfo
from fleetdeck_common.messages import Job
from fleetdeck_common.targets import TargetPolicy
from fleetdeck_gateway.feeds.execqueue import QueueWatch
from fleetdeck_gateway.metrics import GatewayMetrics
from fleetdeck_gateway.ws.clients import Client, Clients
from tests.support.fakes import VIEWER, FakeClock


def queued(job_id: str, until: float) -> Job:
    return Job(
        job=job_id,
        targets="127.0.0.[2-3]",
        command="id",
        hosts=2,
        by="alice",
        ts=1000.0,
        state="queued",
        queued_until=until,
    )


async def state(store: JobStore, job_id: str) -> str | None:
    job = await store.load(job_id)
    return None if job is None else job.state


async def frames(client: Client) -> list[dict[str, object]]:
    return [json.loads(f) for f in await client.outbox.take()] if len(client.outbox) else []


async def test_workers_coming_and_going_are_told_to_jobs_subscribers_only() -> None:
    store, clock = JobStore(MemoryBroker()), FakeClock(1000.0)
    clients = Clients(GatewayMetrics(lambda: 0.0))
    follower, other = Client(VIEWER, topics={"jobs"}), Client(VIEWER, topics={"chat"})
    for client in (follower, other):
        clients.add(client)
    queue = QueueWatch(store, clients, TargetPolicy(), clock)
    await queue.check()
    assert await frames(follower) == [] and queue.workers == []  # none before, none now
    await store.announce_worker(WorkerInfo("w1", 1000.0, 5.0, 0))
    await queue.check()
    assert await frames(follower) == [{"type": "workers", "alive": 1, "names": ["w1"]}]
    await queue.check()  # no change: no frame
    assert await frames(follower) == []
    clock.now = 1006.0  # w1's announcement is older than its ttl
    await queue.check()
    assert await frames(follower) == [{"type": "workers", "alive": 0, "names": []}]
    assert await frames(other) == []
    assert json.loads(queue.frame()) == {"type": "workers", "alive": 0, "names": []}


async def test_a_queued_job_is_expired_once_overdue_and_one_no_longer_queued_is_left_alone() -> None:
    store, clock = JobStore(MemoryBroker()), FakeClock(1000.0)
    queue = QueueWatch(store, Clients(GatewayMetrics(lambda: 0.0)), TargetPolicy(), clock)
    waiting, taken = queued("a" * 16, 1010.0), queued("b" * 16, 1010.0)
    for job in (waiting, taken):
        await store.submit(job)
    await queue.load()  # both were queued before this gateway started
    queue.observe(taken.model_copy(update={"state": "running"}))  # a worker took this one
    await queue.check()
    assert await state(store, waiting.job) == "queued"
    clock.now = 1011.0
    await queue.check()
    expired = await store.load(waiting.job)
    assert expired is not None and (expired.state, expired.summary) == ("expired", {"cancelled": 2})
    assert await state(store, taken.job) == "queued"  # as stored: a worker has it, it is not expired here
