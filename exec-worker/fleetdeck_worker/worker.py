"""The worker: read jobs from the stream's consumer group, take over stalled ones, shut down gently."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.broker.retry import Stopped, persist
from fleetdeck_common.filestore import FileStore
from fleetdeck_common.health import touch
from fleetdeck_common.jobs import JobStore, QueuedJob, WorkerInfo
from fleetdeck_common.jobs.expiry import expire, overdue
from fleetdeck_common.messages import FINISHED_STATES, Job, Outcome
from fleetdeck_common.service import wait_or_stop

from .admission import Admission
from .jobrun import HostRunner, JobRun, LeaseLost
from .settings import WorkerSettings
from .sftpcopy import copy_runner
from .ssh import run_on_host
from .sshlogin import SshOptions

logger = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        settings: WorkerSettings,
        store: JobStore,
        runner: HostRunner = run_on_host,
        admission: Admission | None = None,
        files: FileStore | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.worker_name
        self._store = store
        self._runner = runner
        self._admission = admission  # with the job key: signed, fresh, never replayed jobs only
        self._files = files  # uploads, for copy jobs
        self._policy = settings.target_policy()
        self._ssh = settings.ssh_options()
        self._runs: dict[str, tuple[str, JobRun, asyncio.Task[None]]] = {}  # job -> (entry id, run, task)

    @property
    def ssh(self) -> SshOptions:
        """How this worker logs in to hosts, with its connection pool (terminals use it too)."""
        return self._ssh

    async def run(self, stop: asyncio.Event) -> None:
        """Take jobs until `stop` is set, then let running hosts finish within the grace period."""
        try:
            await persist("creating the job queue's worker group", self._store.ensure_queue, logger, stop)
        except Stopped:
            return
        helpers = [
            asyncio.create_task(self._listen_for_cancels()),
            asyncio.create_task(self._heartbeat(stop)),
            asyncio.create_task(self._claim_stalled(stop)),
        ]
        logger.info("worker %s taking jobs", self.name)
        try:
            await self._consume(stop)
            await self._drain()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            if self._ssh.pool is not None:
                await self._ssh.pool.close()
        logger.info("worker %s stopped", self.name)

    async def _consume(self, stop: asyncio.Event) -> None:
        failing = False
        while not stop.is_set():
            if len(self._runs) >= self.settings.max_jobs:
                await wait_or_stop(stop, 0.2)
                continue
            try:
                queued = await self._store.take(self.name, count=1, block=1.0)
            except BrokerUnavailable as exc:
                if not failing:
                    logger.warning("cannot read jobs (%s); will keep trying", exc)
                failing = True
                await wait_or_stop(stop, 1.0)
                continue
            if failing:
                logger.info("reading jobs again after a broker outage")
                failing = False
            for entry in queued:
                await self._start_or_leave(entry)

    async def _start_or_leave(self, entry: QueuedJob) -> None:
        try:
            await self._start(entry)
        except BrokerUnavailable as exc:
            # Still pending in the group: this or another worker takes it over after claim_idle.
            logger.warning("could not start job %s (%s); it stays pending", entry.job_id, exc)

    async def _start(self, entry: QueuedJob) -> None:
        job_id = entry.job_id
        if job_id in self._runs:
            return
        job = await self._store.load(job_id)
        if job is None:
            logger.error("queue entry %s names unknown job %r; dropping it", entry.entry_id, job_id)
            await self._store.ack(entry.entry_id)
            return
        if self._admission is not None:
            reason = await self._admission.refusal(entry, job)
            if reason is not None:
                await self._admission.refuse(job, reason)
                await self._store.ack(entry.entry_id)
                return
        if job.state in FINISHED_STATES:
            await self._store.ack(entry.entry_id)  # expired, or cancelled before anyone took it
            return
        if overdue(job, time.time()):
            if await expire(self._store, job, self._policy):
                await self._store.ack(entry.entry_id)
            return
        run = JobRun(
            self._store,
            job,
            self.name,
            self._policy,
            self._ssh,
            self.settings.exec_concurrency,
            await self._runner_for(job),
            lease_ttl=self.settings.claim_idle,
        )
        task = asyncio.create_task(self._run_job(entry.entry_id, run), name=f"job-{job_id}")
        self._runs[job_id] = (entry.entry_id, run, task)

    async def _runner_for(self, job: Job) -> HostRunner:
        """What runs on each host: the command, or for a copy job the push of its file."""
        if job.file_copy is None:
            return self._runner
        found = None if self._files is None else await self._files.read(job.file_copy.file, time.time())
        if found is not None:
            return copy_runner(job.file_copy, found[1])
        note = (
            f"the uploaded file {job.file_copy.file} has expired or is gone from the broker; "
            "nothing was written"
        )
        logger.error("job %s: %s", job.job, note)

        async def missing(
            host: str, command: str, timeout: float, ssh: SshOptions, cancel: asyncio.Event
        ) -> Outcome:
            return Outcome(
                status="error",
                exit_code=None,
                stdout="",
                stderr="",
                duration_ms=0,
                truncated=False,
                error=note,
            )

        return missing

    async def _run_job(self, entry_id: str, run: JobRun) -> None:
        try:
            await run.run()
        except LeaseLost as exc:
            # The worker that holds the lease finishes the job and acknowledges it.
            logger.warning("%s; leaving it", exc)
            self._runs.pop(run.job.job, None)
            return
        except Exception:
            # Left unacknowledged on purpose: another worker takes the job over after claim_idle.
            logger.exception("job %s failed on this worker", run.job.job)
            self._runs.pop(run.job.job, None)
            return
        await persist(f"acknowledging job {run.job.job}", lambda: self._store.ack(entry_id), logger)
        self._runs.pop(run.job.job, None)

    async def _drain(self) -> None:
        if not self._runs:
            return
        tasks = [task for _entry, _run, task in self._runs.values()]
        grace = self.settings.shutdown_grace
        logger.info("waiting up to %.0fs for %d running jobs", grace, len(tasks))
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        if pending:
            for _entry, run, _task in list(self._runs.values()):
                run.cancel(f"worker {self.name} shutting down")
            await asyncio.wait(pending)

    async def _listen_for_cancels(self) -> None:
        async with self._store.cancel_requests() as requests:
            async for request in requests:
                if request.job in self._runs:
                    logger.info("job %s cancelled by %s", request.job, request.by)
                    self._runs[request.job][1].cancel(request.by)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Announce this worker (gateways count who is alive) and keep our in-flight jobs' idle
        time low so nobody takes them over while we live."""
        period = self.settings.claim_idle / 3
        try:
            while True:
                ids = [entry for entry, _run, _task in self._runs.values()]
                info = WorkerInfo(self.name, time.time(), self.settings.claim_idle, len(ids))
                with contextlib.suppress(BrokerUnavailable):
                    await self._store.announce_worker(info)
                    await self._store.keep_taken(self.name, ids)
                    touch(self.settings.health_file)
                await asyncio.sleep(period)
        finally:
            with contextlib.suppress(BrokerUnavailable, RuntimeError):
                await asyncio.shield(self._store.retire_worker(self.name))

    async def _claim_stalled(self, stop: asyncio.Event) -> None:
        """Jobs whose worker went silent for claim_idle seconds: finish what never started."""
        period = max(self.settings.claim_idle / 2, 0.25)
        while not stop.is_set():
            await wait_or_stop(stop, period)
            if stop.is_set() or len(self._runs) >= self.settings.max_jobs:
                continue
            try:
                entries = await self._store.take_stalled(self.name, self.settings.claim_idle, count=4)
            except BrokerUnavailable:
                continue
            for entry in entries:
                logger.warning("taking over stalled job %s", entry.job_id)
                await self._start_or_leave(entry)
