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

Compact followers (`fleet_format: "compact"`) follow the same rules with binary frames from one
`Encoder`, each built once per tick for all of them. Its change frames leave out what followers
already hold (rounded), so they go only to clients known to hold the previous tick's state; one
catching up gets its hosts with every value (`catch_up`), and when those are the first compact
followers the encoder is told they now hold the whole fleet (`resync`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from fleetdeck_common.fleet_compact import Encoder
from fleetdeck_common.messages import Fleet, FleetHost, dump
from fleetdeck_common.summaries import Summary

from ..ws.clients import Client, Clients
from ..ws.outbox import Message
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
NO_VALUES = Latest()


class Row(NamedTuple):
    """A host as compact frames need it: a third of what a FleetHost costs to make, and a tick at
    10,000 hosts makes one for each."""

    host: str
    online: bool
    total: float | None
    mem: float | None
    load1: float | None
    labels: dict[str, str]
    disk: float | None


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
        self._compact: set[Client] = set()  # of the three above, those who asked for compact frames
        self._encoder = Encoder()
        self._compact_full: bytes | None = None  # as `_full`, in compact form

    def observe(self, sample: Summary) -> None:
        summary = self._summaries.setdefault(sample.host, Latest())
        summary.total, summary.mem, summary.load1 = sample.total, sample.mem, sample.load1
        summary.disk, summary.net_rx, summary.net_tx = sample.disk, sample.net_rx, sample.net_tx
        summary.uptime, summary.ts = sample.uptime, sample.ts
        self._changed.add(sample.host)

    def latest(self, host: str) -> Latest | None:
        """The host's latest values, None before this gateway has had a sample of it."""
        return self._summaries.get(host)

    def changed(self, hosts: list[str]) -> None:
        """Presence or labels of these hosts changed; those the host table has forgotten go (their
        followers learn it at the next tick, and one that comes back starts with no old values)."""
        self._changed.update(hosts)
        for host in hosts:
            if not self._presence.knows(host):
                self._summaries.pop(host, None)

    def follow(self, client: Client, compact: bool | None = None) -> None:
        """Send `client` the fleet from now on, in JSON or compact frames (None: as it follows
        now, JSON for a new follower); switching format starts it anew."""
        if client in self._following or client in self._joined or client in self._catching_up:
            if compact is None or (client in self._compact) == compact:
                return
            self.unfollow(client)
        if compact:
            self._compact.add(client)
        self._clients.send_keyed(client, "fleet", FLEET_KEY, self._full_frame(client))
        self._joined.add(client)

    def _full_frame(self, client: Client) -> Message:
        """This tick's full frame in the client's format, built once for all who need it."""
        if client in self._compact:
            if self._compact_full is None:
                rows = self._rows(self._presence.hosts())
                self._compact_full = self._encoder.full(round(self._clock(), 3), rows)
            return self._compact_full
        if self._full is None:
            hosts = [self._entry(h) for h in self._presence.hosts()]
            self._full = dump(Fleet.model_construct(ts=round(self._clock(), 3), full=True, hosts=hosts))
        return self._full

    def _send(self, client: Client, changes: Message | None) -> None:
        if client.outbox.pending(FLEET_KEY):
            self.replaced += 1
            self._clients.send_keyed(client, "fleet", FLEET_KEY, self._full_frame(client))
        elif changes is not None:
            self._clients.send_keyed(client, "fleet", FLEET_KEY, changes)

    def unfollow(self, client: Client) -> None:
        self._joined.discard(client)
        self._catching_up.discard(client)
        self._following.discard(client)
        self._compact.discard(client)

    def _split(self, hosts: set[str]) -> tuple[list[str], list[str]]:
        """These hosts by name: those known, and those forgotten."""
        ordered, knows = sorted(hosts), self._presence.knows
        return [h for h in ordered if knows(h)], [h for h in ordered if not knows(h)]

    @staticmethod
    def _changes(now: float, entries: list[FleetHost], gone: list[str]) -> str:
        # A forgotten host is sent once more as offline, so followers can drop it.
        entries = entries + [
            FleetHost.model_construct(
                host=h, online=False, total=None, mem=None, load1=None, labels={}, disk=None
            )
            for h in gone
        ]
        return dump(Fleet.model_construct(ts=now, full=False, hosts=entries))

    def _rows(self, hosts: Iterable[str]) -> list[Row]:
        online, labels, summaries = self._presence.online, self._presence.labels, self._summaries
        rows = []
        for host in hosts:
            s = summaries.get(host) or NO_VALUES
            rows.append(Row(host, online(host), s.total, s.mem, s.load1, labels(host), s.disk))
        return rows

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
        # A full frame built now (for a client behind) has this tick's state.
        self._full = self._compact_full = None
        compact_following = len(self._compact & self._following)
        if self._following and changed:
            known, gone = self._split(changed)
            # JSON needs FleetHost entries; compact frames alone make do with cheaper rows.
            entries = [self._entry(h) for h in known] if len(self._following) > compact_following else None
            frame = None if entries is None else self._changes(now, entries, gone)
            rows = entries if entries is not None else self._rows(known)
            compact = self._encoder.changes(now, rows, gone) if compact_following else None
            for client in self._following:
                self._send(client, compact if client in self._compact else frame)
        if self._catching_up:
            known, gone = self._split(changed | self._previous)
            compact_catching_up = len(self._compact & self._catching_up)
            entries = (
                [self._entry(h) for h in known] if len(self._catching_up) > compact_catching_up else None
            )
            both = None if entries is None else self._changes(now, entries, gone)
            rows = entries if entries is not None else self._rows(known)
            compact_both = self._encoder.catch_up(now, rows, gone) if compact_catching_up else None
            for client in self._catching_up:
                self._send(client, compact_both if client in self._compact else both)
            if compact_catching_up and not compact_following:
                self._encoder.resync(self._rows(self._presence.hosts()))
        self._following |= self._catching_up
        self._catching_up, self._joined = self._joined, set()
        self._previous = changed
        self._full = self._compact_full = None
