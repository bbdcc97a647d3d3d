"""Presence kept in step with the broker: heartbeats of hosts this process has not heard live,
hosts that went quiet, and retired hosts forgotten (with their history)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.hoststore import HostStore
from fleetdeck_common.messages import CpuSample, HostInfo, Hosts, dump

from .clients import Clients
from .presence import Presence

logger = logging.getLogger(__name__)

PRESENCE_TICK_SECONDS = 0.25
PRESENCE_RELOAD_SECONDS = 10.0


class PresenceSync:
    def __init__(
        self,
        store: HostStore,
        clients: Clients,
        forget_after: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clients = clients
        self._forget_after = forget_after
        self._clock = clock
        self._presence = Presence()

    def hosts(self) -> list[str]:
        return self._presence.hosts()

    def snapshot(self) -> list[HostInfo]:
        return self._presence.snapshot()

    def frame(self) -> str:
        return dump(Hosts(hosts=self._presence.snapshot()))

    def broadcast(self) -> None:
        self._clients.send_latest("hosts", "hosts", self.frame())

    def observe(self, sample: CpuSample) -> None:
        """A live sample is a heartbeat too (timed by this process's clock)."""
        now = self._clock()
        if self._presence.observe(sample.host, now, sample.interval, len(sample.percpu), now):
            self.broadcast()

    async def reload(self) -> None:
        """Take in hosts known to the broker that this process has not heard from itself yet,
        and forget those gone for `forget_after` seconds."""
        now = self._clock()
        known = set(self._presence.hosts())
        changed = False
        for host, beat in (await self._store.heartbeats()).items():
            if host not in known:
                changed |= self._presence.observe(host, beat.last_seen, beat.interval, beat.cpus, now)
        gone = self._presence.gone(now, self._forget_after)
        for host in gone:
            logger.info("forgetting %s: not heard from for %.0fs", host, self._forget_after)
            await self._store.forget(host)
            self._presence.forget(host)
        if changed or gone:
            self.broadcast()

    async def run(self) -> None:
        """Reload every few seconds; mark hosts offline as soon as they miss their heartbeats."""
        next_reload = 0.0
        while True:
            now = self._clock()
            if now >= next_reload:
                with contextlib.suppress(BrokerUnavailable):
                    await self.reload()
                next_reload = now + PRESENCE_RELOAD_SECONDS
            if self._presence.evaluate(self._clock()):
                self.broadcast()
            await asyncio.sleep(PRESENCE_TICK_SECONDS)
