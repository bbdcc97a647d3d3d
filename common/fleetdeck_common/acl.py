"""Redis ACL rules, pure: which service may read or write which keys and channels, as `users.acl` lines.

The stores declare their keys (`KeyGrant`) and `topics` the channels (`ChannelGrant`) beside the
layouts they own; `SERVICE_CALLS` says which broker methods each service calls, and the broker
says which Redis commands each method sends. `user_rule` turns one service's share of that into
a rule `redis-server --aclfile` reads.
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
    """Keys matching `pattern` (a Redis glob) and the services that may read or write them."""

    pattern: str
    read: frozenset[Service] = frozenset()
    write: frozenset[Service] = frozenset()


@dataclass(frozen=True)
class ChannelGrant:
    """A pub/sub channel and the services that publish or subscribe to it (Redis does not tell
    the two apart: either lets a user do both)."""

    channel: str
    publish: frozenset[Service] = frozenset()
    subscribe: frozenset[Service] = frozenset()


def grant(pattern: str, read: Iterable[Service] = (), write: Iterable[Service] = ()) -> KeyGrant:
    return KeyGrant(pattern, frozenset(read), frozenset(write))


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
    ),
    "worker": (
        "connection",
        "publish",
        "subscribe",
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
    "agent": ("connection", "write_batch", "read_ranges"),
}


def username(service: Service) -> str:
    return f"fleetdeck-{service}"


def password_hash(password: str) -> str:
    """The form an ACL file holds a password in: its SHA-256, never the password itself."""
    return hashlib.sha256(password.encode()).hexdigest()


def commands_for(service: Service, commands_of: Mapping[str, Iterable[str]]) -> list[str]:
    """The Redis commands (`xgroup|create` for a subcommand) `service`'s broker calls send."""
    found = {c.lower() for call in SERVICE_CALLS[service] for c in commands_of[call]}
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
    parts = [f"user {username(service)} on #{password_hash(password)} resetkeys"]
    parts += key_rules(service, keys)
    parts.append("resetchannels")
    parts += channel_rules(service, channels)
    parts.append("-@all")
    parts += [f"+{command}" for command in commands_for(service, commands_of)]
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
