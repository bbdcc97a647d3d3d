"""One contract, two job stores: the job rules on the memory broker behave like their Lua twins on
Redis, and what is built on them (submitting, retention, expiry, workers) the same on both.

Time moves without waiting, as in test_broker_contract.py: a fake clock for the memory broker, and
Redis's own expiry and idle times for the test's keys (`tests/support/later.py`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from fleetdeck_common.broker import Broker
from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.jobs import (
    JOB_RETENTION_SECONDS,
    Fenced,
    JobRules,
    JobStore,
    Submission,
    WorkerInfo,
    rules_for,
)
from fleetdeck_common.jobs.expiry import expire, overdue
from fleetdeck_common.messages import Job, Outcome, Result
from fleetdeck_common.targets import TargetPolicy
from tests.support.later import Backend

TTL = 20.0
LATER = 35.0
POLICY = TargetPolicy.from_entries(["127.0.0.0/8"])
OK = Outcome(status="ok", exit_code=0, stdout="x\n", stderr="", duration_ms=1, truncated=False)


@pytest.fixture
def broker(backend: Backend) -> Broker:
    return backend.broker


@pytest.fixture
def rules(broker: Broker) -> JobRules:
    return rules_for(broker)


@pytest.fixture
def store(broker: Broker) -> JobStore:
    return JobStore(broker)


@pytest.fixture
def name() -> str:
    return f"test:{uuid.uuid4().hex}"


@pytest.fixture
def later(backend: Backend, name: str) -> Callable[[float], Awaitable[None]]:
    """Move time on by some seconds for every key naming this test's `name` (job ids included)."""
    return lambda seconds: backend.later(f"*{name}*", seconds)


def _submission(name: str, record: str) -> Submission:
    return Submission(
        record_key=name + ":record",
        record=record,
        ttl=60,
        index_key=name + ":index",
        index_value=record,
        index_limit=2,
        stream=name + ":queue",
        entry={"job": record},
        channel=name + ":announce",
    )


def _job(job_id: str, targets: str = "127.0.0.2-3", ts: float = 1000.0, **changes: object) -> Job:
    job = Job(job=job_id, targets=targets, command="x", hosts=2, by="t", ts=ts, state="queued")
    return job.model_copy(update=changes)


async def test_enqueue_writes_everything_once(rules: JobRules, broker: Broker, name: str) -> None:
    async with broker.subscribe([name + ":announce"]) as announced:
        assert await rules.enqueue(_submission(name, "one"))
        assert not await rules.enqueue(_submission(name, "one-again"))  # the record exists: a retry
        await broker.delete(name + ":record")
        assert await rules.enqueue(_submission(name, "two"))
        await broker.delete(name + ":record")
        assert await rules.enqueue(_submission(name, "three"))
        assert [(await asyncio.wait_for(anext(announced), 5)).data for _ in range(3)] == [
            "one",
            "two",
            "three",
        ]
    assert await broker.get(name + ":record") == "three"
    assert await broker.read_list(name + ":index") == ["two", "three"]  # capped at index_limit
    assert [e.fields["job"] for e in await broker.stream_range(name + ":queue")] == ["one", "two", "three"]


async def test_a_lease_has_one_holder_and_fences_writes(
    rules: JobRules, broker: Broker, name: str, later: Callable[[float], Awaitable[None]]
) -> None:
    lease, stream, marker = name + ":lease", name + ":stream", name + ":written"
    assert await rules.append_fenced(stream, {"n": "0"}, lease, "a", marker, 1) is Fenced.NO_LEASE
    assert await rules.hold_lease(lease, "a", ttl=5)
    assert await rules.hold_lease(lease, "a", ttl=5)  # renewing is holding
    assert not await rules.hold_lease(lease, "b", ttl=5)
    assert await rules.append_fenced(stream, {"n": "1"}, lease, "a", marker, 1) is Fenced.WRITTEN
    assert await rules.append_fenced(stream, {"n": "2"}, lease, "b", marker, 2) is Fenced.NOT_HOLDER
    await rules.release_lease(lease, "b")  # not b's to release
    assert not await rules.hold_lease(lease, "b", ttl=5)
    await rules.release_lease(lease, "a")
    assert await rules.hold_lease(lease, "b", ttl=TTL)
    await later(LATER)
    assert await rules.hold_lease(lease, "a", ttl=5)  # b's lease ran out
    assert [e.fields["n"] for e in await broker.stream_range(stream)] == ["1"]


async def test_a_fenced_append_is_idempotent_by_position(
    rules: JobRules, broker: Broker, name: str, later: Callable[[float], Awaitable[None]]
) -> None:
    """A retried append (say, after the publish that follows it failed) never stores twice."""
    lease, stream, marker = name + ":lease", name + ":stream", name + ":written"
    assert await rules.hold_lease(lease, "w", ttl=5)
    outcomes = [
        await rules.append_fenced(stream, {"seq": str(seq)}, lease, "w", marker, seq)
        for seq in (1, 1, 2, 3, 2, 3)
    ]
    assert outcomes == [
        Fenced.WRITTEN,
        Fenced.DUPLICATE,
        Fenced.WRITTEN,
        Fenced.WRITTEN,
        Fenced.DUPLICATE,
        Fenced.DUPLICATE,
    ]
    assert [e.fields["seq"] for e in await broker.stream_range(stream)] == ["1", "2", "3"]
    await broker.expire(marker, TTL)  # the marker keeps its retention when it moves on
    assert await rules.append_fenced(stream, {"seq": "4"}, lease, "w", marker, 4) is Fenced.WRITTEN
    await later(LATER)
    assert await broker.get(marker) is None


