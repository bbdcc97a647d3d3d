"""Pick a broker backend by URL scheme; each backend module is imported only when chosen."""

from __future__ import annotations

from .base import (
    Broker,
    BrokerUnavailable,
    Connection,
    Event,
    JobQueue,
    KeyValue,
    Leases,
    PubSub,
    StreamEntry,
    Submission,
)

__all__ = [
    "SCHEMES",
    "Broker",
    "BrokerUnavailable",
    "Connection",
    "Event",
    "JobQueue",
    "KeyValue",
    "Leases",
    "PubSub",
    "StreamEntry",
    "Submission",
    "check_url",
    "create_broker",
]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
MEMORY_SCHEME = "memory://"
SCHEMES = (*REDIS_SCHEMES, MEMORY_SCHEME)


def check_url(url: str) -> str:
    """The URL itself if a backend takes it, else ValueError naming the schemes that work."""
    if not url.startswith(SCHEMES):
        raise ValueError(f"must start with {', '.join(SCHEMES[:-1])} or {SCHEMES[-1]}")
    return url


def create_broker(url: str) -> Broker:
    """`memory://` for one process, `redis://`, `rediss://` or `unix://` for a fleet."""
    check_url(url)
    if url.startswith(MEMORY_SCHEME):
        from .memory import MemoryBroker

        return MemoryBroker()
    from .redis import RedisBroker

    return RedisBroker(url)
