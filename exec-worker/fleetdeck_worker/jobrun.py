"""One job on one worker: run every host once, write each result the moment it is known.

Two rules keep a job honest when workers die or stall:

- A host is marked started in the broker (HSETNX) before its command runs. A worker that takes
  over a stalled job reports hosts that were started but have no result as `lost` instead of
  running them again: a command never runs twice on a host.
- A worker runs a job only while it holds the job's lease, and every result it writes is fenced
  by that lease (checked and written in one step). A worker that stalled past its lease and wakes
  up after another took the job over cannot write: `seq` stays gapless and unique.

Rolling jobs run in waves; past `max_failures` no host starts. Both follow from the stored
results, so a worker taking a job over mid-wave carries on where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.broker.retry import persist
from fleetdeck_common.grouping import group_outputs, retry_targets, summarize
from fleetdeck_common.jobs import Fenced, JobStore
from fleetdeck_common.messages import Done, HostStatus, Job, Outcome, Result
from fleetdeck_common.messages.rolling import failure_limit, halt_reason, over_limit, waves
from fleetdeck_common.outputlimit import fit_output
from fleetdeck_common.scope import parse_scope
from fleetdeck_common.targets import TargetError, TargetPolicy, expand_targets

from .ssh import run_on_host
from .sshlogin import SshOptions

logger = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 2.0

HostRunner = Callable[[str, str, float, SshOptions, asyncio.Event], Awaitable[Outcome]]


def _not_run(status: HostStatus, note: str) -> Outcome:
    """The outcome of a host whose command was never started by this run."""
    return Outcome(
        status=status, exit_code=None, stdout="", stderr="", duration_ms=0, truncated=False, error=note
    )


class LeaseLost(Exception):
    """Another worker holds the job now; this one must stop writing to it."""


class JobRun:
    def __init__(
        self,
        store: JobStore,
        job: Job,
        worker: str,
        policy: TargetPolicy,
        ssh: SshOptions,
        concurrency: int,
        runner: HostRunner = run_on_host,
        lease_ttl: float = 30.0,
    ) -> None:
        self._store = store
        self.job = job
        self._worker = worker
        self._policy = policy
        self._ssh = ssh
        self._concurrency = concurrency
        self._runner = runner
        self._lease_ttl = lease_ttl
        self.cancel_event = asyncio.Event()
        self.cancelled_by: str | None = None
        self.records_lost = False
        self._results: list[Result] = []
        self._seq = 0
        self._write_lock = asyncio.Lock()
        self._started = time.monotonic()
        self._limit: int | None = None
        self._halt: str | None = None

    @property
    def results(self) -> list[Result]:
        return list(self._results)

    def cancel(self, by: str) -> None:
        self.cancelled_by = self.cancelled_by or by
        self.cancel_event.set()

    async def run(self) -> None:
        """Run the job to its end; LeaseLost if another worker holds or takes it."""
        job_id = self.job.job
        if not await self._store.hold_lease(job_id, self._worker, self._lease_ttl):
            raise LeaseLost(f"job {job_id} is held by another worker")
        try:
            hosts = expand_targets(self.job.runs_on, self._policy)
            if self.job.scope is not None:
                parse_scope(self.job.scope).check(hosts)  # the submitting token's targets
        except TargetError as exc:
            logger.error("job %s refused by this worker: %s", job_id, exc)
            await self._finish(error=f"refused by worker: {exc}")
            return
        stored = await self._store.read_results(job_id)
        if stored.done is not None:
            logger.info("job %s was already finished", job_id)
            return
        self._results, self._seq = list(stored.results), max((r.seq for r in stored.results), default=0)
        reported = {r.host for r in self._results}
        started = await self._store.started(job_id)
        if cancelled_by := await self._store.cancelled_by(job_id):
            self.cancel(cancelled_by)
        self.job = self.job.model_copy(update={"state": "running"})
        await persist("marking the job running", lambda: self._store.announce(self.job), logger)
        for host in hosts:
            if host in started and host not in reported:
                note = f"its worker {started[host]} stopped while the command ran; not run again"
                await self._report(host, _not_run("lost", note))
        todo = {h for h in hosts if h not in started and h not in reported}
        logger.info("job %s: %d hosts to run, %d already done", job_id, len(todo), len(hosts) - len(todo))
        self._limit, plan = failure_limit(self.job.max_failures, len(hosts)), waves(hosts, self.job.batch)
        slots = asyncio.Semaphore(self._concurrency)
        helpers = [asyncio.create_task(self._watch_cancel_key()), asyncio.create_task(self._keep_lease())]
        try:
            for number, wave in enumerate(plan, 1):
                left = [h for h in wave if h in todo]
                if not left:
                    continue
                if self.job.batch is not None and not self._halted():  # the job frame shows the wave
                    self.job = self.job.model_copy(update={"wave": number, "waves": len(plan)})
                    await persist("announcing the wave", lambda: self._store.announce(self.job), logger)
                # A TaskGroup: if the lease is lost, every host still running is stopped at once.
                async with asyncio.TaskGroup() as group:
                    for host in left:
                        group.create_task(self._run_host(host, slots))
        except* LeaseLost as lost:
            raise lost.exceptions[0] from None
        finally:
            for helper in helpers:
                helper.cancel()
        await self._finish()

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ttl / 3)
            try:
                await self._check_records()
                held = await self._store.hold_lease(self.job.job, self._worker, self._lease_ttl)
            except BrokerUnavailable:
                continue  # the fenced writes decide; the lease may well outlive the outage
            if not held:
                logger.error("job %s: lease lost to another worker; stopping", self.job.job)
                self.cancel_event.set()
                return

    async def _watch_cancel_key(self) -> None:
        """The control channel cancels at once; this poll catches a cancel sent while it was down."""
        while not self.cancel_event.is_set():
            await asyncio.sleep(CANCEL_POLL_SECONDS)
            try:
                by = await self._store.cancelled_by(self.job.job)
            except BrokerUnavailable:
                continue
            if by:
                self.cancel(by)

    def _halted(self) -> str | None:
        """Why no host starts any more (more hosts than `max_failures` failed), or None."""
        failed = sum(1 for r in self._results if r.status != "ok")
        if self._halt is None and over_limit(failed, self._limit):  # said once, as it happened
            self._halt = halt_reason(failed, self.job.max_failures, self._limit)
        return self._halt

    async def _run_host(self, host: str, slots: asyncio.Semaphore) -> None:
        async with slots:
            stop = "cancelled before start" if self.cancel_event.is_set() else self._halted()
            if stop:  # cancelled, or past max_failures
                await self._report(host, _not_run("cancelled", stop))
                return
            if not await self._claim(host):
                logger.warning("job %s: %s was started by another worker; leaving it", self.job.job, host)
                return
            outcome = await self._runner(
                host, self.job.command, self.job.timeout, self._ssh, self.cancel_event
            )
            # The limit counts what is sent: bytes that JSON escapes (control bytes: 6 each) count so.
            await self._report(host, fit_output(outcome, self._ssh.output_limit))

    async def _claim(self, host: str) -> bool:
        return await persist(
            f"marking {host} started",
            lambda: self._store.mark_started(self.job.job, host, self._worker),
            logger,
        )

    async def _append(self, frame: Result | Done, position: int) -> None:
        """Write under the lease (the caller holds the write lock); LeaseLost if another worker
        holds the job; the lease is taken back if it had merely lapsed or the broker lost it."""
        outcome = await self._store.append(frame, self._worker, position)
        if outcome is Fenced.NO_LEASE:
            await self._regain_lease()
            outcome = await self._store.append(frame, self._worker, position)
        if outcome is Fenced.NOT_HOLDER:
            raise LeaseLost(f"job {self.job.job} was taken over by another worker")
        if outcome is Fenced.NO_LEASE:
            raise BrokerUnavailable("the job's lease vanished again")  # retried

    async def _regain_lease(self) -> None:
        job_id = self.job.job
        if await self._store.load(job_id) is None:
            await self._restore_lost_records()
            return
        if not await self._store.hold_lease(job_id, self._worker, self._lease_ttl):
            raise LeaseLost(f"job {job_id} was taken over by another worker")
        # Holding it again, check nobody ran the job while the lease had lapsed.
        stored = await self._store.read_results(job_id)
        if stored.done is not None or max((r.seq for r in stored.results), default=0) != self._seq:
            await self._store.release_lease(job_id, self._worker)
            raise LeaseLost(f"job {job_id} was taken over by another worker while its lease had lapsed")
        logger.warning(
            "job %s: this worker's lease had lapsed; nobody else ran the job; it took it back", job_id
        )

    async def _restore_lost_records(self) -> None:
        """The broker lost the job (Redis restarted without its data): write back what this worker
        knows, stop what has not run, and end the job saying so. Nothing runs twice: no other
        worker can have the job, since its queue entry went with the rest."""
        job_id = self.job.job
        if self.records_lost:
            return
        self.records_lost = True
        logger.error(
            "job %s: its records vanished from the broker (did Redis restart without its data?); "
            "%d results are written back from this worker's memory and the hosts not yet run are "
            "cancelled",
            job_id,
            len(self._results),
        )
        self.cancel("fleetdeck (the broker lost this job's records)")
        if not await self._store.hold_lease(job_id, self._worker, self._lease_ttl):
            raise LeaseLost(f"job {job_id} was taken by another worker after the broker lost it")
        await self._store.announce(self.job.model_copy(update={"state": "running"}))
        for result in self._results:
            await self._store.append(result, self._worker, result.seq)

    async def _check_records(self) -> None:
        """Notice a broker that lost the job even while no result is being written."""
        if not self.records_lost and await self._store.load(self.job.job) is None:
            async with self._write_lock:
                await self._restore_lost_records()

    async def _report(self, host: str, outcome: Outcome) -> None:
        async with self._write_lock:
            result = Result.of(self.job.job, self._seq + 1, host, outcome)
            await persist(f"writing the result of {host}", lambda: self._append(result, result.seq), logger)
            self._seq = result.seq
            self._results.append(result)

    async def _finish(self, error: str | None = None) -> None:
        job_id = self.job.job
        error = error or self._halted()
        summary = summarize(self._results)
        done = Done(
            job=job_id,
            summary=summary,
            duration_ms=int((time.monotonic() - self._started) * 1000),
            groups=group_outputs(self._results),
            retry_targets=retry_targets(self._results),
            error=error,
        )
        state = "cancelled" if self.cancelled_by else "done"
        final = self.job.model_copy(
            update={
                "state": state,
                "summary": summary,
                "finished": round(time.time(), 3),
                "cancelled_by": self.cancelled_by,
                "error": error,
            }
        )
        if self.records_lost:
            error = error or (
                "the broker lost this job's records while it ran (did Redis restart without its "
                f"data?); worker {self._worker} wrote back the results of the hosts that had run, "
                "and the others were not run"
            )
            done = done.model_copy(update={"error": error})
            final = final.model_copy(update={"error": error})
        async with self._write_lock:
            await persist("writing the job's end", lambda: self._append(done, self._seq + 1), logger)
        await persist("updating the job record", lambda: self._store.announce(final), logger)
        try:
            await self._store.retain(job_id)
        except BrokerUnavailable:
            logger.warning("could not set the retention of job %s", job_id)
        with contextlib.suppress(BrokerUnavailable):
            await self._store.release_lease(job_id, self._worker)
        logger.info("job %s %s: %s", job_id, state, summary)
