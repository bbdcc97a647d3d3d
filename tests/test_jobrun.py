"""The job runner's promises on a real Redis: a worker that stalls past its lease and wakes up
after another worker took the job over writes nothing, so `seq` stays unique and gapless and no
host runs twice. (The hosts here are an in-process runner; SSH is covered in test_exec.py.)"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from fleetdeck_common.broker import create_broker
from fleetdeck_common.jobs import JobStore
from fleetdeck_common.messages import Job, Outcome
from fleetdeck_common.targets import TargetPolicy
from fleetdeck_worker.jobrun import JobRun, LeaseLost
from fleetdeck_worker.sshlogin import SshOptions
from testbed.procs import RedisServer
from tests.support.waiting import eventually

POLICY = TargetPolicy.from_entries(["127.0.0.0/8"])
SSH = SshOptions(user="nobody")


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[JobStore]:
    async with create_broker(redis_url) as broker:
        yield JobStore(broker)


class Hosts:
    """Stands in for the SSH side: records every run and lets a test hold a host mid-command."""

    def __init__(self) -> None:
        self.ran: Counter[str] = Counter()
        self.release = asyncio.Event()
        self.held = {"127.0.0.3"}

    async def __call__(
        self, host: str, command: str, timeout: float, ssh: SshOptions, cancel: asyncio.Event
    ) -> Outcome:
        self.ran[host] += 1
        if host in self.held:
            await self.release.wait()
        return Outcome(
            status="ok", exit_code=0, stdout=f"{host}\n", stderr="", duration_ms=1, truncated=False
        )


async def _stored_at_least(store: JobStore, job: str, count: int) -> bool:
    return len((await store.read_results(job)).results) >= count


async def new_job(store: JobStore, targets: str, hosts: int) -> Job:
    job = Job(
        job=f"j{time.time_ns()}",
        targets=targets,
        command="x",
        hosts=hosts,
        by="t",
        ts=time.time(),
        state="queued",
    )
    await store.announce(job)
    return job


async def test_a_stalled_worker_that_lost_its_lease_cannot_write(store: JobStore) -> None:
    job = await new_job(store, "127.0.0.2-5", 4)
    hosts = Hosts()
    stale = JobRun(store, job, "w-stale", POLICY, SSH, 8, hosts, lease_ttl=30)
    stale_task = asyncio.create_task(stale.run())
    # The stale worker has reported the quick hosts and is stuck on 127.0.0.3.
    await eventually(lambda: _stored_at_least(store, job.job, 3), 10, "the quick hosts' results")
    # It stalls past its lease (simulated by the lease running out), and another worker takes over.
    await store.release_lease(job.job, "w-stale")
    fresh = JobRun(store, job, "w-fresh", POLICY, SSH, 8, hosts, lease_ttl=30)
    await fresh.run()
    hosts.release.set()  # the stale worker wakes up and tries to write its result
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(stale_task, 5)
    stored = await store.read_results(job.job)
    assert [r.seq for r in stored.results] == [1, 2, 3, 4]
    assert {r.host: r.status for r in stored.results}["127.0.0.3"] == "lost"
    assert stored.done is not None and stored.done.summary == {"ok": 3, "lost": 1}
    assert set(hosts.ran.values()) == {1}


async def test_a_worker_does_not_start_a_job_another_holds(store: JobStore) -> None:
    job = await new_job(store, "127.0.0.2", 1)
    assert await store.hold_lease(job.job, "w-other", 30)
    hosts = Hosts()
    with pytest.raises(LeaseLost):
        await JobRun(store, job, "w-late", POLICY, SSH, 8, hosts).run()
    assert not hosts.ran
    assert (await store.read_results(job.job)).results == []


async def test_a_job_whose_records_vanish_mid_run_ends_visibly_and_runs_nothing_twice(tmp_path: Path) -> None:
    """Redis restarted without its data while a job ran: the worker writes back what it knows,
    cancels what never started, and ends the job with an error that says what happened."""
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        async with create_broker(redis.url) as broker:
            store = JobStore(broker)
            job = await new_job(store, "127.0.0.2-6", 5)
            hosts = Hosts()
            hosts.held = {"127.0.0.3", "127.0.0.4"}  # with two slots, .5 and .6 wait behind them
            run = JobRun(store, job, "w-1", POLICY, SSH, 2, hosts, lease_ttl=1.5)
            task = asyncio.create_task(run.run())
            await eventually(
                lambda: len(hosts.ran) >= 3 and _stored_at_least(store, job.job, 1), 10, "three hosts running"
            )
            wiper = aioredis.Redis.from_url(redis.url)
            await wiper.flushall()
            await wiper.aclose()
            # noticed by the lease keeper within a third of the lease
            await eventually(lambda: run.records_lost, 10, "the lost records noticed")
            hosts.release.set()
            await asyncio.wait_for(task, 10)
            stored = await store.read_results(job.job)
            record = await store.load(job.job)
    finally:
        redis.stop()
    assert [r.seq for r in stored.results] == [1, 2, 3, 4, 5]
    by_host = {r.host: r.status for r in stored.results}
    assert by_host == {
        "127.0.0.2": "ok",
        "127.0.0.3": "ok",
        "127.0.0.4": "ok",
        "127.0.0.5": "cancelled",
        "127.0.0.6": "cancelled",
    }
    assert set(hosts.ran) == {"127.0.0.2", "127.0.0.3", "127.0.0.4"} and set(hosts.ran.values()) == {1}
    assert stored.done is not None and "lost this job's records" in (stored.done.error or "")
    assert (
        record is not None
        and record.state == "cancelled"
        and "lost this job's records" in (record.error or "")
    )
