"""Pick a broker backend by URL scheme; each backend module is imported only when chosen."""

from __future__ import annotations

from .base import Broker, BrokerUnavailable, Event, StreamEntry

__all__ = ["Broker", "BrokerUnavailable", "Event", "StreamEntry", "create_broker"]


def create_broker(url: str) -> Broker:
    """`memory://` for one process, `redis://`, `rediss://` or `unix://` for a fleet."""
    if url.startswith("memory://"):
        from .memory import MemoryBroker

        return MemoryBroker()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisBroker

        return RedisBroker(url)
    raise ValueError(f"unsupported broker URL scheme: {url.split(':', 1)[0]!r}")
