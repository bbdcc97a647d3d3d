"""Jobs no worker took in time end as `expired`: every host `cancelled`, and never run later.

Whoever notices first expires the job (a gateway watching its queue, or a worker that finds an
overdue job in the queue). It takes the job's lease for good, so no worker can start it
afterwards, and a worker that already holds the lease wins instead: the job then runs.
`end_unrun` writes that end; a worker writes the same for a job it refuses.
"""

from __future__ import annotations

import logging
import time

from ..grouping import group_outputs, retry_targets
from ..messages import Done, Job, JobState, Outcome, Result
from ..targets import TargetError, TargetPolicy, expand_targets
from .store import JOB_RETENTION_SECONDS, JobStore

logger = logging.getLogger(__name__)

EXPIRER = "fleetdeck-queue-timeout"  # the lease owner that keeps an expired job from running


def overdue(job: Job, now: float) -> bool:
    return job.state == "queued" and job.queued_until is not None and now > job.queued_until


async def expire(store: JobStore, job: Job, policy: TargetPolicy, now: float | None = None) -> bool:
    """End `job` as expired unless a worker has started it; True if this call expired it."""
    now = time.time() if now is None else now
    if not await store.hold_lease(job.job, EXPIRER, JOB_RETENTION_SECONDS):
        return False  # a worker holds it: it runs
    record = await store.load(job.job)
    stored = await store.read_results(job.job, count=1)  # is anything written? one entry says
    if record is None or record.state != "queued" or stored.results or stored.done is not None:
        await store.release_lease(job.job, EXPIRER)
        return False
    waited = now - job.ts
    note = f"no exec worker took the job within {waited:.0f}s; it was not run"
    await end_unrun(store, record, policy, EXPIRER, note, "expired", now)
    logger.warning("job %s expired: %s", job.job, note)
    return True


async def end_unrun(
    store: JobStore, job: Job, policy: TargetPolicy, owner: str, note: str, state: JobState, now: float
) -> None:
    """End a job none of whose hosts ran: each `cancelled` with `note`, then the `done`, and the
    record in `state`. The caller holds the job's lease as `owner` and keeps it, so no worker
    starts the job afterwards."""
    try:
        hosts = expand_targets(job.runs_on, policy)
    except TargetError:
        hosts = []
    outcome = Outcome(
        status="cancelled", exit_code=None, stdout="", stderr="", duration_ms=0, truncated=False, error=note
    )
    results = [Result.of(job.job, seq, host, outcome) for seq, host in enumerate(hosts, 1)]
    for result in results:
        await store.append(result, owner, result.seq)
    summary = {"cancelled": len(results)} if results else {}
    done = Done(
        job=job.job,
        summary=summary,
        duration_ms=0,
        groups=group_outputs(results),
        retry_targets=retry_targets(results),
        error=note,
    )
    await store.append(done, owner, len(results) + 1)
    finished = job.model_copy(
        update={"state": state, "summary": summary, "finished": round(now, 3), "error": note}
    )
    await store.announce(finished)
    await store.retain(job.job)
