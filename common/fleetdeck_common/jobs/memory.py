"""The job rules on the memory broker: each one plain steps, with nothing awaited in between
that could suspend (the memory broker's calls never do), so each happens as one step, as its Lua
twin in `redis.py` does inside Redis."""

from __future__ import annotations

from collections.abc import Mapping

from ..broker.memory import MemoryBroker
from .rules import Fenced, Submission


class MemoryRules:
    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker

    async def enqueue(self, submission: Submission) -> bool:
        broker = self._broker
        if await broker.get(submission.record_key) is not None:
            return False
        await broker.set(submission.record_key, submission.record, submission.ttl)
        await broker.push_capped(submission.index_key, submission.index_value, submission.index_limit)
        await broker.stream_add(submission.stream, submission.entry)
        await broker.publish(submission.channel, submission.record)
        return True

    async def hold_lease(self, key: str, owner: str, ttl: float) -> bool:
        if await self._broker.get(key) not in (None, owner):
            return False
        await self._broker.set(key, owner, ttl)
        return True

    async def release_lease(self, key: str, owner: str) -> None:
        if await self._broker.get(key) == owner:
            await self._broker.delete(key)

    async def append_fenced(
        self, stream: str, fields: Mapping[str, str], lease: str, owner: str, marker: str, position: int
    ) -> Fenced:
        holder = await self._broker.get(lease)
        if holder is None:
            return Fenced.NO_LEASE
        if holder != owner:
            return Fenced.NOT_HOLDER
        if position <= int(await self._broker.get(marker) or 0):
            return Fenced.DUPLICATE
        await self._broker.stream_add(stream, fields)
        await self._broker.set(marker, str(position), keep_ttl=True)
        return Fenced.WRITTEN
