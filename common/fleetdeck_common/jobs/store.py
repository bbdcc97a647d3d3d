"""Exec jobs in the broker: records, the queue, results, started marks, leases and cancels.

A finished job keeps all of its keys (see `keys`) for `JOB_RETENTION_SECONDS`. What must happen
in one step (enqueueing, leases, fenced appends) is done by the backend's `JobRules`; the rest is
plain broker calls.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from .. import topics
from ..broker import GAP, KeyValue, PubSub, StreamLog, Streams
from ..broker.memory import MemoryBroker
from ..messages import Done, Job, Result, dump
from .keys import (
    INDEX,
    QUEUE,
    WORKER_GROUP,
    WORKERS,
    cancel_key,
    kept_keys,
    lease_key,
    record_key,
    results_key,
    started_key,
    taken_key,
    written_key,
)
from .memory import MemoryRules
from .results import JobResults, ResultsPage, read_results, results_after
from .rules import Fenced, JobRules, Submission

logger = logging.getLogger(__name__)

JOB_RETENTION_SECONDS = 7 * 24 * 3600
JOB_INDEX_SIZE = 500
CLOCK_SLACK = 300.0  # seconds two gateways' clocks may differ: jobs queued that far out of order


@dataclass(frozen=True)
class QueuedJob:
    """A job taken from the queue; acknowledged by its entry id once it has ended."""

    entry_id: str
    job_id: str
    signature: str | None = None  # the gateway's, when it holds the job key


@dataclass(frozen=True)
class WorkerInfo:
    """A worker's announcement: alive while `seen` is within its `ttl`."""

    name: str
    seen: float
    ttl: float
    jobs: int

    def alive(self, now: float) -> bool:
        return now - self.seen <= self.ttl


@dataclass(frozen=True)
class CancelRequest:
    job: str
    by: str


class JobBackend(KeyValue, PubSub, Streams, StreamLog, Protocol):
    pass


def rules_for(broker: JobBackend) -> JobRules:
    """The job rules for `broker`'s backend: plain steps in memory, Lua scripts in Redis."""
    if isinstance(broker, MemoryBroker):
        return MemoryRules(broker)
    from ..broker.redis import RedisBroker  # only with the Redis backend, as the broker itself
    from .redis import RedisRules

    if isinstance(broker, RedisBroker):
        return RedisRules(broker)
    raise TypeError(f"no job rules for a {type(broker).__name__}; pass them to JobStore")


def _record(job: Job) -> str:
    return dump(job.model_copy(update={"ref": None}))


