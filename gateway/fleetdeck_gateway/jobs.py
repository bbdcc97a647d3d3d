"""Exec jobs from the gateway's side: validate and queue, cancel, look up."""

from __future__ import annotations

import json
import logging
import secrets
import time

from fleetdeck_common import topics
from fleetdeck_common.broker import Broker
from fleetdeck_common.jobstore import announce_job, load_job
from fleetdeck_common.messages import Job, ProtocolError
from fleetdeck_common.targets import TargetError, TargetPolicy, expand_targets

from .tokens import Identity

logger = logging.getLogger(__name__)

FINISHED_STATES = frozenset({"done", "cancelled"})


class JobService:
    def __init__(self, broker: Broker, policy: TargetPolicy) -> None:
        self._broker = broker
        self._policy = policy

    async def submit(self, who: Identity, targets: str, command: str, timeout: float) -> Job:
        """Validate the targets and queue the job; nothing is queued if anything is wrong."""
        if not who.is_operator:
            raise ProtocolError("forbidden", "running commands needs the operator role")
        try:
            hosts = expand_targets(targets, self._policy)
        except TargetError as exc:
            raise ProtocolError("invalid_targets", str(exc)) from None
        job = Job(
            job=secrets.token_hex(8),
            targets=targets.strip(),
            command=command,
            hosts=len(hosts),
            by=who.name,
            ts=round(time.time(), 3),
            state="queued",
            timeout=timeout,
        )
        await announce_job(self._broker, job)
        await self._broker.push_capped(topics.JOB_INDEX_KEY, job.job, topics.JOB_INDEX_SIZE)
        await self._broker.stream_add(topics.JOBS_STREAM, {"job": job.job})
        logger.info(
            "job %s queued by %s: %d hosts, command %r",
            job.job,
            who.name,
            len(hosts),
            command[:200],
        )
        return job

    async def get(self, job_id: str) -> Job:
        job = await load_job(self._broker, job_id)
        if job is None:
            raise ProtocolError("not_found", f"no job {job_id!r}")
        return job

    async def cancel(self, who: Identity, job_id: str) -> Job:
        """Ask the workers to stop the job: running hosts are stopped, pending ones never start."""
        if not who.is_operator:
            raise ProtocolError("forbidden", "cancelling jobs needs the operator role")
        job = await self.get(job_id)
        if job.state in FINISHED_STATES:
            return job
        await self._broker.set(topics.job_cancel_key(job_id), who.name, ttl=7 * 24 * 3600)
        await self._broker.publish(topics.CONTROL_CHANNEL, json.dumps({"cancel": job_id, "by": who.name}))
        logger.info("job %s cancel requested by %s", job_id, who.name)
        return job
