"""Clients following jobs: each watcher gets every result once, in `seq` order, then `done`.

Live results go straight out when they are the next `seq` for that watcher; anything else (a
gap, a replay after `watch`) is filled in from the job's result stream, the record of truth.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field

from fleetdeck_common.broker.retry import persist
from fleetdeck_common.follow import JobFollower, Verdict
from fleetdeck_common.jobstore import JobStore
from fleetdeck_common.messages import Done, Result, dump

from .clients import Client, Clients

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Watch:
    """One client following one job."""

    follower: JobFollower
    last_id: str | None = None  # how far the result stream has been read for this watch
    dirty: bool = False  # a sync must (re)read the stream
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JobWatches:
    def __init__(self, store: JobStore, clients: Clients) -> None:
        self._store = store
        self._clients = clients
        self._watches: dict[Client, dict[str, Watch]] = {}

    def watch(self, client: Client, job: str, after: int) -> None:
        """Start (or restart) following a job: replay results after `after`, then live."""
        watch = Watch(JobFollower(job, after))
        self._watches.setdefault(client, {})[job] = watch
        self._schedule_sync(client, watch)

    def watching(self, client: Client, job: str) -> bool:
        return job in self._watches.get(client, {})

    def forget(self, client: Client) -> None:
        self._watches.pop(client, None)

    def deliver(self, frame: Result | Done) -> None:
        """A result or `done` published live: pass it to every watcher of its job."""
        for client, watches in list(self._watches.items()):
            watch = watches.get(frame.job)
            if watch is None:
                continue
            if watch.lock.locked() or watch.dirty:
                self._schedule_sync(client, watch)  # a replay is under way; it will catch up
                continue
            verdict = watch.follower.offer(frame)
            if verdict is Verdict.DELIVER:
                self._clients.send(client, frame.type, dump(frame))
            elif verdict is Verdict.GAP:
                self._schedule_sync(client, watch)

    def _schedule_sync(self, client: Client, watch: Watch) -> None:
        watch.dirty = True
        if watch.lock.locked():
            return  # the running sync sees `dirty` and reads again
        client.run(asyncio.create_task(self._sync(client, watch)))

    def _current(self, client: Client, watch: Watch) -> bool:
        """False once a newer `watch` of the same job (or a disconnect) replaced this one."""
        return self._watches.get(client, {}).get(watch.follower.job) is watch

    async def _sync(self, client: Client, watch: Watch) -> None:
        job = watch.follower.job
        async with watch.lock:
            while watch.dirty and self._current(client, watch):
                watch.dirty = False
                stored = await persist(
                    f"reading the results of job {job}",
                    functools.partial(self._store.read_results, job, watch.last_id),
                    logger,
                )
                for result in stored.results:
                    if not self._current(client, watch):
                        return
                    # Flow control: a replay waits for the socket to drain; a peer too slow is closed.
                    if result.seq > watch.follower.last_seq and not await client.outbox.wait_room():
                        return
                    if watch.follower.offer(result, stored=True) is Verdict.DELIVER:
                        self._clients.send(client, "result", dump(result))
                watch.last_id = stored.last_id
                done = stored.done
                if done is not None and watch.follower.offer(done, stored=True) is Verdict.DELIVER:
                    self._clients.send(client, "done", dump(done))
