"""Exec jobs from the gateway's side: validate and queue, cancel, look up. Every exec attempt and
every cancel, accepted or refused, goes to the audit trail."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from fleetdeck_common.filestore import FileStore
from fleetdeck_common.grouping import fold_hosts
from fleetdeck_common.jobs import JobResults, JobStore, ResultsPage
from fleetdeck_common.jobs.signing import JobKey, sign
from fleetdeck_common.messages import FINISHED_STATES, ExecRequest, Job, ProtocolError
from fleetdeck_common.targets import (
    KnownAddresses,
    LabelLookup,
    TargetError,
    TargetPolicy,
    expand_targets,
    split_terms,
)

from ..auth.identity import Identity
from .audittrail import AuditTrail
from .cancelrule import cancel_refusal
from .hostjobs import host_param, known_as, ran_on, status_on, window_param

logger = logging.getLogger(__name__)


@dataclass
class _Expanded:
    hosts: list[str] | None = None  # what the targets expanded to, once they have


class JobService:
    def __init__(
        self,
        store: JobStore,
        policy: TargetPolicy,
        labels: LabelLookup | None = None,
        queue_timeout: float = 60.0,
        audit: AuditTrail | None = None,
        on_queued: Callable[[Job], None] = lambda job: None,
        key: JobKey | None = None,
        address_of: Callable[[str], str | None] = lambda host: None,
        files: FileStore | None = None,
    ) -> None:
        self.store = store
        self._policy = policy
        self._labels = labels
        self._queue_timeout = queue_timeout
        self._audit = audit
        self._on_queued = on_queued  # counted in the metrics, whoever queued it (socket or HTTP)
        self._key = key  # FLEETDECK_JOB_KEY_FILE: every job queued carries its signature
        self._address_of = address_of  # a known host's SSH address, from its heartbeat
        self._files = files  # uploads, for copy jobs

    async def submit(self, who: Identity, request: ExecRequest) -> Job:
        """Validate the targets and queue the job; nothing is queued if anything is wrong. The
        attempt is audited either way."""
        expanded = _Expanded()
        try:
            job = await self._submit(who, request, expanded)
        except ProtocolError as exc:
            if self._audit is not None:
                await self._audit.exec_attempt(who, request, expanded.hosts, refusal=exc)
            raise
        self._on_queued(job)
        if self._audit is not None:
            await self._audit.exec_attempt(who, request, expanded.hosts, job=job)
        return job

    async def _submit(self, who: Identity, request: ExecRequest, expanded: _Expanded) -> Job:
        if not who.is_operator:
            raise ProtocolError("forbidden", "running commands needs the operator role")
        named = KnownAddresses(self._address_of)  # `vm` runs on the address its heartbeat gave
        try:
            hosts = expand_targets(request.targets, self._policy, self._labels, named)
        except TargetError as exc:
            raise ProtocolError("invalid_targets", str(exc)) from None
        expanded.hosts = hosts
        refusal = who.exec_refusal(hosts)  # an expired token, or a host outside the token's targets
        if refusal is not None:
            raise ProtocolError("forbidden", refusal)
        now = round(time.time(), 3)
        if request.file_copy is not None:
            await self._check_file(request.file_copy.file, now)
        job = Job(
            job=secrets.token_hex(8),
            targets=request.targets.strip(),
            command=request.command,
            hosts=len(hosts),
            by=who.name,
            ts=now,
            state="queued",
            timeout=request.timeout,
            resolved_targets=_resolved(request.targets, hosts, self._policy, named.used),
            queued_until=round(now + self._queue_timeout, 3),
            scope=who.scope,
            file_copy=request.file_copy,
            batch=request.batch,
            max_failures=request.max_failures,
        )
        await self.store.submit(job, sign(self._key, job) if self._key is not None else None)
        logger.info(
            "job %s queued by %s: %d hosts, %r", job.job, who.name, len(hosts), request.describe()[:200]
        )
        return job

    async def _check_file(self, file_id: str, now: float) -> None:
        """A copy job's file must be uploaded and not yet expired."""
        if self._files is None or await self._files.info(file_id, now) is None:
            raise ProtocolError(
                "bad_request",
                f"copy.file: no uploaded file {file_id} (unknown, or expired a day after its upload); "
                "upload it with POST /api/files",
            )

    async def get(self, job_id: str) -> Job:
        job = await self.store.load(job_id)
        if job is None:
            raise ProtocolError("not_found", f"no job {job_id!r}")
        return job

    async def results(self, job_id: str) -> JobResults:
        return await self.store.read_results(job_id)

    async def results_after(self, job_id: str, after: int, limit: int, max_chars: int) -> ResultsPage:
        """A page of the job's stored results past `after` (the HTTP API's view of them)."""
        return await self.store.results_after(job_id, after, limit, max_chars)

    async def recent(self, limit: int) -> list[Job]:
        return await self.store.recent(limit)

    async def listed(
        self, limit: int, host: str | None = None, since: str | None = None, until: str | None = None
    ) -> list[dict[str, object]]:
        """The latest jobs as `GET /api/jobs` lists them; with `host`, only those that ran on it,
        each with that host's own `host_status` (null while the job runs); with `since` (and
        `until`), every job still kept that was queued then instead of the latest `limit`."""
        try:
            name = host_param(host)
            window = window_param(since, until, time.time())
        except ValueError as exc:
            raise ProtocolError("bad_request", str(exc)) from None
        jobs = await (self.store.between(*window) if window else self.store.recent(limit))
        if name is None:
            return [job.model_dump(exclude={"type", "ref"}) for job in jobs]

        def expand(expression: str) -> list[str]:
            return expand_targets(expression, self._policy)

        called = known_as(name, self._address_of(name))
        return [
            job.model_dump(exclude={"type", "ref"})
            | {"host_status": status_on(await self.store.final(job.job), called, expand)}
            for job in jobs
            if ran_on(job, called, expand)
        ]

    async def cancel(self, who: Identity, job_id: str) -> Job:
        """Ask the workers to stop the job: running hosts are stopped, pending ones never start.
        Who may cancel whose job is `cancelrule`'s; the request is audited either way."""
        job: Job | None = None
        try:
            if not who.is_operator:  # before looking the job up: a viewer learns nothing from it
                raise ProtocolError("forbidden", "cancelling jobs needs the operator role")
            job = await self.get(job_id)
            refusal = cancel_refusal(who, job, self._policy)
            if refusal is not None:
                raise ProtocolError("forbidden", refusal)
        except ProtocolError as exc:
            if self._audit is not None:
                await self._audit.cancel(who, job_id, job, refusal=exc)
            raise
        if job.state not in FINISHED_STATES:
            await self.store.request_cancel(job_id, who.name)
            logger.info("job %s cancel requested by %s", job_id, who.name)
        if self._audit is not None:
            await self._audit.cancel(who, job_id, job)
        return job


def _resolved(targets: str, hosts: list[str], policy: TargetPolicy, renamed: bool = False) -> str | None:
    """For an expression with label selectors or known hosts' names (`renamed`), the hosts they
    chose now, as an expression the worker expands without knowing labels or heartbeats (folded
    when that round-trips, else listed)."""
    if not renamed and not any(term.lstrip("!").startswith("@") for term in split_terms(targets)):
        return None
    folded = fold_hosts(hosts)
    try:
        if expand_targets(folded, policy) == hosts:
            return folded
    except TargetError:
        pass
    return ",".join(hosts)
