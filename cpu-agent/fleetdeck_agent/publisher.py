"""What the agent sends for each round of samples, in one round trip: the samples live, heartbeats
that changed or are due, and the history its hosts' tiers are due to get.

A heartbeat whose contents (interval, cores, labels, address, which file systems) did not change
is written every `HEARTBEAT_EVERY` seconds rather than with every sample (so how full each file
system is, also in it, is up to that old); a gateway times a host it hears live by
its own clock, and reads heartbeats for labels, addresses and the hosts it has not heard yet.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import replace

from fleetdeck_common.broker import Broker
from fleetdeck_common.history import HistoryStore, HistoryWriter, Tier
from fleetdeck_common.history.samples import record_of
from fleetdeck_common.hoststore import HostStore, Observation

HEARTBEAT_EVERY = 10.0


class HeartbeatPacer:
    """Which heartbeats to write now. Pure."""

    def __init__(self, every: float = HEARTBEAT_EVERY) -> None:
        self._every = every
        self._written: dict[str, tuple[object, float]] = {}  # host -> (contents, next due)

    def due(self, observation: Observation, now: float) -> bool:
        sample = observation.sample
        mounts = tuple(m.mount for m in observation.mounts)
        contents = (sample.interval, len(sample.percpu), observation.labels, observation.address, mounts)
        known = self._written.get(sample.host)
        if known is not None and known[0] == contents and now < known[1]:
            return False
        # The first refresh comes at a per-host phase, so a fleet's heartbeats do not all fall due at once.
        wait = self._every if known else self._every * (1 + zlib.crc32(sample.host.encode()) % 100) / 100
        self._written[sample.host] = (contents, now + wait)
        return True


class Publisher:
    def __init__(self, hosts: HostStore, history: HistoryStore, writer: HistoryWriter) -> None:
        self._hosts = hosts
        self._history = history
        self._writer = writer
        self._pacer = HeartbeatPacer()

    async def publish(self, observations: Sequence[Observation], now: float) -> None:
        """Send the samples, with what is due of heartbeats and history."""
        new = [o.sample.host for o in observations if not self._writer.knows(o.sample.host)]
        if new:
            # Steps this agent left open before a restart go on from what it stored then.
            for host, seeds in (await self._history.resume(new, now)).items():
                self._writer.resume(host, seeds)
        runs = []
        for observation in observations:
            sample = observation.sample
            if self._writer.add(sample.host, sample.ts, record_of(sample)):
                runs.extend(self._writer.take(sample.host, now))
        sent = [replace(o, beat=self._pacer.due(o, now)) for o in observations]
        await self._hosts.publish(sent, self._history.writes(runs, now))

    async def finish(self, now: float) -> None:
        """Write everything held, partial minutes and hours included (the agent stops)."""
        runs = [run for host in self._writer.hosts() for run in self._writer.finish(host, now)]
        await self._history.write(runs, now)


def publisher_for(broker: Broker, tiers: tuple[Tier, ...]) -> Publisher:
    return Publisher(HostStore(broker), HistoryStore(broker, tiers), HistoryWriter(tiers))
