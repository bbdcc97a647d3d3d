"""Every key and channel declaration fleetdeck has, gathered into the Redis ACL file's text."""

from __future__ import annotations

from collections.abc import Mapping

from fleetdeck_common import auditstore, chatstore, hoststore, topics
from fleetdeck_common.acl import ChannelGrant, KeyGrant, Service, users_acl
from fleetdeck_common.broker.redis_commands import COMMANDS
from fleetdeck_common.history import store as history_store
from fleetdeck_common.jobs import keys as job_keys
from fleetdeck_common.jobs.redis import SCRIPT_COMMANDS
from fleetdeck_gateway.auth import sessions

# One entry per module that owns a key layout (tests/test_layout.py KEY_OWNERS).
KEY_GRANTS: tuple[KeyGrant, ...] = (
    *job_keys.ACCESS,
    *hoststore.ACCESS,
    *history_store.ACCESS,
    *chatstore.ACCESS,
    *auditstore.ACCESS,
    *sessions.ACCESS,
)
CHANNEL_GRANTS: tuple[ChannelGrant, ...] = topics.ACCESS
COMMANDS_OF: Mapping[str, tuple[str, ...]] = {**COMMANDS, **SCRIPT_COMMANDS}


def acl_file(passwords: Mapping[Service, str]) -> str:
    """The text of `users.acl` for these passwords."""
    return users_acl(passwords, KEY_GRANTS, CHANNEL_GRANTS, COMMANDS_OF)
