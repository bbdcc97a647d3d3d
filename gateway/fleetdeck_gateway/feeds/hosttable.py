"""Which hosts are online: a host is offline once it misses heartbeats for three intervals. Pure.

Also what the heartbeats say about each host: its labels, the address SSH reaches it at, its
file systems (they change nothing a follower is sent: only `GET /api/hosts/{host}` shows them) and
when it booted (what the stored samples of a `history` frame count their `uptime` from).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from fleetdeck_common.messages import HostInfo, Mount

MISSED_INTERVALS = 3


@dataclass
class _Host:
    last_seen: float
    interval: float
    cpus: int
    online: bool
    labels: dict[str, str] = field(default_factory=dict)
    address: str = ""
    mounts: list[Mount] = field(default_factory=list)
    boot: float | None = None


class HostEntry(NamedTuple):
    """A known host as alert rules read it once a second: cheaper to make than a `HostInfo`."""

    host: str
    online: bool
    labels: dict[str, str]
    address: str


class HostTable:
    def __init__(self, missed_intervals: int = MISSED_INTERVALS) -> None:
        self._missed = missed_intervals
        self._hosts: dict[str, _Host] = {}
        self.version = 0  # moves on when a host is added or forgotten, or its labels or address change
        # No online host goes quiet before this: `evaluate`, several times a second over a big
        # fleet, looks at every host only from then on.
        self._quiet_from = math.inf

    def _alive(self, host: _Host, now: float) -> bool:
        return now - host.last_seen <= self._missed * host.interval

    def observe(self, host: str, seen_at: float, interval: float, cpus: int, now: float) -> bool:
        """Record a heartbeat; True if this changes what the dashboard shows (new host, back online)."""
        known = self._hosts.get(host)
        if known is not None and seen_at < known.last_seen:
            return False
        state = _Host(seen_at, interval, cpus, online=False)
        if known is not None:
            state.labels, state.address, state.mounts = known.labels, known.address, known.mounts
            state.boot = known.boot
        state.online = self._alive(state, now)
        if state.online:
            self._quiet_from = min(self._quiet_from, seen_at + self._missed * interval)
        self._hosts[host] = state
        if known is None:
            self.version += 1
        return known is None or known.online != state.online or known.cpus != cpus

    def describe(
        self, host: str, labels: dict[str, str], address: str, mounts: list[Mount] | None = None
    ) -> bool:
        """Record a known host's labels, address and file systems; True if labels or address changed."""
        state = self._hosts.get(host)
        if state is not None and mounts is not None:
            state.mounts = mounts
        if state is None or (state.labels == labels and state.address == address):
            return False
        state.labels, state.address = dict(labels), address
        self.version += 1
        return True

    def booted(self, host: str, boot: float, latest: bool = True) -> None:
        """Record when a known host booted; `latest`: this is news (a live sample), else only
        fill in a boot time not known yet (a heartbeat, which may be older)."""
        state = self._hosts.get(host)
        if state is not None and (latest or state.boot is None):
            state.boot = boot

    def boot_of(self, host: str) -> float | None:
        state = self._hosts.get(host)
        return state.boot if state is not None else None

    def evaluate(self, now: float) -> list[str]:
        """Mark hosts that went quiet as offline; the hosts that did."""
        if now < self._quiet_from - 1e-6:  # (the margin: rounding never skips a host gone quiet)
            return []
        gone_quiet, quiet_from, missed = [], math.inf, self._missed
        for name, state in self._hosts.items():
            if not state.online:
                continue
            if now - state.last_seen > missed * state.interval:  # `_alive`, inlined
                state.online = False
                gone_quiet.append(name)
            else:
                quiet_from = min(quiet_from, state.last_seen + missed * state.interval)
        self._quiet_from = quiet_from
        return gone_quiet

    def forget(self, host: str) -> None:
        if self._hosts.pop(host, None) is not None:
            self.version += 1

    def gone(self, now: float, forget_after: float) -> list[str]:
        """Hosts not heard from for `forget_after` seconds: retired, or agents scaled away."""
        return sorted(h for h, s in self._hosts.items() if now - s.last_seen > forget_after)

    def knows(self, host: str) -> bool:
        return host in self._hosts

    def hosts(self) -> list[str]:
        return sorted(self._hosts)

    def online(self, host: str) -> bool:
        state = self._hosts.get(host)
        return state is not None and state.online

    def labels(self, host: str) -> dict[str, str]:
        state = self._hosts.get(host)
        return state.labels if state is not None else {}

    def address_of(self, host: str) -> str | None:
        """The address SSH reaches a known host at (its name when its heartbeat gave none)."""
        state = self._hosts.get(host)
        return (state.address or host) if state is not None else None

    def addresses_with(self, key: str, value: str) -> list[str]:
        """The SSH addresses of the online hosts whose label `key` is `value`."""
        return [
            s.address or name
            for name, s in sorted(self._hosts.items())
            if s.online and s.labels.get(key) == value
        ]

    def mounts(self, host: str) -> list[Mount]:
        state = self._hosts.get(host)
        return state.mounts if state is not None else []

    def entries(self) -> list[HostEntry]:
        return [
            HostEntry(name, s.online, s.labels, s.address or name) for name, s in sorted(self._hosts.items())
        ]

    def snapshot(self) -> list[HostInfo]:
        return [self._info(name, s) for name, s in sorted(self._hosts.items())]

    def info(self, host: str) -> HostInfo | None:
        """The host's entry in `hosts` frames, None if it is not known."""
        s = self._hosts.get(host)
        return self._info(host, s) if s is not None else None

    @staticmethod
    def _info(name: str, s: _Host) -> HostInfo:
        return HostInfo(
            host=name,
            online=s.online,
            last_seen=s.last_seen,
            cpus=s.cpus,
            labels=s.labels,
            address=s.address or name,
        )
