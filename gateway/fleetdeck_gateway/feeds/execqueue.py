"""The exec queue as the gateway sees it: how many workers are alive, and jobs left waiting.

Workers announce themselves every few seconds; the count goes into `hello`, `GET /api/workers`
and a `workers` frame to `jobs` subscribers whenever it changes, so a person is told "no exec
worker is running" instead of watching `running 0/2`. A job no worker took by its
`queued_until` is expired here (see `fleetdeck_common.expiry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.jobs import JOB_INDEX_SIZE, JobStore, WorkerInfo
from fleetdeck_common.jobs.expiry import expire, overdue
from fleetdeck_common.messages import Job, Workers, dump
from fleetdeck_common.targets import TargetPolicy

from ..ws.clients import Clients

logger = logging.getLogger(__name__)

CHECK_SECONDS = 1.0


class QueueWatch:
    def __init__(
        self,
        store: JobStore,
        clients: Clients,
        policy: TargetPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clients = clients
        self._policy = policy
        self._clock = clock
        self._waiting: dict[str, Job] = {}  # queued jobs this gateway knows of
        self.workers: list[WorkerInfo] = []

    def frame(self) -> str:
        return dump(Workers(alive=len(self.workers), names=[w.name for w in self.workers]))

    def observe(self, job: Job) -> None:
        """A job announcement: follow it while it is queued."""
        if job.state == "queued":
            self._waiting[job.job] = job
        else:
            self._waiting.pop(job.job, None)

    async def load(self) -> None:
        """Queued jobs from before this gateway started."""
        for job in await self._store.recent(JOB_INDEX_SIZE):
            self.observe(job)

    async def check(self) -> None:
        now = self._clock()
        workers = await self._store.workers(now)
        if [w.name for w in workers] != [w.name for w in self.workers]:
            logger.info(
                "exec workers alive: %d (%s)", len(workers), ", ".join(w.name for w in workers) or "none"
            )
            self.workers = workers
            for client in self._clients:
                if "jobs" in client.topics:
                    self._clients.send(client, "workers", self.frame())
        self.workers = workers
        for job in [j for j in self._waiting.values() if overdue(j, now)]:
            self._waiting.pop(job.job, None)
            await expire(self._store, job, self._policy, now)

    async def run(self) -> None:
        with contextlib.suppress(BrokerUnavailable):
            await self.load()
        while True:
            with contextlib.suppress(BrokerUnavailable):
                await self.check()
            await asyncio.sleep(CHECK_SECONDS)
