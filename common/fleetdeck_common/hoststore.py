"""Hosts in the broker: a heartbeat per host (their history is `history.store`'s). Owns the key."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from . import topics
from .acl import grant
from .broker import Batches, HashSet, KeyValue, Publish, PubSub, Write
from .messages import CpuSample, Mount, dump

logger = logging.getLogger(__name__)

_HOSTS_KEY = topics.key("hosts")  # hash: host -> heartbeat JSON

# Agents only write heartbeats, batched with their live samples (`publish`); the gateway reads
# them and forgets retired hosts.
ACCESS = (
    grant(
        _HOSTS_KEY, read=["gateway"], write=["agent", "gateway"], batches={"agent": ["HashSet", "Publish"]}
    ),
)


class Heartbeat(BaseModel):
    """What a gateway reads to know a host exists and when it was last heard from."""

    model_config = ConfigDict(frozen=True)

    host: str
    last_seen: float
    interval: float
    cpus: int
    labels: dict[str, str] = {}
    address: str = ""  # how SSH reaches the host; empty: its name
    mounts: list[Mount] = []  # its local file systems, fullest first (absent from older agents)
    boot: float | None = None  # when the host booted (unix s): the uptime of its stored samples

    @classmethod
    def of(
        cls, sample: CpuSample, labels: dict[str, str], address: str, mounts: Sequence[Mount] = ()
    ) -> Heartbeat:
        return cls(
            host=sample.host,
            last_seen=sample.ts,
            interval=sample.interval,
            cpus=len(sample.percpu),
            labels=labels,
            address=address,
            mounts=list(mounts),
            boot=None if sample.uptime is None else round(sample.ts - sample.uptime),
        )


class HostBackend(KeyValue, PubSub, Batches, Protocol):
    pass


@dataclass(frozen=True)
class Observation:
    """One sample with what the heartbeat says about its host."""

    sample: CpuSample
    labels: dict[str, str] = field(default_factory=dict)
    address: str = ""  # empty: the host's name
    mounts: Sequence[Mount] = ()  # per file system detail, carried in the heartbeat
    beat: bool = True  # write the heartbeat too (an agent refreshes an unchanged one less often)


class HostStore:
    def __init__(self, broker: HostBackend) -> None:
        self._broker = broker

    async def publish(self, observations: Sequence[Observation], stored: Sequence[Write] = ()) -> None:
        """Record the heartbeats (and `stored`, the history writes), then send the samples live (a
        gateway that hears of a new host live finds its labels already there). One round trip."""
        writes = list(stored)
        live: list[Write] = []
        for observation in observations:
            sample = observation.sample
            if observation.beat:
                address = observation.address or sample.host
                beat = Heartbeat.of(sample, observation.labels, address, observation.mounts)
                writes.append(HashSet(_HOSTS_KEY, sample.host, beat.model_dump_json()))
            live.append(Publish(topics.CPU_CHANNEL, dump(sample)))
        await self._broker.write_batch(writes + live)

    async def heartbeats(self) -> dict[str, Heartbeat]:
        """Every host's latest heartbeat; a malformed one is logged and left out."""
        beats: dict[str, Heartbeat] = {}
        for host, raw in (await self._broker.hash_get_all(_HOSTS_KEY)).items():
            try:
                beats[host] = Heartbeat.model_validate_json(raw)
            except ValidationError:
                logger.warning("ignored a malformed heartbeat for %r", host)
        return beats

    async def forget(self, host: str) -> None:
        """Drop a retired host's heartbeat (its history expires by itself, tier by tier)."""
        await self._broker.hash_delete(_HOSTS_KEY, host)
