"""The `fleet` topic: a compact summary of every host, built once per tick for every follower.

A follower's first frame has every known host (`full`); later frames have only the hosts with a
new sample or a presence change since the previous tick. Each tick builds at most two frames, the
full one (only if someone new is waiting) and the changes, and the same bytes go to every client:
the cost per client does not grow with the fleet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from fleetdeck_common.messages import CpuSample, Fleet, FleetHost, dump

from .clients import Client, Clients
from .presence import Presence


@dataclass
class _Summary:
    total: float | None = None
    mem: float | None = None
    load1: float | None = None


class FleetView:
    def __init__(self, presence: Presence, clients: Clients, clock: Callable[[], float] = time.time) -> None:
        self._presence = presence
        self._clients = clients
        self._clock = clock
        self._summaries: dict[str, _Summary] = {}
        self._changed: set[str] = set()
        self._waiting: set[Client] = set()  # subscribed, first (full) frame not sent yet
        self._following: set[Client] = set()

    def observe(self, sample: CpuSample) -> None:
        summary = self._summaries.setdefault(sample.host, _Summary())
        summary.total, summary.mem, summary.load1 = sample.total, sample.mem, sample.load[0]
        self._changed.add(sample.host)

    def changed(self, hosts: list[str]) -> None:
        """Presence or labels of these hosts changed."""
        self._changed.update(hosts)

    def forget(self, host: str) -> None:
        self._summaries.pop(host, None)
        self._changed.add(host)  # followers learn it is gone: it will no longer be known

    def follow(self, client: Client) -> None:
        if client not in self._following:
            self._waiting.add(client)

    def unfollow(self, client: Client) -> None:
        self._waiting.discard(client)
        self._following.discard(client)

    def _entry(self, host: str) -> FleetHost:
        summary = self._summaries.get(host) or _Summary()
        return FleetHost.model_construct(
            host=host,
            online=self._presence.online(host),
            total=summary.total,
            mem=summary.mem,
            load1=summary.load1,
            labels=self._presence.labels(host),
        )

    def tick(self) -> None:
        """Send this tick's frames: the whole fleet to new followers, the changes to the others."""
        now = round(self._clock(), 3)
        changed, self._changed = self._changed, set()
        if self._following and changed:
            known = [h for h in sorted(changed) if self._presence.knows(h)]
            gone = [h for h in sorted(changed) if not self._presence.knows(h)]
            hosts = [self._entry(h) for h in known]
            # A forgotten host is sent once more as offline, so followers can drop it.
            hosts += [
                FleetHost.model_construct(host=h, online=False, total=None, mem=None, load1=None, labels={})
                for h in gone
            ]
            frame = dump(Fleet.model_construct(ts=now, full=False, hosts=hosts))
            for client in self._following:
                self._clients.send(client, "fleet", frame)
        if self._waiting:
            full = dump(
                Fleet.model_construct(
                    ts=now, full=True, hosts=[self._entry(h) for h in self._presence.hosts()]
                )
            )
            for client in self._waiting:
                self._clients.send(client, "fleet", full)
            self._following |= self._waiting
            self._waiting = set()
