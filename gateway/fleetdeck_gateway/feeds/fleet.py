"""The `fleet` topic: a compact summary of every host, built once per tick for every follower.

A new follower gets every known host at once (`full`, built at most once per tick for all who
join in it); later frames have only the hosts with a new sample or a presence change. No client
gets more than one frame per tick: one who joined since the last tick skips that tick's changes
and gets, at the next, the changes of both ticks, which cover everything since its full frame was
built. Each tick builds at most three frames, and the same bytes go to every client: the cost per
client does not grow with the fleet.

Latest wins: a client that has not yet been sent its previous tick's frame (it reads slowly, or
the gateway is behind) does not queue another change list behind it; the frame waiting for it is
replaced by a full one, so it always gets the current state and never a backlog of old ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from fleetdeck_common.messages import CpuSample, Fleet, FleetHost, dump

from ..ws.clients import Client, Clients
from .hosttable import HostTable


@dataclass
class Latest:
    """A host's latest values, as `fleet` entries and `GET /metrics/fleet` show them."""

    total: float | None = None
    mem: float | None = None
    load1: float | None = None
    disk: float | None = None
    net_rx: float | None = None
    net_tx: float | None = None
    uptime: float | None = None
    ts: float | None = None  # the sample's own time (alert rules time `for` by it)


FLEET_KEY = "fleet"  # the outbox key of a client's next `fleet` frame: one waits at most


class FleetView:
    def __init__(self, table: HostTable, clients: Clients, clock: Callable[[], float] = time.time) -> None:
        self._presence = table
        self._clients = clients
        self._clock = clock
        self._summaries: dict[str, Latest] = {}
        self._changed: set[str] = set()
        self._previous: set[str] = set()  # what changed in the last tick
        self._full: str | None = None  # this tick's full frame, once someone needed it
        self.replaced = 0  # frames replaced by a full one before their client took them
        self._joined: set[Client] = set()  # got the full frame during this tick
        self._catching_up: set[Client] = set()  # skipped a tick's changes; get two ticks' worth next
        self._following: set[Client] = set()

    def observe(self, sample: CpuSample) -> None:
        summary = self._summaries.setdefault(sample.host, Latest())
        summary.total, summary.mem, summary.load1 = sample.total, sample.mem, sample.load[0]
        summary.disk, summary.net_rx, summary.net_tx = sample.disk, sample.net_rx, sample.net_tx
        summary.uptime, summary.ts = sample.uptime, sample.ts
        self._changed.add(sample.host)

    def latest(self, host: str) -> Latest | None:
        """The host's latest values, None before this gateway has had a sample of it."""
        return self._summaries.get(host)

    def changed(self, hosts: list[str]) -> None:
        """Presence or labels of these hosts changed."""
        self._changed.update(hosts)

    def forget(self, host: str) -> None:
        self._summaries.pop(host, None)
        self._changed.add(host)  # followers learn it is gone: it will no longer be known

    def follow(self, client: Client) -> None:
        if client in self._following or client in self._joined or client in self._catching_up:
            return
        self._clients.send_keyed(client, "fleet", FLEET_KEY, self._full_frame())
        self._joined.add(client)

    def _full_frame(self) -> str:
        if self._full is None:
            hosts = [self._entry(h) for h in self._presence.hosts()]
            self._full = dump(Fleet.model_construct(ts=round(self._clock(), 3), full=True, hosts=hosts))
        return self._full

    def _send(self, client: Client, changes: str) -> None:
        if client.outbox.pending(FLEET_KEY):
            self.replaced += 1
            self._clients.send_keyed(client, "fleet", FLEET_KEY, self._full_frame())
        else:
            self._clients.send_keyed(client, "fleet", FLEET_KEY, changes)

    def unfollow(self, client: Client) -> None:
        self._joined.discard(client)
        self._catching_up.discard(client)
        self._following.discard(client)

    def _changes(self, hosts: set[str], now: float) -> str:
        known = [h for h in sorted(hosts) if self._presence.knows(h)]
        gone = [h for h in sorted(hosts) if not self._presence.knows(h)]
        entries = [self._entry(h) for h in known]
        # A forgotten host is sent once more as offline, so followers can drop it.
        entries += [
            FleetHost.model_construct(
                host=h, online=False, total=None, mem=None, load1=None, labels={}, disk=None
            )
            for h in gone
        ]
        return dump(Fleet.model_construct(ts=now, full=False, hosts=entries))

    def _entry(self, host: str) -> FleetHost:
        summary = self._summaries.get(host) or Latest()
        return FleetHost.model_construct(
            host=host,
            online=self._presence.online(host),
            total=summary.total,
            mem=summary.mem,
            load1=summary.load1,
            labels=self._presence.labels(host),
            disk=summary.disk,
        )

    def tick(self) -> None:
        """Send this tick's changes: to followers, and two ticks' worth to those catching up."""
        now = round(self._clock(), 3)
        changed, self._changed = self._changed, set()
        self._full = None  # a full frame built now (for a client behind) has this tick's state
        if self._following and changed:
            frame = self._changes(changed, now)
            for client in self._following:
                self._send(client, frame)
        if self._catching_up:
            both = self._changes(changed | self._previous, now)
            for client in self._catching_up:
                self._send(client, both)
        self._following |= self._catching_up
        self._catching_up, self._joined = self._joined, set()
        self._previous = changed
        self._full = None
