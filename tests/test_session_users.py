"""The session's stacks run each service on the Redis user `fleetdeck redis-users` generates for it,
and the session fails if Redis refused any of them anything (tests/support/redis_users.py)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from fleetdeck.redis_users import write_users
from fleetdeck_common import topics
from fleetdeck_common.jobs import keys as job_keys
from testbed.procs import RedisServer, free_port, wait_until
from tests.support.redis_users import ADMIN, RedisUsers, admin_url, refusing_nothing, with_admin
from tests.support.stacks import ExecStack, Stack

pytestmark = pytest.mark.redis


def users_connected(url: str) -> set[str]:
    with redis.Redis.from_url(url, decode_responses=True) as admin:
        return {str(client["user"]) for client in admin.client_list()}


def test_every_service_of_the_session_stacks_is_on_its_own_user(stack: Stack, exec_stack: ExecStack) -> None:
    users = {"fleetdeck-gateway", "fleetdeck-worker", "fleetdeck-agent"}
    wait_until(lambda: users <= users_connected(stack.redis_url), 20, what="every service to connect")
    others = users_connected(stack.redis_url) - users - {ADMIN}
    if not os.environ.get("REDIS_URL"):  # someone else's server may have clients of its own
        assert others == set(), f"clients on users the services should not have: {others}"
    assert stack.users.url("agent").startswith("redis://fleetdeck-agent:")
    assert exec_stack.users.job_key and exec_stack.users.url("worker").startswith("redis://fleetdeck-worker:")


def test_the_session_redis_lets_no_one_in_as_default(redis_users: RedisUsers) -> None:
    if os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is someone else's server: its default user is left as it is")
    where = urlsplit(redis_users.admin_url)
    anonymous = redis.Redis(host=where.hostname or "", port=where.port or 6379)
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.ping()
    finally:
        anonymous.close()


def test_the_check_at_the_end_fails_when_a_service_is_refused(tmp_path: Path) -> None:
    port = free_port()
    base = f"redis://127.0.0.1:{port}/0"
    write_users(tmp_path / "users", base)
    users = RedisUsers(tmp_path / "users", admin_url(base, "pw"))
    server = RedisServer(
        tmp_path, port, aclfile=with_admin(tmp_path / "users" / "users.acl", "pw"), admin_url=users.admin_url
    )
    server.start()
    agent = redis.Redis.from_url(users.url("agent"))
    try:
        with refusing_nothing(users.admin_url):
            agent.publish(topics.CPU_CHANNEL, "{}")  # granted: no refusal
        with (
            pytest.raises(AssertionError, match="fleetdeck-agent"),
            refusing_nothing(users.admin_url),
            pytest.raises(redis.exceptions.NoPermissionError),
        ):
            agent.get(job_keys.record_key("stolen"))
    finally:
        agent.close()
        server.stop()
