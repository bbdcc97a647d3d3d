"""A worker's admission of signed jobs, in-process on the memory broker: which queue entries it
refuses and why, that a takeover of the same entry is no replay, what a refusal writes, and the
previous key after a rotation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleetdeck_common.auditstore import AuditStore
from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.jobs import JOB_RETENTION_SECONDS, JobStore, QueuedJob
from fleetdeck_common.jobs.previouskey import PreviousKey, load_previous_key, previous_key_path
from fleetdeck_common.jobs.signing import JobKey, JobKeyError, sign
from fleetdeck_common.messages import Job
from fleetdeck_common.targets import TargetPolicy
from fleetdeck_worker.admission import REPLAYED, Admission
from tests.support.fakes import FakeClock

KEY = JobKey(b"s" * 32)
NOW = 1_765_000_000.0


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


def _job(queued_until: float | None = NOW + 60) -> Job:
    return Job(
        job="00112233aabbccdd",
        targets="127.0.0.2-3",
        command="uptime",
        hosts=2,
        by="alice",
        ts=NOW,
        state="queued",
        queued_until=queued_until,
    )


def _admission(broker: MemoryBroker, clock: FakeClock) -> Admission:
    policy = TargetPolicy.from_entries(["127.0.0.0/8"], 100)
    return Admission(KEY, JobStore(broker), AuditStore(broker), policy, clock)


def _entry(job: Job, entry_id: str = "1-0", signature: str | None = "") -> QueuedJob:
    return QueuedJob(entry_id, job.job, sign(KEY, job) if signature == "" else signature)


async def test_a_signed_fresh_job_is_admitted(broker: MemoryBroker, clock: FakeClock) -> None:
    job = _job()
    assert await _admission(broker, clock).refusal(_entry(job), job) is None


@pytest.mark.parametrize(("signature", "reason"), [(None, "no signature"), ("ab" * 32, "bad signature")])
async def test_an_unsigned_or_badly_signed_job_is_refused(
    broker: MemoryBroker, clock: FakeClock, signature: str | None, reason: str
) -> None:
    job = _job()
    assert await _admission(broker, clock).refusal(_entry(job, signature=signature), job) == reason


async def test_a_second_queue_entry_for_a_job_is_a_replay_on_any_worker(
    broker: MemoryBroker, clock: FakeClock
) -> None:
    job = _job()
    first, other = _admission(broker, clock), _admission(broker, clock)
    assert await first.refusal(_entry(job, "1-0"), job) is None
    assert await first.refusal(_entry(job, "2-0"), job) == REPLAYED  # this worker remembers
    assert await other.refusal(_entry(job, "2-0"), job) == REPLAYED  # the store remembers


async def test_a_takeover_of_the_same_entry_is_admitted_after_the_deadline(
    broker: MemoryBroker, clock: FakeClock
) -> None:
    job = _job()
    assert await _admission(broker, clock).refusal(_entry(job), job) is None
    clock.now = NOW + 600
    running = job.model_copy(update={"state": "running"})  # as its first worker left it
    assert await _admission(broker, clock).refusal(_entry(job), running) is None


@pytest.mark.parametrize("queued_until", [NOW - 1, None])
async def test_a_job_first_taken_after_its_deadline_is_refused(
    broker: MemoryBroker, clock: FakeClock, queued_until: float | None
) -> None:
    job = _job(queued_until)
    assert await _admission(broker, clock).refusal(_entry(job), job) == "older than the queue timeout"


async def test_a_refusal_cancels_every_host_and_audits_why(broker: MemoryBroker, clock: FakeClock) -> None:
    job = _job()
    store = JobStore(broker)
    await store.submit(job)
    await _admission(broker, clock).refuse(job, "bad signature")
    stored = await store.read_results(job.job)
    note = "refused by the worker: bad signature"
    assert [(r.host, r.status, r.error) for r in stored.results] == [
        ("127.0.0.2", "cancelled", note),
        ("127.0.0.3", "cancelled", note),
    ]
    assert stored.done is not None and stored.done.error == note
    record = await store.load(job.job)
    assert record is not None and (record.state, record.error) == ("cancelled", note)
    assert not await store.hold_lease(job.job, "a-worker", 30)  # nobody runs it later
    [entry] = (await AuditStore(broker).page()).entries
    assert (entry.action, entry.outcome, entry.reason, entry.job) == (
        "job_refused",
        "refused",
        "bad signature",
        job.job,
    )


async def test_a_refused_replay_leaves_the_genuine_job_alone(broker: MemoryBroker, clock: FakeClock) -> None:
    job = _job()
    store = JobStore(broker)
    await store.submit(job)
    assert await store.hold_lease(job.job, "the-worker-running-it", JOB_RETENTION_SECONDS)
    await _admission(broker, clock).refuse(job, REPLAYED)
    await _admission(broker, clock).refuse(job, "bad signature")  # held by a worker: not written
    stored = await store.read_results(job.job)
    assert stored.results == [] and stored.done is None
    assert [e.reason for e in (await AuditStore(broker).page()).entries] == ["bad signature", REPLAYED]


OLD_KEY = JobKey(b"o" * 32)


def _rotated(broker: MemoryBroker, clock: FakeClock, until: float) -> Admission:
    policy = TargetPolicy.from_entries(["127.0.0.0/8"], 100)
    previous = PreviousKey(OLD_KEY, until)
    return Admission(KEY, JobStore(broker), AuditStore(broker), policy, clock, previous=previous)


async def test_the_previous_key_signs_jobs_queued_within_one_queue_timeout_of_the_rotation(
    broker: MemoryBroker, clock: FakeClock
) -> None:
    job = _job(queued_until=NOW + 60)
    entry = QueuedJob("1-0", job.job, sign(OLD_KEY, job))
    assert await _rotated(broker, clock, until=NOW + 60).refusal(entry, job) is None


async def test_the_previous_key_is_refused_for_a_deadline_past_its_window(
    broker: MemoryBroker, clock: FakeClock
) -> None:
    job = _job(queued_until=NOW + 61)
    entry = QueuedJob("1-0", job.job, sign(OLD_KEY, job))
    assert await _rotated(broker, clock, until=NOW + 60).refusal(entry, job) == "bad signature"
    assert await _admission(broker, clock).refusal(entry, job) == "bad signature"  # no previous key


async def test_a_key_that_is_neither_is_refused_after_a_rotation(
    broker: MemoryBroker, clock: FakeClock
) -> None:
    job = _job()
    entry = QueuedJob("1-0", job.job, sign(JobKey(b"x" * 32), job))
    assert await _rotated(broker, clock, until=NOW + 600).refusal(entry, job) == "bad signature"


def test_the_previous_key_counts_one_queue_timeout_from_the_key_files_change(tmp_path: Path) -> None:
    key_file = tmp_path / "job.key"
    key_file.write_bytes(b"n" * 32)
    key_file.chmod(0o600)
    assert load_previous_key(key_file, 60) is None  # never rotated
    previous = previous_key_path(key_file)
    assert previous == tmp_path / "job.key.previous"
    previous.write_bytes(b"o" * 32)
    previous.chmod(0o600)
    os.utime(key_file, (NOW, NOW))
    assert load_previous_key(key_file, 60) == PreviousKey(JobKey(b"o" * 32), NOW + 60)
    previous.chmod(0o640)
    with pytest.raises(JobKeyError, match=r"job\.key\.previous is readable by group or others"):
        load_previous_key(key_file, 60)
