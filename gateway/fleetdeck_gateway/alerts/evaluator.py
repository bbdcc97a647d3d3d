"""Evaluating the rules once a second, by one gateway at a time: the one holding the lease.

The lease is renewed in a task of its own, every `interval`, however long an evaluation takes
(the evaluation itself runs in a thread, so a large fleet does not hold the event loop). The
holder reads every (rule, host)'s state from the broker when it takes the lease, and keeps it
while it holds it; each evaluation's changes and transitions are committed in one step that only
the holder can make (`AlertStore.commit`, fenced by the count of commits the holder read). A
holder whose lease lapsed but that no other gateway committed after goes on with what it holds;
when a commit is refused or its outcome is unknown (the broker did not answer), the state is
dropped and read again once the lease is held, so a takeover or a restart neither fires an alert
again nor forgets one.

After taking the lease the holder waits `settle` seconds before evaluating: its presence and
samples catch up first, so a gateway that just started (or a broker that just came back) does
not take a fleet it has not heard from yet for offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from fleetdeck_common.alerts.rules import Rule
from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.messages import Alert

from ..feeds.fleet import Latest
from .evaluation import Key, Tracked, evaluate
from .selection import Selections, Watched
from .silences import SilenceMatcher
from .sink import AlertSink
from .store import AlertStore

logger = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0
LEASE_TTL_SECONDS = 5.0
SETTLE_SECONDS = 2.0


class AlertEvaluator:
    def __init__(
        self,
        store: AlertStore,
        owner: str,
        rules: Callable[[], Sequence[Rule]],
        known: Callable[[], Sequence[Watched]],
        latest: Callable[[str], Latest | None],
        sink: AlertSink,
        version: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.time,
        interval: float = INTERVAL_SECONDS,
        lease_ttl: float = LEASE_TTL_SECONDS,
        settle: float = SETTLE_SECONDS,
    ) -> None:
        self._store = store
        self.owner = owner
        self._rules = rules
        self._known = known
        self._version = version  # of the hosts' names, addresses and labels (selections are kept)
        self._selections = Selections()
        self._latest = latest
        self._sink = sink
        self._clock = clock
        self._interval = interval
        self._lease_ttl = lease_ttl
        self._settle = settle
        self._tracks: dict[Key, Tracked] | None = None  # while holding the lease
        self._commits = 0  # the commits made, as the next commit expects them
        self._reads = 0  # how many times the state was read: an evaluation begun before is void
        self._settled_at = 0.0
        self.evaluations = 0

    @property
    def holding(self) -> bool:
        return self._tracks is not None

    def _drop(self, why: str) -> None:
        if self._tracks is not None:
            logger.warning("no longer evaluating alert rules: %s", why)
        self._tracks = None

    async def renew(self) -> bool:
        """Hold the lease (taking it if free), and read the state when it was not held."""
        try:
            if not await self._store.hold_lease(self.owner, self._lease_ttl):
                self._drop("another gateway holds the lease")
                return False
            if self._tracks is None:
                commits = await self._store.commits()  # before the states: a commit between is refused
                tracks = await self._store.states()
                self._tracks, self._commits, self._reads = tracks, commits, self._reads + 1
                self._settled_at = self._clock() + self._settle
                logger.info("evaluating alert rules from now on (%d alert states read)", len(tracks))
            return True
        except BrokerUnavailable as exc:
            self._drop(f"the broker did not answer ({exc})")
            return False

    async def tick(self) -> None:
        """Hold the lease and, once settled, evaluate every rule and commit what changed."""
        if await self.renew():
            await self.evaluate_once()

    async def evaluate_once(self) -> None:
        """Once settled, evaluate every rule and commit what changed (the lease held apart)."""
        now = self._clock()
        if self._tracks is None or now < self._settled_at:
            return
        try:
            await self._evaluate(self._tracks, now)
        except BrokerUnavailable as exc:
            self._drop(f"the broker did not answer ({exc})")

    async def _evaluate(self, tracks: dict[Key, Tracked], now: float) -> None:
        known, rules, reads = self._known(), self._rules(), self._reads
        version = self._version()

        def choose(targets: str | None, hosts: Sequence[Watched]) -> Sequence[Watched]:
            return self._selections.choose(targets, hosts, version)

        outcome = await asyncio.to_thread(evaluate, rules, known, self._latest, tracks, now, choose)
        if reads != self._reads or self._tracks is not tracks:
            return  # the state was dropped or read again meanwhile: this outcome is void
        silences = await self._store.silences()
        muted = SilenceMatcher(silences, known, now)

        def marked(alerts: Sequence[Alert]) -> list[Alert]:
            return [a.model_copy(update={"silenced": muted(a.rule, a.host)}) for a in alerts]

        changes = marked(outcome.changes)
        done = 0
        if outcome.written or outcome.removed or changes:
            done = await self._store.commit(
                self.owner, self._commits, self._lease_ttl, outcome.written, outcome.removed, changes
            )
            if not done:
                self._drop("the lease passed to another gateway")
                return
        # Read again during the commit, the state read stays: its count is behind, so its next
        # commit is refused and it is read once more.
        if reads == self._reads and self._tracks is tracks:
            self._commits = done or self._commits
            self._tracks = outcome.tracks
        self.evaluations += 1
        try:
            self._sink.evaluated(changes, marked(outcome.firing()))
        except Exception:
            logger.exception("the alert sink failed; evaluation goes on")

    async def run(self) -> None:
        """Renew the lease and evaluate, each every `interval`, neither waiting for the other."""
        renewing = asyncio.create_task(self._every(self.renew), name="alert-lease")
        try:
            await self._every(self.evaluate_once)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def _every(self, action: Callable[[], Awaitable[object]]) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            try:
                await action()
            except Exception:  # a bug must not end evaluation for good: start again from the broker
                logger.exception("alert evaluation failed; reading the state again")
                self._tracks = None
            next_tick = max(next_tick + self._interval, loop.time())
            await asyncio.sleep(max(next_tick - loop.time(), 0.0))

    async def release(self) -> None:
        """Give the lease up (a gateway stopping), so another takes over at once."""
        self._tracks = None
        with contextlib.suppress(BrokerUnavailable):
            await self._store.release_lease(self.owner)
