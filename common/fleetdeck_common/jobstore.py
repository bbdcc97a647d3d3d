"""Job records and result streams in the broker: the one place that knows their layout."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import topics
from .broker import Broker, StreamEntry
from .messages import Done, Job, Result, dump

JOB_RETENTION_SECONDS = 7 * 24 * 3600


@dataclass
class JobResults:
    results: list[Result] = field(default_factory=list)
    done: Done | None = None
    last_id: str | None = None


async def load_job(broker: Broker, job_id: str) -> Job | None:
    raw = await broker.get(topics.job_key(job_id))
    return Job.model_validate_json(raw) if raw else None


async def save_job(broker: Broker, job: Job) -> None:
    await broker.set(topics.job_key(job.job), dump(job.model_copy(update={"ref": None})))


async def announce_job(broker: Broker, job: Job) -> None:
    """Store the record and tell every `jobs` subscriber about it."""
    await save_job(broker, job)
    await broker.publish(topics.JOBS_CHANNEL, dump(job.model_copy(update={"ref": None})))


def parse_entry(entry: StreamEntry) -> Result | Done:
    frame = entry.fields["frame"]
    if entry.fields.get("kind") == "done":
        return Done.model_validate_json(frame)
    return Result.model_validate_json(frame)


def entry_fields(frame: Result | Done) -> dict[str, str]:
    return {"kind": frame.type, "frame": dump(frame)}


async def read_results(broker: Broker, job_id: str, after_id: str | None = None) -> JobResults:
    """The job's results in `seq` order (and its `done`, once written) after a stream position."""
    out = JobResults(last_id=after_id)
    for entry in await broker.stream_range(topics.job_results_stream(job_id), after_id):
        parsed = parse_entry(entry)
        if isinstance(parsed, Done):
            out.done = parsed
        else:
            out.results.append(parsed)
        out.last_id = entry.id
    return out


async def append_fenced(broker: Broker, frame: Result | Done, lease: str, owner: str) -> bool:
    """Write to the job's stream (the record that is never lost) while `owner` holds the job's
    lease, then publish it live; False, and nothing written, if the lease is someone else's."""
    added = await broker.stream_add_fenced(
        topics.job_results_stream(frame.job), entry_fields(frame), lease, owner
    )
    if added is None:
        return False
    await broker.publish(topics.RESULTS_CHANNEL, dump(frame))
    return True


async def recent_jobs(broker: Broker, limit: int = 50) -> list[Job]:
    ids = (await broker.read_list(topics.JOB_INDEX_KEY))[-limit:]
    jobs = [await load_job(broker, job_id) for job_id in reversed(ids)]
    return [job for job in jobs if job is not None]
