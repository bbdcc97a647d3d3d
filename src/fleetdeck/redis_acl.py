"""Every key and channel declaration fleetdeck has, gathered into the Redis ACL file's text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fleetdeck_common import auditstore, chatstore, filestore, hoststore, topics
from fleetdeck_common.acl import BATCH_PREFIX, ChannelGrant, KeyGrant, Service, password_hash, users_acl
from fleetdeck_common.broker.redis_commands import BATCHED, COMMANDS
from fleetdeck_common.history import store as history_store
from fleetdeck_common.jobs import keys as job_keys
from fleetdeck_common.jobs.redis import SCRIPT_COMMANDS
from fleetdeck_common.terms import store as term_store
from fleetdeck_gateway.alerts import outbox as alert_outbox
from fleetdeck_gateway.alerts import store as alert_store
from fleetdeck_gateway.auth import sessions

# One entry per module that owns a key layout (tests/test_layout.py KEY_OWNERS).
KEY_GRANTS: tuple[KeyGrant, ...] = (
    *job_keys.ACCESS,
    *hoststore.ACCESS,
    *history_store.ACCESS,
    *chatstore.ACCESS,
    *auditstore.ACCESS,
    *sessions.ACCESS,
    *alert_outbox.ACCESS,
    *alert_store.ACCESS,
    *term_store.ACCESS,
    *filestore.ACCESS,
)
CHANNEL_GRANTS: tuple[ChannelGrant, ...] = topics.ACCESS
COMMANDS_OF: Mapping[str, tuple[str, ...]] = {
    **COMMANDS,
    **SCRIPT_COMMANDS,
    **alert_store.SCRIPT_COMMANDS,
    **{f"{BATCH_PREFIX}{kind}": sent for kind, sent in BATCHED.items()},
}

# The users a replicated Redis behind Sentinel needs besides the services' (Redis's ACL docs,
# "ACL rules for Sentinel and Replicas"). Neither may touch a key.
REPLICA_USER = "fleetdeck-replica"
SENTINEL_USER = "fleetdeck-sentinel"
# What a replica sends its master to copy it.
REPLICA_COMMANDS = ("ping", "psync", "replconf")
# What a sentinel sends the servers it watches: INFO, ROLE and PING to watch, its hello messages
# on one channel to find the other sentinels, and for a failover (in MULTI/EXEC) SLAVEOF to
# promote or repoint a server, CONFIG REWRITE to make that survive a restart, CLIENT KILL to
# drop the clients of a demoted master, SCRIPT KILL for a master stuck in a script. The only
# administrative commands any user gets, and this user only.
SENTINEL_COMMANDS = (
    "client|kill",
    "client|setname",
    "config|rewrite",
    "exec",
    "info",
    "multi",
    "ping",
    "publish",
    "role",
    "script|kill",
    "slaveof",
    "subscribe",
)
SENTINEL_CHANNEL = "__sentinel__:hello"


@dataclass(frozen=True)
class ReplicationPasswords:
    """The passwords of a replicated Redis behind Sentinel: the replicas' user, the sentinels'
    user on the servers, and Sentinel's own `requirepass` (not a server user: no ACL line)."""

    replica: str
    sentinel_user: str
    sentinel: str


def replica_rule(password: str) -> str:
    """The replication user's `users.acl` line: no keys, no channels, only what a replica sends."""
    commands = " ".join(f"+{c}" for c in REPLICA_COMMANDS)
    return f"user {REPLICA_USER} on #{password_hash(password)} resetkeys resetchannels -@all {commands}"


def sentinel_rule(password: str) -> str:
    """The sentinels' user on the servers: no keys, their hello channel, what a failover sends."""
    commands = " ".join(f"+{c}" for c in SENTINEL_COMMANDS)
    return (
        f"user {SENTINEL_USER} on #{password_hash(password)} resetkeys resetchannels "
        f"&{SENTINEL_CHANNEL} -@all {commands}"
    )


def acl_file(passwords: Mapping[Service, str], replication: ReplicationPasswords | None = None) -> str:
    """The text of `users.acl` for these passwords (and the replication users behind Sentinel)."""
    text = users_acl(passwords, KEY_GRANTS, CHANNEL_GRANTS, COMMANDS_OF)
    if replication is not None:
        text += f"{replica_rule(replication.replica)}\n{sentinel_rule(replication.sentinel_user)}\n"
    return text
