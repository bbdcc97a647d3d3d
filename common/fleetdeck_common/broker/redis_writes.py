"""The batched writes (`Write`) as commands queued on a Redis pipeline, and byte ranges read raw."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio.client import Pipeline
from redis.client import NEVER_DECODE

from .base import ByteRange, HashSet, Publish, PushCapped, Reserve, SetRange, Write


def queue_write(pipe: Pipeline, write: Write) -> None:
    if isinstance(write, PushCapped):
        pipe.rpush(write.key, write.value)
        pipe.ltrim(write.key, -write.limit, -1)
    elif isinstance(write, HashSet):
        pipe.hset(write.key, write.field, write.value)
    elif isinstance(write, Publish):
        pipe.publish(write.channel, write.data)
    elif isinstance(write, Reserve):
        ttl_ms = max(int(write.ttl * 1000), 1)
        pipe.set(write.key, bytes(write.size), nx=True, px=ttl_ms)
        pipe.pexpire(write.key, ttl_ms)
    elif isinstance(write, SetRange):
        pipe.setrange(write.key, write.offset, write.data)


def queue_reads(pipe: Pipeline, ranges: Sequence[ByteRange]) -> None:
    """GETRANGE for each range, its reply left as bytes (the client decodes text otherwise)."""
    options: dict[str, Any] = {NEVER_DECODE: True}
    for item in ranges:
        if item.end > item.start:
            pipe.execute_command("GETRANGE", item.key, item.start, item.end - 1, **options)


def replies(ranges: Sequence[ByteRange], answers: list[Any]) -> list[bytes]:
    """Each range's bytes from the pipeline's answers (empty ranges were not sent)."""
    found = iter(answers)
    return [bytes(next(found)) if item.end > item.start else b"" for item in ranges]
