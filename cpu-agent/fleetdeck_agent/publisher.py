"""What the agent sends for each round of samples, in one round trip: the samples live, heartbeats
that changed or are due, and the history its hosts' tiers are due to get.

A heartbeat whose contents (interval, cores, labels, address, which file systems) did not change
is written every `HEARTBEAT_EVERY` seconds' worth of the host's samples rather than with every
sample, and at least every `HEARTBEAT_WITHIN` seconds (so how full each file system is, also in
it, is up to that old); counting samples keeps a starved agent at the same writes per sample. A
gateway times a host it hears live by its own clock, and reads heartbeats for labels, addresses
and the hosts it has not heard yet.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import replace

from fleetdeck_common.broker import Broker
from fleetdeck_common.history import HistoryStore, HistoryWriter, Tier
from fleetdeck_common.history.samples import record_of
from fleetdeck_common.history.writer import FLUSH_EVERY, RESERVE_EVERY, samples_per
from fleetdeck_common.hoststore import HostStore, Observation

HEARTBEAT_EVERY = 10.0  # seconds at the agent's interval
HEARTBEAT_WITHIN = 120.0  # but never older than this, however seldom a host is sampled


class HeartbeatPacer:
    """Which heartbeats to write now. Pure."""

    def __init__(
        self, every: int = samples_per(HEARTBEAT_EVERY, 1.0), within: float = HEARTBEAT_WITHIN
    ) -> None:
        self._every = every
        self._within = within
        self._written: dict[str, tuple[object, int, float]] = {}  # host -> (contents, samples left, by when)

    def due(self, observation: Observation, now: float) -> bool:
        sample = observation.sample
        mounts = tuple(m.mount for m in observation.mounts)
        contents = (sample.interval, len(sample.percpu), observation.labels, observation.address, mounts)
        known = self._written.get(sample.host)
        if known is not None and known[0] == contents and known[1] > 1 and now < known[2]:
            self._written[sample.host] = (contents, known[1] - 1, known[2])
            return False
        # The first refresh comes at a per-host phase, so a fleet's heartbeats do not all fall due at once.
        left = self._every if known else 1 + zlib.crc32(sample.host.encode()) % self._every
        self._written[sample.host] = (contents, left, now + self._within)
        return True


class Publisher:
    def __init__(
        self, hosts: HostStore, history: HistoryStore, writer: HistoryWriter, interval: float = 1.0
    ) -> None:
        self._hosts = hosts
        self._history = history
        self._writer = writer
        self._pacer = HeartbeatPacer(samples_per(HEARTBEAT_EVERY, interval))

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


def publisher_for(broker: Broker, tiers: tuple[Tier, ...], interval: float = 1.0) -> Publisher:
    """The agent's publisher for hosts sampled every `interval` seconds."""
    every = samples_per(FLUSH_EVERY, interval)
    writer = HistoryWriter(tiers, every, reserve_every=samples_per(RESERVE_EVERY, interval))
    return Publisher(HostStore(broker), HistoryStore(broker, tiers), writer, interval)
