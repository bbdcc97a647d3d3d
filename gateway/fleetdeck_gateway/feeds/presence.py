"""Presence kept in step with the broker: heartbeats (with labels and addresses) of hosts this
process has not heard live, hosts that went quiet, and retired hosts forgotten with their history.

Changes are gathered and sent at most once a tick: a fleet coming online at once costs one
`hosts` frame per tick, not one per host. A v1 follower gets the whole list each time; one following
with `hosts_format: "changes"` gets it once, then only the hosts that changed and those forgotten.
Latest wins: a change list its client has not taken yet is replaced by the whole list, never queued
behind it, so a slow client holds one frame and still misses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from fleetdeck_common import hoststore
from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.hoststore import HostStore
from fleetdeck_common.messages import HostInfo, Hosts, Mount, dump
from fleetdeck_common.summaries import Summary

from ..ws.clients import Client, Clients
from .hosttable import HostTable

logger = logging.getLogger(__name__)

PRESENCE_TICK_SECONDS = 0.25
PRESENCE_RELOAD_SECONDS = 10.0
HOSTS_KEY = "hosts"  # the outbox key of a client's next `hosts` frame: one waits at most

HostsChanged = Callable[[list[str]], None]


class PresenceSync:
    def __init__(
        self,
        store: HostStore,
        table: HostTable,
        clients: Clients,
        forget_after: float,
        on_change: HostsChanged = lambda hosts: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._table = table
        self._clients = clients
        self._forget_after = forget_after
        self._on_change = on_change
        self._clock = clock
        self._changed: set[str] = set()
        self._unknown_heard = False  # a host was heard live before its heartbeat was read
        self._said: dict[str, str] = {}  # host -> what its heartbeat said when last read (`contents`)
        self._without_summaries: set[str] = set()  # hosts whose (older) agents publish no summaries

    def hosts(self) -> list[str]:
        return self._table.hosts()

    def knows(self, host: str) -> bool:
        return self._table.knows(host)

    def snapshot(self) -> list[HostInfo]:
        return self._table.snapshot()

    def detail(self, host: str) -> tuple[HostInfo, list[Mount]] | None:
        """One host's entry and its file systems, None if it is not known."""
        entry = self._table.info(host)
        return (entry, self._table.mounts(host)) if entry is not None else None

    def boot_of(self, host: str) -> float | None:
        """When the host booted, as its latest sample or heartbeat says (None: not known)."""
        return self._table.boot_of(host)

    def without_summaries(self, host: str) -> bool:
        """Whether the host's agent is older than sample summaries (its heartbeat says so)."""
        return host in self._without_summaries

    def any_without_summaries(self) -> bool:
        return bool(self._without_summaries)

    def frame(self, changes: bool = False) -> str:
        """The whole list, as v1 sends it or (`changes`) marked `full` for a change follower."""
        return dump(Hosts(hosts=self._table.snapshot(), full=True if changes else None))

    def follow(self, client: Client, changes: bool) -> None:
        """Send `client` the whole list now, then at each change the list again or (`changes`)
        only what changed."""
        client.hosts_changes = changes
        self._clients.send_keyed(client, "hosts", HOSTS_KEY, self.frame(changes))

    def _changes(self, changed: list[str]) -> str:
        entries = [e for e in map(self._table.info, changed) if e is not None]
        gone = [h for h in changed if not self._table.knows(h)]
        return dump(Hosts(hosts=entries, full=False, gone=gone))

    def observe(self, sample: Summary) -> None:
        """A live sample is a heartbeat too (timed by this process's clock)."""
        now = self._clock()
        if not self._table.knows(sample.host):
            self._unknown_heard = True
        if self._table.observe(sample.host, now, sample.interval, sample.cpus, now):
            self._changed.add(sample.host)
        if sample.uptime is not None:
            self._table.booted(sample.host, sample.ts - sample.uptime)

    async def reload(self) -> None:
        """Read every heartbeat: hosts not heard live yet, labels and addresses; forget the gone."""
        now = self._clock()
        self._unknown_heard = False
        for host, raw in (await self._store.stored()).items():
            # A known host's heartbeat matters only for what it says apart from its time (a host
            # is timed by its samples once known): one that says the same again is not read.
            said = hoststore.contents(raw)
            if self._said.get(host) == said and self._table.knows(host):
                continue
            beat = hoststore.parse(host, raw)
            if beat is None:
                continue
            self._said[host] = said
            if beat.summaries:
                self._without_summaries.discard(host)
            else:
                self._without_summaries.add(host)
            if not self._table.knows(host) and self._table.observe(
                host, beat.last_seen, beat.interval, beat.cpus, now
            ):
                self._changed.add(host)
            if self._table.describe(host, beat.labels, beat.address, beat.mounts):
                self._changed.add(host)
            if beat.boot is not None:
                self._table.booted(host, beat.boot, latest=False)
        for host in self._table.gone(now, self._forget_after):
            logger.info("forgetting %s: not heard from for %.0fs", host, self._forget_after)
            await self._store.forget(host)
            self._table.forget(host)
            self._said.pop(host, None)
            self._without_summaries.discard(host)
            self._changed.add(host)

    def flush(self) -> None:
        """Tell followers about this tick's changes."""
        self._changed.update(self._table.evaluate(self._clock()))
        if not self._changed:
            return
        changed, self._changed = sorted(self._changed), set()
        self._on_change(changed)
        frames: dict[str, str] = {}  # each kind built once, for every follower who needs it
        for client in self._clients:
            if "hosts" not in client.topics:
                continue
            kind = self._kind(client)
            if kind not in frames:
                frames[kind] = self._changes(changed) if kind == "changes" else self.frame(kind == "full")
            self._clients.send_keyed(client, "hosts", HOSTS_KEY, frames[kind])

    @staticmethod
    def _kind(client: Client) -> str:
        """The frame a follower gets: the v1 list, or the changes unless a change list still waits
        for it (then the whole list, which covers both)."""
        if not client.hosts_changes:
            return "list"
        return "full" if client.outbox.pending(HOSTS_KEY) else "changes"

    async def run(self) -> None:
        """Reload every few seconds (at once when an unknown host is heard); flush every tick."""
        next_reload = 0.0
        while True:
            now = self._clock()
            if now >= next_reload or self._unknown_heard:
                with contextlib.suppress(BrokerUnavailable):
                    await self.reload()
                if now >= next_reload:
                    next_reload = now + PRESENCE_RELOAD_SECONDS
            self.flush()
            await asyncio.sleep(PRESENCE_TICK_SECONDS)
