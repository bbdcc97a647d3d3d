"""Pick a broker backend by URL scheme; each backend module is imported only when chosen."""

from __future__ import annotations

from collections.abc import Callable

from .base import (
    GAP,
    Batches,
    Broker,
    BrokerDenied,
    BrokerUnavailable,
    ByteRange,
    ByteStrings,
    Connection,
    Event,
    HashSet,
    KeyValue,
    Publish,
    PubSub,
    PushCapped,
    Reserve,
    SetRange,
    StreamEntry,
    StreamLog,
    Streams,
    Write,
)

__all__ = [
    "GAP",
    "SCHEMES",
    "Batches",
    "Broker",
    "BrokerDenied",
    "BrokerUnavailable",
    "ByteRange",
    "ByteStrings",
    "Connection",
    "Event",
    "HashSet",
    "KeyValue",
    "PubSub",
    "Publish",
    "PushCapped",
    "Reserve",
    "SetRange",
    "StreamEntry",
    "StreamLog",
    "Streams",
    "Write",
    "check_url",
    "create_broker",
]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://")
MEMORY_SCHEME = "memory://"
SCHEMES = (*REDIS_SCHEMES, MEMORY_SCHEME)


def check_url(url: str) -> str:
    """The URL itself if a backend takes it, else ValueError naming the schemes that work."""
    if not url.startswith(SCHEMES):
        raise ValueError(f"must start with {', '.join(SCHEMES[:-1])} or {SCHEMES[-1]}")
    if url.startswith("redis+sentinel://"):
        from .sentinel import parse_sentinel_url

        parse_sentinel_url(url)
    if not url.startswith(MEMORY_SCHEME):
        from .redis_errors import check_tls_options

        check_tls_options(url)
    return url


def create_broker(
    url: str,
    connections: int = 50,
    timeout: float = 5.0,
    on_refusal: Callable[[str], None] | None = None,
) -> Broker:
    """`memory://` for one process; `redis://`, `rediss://`, `unix://` or `redis+sentinel://` for a fleet.

    `connections` caps the Redis connection pool (a call waits for a free one); `timeout` bounds
    every call, so nothing hangs for the length of an outage. `on_refusal(sentence)` is called once
    per distinct command Redis's ACL refuses this user (the memory broker refuses nothing).
    """
    check_url(url)
    if url.startswith(MEMORY_SCHEME):
        from .memory import MemoryBroker

        return MemoryBroker()
    from .redis import RedisBroker

    broker = RedisBroker(url, connections=connections, timeout=timeout)
    broker.refusals.on_refusal = on_refusal
    return broker
