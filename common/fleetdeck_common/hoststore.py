"""Hosts in the broker: a heartbeat per host and each host's capped sample history. Owns their keys."""

from __future__ import annotations

import logging
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from . import topics
from .broker import KeyValue, PubSub
from .messages import CpuSample, dump

logger = logging.getLogger(__name__)

_HOSTS_KEY = topics.key("hosts")  # hash: host -> heartbeat JSON


def _history_key(host: str) -> str:
    return topics.key("cpu", "history", host)


class Heartbeat(BaseModel):
    """What a gateway reads to know a host exists and when it was last heard from."""

    model_config = ConfigDict(frozen=True)

    host: str
    last_seen: float
    interval: float
    cpus: int

    @classmethod
    def of(cls, sample: CpuSample) -> Heartbeat:
        return cls(host=sample.host, last_seen=sample.ts, interval=sample.interval, cpus=len(sample.percpu))


class HostBackend(KeyValue, PubSub, Protocol):
    pass


class HostStore:
    def __init__(self, broker: HostBackend) -> None:
        self._broker = broker

    async def publish(self, sample: CpuSample, history_size: int) -> None:
        """Send the sample live, keep it in the host's history, and record the heartbeat."""
        frame = dump(sample)
        await self._broker.publish(topics.CPU_CHANNEL, frame)
        await self._broker.push_capped(_history_key(sample.host), frame, history_size)
        await self._broker.hash_set(_HOSTS_KEY, sample.host, Heartbeat.of(sample).model_dump_json())

    async def heartbeats(self) -> dict[str, Heartbeat]:
        """Every host's latest heartbeat; a malformed one is logged and left out."""
        beats: dict[str, Heartbeat] = {}
        for host, raw in (await self._broker.hash_get_all(_HOSTS_KEY)).items():
            try:
                beats[host] = Heartbeat.model_validate_json(raw)
            except ValidationError:
                logger.warning("ignored a malformed heartbeat for %r", host)
        return beats

    async def history(self, host: str, limit: int) -> list[CpuSample]:
        """The host's latest `limit` samples, oldest first; malformed ones are left out."""
        samples = []
        for raw in (await self._broker.read_list(_history_key(host)))[-limit:]:
            try:
                samples.append(CpuSample.model_validate_json(raw))
            except ValidationError:
                continue
        return samples

    async def forget(self, host: str) -> None:
        """Drop a retired host's heartbeat and history."""
        await self._broker.hash_delete(_HOSTS_KEY, host)
        await self._broker.delete(_history_key(host))
