"""Delivering POSTs to one destination in the background, each retried with backoff until it is
delivered, refused for good or too old, and kept in the broker's outbox meanwhile.

`send` only queues (it never waits), so evaluation is never held up by a receiver: one that
hangs costs each attempt its timeout, here, and nothing else. One attempt is in flight at a
time, first tries in the order sent. A gateway that dies leaves its parcels in the outbox; the
next lease holder `adopt`s them once the dead gateway's alive key has expired, so a transition
is still delivered, at least once (twice only if the dead gateway's last POST arrived but its
receipt did not reach the broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fleetdeck_common.broker import BrokerUnavailable

from .outbox import OutboxStore, Parcel
from .poster import SendFailed

logger = logging.getLogger(__name__)

GIVE_UP_AFTER = 300.0  # seconds after its first try a parcel is given up
ALIVE_TTL = 15.0  # an owner silent this long is dead: its parcels are adopted


@dataclass
class _Pending:
    parcel: Parcel
    tries: int = 0
    stored: bool = False  # written to the outbox (so a removal there means another finished it)


class Delivery:
    """POSTs JSON bodies to `url` (the destination named `dest` in the outbox and in messages)."""

    def __init__(
        self,
        dest: str,
        url: str,
        post: Callable[[str, str], Awaitable[None]],
        outbox: OutboxStore,
        *,
        owner: str | None = None,
        queue_limit: int = 1000,
        give_up_after: float = GIVE_UP_AFTER,
        backoff: tuple[float, float] = (1.0, 30.0),
        alive_ttl: float = ALIVE_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dest = dest
        self._url = url
        self._post = post
        self._outbox = outbox
        self.owner = owner or uuid.uuid4().hex
        self._limit = queue_limit
        self._give_up_after = give_up_after
        self._backoff = backoff
        self._alive_ttl = alive_ttl
        self._clock = clock
        self._new: deque[_Pending] = deque()
        self._retries: list[tuple[float, int, _Pending]] = []  # (due, order, parcel): a heap
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._adopt = False
        self._dropped: list[_Pending] = []
        self.last_error: str | None = None
        self.delivered = 0
        self.looked = 0  # times the outbox was searched for parcels to adopt

    def send(self, body: str) -> None:
        """Queue `body` for delivery; returns at once. Past `queue_limit` waiting parcels the
        oldest new one is dropped (and said so)."""
        if len(self._new) + len(self._retries) >= self._limit:
            dropped = self._new.popleft() if self._new else heapq.heappop(self._retries)[2]
            self._dropped.append(dropped)
            self._fail(
                f"more than {self._limit} POSTs waiting; dropped one from {self._age(dropped):.0f} s ago"
            )
        parcel = Parcel(uuid.uuid4().hex, self.dest, body, self._clock(), self.owner)
        self._new.append(_Pending(parcel))
        self._wake.set()

    def adopt(self) -> None:
        """Look in the outbox for parcels whose owner died, and take them over (the lease holder
        asks this)."""
        self._adopt = True
        self._wake.set()

    @property
    def waiting(self) -> int:
        """Parcels queued or waiting for a retry."""
        return len(self._new) + len(self._retries)

    async def run(self) -> None:
        """Deliver until cancelled; says this gateway is alive while it runs."""
        alive = asyncio.create_task(self._keep_alive(), name=f"{self.dest}-alive")
        try:
            while True:
                if self._adopt:
                    self._adopt = False
                    await self._adopt_orphans()
                while self._dropped:
                    await self._forget(self._dropped.pop())
                pending = self._next_due()
                if pending is None:
                    await self._sleep_until_due()
                    continue
                try:
                    await self._attempt(pending)
                except Exception:  # a bug here must not end delivery for good
                    logger.exception("alert %s: a POST failed unexpectedly; dropped", self.dest)
        finally:
            alive.cancel()

    def _next_due(self) -> _Pending | None:
        if self._retries and self._retries[0][0] <= self._clock():
            return heapq.heappop(self._retries)[2]
        return self._new.popleft() if self._new else None

    async def _sleep_until_due(self) -> None:
        self._wake.clear()
        timeout = max(0.0, self._retries[0][0] - self._clock()) if self._retries else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _attempt(self, pending: _Pending) -> None:
        if not await self._still_ours(pending):
            return
        pending.tries += 1
        try:
            await self._post(self._url, pending.parcel.body)
        except SendFailed as exc:
            await self._retry_or_give_up(pending, exc)
            return
        self.delivered += 1
        await self._forget(pending)

    async def _still_ours(self, pending: _Pending) -> bool:
        """Before a first try, keep the parcel in the outbox; before a retry, check no other
        gateway has adopted or finished it meanwhile (this one was taken for dead)."""
        try:
            if pending.tries == 0 and not pending.stored:
                await self._outbox.put(pending.parcel)
                pending.stored = True
            elif pending.stored:
                return await self._outbox.owner_of(pending.parcel.id) == self.owner
        except BrokerUnavailable as exc:
            logger.warning("%s: the outbox is out of reach (%s); sending anyway", self.dest, exc)
        return True

    async def _retry_or_give_up(self, pending: _Pending, exc: SendFailed) -> None:
        low, high = self._backoff
        delay = min(high, low * 2 ** (pending.tries - 1))
        age = self._age(pending)
        if exc.retry and age + delay <= self._give_up_after:
            self._fail(f"{exc}; trying again in {delay:g} s")
            heapq.heappush(self._retries, (self._clock() + delay, next(self._order), pending))
            return
        why = (
            "retrying cannot help"
            if not exc.retry
            else f"given up after {pending.tries} tries in {age:.0f} s"
        )
        self._fail(f"{exc}; {why}")
        await self._forget(pending)

    async def _forget(self, pending: _Pending) -> None:
        if not pending.stored:
            return
        try:
            await self._outbox.done(pending.parcel.id)
        except BrokerUnavailable as exc:
            logger.warning("%s: could not clear a finished parcel from the outbox (%s)", self.dest, exc)

    def _fail(self, message: str) -> None:
        logger.warning("alert %s: %s", self.dest, message)
        stamp = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        self.last_error = f"{stamp}: {message}"

    def _age(self, pending: _Pending) -> float:
        return self._clock() - pending.parcel.first

    async def _keep_alive(self) -> None:
        while True:
            # An unreachable broker says so itself; the key expires and others adopt, as they should.
            with contextlib.suppress(BrokerUnavailable):
                await self._outbox.alive(self.owner, self._alive_ttl)
            await asyncio.sleep(self._alive_ttl / 3)

    async def _adopt_orphans(self) -> None:
        try:
            for parcel in await self._outbox.parcels():
                if parcel.dest != self.dest or parcel.owner == self.owner:
                    continue
                if await self._outbox.is_alive(parcel.owner):
                    continue
                adopted = Parcel(parcel.id, parcel.dest, parcel.body, parcel.first, self.owner)
                age = self._clock() - parcel.first
                if age > self._give_up_after:
                    await self._outbox.done(parcel.id)
                    self._fail(f"a POST left by a stopped gateway was {age:.0f} s old; given up")
                    continue
                await self._outbox.put(adopted)
                logger.info("alert %s: took over a POST left by a stopped gateway", self.dest)
                self._new.append(_Pending(adopted, stored=True))
        except BrokerUnavailable as exc:
            logger.warning("%s: could not read the outbox (%s); will look again", self.dest, exc)
        self.looked += 1