async def test_a_job_submitted_twice_is_stored_and_listed_once(store: JobStore, name: str) -> None:
    # Finished already, so a worker that took it from the queue would only acknowledge it (the
    # enqueue test above shows what is queued); the Redis backend's database has no worker anyway.
    job = _job(name, state="cancelled")
    await store.submit(job)
    await store.submit(job.model_copy(update={"command": "y"}))  # a retried submission
    assert (await store.load(name)) == job
    assert [j.job for j in await store.recent(500)].count(name) == 1


async def test_a_finished_job_is_kept_for_its_retention_then_gone(
    store: JobStore, name: str, later: Callable[[float], Awaitable[None]]
) -> None:
    job = _job(name)
    await store.announce(job)
    assert await store.hold_lease(name, "w", TTL)
    assert await store.mark_started(name, "127.0.0.2", "w")
    assert await store.append(Result.of(name, 1, "127.0.0.2", OK), "w", 1) is Fenced.WRITTEN
    await store.retain(name)
    await later(JOB_RETENTION_SECONDS - 60)
    assert await store.load(name) == job
    assert [r.seq for r in (await store.read_results(name)).results] == [1]
    assert await store.started(name) == {"127.0.0.2": "w"}
    await later(120)
    assert await store.load(name) is None
    assert (await store.read_results(name)).results == []
    assert await store.started(name) == {}


def test_a_job_is_overdue_only_while_queued_past_its_deadline() -> None:
    job = _job("j", queued_until=2000.0)
    assert not overdue(job, 2000.0)
    assert overdue(job, 2000.5)
    assert not overdue(job.model_copy(update={"state": "running"}), 3000.0)
    assert not overdue(job.model_copy(update={"queued_until": None}), 3000.0)


def _waiting(name: str) -> tuple[Job, float]:
    """A queued job, and a time after its deadline. The deadline is an hour away in real time,
    so a gateway of another test that hears of the job on Redis only waits for it."""
    ts = time.time()
    return _job(name, ts=ts, queued_until=ts + 3600), ts + 3660


async def test_an_overdue_job_expires_once_with_every_host_cancelled(store: JobStore, name: str) -> None:
    job, now = _waiting(name)
    await store.announce(job)
    assert await expire(store, job, POLICY, now=now)
    stored = await store.read_results(name)
    assert [(r.seq, r.host, r.status) for r in stored.results] == [
        (1, "127.0.0.2", "cancelled"),
        (2, "127.0.0.3", "cancelled"),
    ]
    assert stored.done is not None and stored.done.summary == {"cancelled": 2}
    assert "within 3660s" in (stored.done.error or "")
    record = await store.load(name)
    assert record is not None and record.state == "expired" and record.finished == round(now, 3)
    assert not await store.hold_lease(name, "w-late", 30)  # no worker starts it afterwards
    assert not await expire(store, job, POLICY, now=now + 10)  # once is enough
    assert len((await store.read_results(name)).results) == 2


async def test_a_job_a_worker_holds_runs_instead_of_expiring(store: JobStore, name: str) -> None:
    job, now = _waiting(name)
    await store.announce(job)
    assert await store.hold_lease(name, "w", 30)
    assert not await expire(store, job, POLICY, now=now)
    assert (await store.read_results(name)).results == []
    assert (await store.load(name)) == job
    await store.release_lease(name, "w")


async def test_a_job_with_results_already_written_does_not_expire(store: JobStore, name: str) -> None:
    job, now = _waiting(name)
    await store.announce(job)
    assert await store.hold_lease(name, "w", 30)
    assert await store.append(Result.of(name, 1, "127.0.0.2", OK), "w", 1) is Fenced.WRITTEN
    await store.release_lease(name, "w")
    assert not await expire(store, job, POLICY, now=now)
    assert await store.hold_lease(name, "w-next", 30)  # the expirer let the lease go
    stored = await store.read_results(name)
    assert stored.done is None and [r.seq for r in stored.results] == [1]


async def test_workers_alive_are_listed_and_long_dead_ones_forgotten(name: str) -> None:
    """On the memory broker only: on Redis the workers' hash is shared with the gateways of other
    tests, which would show these workers (the calls are plain key-value ones on both)."""
    store = JobStore(MemoryBroker())
    now = time.time()
    alive, dead, gone = f"{name}-alive", f"{name}-dead", f"{name}-gone"
    await store.announce_worker(WorkerInfo(alive, now - 5, 30, 2))
    await store.announce_worker(WorkerInfo(dead, now - 60, 30, 0))
    await store.announce_worker(WorkerInfo(gone, now - 400, 30, 0))
    listed = [w for w in await store.workers(now) if w.name.startswith(name)]
    assert listed == [WorkerInfo(alive, now - 5, 30, 2)]
    await store.announce_worker(WorkerInfo(gone, now - 5, 30, 1))  # back: listed again
    names = [w.name for w in await store.workers(now) if w.name.startswith(name)]
    assert names == [alive, gone]
    for worker in (alive, dead, gone):
        await store.retire_worker(worker)
    assert [w for w in await store.workers(now) if w.name.startswith(name)] == []
