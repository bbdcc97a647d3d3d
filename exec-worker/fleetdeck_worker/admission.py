"""With the job key: whether a queued job may run at all, checked before anything else, and the
visible end of a job that may not.

A job is refused when its queue entry carries no signature or one that does not verify (with the
current key, or with the previous one for a job whose queue deadline is within one queue timeout
of the rotation: `PreviousKey`), when
its id was taken before from another queue entry (a replay), or when it is taken first after
its `queued_until` (older than the gateway's `FLEETDECK_JOB_QUEUE_TIMEOUT`, which the signed
record carries). A refused job contacts no host: it is logged, audited as `job_refused` with
the reason, and — unless it is a replay, whose job is the genuine one's and ends as that one
does — every host is reported `cancelled` with "refused by the worker: REASON" and the job
gets its `done`.

Replays are recognised by the queue entry a job was first taken from, kept in the job store
beside the job (`JobStore.mark_taken`), and by this worker's memory of the jobs it accepted until
their queue deadline passes; after it, the age check refuses them anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fleetdeck_common.audit import AuditEntry
from fleetdeck_common.auditstore import AuditStore
from fleetdeck_common.jobs import JOB_RETENTION_SECONDS, JobStore, QueuedJob
from fleetdeck_common.jobs.expiry import end_unrun
from fleetdeck_common.jobs.previouskey import PreviousKey
from fleetdeck_common.jobs.signing import JobKey, as_queued, verify
from fleetdeck_common.messages import FINISHED_STATES, Job
from fleetdeck_common.targets import TargetError, TargetPolicy, expand_targets

logger = logging.getLogger(__name__)

REFUSER = "fleetdeck-refused"  # the lease owner that keeps a refused job from running
REPLAYED = "replayed job id"
# The gateway trims the audit stream to its FLEETDECK_AUDIT_KEEP; the worker never trims it.
NEVER_TRIM = 100_000_000
KEEP_CHARS = 2048  # of the targets and command a refused job carried, in its audit entry


def _clip(text: str) -> str:
    return (
        text
        if len(text) <= KEEP_CHARS
        else f"{text[:KEEP_CHARS]}… ({len(text) - KEEP_CHARS} more characters)"
    )


class Admission:
    def __init__(
        self,
        key: JobKey,
        store: JobStore,
        audit: AuditStore,
        policy: TargetPolicy,
        clock: Callable[[], float] = time.time,
        previous: PreviousKey | None = None,
    ) -> None:
        self._key = key
        self._previous = previous
        self._store = store
        self._audit = audit
        self._policy = policy
        self._clock = clock
        self._accepted: dict[str, tuple[str, float]] = {}  # job id -> (queue entry, deadline)

    async def refusal(self, entry: QueuedJob, job: Job) -> str | None:
        """Why the job must not run, or None if it may."""
        if not entry.signature:
            return "no signature"
        if not self._verifies(job, entry.signature):
            return "bad signature"
        now = self._clock()
        self._forget(now)
        accepted = self._accepted.get(job.job)
        if accepted is not None and accepted[0] != entry.entry_id:
            return REPLAYED
        first, holder = await self._store.mark_taken(job.job, entry.entry_id)
        if holder != entry.entry_id:
            return REPLAYED
        # A takeover (the same entry, taken again after its worker went silent) may be late.
        late = job.queued_until is None or now > job.queued_until
        if first and late and job.state not in FINISHED_STATES:
            return "older than the queue timeout"
        self._accepted[job.job] = (entry.entry_id, job.queued_until or now)
        return None

    def _verifies(self, job: Job, signature: str) -> bool:
        queued = as_queued(job)
        if verify(self._key, queued, signature):
            return True
        previous = self._previous
        return (
            previous is not None
            and previous.covers(job.queued_until)
            and verify(previous.key, queued, signature)
        )

    def _forget(self, now: float) -> None:
        for job_id, (_entry, deadline) in list(self._accepted.items()):
            if now > deadline:
                del self._accepted[job_id]

    async def refuse(self, job: Job, reason: str) -> None:
        """Log and audit the refusal and, unless it is a replay, end the job visibly."""
        try:
            hosts = expand_targets(job.runs_on, self._policy)
        except TargetError:
            hosts = []
        logger.error(
            "job %s refused (%s): queued by %r for %d hosts; no host was contacted",
            job.job,
            reason,
            job.by,
            len(hosts),
        )
        await self._audit.append(
            AuditEntry(
                ts=round(self._clock(), 3),
                action="job_refused",
                outcome="refused",
                user=job.by,
                scope=job.scope,
                reason=reason,
                job=job.job,
                targets=_clip(job.targets),
                hosts=len(hosts),
                command=_clip(job.file_copy.describe() if job.file_copy else job.command),
                timeout=job.timeout,
            )
        )
        if reason != REPLAYED:
            await self._end(job, f"refused by the worker: {reason}")

    async def _end(self, job: Job, note: str) -> None:
        """Every host `cancelled` and the `done`, unless a worker holds the job or wrote to it."""
        if not await self._store.hold_lease(job.job, REFUSER, JOB_RETENTION_SECONDS):
            return  # a worker holds it: that worker ends it
        stored = await self._store.read_results(job.job, count=1)
        if stored.results or stored.done is not None:
            await self._store.release_lease(job.job, REFUSER)
            return
        await end_unrun(self._store, job, self._policy, REFUSER, note, "cancelled", self._clock())
