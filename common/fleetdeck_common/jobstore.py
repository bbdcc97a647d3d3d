"""Exec jobs in the broker: records, the queue, results, started marks, leases and cancels.

The one module that knows the layout of the job keys. Per job there is a record (the latest
`job` frame), a result stream (one entry per host, then one `done` entry: the record of truth
that watchers replay), a hash of the hosts a worker has started, a lease naming the worker that
runs it, and a cancel mark. A job finished keeps all of it for `JOB_RETENTION_SECONDS`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from . import topics
from .broker import GAP, Fenced, JobQueue, KeyValue, Leases, PubSub, StreamEntry, Submission
from .messages import Done, Job, Result, dump

logger = logging.getLogger(__name__)

JOB_RETENTION_SECONDS = 7 * 24 * 3600
JOB_INDEX_SIZE = 500
# Replays and lookups read a job's result stream a page at a time, never the whole job: at most
# RESULTS_PAGE entries and, once the size of its entries is known, about PAGE_CHARS of them (a
# result can take ~2 x FLEETDECK_OUTPUT_LIMIT once JSON-escaped, or more if written by an old worker).
RESULTS_PAGE = 64
PAGE_CHARS = 1024 * 1024
WORKER_GROUP = "workers"

_QUEUE = topics.key("exec", "jobs")  # stream of submitted jobs, read by the workers' group
_WORKERS = topics.key("exec", "workers")  # hash: worker name -> its latest announcement (JSON)
_INDEX = topics.key("jobs", "recent")  # capped list of job ids, newest last


def _record_key(job_id: str) -> str:
    return topics.key("job", job_id)


def _results_key(job_id: str) -> str:
    return topics.key("job", job_id, "results")


def _started_key(job_id: str) -> str:
    return topics.key("job", job_id, "started")


def _lease_key(job_id: str) -> str:
    return topics.key("job", job_id, "lease")


def _cancel_key(job_id: str) -> str:
    return topics.key("job", job_id, "cancel")


def _written_key(job_id: str) -> str:
    """The last position written to the result stream: what makes a retried append harmless."""
    return topics.key("job", job_id, "written")


@dataclass
class JobResults:
    results: list[Result] = field(default_factory=list)
    done: Done | None = None
    last_id: str | None = None  # stream position to read on from
    more: bool = False  # a page was read and it was full: there may be more after `last_id`
    entries: int = 0  # stream entries read
    chars: int = 0  # and their size


def page_size(previous: JobResults | None) -> int:
    """How many entries to read next: one at first, then as many as fit in PAGE_CHARS."""
    if previous is None or previous.entries == 0:
        return 1
    average = max(previous.chars // previous.entries, 1)
    return max(1, min(RESULTS_PAGE, PAGE_CHARS // average))


@dataclass
class ResultsPage:
    """Some of a job's results by `seq`, for a client that pages through them."""

    results: list[Result] = field(default_factory=list)
    done: Done | None = None  # once the page reaches the end of a finished job
    next_after: int | None = None  # more results are stored: ask again after this seq


@dataclass(frozen=True)
class QueuedJob:
    """A job taken from the queue; acknowledged by its entry id once it has ended."""

    entry_id: str
    job_id: str


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


class JobBackend(KeyValue, PubSub, JobQueue, Leases, Protocol):
    pass


_RESULT_HEAD = re.compile(r'\{"type":"result","job":"[^"]*","seq":(\d{1,9}),')


def _entry_seq(entry: StreamEntry) -> int | None:
    """The `seq` of a result entry without parsing its (possibly large) output; None for `done`."""
    if entry.fields.get("kind") == "done":
        return None
    frame = entry.fields["frame"]
    head = _RESULT_HEAD.match(frame, 0, 160)
    if head is not None:
        return int(head.group(1))
    parsed = _parse_entry(entry)
    return parsed.seq if isinstance(parsed, Result) else None


def _parse_entry(entry: StreamEntry) -> Result | Done:
    frame = entry.fields["frame"]
    if entry.fields.get("kind") == "done":
        return Done.model_validate_json(frame)
    return Result.model_validate_json(frame)