class JobStore:
    def __init__(self, broker: JobBackend, rules: JobRules | None = None) -> None:
        self._broker = broker
        self._rules = rules if rules is not None else rules_for(broker)

    # --- records -----------------------------------------------------------------------------

    async def submit(self, job: Job, signature: str | None = None) -> None:
        """Store, list, queue and announce a new job in one step: all of it happens or none. The
        signature, if any, travels in the queue entry (the record and `/api` never show it)."""
        entry = {"job": job.job} if signature is None else {"job": job.job, "sig": signature}
        added = await self._rules.enqueue(
            Submission(
                record_key=record_key(job.job),
                record=_record(job),
                ttl=JOB_RETENTION_SECONDS,
                index_key=INDEX,
                index_value=job.job,
                index_limit=JOB_INDEX_SIZE,
                stream=QUEUE,
                entry=entry,
                channel=topics.JOBS_CHANNEL,
            )
        )
        if not added:
            logger.warning("job %s was submitted already; not queued again", job.job)

    async def load(self, job_id: str) -> Job | None:
        raw = await self._broker.get(record_key(job_id))
        return Job.model_validate_json(raw) if raw else None

    async def announce(self, job: Job) -> None:
        """Store the job's new state and tell every `jobs` subscriber and watcher about it."""
        record = _record(job)
        await self._broker.set(record_key(job.job), record, JOB_RETENTION_SECONDS)
        await self._broker.publish(topics.JOBS_CHANNEL, record)

    async def recent(self, limit: int = 50) -> list[Job]:
        """The latest jobs, newest first."""
        ids = (await self._broker.read_list(INDEX))[-limit:]
        jobs = [await self.load(job_id) for job_id in reversed(ids)]
        return [job for job in jobs if job is not None]

    async def between(self, since: float, until: float) -> list[Job]:
        """The jobs still kept that were queued from `since` to `until`, newest first."""
        found = []
        for job_id in reversed(await self._broker.read_list(INDEX)):  # in the order they were queued
            job = await self.load(job_id)
            if job is not None and job.ts < since - CLOCK_SLACK:
                break  # every older one too (give or take the gateways' clocks): read no further
            if job is not None and since <= job.ts <= until:
                found.append(job)
        return found

    async def retain(self, job_id: str) -> None:
        """A finished job's record, results and marks are kept for JOB_RETENTION_SECONDS."""
        for key in kept_keys(job_id):
            await self._broker.expire(key, JOB_RETENTION_SECONDS)

    # --- cancelling --------------------------------------------------------------------------

    async def request_cancel(self, job_id: str, by: str) -> None:
        """Mark the job cancelled and tell the workers at once."""
        await self.mark_cancelled(job_id, by)
        await self._broker.publish(topics.CONTROL_CHANNEL, json.dumps({"cancel": job_id, "by": by}))

    async def mark_cancelled(self, job_id: str, by: str) -> None:
        """The mark alone: workers poll it, so a cancel missed on the control channel still counts."""
        await self._broker.set(cancel_key(job_id), by, JOB_RETENTION_SECONDS)

    async def cancelled_by(self, job_id: str) -> str | None:
        return await self._broker.get(cancel_key(job_id))

    @asynccontextmanager
    async def cancel_requests(self) -> AsyncIterator[AsyncIterator[CancelRequest]]:
        """Cancels as they are requested (malformed control messages are skipped)."""
        async with self._broker.subscribe([topics.CONTROL_CHANNEL]) as events:

            async def requests() -> AsyncIterator[CancelRequest]:
                async for event in events:
                    if event is GAP:
                        continue  # a cancel missed here is still seen: runs poll the cancel mark
                    try:
                        message = json.loads(event.data)
                        yield CancelRequest(str(message["cancel"]), str(message.get("by", "someone")))
                    except (ValueError, KeyError, TypeError):
                        logger.warning("ignored a malformed control message")

            yield requests()

    # --- results -----------------------------------------------------------------------------

    async def read_results(
        self, job_id: str, after_id: str | None = None, count: int | None = None
    ) -> JobResults:
        """The job's results in `seq` order (and its `done`, once written) after a stream position:
        all of them, or one page of at most `count` entries (`more` says whether to read on)."""
        return await read_results(self._broker, results_key(job_id), after_id, count)

    async def final(self, job_id: str) -> Done | None:
        """The job's `done`, read from the end of its results (None while it runs)."""
        last = await self._broker.stream_before(results_key(job_id), None, 1)
        return (
            Done.model_validate_json(last[0].fields["frame"])
            if last and last[0].fields.get("kind") == "done"
            else None
        )

    async def results_after(self, job_id: str, after_seq: int, limit: int, max_chars: int) -> ResultsPage:
        """At most `limit` results with a `seq` above `after_seq`, and about `max_chars` of them
        (always at least one), then the `done` if the page reaches it."""
        return await results_after(self._broker, results_key(job_id), after_seq, limit, max_chars)

    async def append(self, frame: Result | Done, owner: str, position: int) -> Fenced:
        """Write a result (`position` = its seq) or the `done` (`position` = last seq + 1) to the
        job's result stream while `owner` holds the job's lease, then publish it live.

        Idempotent: appending at a position already written stores nothing (and publishes
        again, which watchers skip by `seq`), so retrying after a failed publish is safe.
        """
        outcome = await self._rules.append_fenced(
            results_key(frame.job),
            {"kind": frame.type, "frame": dump(frame)},
            lease_key(frame.job),
            owner,
            written_key(frame.job),
            position,
        )
        if outcome in (Fenced.WRITTEN, Fenced.DUPLICATE):
            await self._broker.publish(topics.RESULTS_CHANNEL, dump(frame))
        return outcome

    # --- running: leases and started marks ---------------------------------------------------

    async def hold_lease(self, job_id: str, owner: str, ttl: float) -> bool:
        return await self._rules.hold_lease(lease_key(job_id), owner, ttl)

    async def release_lease(self, job_id: str, owner: str) -> None:
        await self._rules.release_lease(lease_key(job_id), owner)

    async def started(self, job_id: str) -> dict[str, str]:
        """Hosts some worker has started the command on, with that worker's name."""
        return await self._broker.hash_get_all(started_key(job_id))

    async def mark_started(self, job_id: str, host: str, worker: str) -> bool:
        """Claim a host before running on it; False if another worker claimed it first."""
        return await self._broker.hash_set_if_absent(started_key(job_id), host, worker)

    # --- workers ---------------------------------------------------------------------------

    async def announce_worker(self, worker: WorkerInfo) -> None:
        await self._broker.hash_set(
            WORKERS,
            worker.name,
            json.dumps({"seen": worker.seen, "ttl": worker.ttl, "jobs": worker.jobs}),
        )

    async def retire_worker(self, name: str) -> None:
        await self._broker.hash_delete(WORKERS, name)

    async def workers(self, now: float) -> list[WorkerInfo]:
        """Workers alive at `now`; long-dead announcements are removed on the way."""
        alive = []
        for name, raw in (await self._broker.hash_get_all(WORKERS)).items():
            try:
                data = json.loads(raw)
                info = WorkerInfo(name, float(data["seen"]), float(data["ttl"]), int(data["jobs"]))
            except (ValueError, KeyError, TypeError):
                logger.warning("ignored a malformed worker announcement for %r", name)
                continue
            if info.alive(now):
                alive.append(info)
            elif now - info.seen > 10 * info.ttl:
                await self._broker.hash_delete(WORKERS, name)
        return sorted(alive, key=lambda w: w.name)

    # --- the queue ---------------------------------------------------------------------------

    async def ensure_queue(self) -> None:
        await self._broker.group_ensure(QUEUE, WORKER_GROUP)

    async def take(self, consumer: str, count: int, block: float) -> list[QueuedJob]:
        """New jobs for this worker, waiting up to `block` seconds."""
        entries = await self._broker.group_read(QUEUE, WORKER_GROUP, consumer, count, block)
        return [QueuedJob(e.id, e.fields.get("job", ""), e.fields.get("sig")) for e in entries]

    async def take_stalled(self, consumer: str, min_idle: float, count: int) -> list[QueuedJob]:
        """Jobs whose worker has not kept them for `min_idle` seconds."""
        entries = await self._broker.group_claim_stale(QUEUE, WORKER_GROUP, consumer, min_idle, count)
        return [QueuedJob(e.id, e.fields.get("job", ""), e.fields.get("sig")) for e in entries]

    async def keep_taken(self, consumer: str, entry_ids: list[str]) -> None:
        """This worker still runs these jobs (resets their idle time)."""
        await self._broker.group_touch(QUEUE, WORKER_GROUP, consumer, entry_ids)

    async def mark_taken(self, job_id: str, entry_id: str) -> tuple[bool, str]:
        """Record the queue entry the job is first taken from: (whether this call recorded it, the
        entry recorded). Kept for the job's retention."""
        key = taken_key(job_id)
        first = await self._broker.hash_set_if_absent(key, "entry", entry_id)
        if first:
            await self._broker.expire(key, JOB_RETENTION_SECONDS)
            return True, entry_id
        return False, (await self._broker.hash_get_all(key)).get("entry", "")

    async def ack(self, entry_id: str) -> None:
        await self._broker.group_ack(QUEUE, WORKER_GROUP, entry_id)
