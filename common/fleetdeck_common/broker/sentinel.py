"""Redis behind Sentinel: `redis+sentinel://[USER:PASSWORD@]host:port[,host:port...]/SERVICE/DB`.

The sentinels are asked which server is the master of SERVICE; after a failover every new
connection goes to the new master, and the broker's own reconnect logic does the rest. The user
and password are the servers' (a Redis ACL user); the sentinels' own password, if they have one
(`requirepass` in sentinel.conf), goes in `?sentinel_password=` (and `sentinel_username=` for
sentinels with ACL users of their own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

SCHEME = "redis+sentinel://"
DEFAULT_SENTINEL_PORT = 26379
OPTIONS = ("sentinel_password", "sentinel_username")
# Refused later, with their own sentence (redis_errors.check_tls_options).
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    password: str | None
    sentinel_password: str | None
    username: str | None = None
    sentinel_username: str | None = None


def _credentials(netloc: str) -> tuple[str | None, str | None, str]:
    """(user, password, the rest) of `USER:PASSWORD@hosts`, `:PASSWORD@hosts` or `hosts`."""
    if "@" not in netloc:
        return None, None, netloc
    credentials, hosts = netloc.rsplit("@", 1)
    user, colon, password = credentials.partition(":")
    if user and not (colon and password):
        raise ValueError(f"user {unquote(user)!r} has no password: write USER:PASSWORD@ before the sentinels")
    return unquote(user) or None, unquote(password) or None, hosts


def _options(query: str) -> dict[str, str]:
    """The query's options (the last value of each), or ValueError naming one that is not known."""
    options = parse_qs(query, keep_blank_values=True)
    for name, values in options.items():
        if name not in OPTIONS + TLS_OPTIONS:
            raise ValueError(f"unknown option {name!r} in a Sentinel URL; known: {', '.join(OPTIONS)}")
        if name in OPTIONS and not values[-1]:
            raise ValueError(f"{name} is empty; leave it out if the sentinels have no password")
    return {name: values[-1] for name, values in options.items()}


def parse_sentinel_url(url: str) -> SentinelUrl:
    """The parts of a `redis+sentinel://` URL, or ValueError saying what is wrong."""
    if not url.startswith(SCHEME):
        raise ValueError(f"a Sentinel URL starts with {SCHEME}")
    rest, _, query = url[len(SCHEME) :].partition("?")
    netloc, _, path = rest.partition("/")
    username, password, netloc = _credentials(netloc)
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
    options = _options(query)
    if "sentinel_username" in options and "sentinel_password" not in options:
        raise ValueError("sentinel_username needs sentinel_password beside it")
    return SentinelUrl(
        tuple(sentinels),
        parts[0],
        db,
        password,
        options.get("sentinel_password"),
        username,
        options.get("sentinel_username"),
    )


def refused_by_sentinels(exc: BaseException) -> str | None:
    """What to fix, when `exc` (or what caused it) is the sentinels refusing this process's
    Sentinel credentials; else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "sentinels_refused", None):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _refusal(parsed: SentinelUrl) -> str:
    if parsed.sentinel_password:
        return (
            f"the sentinels refused the URL's sentinel_password: it must be their requirepass "
            f"(the one in sentinel-auth.conf of `fleetdeck redis-users`), so no master of "
            f"{parsed.service!r} could be asked for"
        )
    return (
        f"the sentinels want a password: add ?sentinel_password=... (their requirepass) to the URL "
        f"to ask them for the master of {parsed.service!r}"
    )


def sentinel_pool(url: str, **options: Any) -> Any:
    """A blocking connection pool to whichever server the sentinels name as master of SERVICE."""
    from redis.asyncio.connection import BlockingConnectionPool
    from redis.asyncio.retry import Retry
    from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool
    from redis.backoff import NoBackoff

    parsed = parse_sentinel_url(url)

    class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
        """Sentinel's master discovery with the blocking pool's waiting for a free connection."""

        async def get_master_address(self) -> Any:
            try:
                return await super().get_master_address()  # type: ignore[no-untyped-call]
            except MasterNotFoundError as exc:
                # redis-py lists each sentinel's error, an AuthenticationError without its text.
                if "AuthenticationError" not in str(exc):
                    raise
                refused = MasterNotFoundError(_refusal(parsed))
                refused.sentinels_refused = True  # type: ignore[attr-defined]
                raise refused from exc

    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": options.get("socket_connect_timeout", 2.0),
        # The next sentinel rather than the same one again: a refused password would be retried
        # with backoff for seconds per sentinel, and the broker retries the whole discovery anyway.
        "retry": Retry(NoBackoff(), 0),
    }
    if parsed.sentinel_password:
        sentinel_kwargs["password"] = parsed.sentinel_password
        sentinel_kwargs["username"] = parsed.sentinel_username
    manager = Sentinel(list(parsed.sentinels), sentinel_kwargs=sentinel_kwargs)
    return BlockingSentinelPool(  # type: ignore[no-untyped-call]
        parsed.service,
        manager,
        db=parsed.db,
        username=parsed.username,
        password=parsed.password,
        check_connection=False,
        **options,
    )
