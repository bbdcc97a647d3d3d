"""Clients following jobs: each watcher gets every result once, in `seq` order, then `done`.

Live results go straight out when they are the next `seq` for that watcher; anything else (a
gap, a replay after `watch`) is filled in from the job's result stream, the record of truth, read
a page at a time by one replay per client and job.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass

from fleetdeck_common.broker.retry import persist
from fleetdeck_common.follow import JobFollower, Verdict
from fleetdeck_common.jobs import JobResults, JobStore, page_size
from fleetdeck_common.messages import Done, Result, dump

from ..ws.clients import Client, Clients

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Watch:
    """One client following one job."""

    follower: JobFollower
    last_id: str | None = None  # how far the result stream has been read for this watch
    dirty: bool = False  # a sync must (re)read the stream
    task: asyncio.Task[None] | None = None  # its one replay, while that runs
    generation: int = 0  # counts `watch` frames for this job: a new one starts the replay over

    @property
    def replaying(self) -> bool:
        return self.task is not None and not self.task.done()


class JobWatches:
    def __init__(self, store: JobStore, clients: Clients) -> None:
        self._store = store
        self._clients = clients
        self._watches: dict[Client, dict[str, Watch]] = {}

    def watch(self, client: Client, job: str, after: int) -> None:
        """Start (or restart) following a job: replay results after `after`, then live.

        A client has one replay per job however many `watch` frames it sends: a new one takes
        over the replay under way, which starts over from the new position at its next step (a
        read in flight is let finish rather than cancelled, so nothing piles up)."""
        watches = self._watches.setdefault(client, {})
        watch = watches.get(job)
        if watch is None:
            watch = watches[job] = Watch(JobFollower(job, after))
        else:
            watch.follower = JobFollower(job, after)
            watch.last_id = None
            watch.generation += 1
        self._schedule_sync(client, watch)

    def watching(self, client: Client, job: str) -> bool:
        return job in self._watches.get(client, {})

    def forget(self, client: Client) -> None:
        for watch in self._watches.pop(client, {}).values():
            if watch.task is not None:
                watch.task.cancel()

    def deliver(self, frame: Result | Done) -> None:
        """A result or `done` published live: pass it to every watcher of its job."""
        for client, watches in list(self._watches.items()):
            watch = watches.get(frame.job)
            if watch is None:
                continue
            if watch.replaying or watch.dirty:
                self._schedule_sync(client, watch)  # a replay is under way; it will catch up
                continue
            verdict = watch.follower.offer(frame)
            if verdict is Verdict.DELIVER:
                self._clients.send(client, frame.type, dump(frame))
            elif verdict is Verdict.GAP:
                self._schedule_sync(client, watch)

    def resync(self) -> int:
        """Read the stored results of every watched job not yet finished for its watcher (live
        ones may have been missed); returns how many watches that is."""
        count = 0
        for client, watches in list(self._watches.items()):
            for watch in watches.values():
                if not watch.follower.done_sent:
                    self._schedule_sync(client, watch)
                    count += 1
        return count

    def _schedule_sync(self, client: Client, watch: Watch) -> None:
        watch.dirty = True
        if watch.replaying:
            return  # the running replay sees `dirty` and reads again
        watch.task = asyncio.create_task(self._sync(client, watch))
        client.run(watch.task)

    def _current(self, client: Client, watch: Watch) -> bool:
        """False once the client is gone (or stopped watching the job)."""
        return self._watches.get(client, {}).get(watch.follower.job) is watch

    async def _sync(self, client: Client, watch: Watch) -> None:
        while watch.dirty and self._current(client, watch):
            watch.dirty = False
            if not await self._catch_up(client, watch, watch.generation):
                return

    async def _catch_up(self, client: Client, watch: Watch, generation: int) -> bool:
        """Send what the result stream holds past the watcher's position, a page at a time: what
        it holds is one page, and it waits for the socket to drain before each result. Ends early
        when a newer `watch` started the replay over; False if the client is too slow."""

        def superseded() -> bool:
            return watch.generation != generation or not self._current(client, watch)

        job = watch.follower.job
        stored: JobResults | None = None
        while True:
            stored = await persist(
                f"reading the results of job {job}",
                functools.partial(self._store.read_results, job, watch.last_id, page_size(stored)),
                logger,
            )
            if superseded():
                return True
            for result in stored.results:
                # Flow control: a replay waits for the socket to drain; a peer too slow is closed.
                if result.seq > watch.follower.last_seq and not await client.outbox.wait_room():
                    return False
                if superseded():
                    return True
                if watch.follower.offer(result, stored=True) is Verdict.DELIVER:
                    self._clients.send(client, "result", dump(result))
            watch.last_id = stored.last_id
            done = stored.done
            if done is not None and watch.follower.offer(done, stored=True) is Verdict.DELIVER:
                self._clients.send(client, "done", dump(done))
            if not stored.more:
                return True
