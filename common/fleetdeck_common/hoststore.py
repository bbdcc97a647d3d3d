"""Hosts in the broker: a heartbeat per host (their history is `history.store`'s). Owns the key."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from . import summaries, topics
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
    interval: float
    cpus: int
    labels: dict[str, str] = {}
    address: str = ""  # how SSH reaches the host; empty: its name
    mounts: list[Mount] = []  # its local file systems, fullest first (absent from older agents)
    boot: float | None = None  # when the host booted (unix s): the uptime of its stored samples
    # The agent publishes sample summaries too; an older one (False) only full samples, which a
    # gateway then takes in for that host's fleet values.
    summaries: bool = False
    # Last, so what a heartbeat says apart from its time is a prefix of its JSON (`contents`).
    last_seen: float

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
            summaries=True,
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
        """Record the heartbeats (and `stored`, the history writes), then send the samples live, and
        their summaries in one message (a gateway that hears of a new host live finds its labels
        already there). One round trip."""
        writes = list(stored)
        live: list[Write] = []
        if observations:
            rows = [summaries.summary_of(o.sample) for o in observations]
            live.append(Publish(topics.SUMMARY_CHANNEL, summaries.encode(rows)))
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
        beats = {host: parse(host, raw) for host, raw in (await self.stored()).items()}
        return {host: beat for host, beat in beats.items() if beat is not None}

    async def stored(self) -> dict[str, str]:
        """Every host's latest heartbeat as stored (`parse` reads one, `contents` compares them)."""
        return await self._broker.hash_get_all(_HOSTS_KEY)

    async def forget(self, host: str) -> None:
        """Drop a retired host's heartbeat (its history expires by itself, tier by tier)."""
        await self._broker.hash_delete(_HOSTS_KEY, host)


def parse(host: str, raw: str) -> Heartbeat | None:
    """A stored heartbeat; None (and a warning) when it is malformed."""
    try:
        return Heartbeat.model_validate_json(raw)
    except ValidationError:
        logger.warning("ignored a malformed heartbeat for %r", host)
        return None


def contents(raw: str) -> str:
    """What a stored heartbeat says apart from when it was written: equal for two heartbeats
    whose only difference is `last_seen` (heartbeats of older agents, which wrote it elsewhere,
    always differ)."""
    head, found, _ = raw.rpartition(',"last_seen":')
    return head if found else raw