def _record(job: Job) -> str:
    return dump(job.model_copy(update={"ref": None}))


class JobStore:
    def __init__(self, broker: JobBackend) -> None:
        self._broker = broker

    # --- records -----------------------------------------------------------------------------

    async def submit(self, job: Job) -> None:
        """Store, list, queue and announce a new job in one step: all of it happens or none."""
        added = await self._broker.enqueue(
            Submission(
                record_key=_record_key(job.job),
                record=_record(job),
                ttl=JOB_RETENTION_SECONDS,
                index_key=_INDEX,
                index_value=job.job,
                index_limit=JOB_INDEX_SIZE,
                stream=_QUEUE,
                entry={"job": job.job},
                channel=topics.JOBS_CHANNEL,
            )
        )
        if not added:
            logger.warning("job %s was submitted already; not queued again", job.job)

    async def load(self, job_id: str) -> Job | None:
        raw = await self._broker.get(_record_key(job_id))
        return Job.model_validate_json(raw) if raw else None

    async def announce(self, job: Job) -> None:
        """Store the job's new state and tell every `jobs` subscriber and watcher about it."""
        record = _record(job)
        await self._broker.set(_record_key(job.job), record, JOB_RETENTION_SECONDS)
        await self._broker.publish(topics.JOBS_CHANNEL, record)

    async def recent(self, limit: int = 50) -> list[Job]:
        """The latest jobs, newest first."""
        ids = (await self._broker.read_list(_INDEX))[-limit:]
        jobs = [await self.load(job_id) for job_id in reversed(ids)]
        return [job for job in jobs if job is not None]

    async def retain(self, job_id: str) -> None:
        """A finished job's record, results and marks are kept for JOB_RETENTION_SECONDS."""
        for key in (_results_key(job_id), _started_key(job_id), _record_key(job_id), _written_key(job_id)):
            await self._broker.expire(key, JOB_RETENTION_SECONDS)

    # --- cancelling --------------------------------------------------------------------------

    async def request_cancel(self, job_id: str, by: str) -> None:
        """Mark the job cancelled and tell the workers at once."""
        await self.mark_cancelled(job_id, by)
        await self._broker.publish(topics.CONTROL_CHANNEL, json.dumps({"cancel": job_id, "by": by}))

    async def mark_cancelled(self, job_id: str, by: str) -> None:
        """The mark alone: workers poll it, so a cancel missed on the control channel still counts."""
        await self._broker.set(_cancel_key(job_id), by, JOB_RETENTION_SECONDS)

    async def cancelled_by(self, job_id: str) -> str | None:
        return await self._broker.get(_cancel_key(job_id))

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
        out = JobResults(last_id=after_id)
        entries = await self._broker.stream_range(_results_key(job_id), after_id, count)
        out.entries = len(entries)
        for entry in entries:
            out.chars += len(entry.fields.get("frame", ""))
            parsed = _parse_entry(entry)
            if isinstance(parsed, Done):
                out.done = parsed
            else:
                out.results.append(parsed)
            out.last_id = entry.id
        out.more = count is not None and len(entries) >= count and out.done is None
        return out

    async def results_after(self, job_id: str, after_seq: int, limit: int, max_chars: int) -> ResultsPage:
        """At most `limit` results with a `seq` above `after_seq`, and about `max_chars` of them
        (always at least one), then the `done` if the page reaches it. Read a stream page at a
        time; results before the page are skipped without being parsed."""
        page = ResultsPage()
        used = 0
        position: str | None = None
        count = page_size(None)
        while True:
            entries = await self._broker.stream_range(_results_key(job_id), position, count)
            read = JobResults(
                entries=len(entries), chars=sum(len(e.fields.get("frame", "")) for e in entries)
            )
            for entry in entries:
                position = entry.id
                seq = _entry_seq(entry)
                if seq is None:
                    parsed = _parse_entry(entry)
                    page.done = parsed if isinstance(parsed, Done) else None
                    return page
                if seq <= after_seq:
                    continue
                size = len(entry.fields["frame"])
                if len(page.results) >= limit or (page.results and used + size > max_chars):
                    page.next_after = page.results[-1].seq
                    return page
                result = _parse_entry(entry)
                if isinstance(result, Result):
                    page.results.append(result)
                    used += size
            if len(entries) < count:
                return page  # the end of what is stored; a running job writes more later
            count = page_size(read)

    async def append(self, frame: Result | Done, owner: str, position: int) -> Fenced:
        """Write a result (`position` = its seq) or the `done` (`position` = last seq + 1) to the
        job's result stream while `owner` holds the job's lease, then publish it live.

        Idempotent: appending at a position already written stores nothing (and publishes
        again, which watchers skip by `seq`), so retrying after a failed publish is safe.
        """
        outcome = await self._broker.stream_add_fenced(
            _results_key(frame.job),
            {"kind": frame.type, "frame": dump(frame)},
            _lease_key(frame.job),
            owner,
            _written_key(frame.job),
            position,
        )
        if outcome in (Fenced.WRITTEN, Fenced.DUPLICATE):
            await self._broker.publish(topics.RESULTS_CHANNEL, dump(frame))
        return outcome

    # --- running: leases and started marks ---------------------------------------------------

    async def hold_lease(self, job_id: str, owner: str, ttl: float) -> bool:
        return await self._broker.hold_lease(_lease_key(job_id), owner, ttl)

    async def release_lease(self, job_id: str, owner: str) -> None:
        await self._broker.release_lease(_lease_key(job_id), owner)

    async def started(self, job_id: str) -> dict[str, str]:
        """Hosts some worker has started the command on, with that worker's name."""
        return await self._broker.hash_get_all(_started_key(job_id))

    async def mark_started(self, job_id: str, host: str, worker: str) -> bool:
        """Claim a host before running on it; False if another worker claimed it first."""
        return await self._broker.hash_set_if_absent(_started_key(job_id), host, worker)

    # --- workers ---------------------------------------------------------------------------

    async def announce_worker(self, worker: WorkerInfo) -> None:
        await self._broker.hash_set(
            _WORKERS,
            worker.name,
            json.dumps({"seen": worker.seen, "ttl": worker.ttl, "jobs": worker.jobs}),
        )

    async def retire_worker(self, name: str) -> None:
        await self._broker.hash_delete(_WORKERS, name)

    async def workers(self, now: float) -> list[WorkerInfo]:
        """Workers alive at `now`; long-dead announcements are removed on the way."""
        alive = []
        for name, raw in (await self._broker.hash_get_all(_WORKERS)).items():
            try:
                data = json.loads(raw)
                info = WorkerInfo(name, float(data["seen"]), float(data["ttl"]), int(data["jobs"]))
            except (ValueError, KeyError, TypeError):
                logger.warning("ignored a malformed worker announcement for %r", name)
                continue
            if info.alive(now):
                alive.append(info)
            elif now - info.seen > 10 * info.ttl:
                await self._broker.hash_delete(_WORKERS, name)
        return sorted(alive, key=lambda w: w.name)

    # --- the queue ---------------------------------------------------------------------------

    async def ensure_queue(self) -> None:
        await self._broker.group_ensure(_QUEUE, WORKER_GROUP)

    async def take(self, consumer: str, count: int, block: float) -> list[QueuedJob]:
        """New jobs for this worker, waiting up to `block` seconds."""
        entries = await self._broker.group_read(_QUEUE, WORKER_GROUP, consumer, count, block)
        return [QueuedJob(e.id, e.fields.get("job", "")) for e in entries]

    async def take_stalled(self, consumer: str, min_idle: float, count: int) -> list[QueuedJob]:
        """Jobs whose worker has not kept them for `min_idle` seconds."""
        entries = await self._broker.group_claim_stale(_QUEUE, WORKER_GROUP, consumer, min_idle, count)
        return [QueuedJob(e.id, e.fields.get("job", "")) for e in entries]

    async def keep_taken(self, consumer: str, entry_ids: list[str]) -> None:
        """This worker still runs these jobs (resets their idle time)."""
        await self._broker.group_touch(_QUEUE, WORKER_GROUP, consumer, entry_ids)

    async def ack(self, entry_id: str) -> None:
        await self._broker.group_ack(_QUEUE, WORKER_GROUP, entry_id)
