"""Redis behind Sentinel: `redis+sentinel://[:password@]host:port[,host:port...]/SERVICE/DB`.

The sentinels are asked which server is the master of SERVICE; after a failover every new
connection goes to the new master, and the broker's own reconnect logic does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

SCHEME = "redis+sentinel://"
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    password: str | None
    sentinel_password: str | None


def parse_sentinel_url(url: str) -> SentinelUrl:
    """The parts of a `redis+sentinel://` URL, or ValueError saying what is wrong."""
    if not url.startswith(SCHEME):
        raise ValueError(f"a Sentinel URL starts with {SCHEME}")
    rest, _, query = url[len(SCHEME) :].partition("?")
    netloc, _, path = rest.partition("/")
    password = None
    if "@" in netloc:
        credentials, netloc = netloc.rsplit("@", 1)
        password = unquote(credentials.partition(":")[2]) or None
    sentinels = []
    for item in netloc.split(","):
        host, _, port = item.strip().rpartition(":") if ":" in item else (item.strip(), "", "")
        host = host.strip("[]")
        if not host:
            raise ValueError(f"sentinel {item!r} has no host")
        try:
            sentinels.append((host, int(port) if port else DEFAULT_SENTINEL_PORT))
        except ValueError:
            raise ValueError(f"sentinel {item!r}: port must be a number") from None
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise ValueError("name the Sentinel service: redis+sentinel://host:26379/SERVICE/DB")
    try:
        db = int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise ValueError(f"database {parts[1]!r} must be a number") from None
    options = parse_qs(query)
    sentinel_password = options.get("sentinel_password", [None])[0]
    return SentinelUrl(tuple(sentinels), parts[0], db, password, sentinel_password)


def sentinel_pool(url: str, **options: Any) -> Any:
    """A blocking connection pool to whichever server the sentinels name as master of SERVICE."""
    from redis.asyncio.connection import BlockingConnectionPool
    from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

    class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
        """Sentinel's master discovery with the blocking pool's waiting for a free connection."""

    parsed = parse_sentinel_url(url)
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": options.get("socket_connect_timeout", 2.0)}
    if parsed.sentinel_password:
        sentinel_kwargs["password"] = parsed.sentinel_password
    manager = Sentinel(list(parsed.sentinels), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    return BlockingSentinelPool(  # type: ignore[no-untyped-call]
        parsed.service, manager, db=parsed.db, password=parsed.password, check_connection=False, **options
    )
