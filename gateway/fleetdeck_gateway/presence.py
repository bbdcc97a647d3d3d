"""Which hosts are online: a host is offline once it misses heartbeats for three intervals. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from fleetdeck_common.messages import HostInfo

MISSED_INTERVALS = 3


@dataclass
class _Host:
    last_seen: float
    interval: float
    cpus: int
    online: bool


class Presence:
    def __init__(self, missed_intervals: int = MISSED_INTERVALS) -> None:
        self._missed = missed_intervals
        self._hosts: dict[str, _Host] = {}

    def _alive(self, host: _Host, now: float) -> bool:
        return now - host.last_seen <= self._missed * host.interval

    def observe(self, host: str, seen_at: float, interval: float, cpus: int, now: float) -> bool:
        """Record a heartbeat; True if this changes what the dashboard shows (new host, back online)."""
        known = self._hosts.get(host)
        if known is not None and seen_at < known.last_seen:
            return False
        state = _Host(seen_at, interval, cpus, online=False)
        state.online = self._alive(state, now)
        self._hosts[host] = state
        return known is None or known.online != state.online or known.cpus != cpus

    def evaluate(self, now: float) -> bool:
        """Mark hosts that went quiet as offline; True if any did."""
        changed = False
        for state in self._hosts.values():
            if state.online and not self._alive(state, now):
                state.online = False
                changed = True
        return changed

    def forget(self, host: str) -> None:
        self._hosts.pop(host, None)

    def gone(self, now: float, forget_after: float) -> list[str]:
        """Hosts not heard from for `forget_after` seconds: retired, or agents scaled away."""
        return sorted(h for h, s in self._hosts.items() if now - s.last_seen > forget_after)

    def hosts(self) -> list[str]:
        return sorted(self._hosts)

    def snapshot(self) -> list[HostInfo]:
        return [
            HostInfo(host=name, online=s.online, last_seen=s.last_seen, cpus=s.cpus)
            for name, s in sorted(self._hosts.items())
        ]
