"""Redis ACL rules, pure: which service may read or write which keys and channels, as `users.acl` lines.

The stores declare their keys (`KeyGrant`) and `topics` the channels (`ChannelGrant`) beside the
layouts they own; `SERVICE_CALLS` says which broker methods each service calls, a key's grant
which kinds of batched write (`write_batch`) each service sends it, and the broker says which
Redis commands each method and each kind of batched write sends. `user_rule` turns one service's
share of that into a rule `redis-server --aclfile` reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Service = Literal["gateway", "worker", "agent"]
SERVICES: tuple[Service, ...] = ("gateway", "worker", "agent")

# Never granted, whatever a declaration says: what would let one credential undo the others.
FORBIDDEN = frozenset(
    {"flushall", "flushdb", "config", "keys", "monitor", "debug", "shutdown", "acl", "module"}
)


@dataclass(frozen=True)
class KeyGrant:
    """Keys matching `pattern` (a Redis glob), the services that may read or write them, and the
    kinds of batched write (`Write` class names, e.g. `HashSet`) each service sends in its batches."""

    pattern: str
    read: frozenset[Service] = frozenset()
    write: frozenset[Service] = frozenset()
    batches: frozenset[tuple[Service, str]] = frozenset()

    def batched_by(self, service: Service) -> set[str]:
        return {kind for who, kind in self.batches if who == service}


@dataclass(frozen=True)
class ChannelGrant:
    """A pub/sub channel and the services that publish or subscribe to it (Redis does not tell
    the two apart: either lets a user do both)."""

    channel: str
    publish: frozenset[Service] = frozenset()
    subscribe: frozenset[Service] = frozenset()


def grant(
    pattern: str,
    read: Iterable[Service] = (),
    write: Iterable[Service] = (),
    batches: Mapping[Service, Iterable[str]] | None = None,
) -> KeyGrant:
    """A key declaration; `batches` names, per service, the kinds of batched write the owning
    store sends in one `write_batch` (the store's whole batch: a `Publish` in it too)."""
    batched = frozenset((who, kind) for who, kinds in (batches or {}).items() for kind in kinds)
    unknown = {who for who, _ in batched} - set(write)
    if unknown:
        raise ValueError(f"{pattern}: {sorted(unknown)} batch writes to keys they may not write")
    return KeyGrant(pattern, frozenset(read), frozenset(write), batched)


def channel(name: str, publish: Iterable[Service] = (), subscribe: Iterable[Service] = ()) -> ChannelGrant:
    return ChannelGrant(name, frozenset(publish), frozenset(subscribe))


# The broker methods (and job rules, each a script) each service calls through its stores;
# `connection` is what every connection sends by itself (the pool's health check).
SERVICE_CALLS: Mapping[Service, tuple[str, ...]] = {
    "gateway": (
        "connection",
        "ping",
        "publish",
        "subscribe",
        "push_capped",
        "read_list",
        "read_ranges",
        "hash_get_all",
        "hash_set",
        "hash_set_if_absent",
        "hash_delete",
        "set",
        "get",
        "delete",
        "expire",
        "stream_append",
        "stream_before",
        "stream_range",
        "enqueue",
        "hold_lease",
        "release_lease",
        "append_fenced",
        "alerts_commit",
    ),
    "worker": (
        "connection",
        "publish",
        "subscribe",
        "read_ranges",
        "get",
        "set",
        "expire",
        "hash_get_all",
        "hash_set",
        "hash_set_if_absent",
        "hash_delete",
        "stream_append",
        "stream_range",
        "group_ensure",
        "group_read",
        "group_claim_stale",
        "group_touch",
        "group_ack",
        "hold_lease",
        "release_lease",
        "append_fenced",
    ),
    # Its writes are batched: which kinds, the stores' grants say (`KeyGrant.batches`).
    "agent": ("connection", "read_ranges"),
}

BATCH_PREFIX = "batch:"  # `batch:HashSet`: what one kind of batched write sends, in `commands_of`


def username(service: Service) -> str:
    return f"fleetdeck-{service}"


def password_hash(password: str) -> str:
    """The form an ACL file holds a password in: its SHA-256, never the password itself."""
    return hashlib.sha256(password.encode()).hexdigest()


def calls_of(service: Service, keys: Iterable[KeyGrant] = ()) -> list[str]:
    """`service`'s broker calls, and `batch:KIND` for each kind of batched write it sends."""
    kinds = {kind for declared in keys for kind in declared.batched_by(service)}
    return [*SERVICE_CALLS[service], *(f"{BATCH_PREFIX}{kind}" for kind in sorted(kinds))]


def commands_for(
    service: Service, commands_of: Mapping[str, Iterable[str]], keys: Iterable[KeyGrant] = ()
) -> list[str]:
    """The Redis commands (`xgroup|create` for a subcommand) `service`'s broker calls and batched
    writes (declared in `keys`) send."""
    found = {c.lower() for call in calls_of(service, keys) for c in commands_of[call]}
    refused = {c for c in found if c.split("|")[0] in FORBIDDEN and c != "acl|whoami"}
    if refused:
        raise ValueError(f"{service} would be granted {sorted(refused)}, which no service may have")
    return sorted(found)


def key_rules(service: Service, keys: Iterable[KeyGrant]) -> list[str]:
    """`%R~`, `%W~` or `~` (both) per declared pattern `service` may touch."""
    rules = []
    for declared in keys:
        mode = ("R" if service in declared.read else "") + ("W" if service in declared.write else "")
        if mode == "RW":
            rules.append(f"~{declared.pattern}")
        elif mode:
            rules.append(f"%{mode}~{declared.pattern}")
    return rules


def channel_rules(service: Service, channels: Iterable[ChannelGrant]) -> list[str]:
    return [
        f"&{declared.channel}"
        for declared in channels
        if service in declared.publish or service in declared.subscribe
    ]


def user_rule(
    service: Service,
    password: str,
    keys: Iterable[KeyGrant],
    channels: Iterable[ChannelGrant],
    commands_of: Mapping[str, Iterable[str]],
) -> str:
    """One `users.acl` line: the service's user on, its password's hash, its keys, channels, commands."""
    keys = list(keys)
    parts = [f"user {username(service)} on #{password_hash(password)} resetkeys"]
    parts += key_rules(service, keys)
    parts.append("resetchannels")
    parts += channel_rules(service, channels)
    parts.append("-@all")
    parts += [f"+{command}" for command in commands_for(service, commands_of, keys)]
    return " ".join(parts)


def users_acl(
    passwords: Mapping[Service, str],
    keys: Iterable[KeyGrant],
    channels: Iterable[ChannelGrant],
    commands_of: Mapping[str, Iterable[str]],
) -> str:
    """The whole ACL file: `default` off and without rights, then one user per service."""
    keys, channels = list(keys), list(channels)
    lines = ["user default off resetpass resetkeys resetchannels -@all"]
    lines += [user_rule(s, passwords[s], keys, channels, commands_of) for s in SERVICES]
    return "\n".join(lines) + "\n"
