"""An ACL missing a grant, on a real redis-server: the refusal is named (command and key, never a
value) once in the service's log and in the gateway's /readyz, and the call fails at once, not in
a retry loop; the same for pipelines, scripts and publishes."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from fleetdeck.redis_users import write_users
from fleetdeck_common import auditstore
from fleetdeck_common.broker import Broker, BrokerDenied, HashSet, create_broker
from fleetdeck_common.broker.redis import RedisBroker
from fleetdeck_common.broker.retry import persist
from testbed.procs import Gateway, RedisServer, free_port, start_gateway
from tests.support.stacks import Tokens

pytestmark = [pytest.mark.redis]

MISSING = f"~{auditstore._STREAM}"  # the grant taken from the gateway's user
REFUSED = f"Redis refused XREVRANGE {auditstore._STREAM} to this service's user"


@pytest.fixture
def short_gateway(tmp_path: Path, tokens: Tokens) -> Iterator[tuple[Gateway, redis.Redis]]:
    port = free_port()
    urls = write_users(tmp_path / "users", f"redis://127.0.0.1:{port}/0")
    lines = (tmp_path / "users" / "users.acl").read_text().splitlines()
    cut = [line.replace(f" {MISSING} ", " ") if "fleetdeck-gateway" in line else line for line in lines]
    assert cut != lines
    password = uuid.uuid4().hex
    aclfile = tmp_path / "short.acl"
    aclfile.write_text("\n".join([*cut, f"user test-admin on >{password} ~* &* +@all"]) + "\n")
    admin_url = f"redis://test-admin:{password}@127.0.0.1:{port}/0"
    server = RedisServer(tmp_path, port, aclfile=aclfile, admin_url=admin_url)
    server.start()
    admin = redis.Redis.from_url(admin_url, decode_responses=True)
    try:
        gateway = start_gateway(urls["gateway"], tmp_path, tokens.file, name="gateway-short")
        try:
            yield gateway, admin
        finally:
            gateway.stop()
    finally:
        admin.close()
        server.stop()


def test_a_missing_grant_is_named_in_the_log_and_readyz(
    short_gateway: tuple[Gateway, redis.Redis], tokens: Tokens
) -> None:
    gateway, admin = short_gateway
    bearer = {"Authorization": f"Bearer {tokens.operator}"}
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        assert http.get("/readyz").status_code == 200  # nothing refused yet
        for _ in range(2):
            assert http.get("/api/audit", headers=bearer).status_code == 503
        ready = http.get("/readyz")
    assert ready.status_code == 503
    assert REFUSED in ready.json()["reason"]
    [refused] = [e for e in admin.acl_log() if e["username"] == "fleetdeck-gateway"]
    assert (refused["object"], refused["reason"], int(str(refused["count"]))) == (
        auditstore._STREAM,
        "key",
        2,
    )
    log = gateway.service.log()
    assert log.count(REFUSED) == 1  # logged once, however often it is refused
    assert "ERROR" in next(line for line in log.splitlines() if REFUSED in line)


@pytest.fixture
async def narrow(tmp_path: Path) -> AsyncIterator[Broker]:
    """A broker on a user that may touch only keys `a*` and channels `a*`."""
    port = free_port()
    password = uuid.uuid4().hex
    aclfile = tmp_path / "narrow.acl"
    aclfile.write_text(f"user default off\nuser narrow on >{password} ~a* &a* +@all\n")
    url = f"redis://narrow:{password}@127.0.0.1:{port}/0"
    server = RedisServer(tmp_path, port, aclfile=aclfile, admin_url=url)
    server.start()
    try:
        async with create_broker(url) as broker:
            yield broker
    finally:
        server.stop()


async def test_pipelines_scripts_and_publishes_are_named_without_their_values(
    narrow: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(narrow, RedisBroker)
    client = narrow.client
    refusals: list[tuple[Callable[[], Awaitable[object]], str]] = [
        (
            lambda: narrow.write_batch([HashSet("a1", "f", "v"), HashSet("b1", "f", "secret-value")]),
            "HSET b1",
        ),
        (lambda: narrow.call(client.eval("return 1", 2, "a1", "b2")), "EVAL (a script) on a1, b2"),
        (
            lambda: narrow.call(client.eval("return redis.call('get', 'b3')", 1, "a1")),
            "EVAL (a script) on a1",
        ),
        (lambda: narrow.publish("b-channel", "secret-value"), "PUBLISH b-channel"),
        (lambda: narrow.get("b4"), "GET b4"),
    ]
    with caplog.at_level(logging.ERROR):
        for call, named in refusals:
            with pytest.raises(
                BrokerDenied, match=re.escape(f"Redis refused {named} to this service's user (")
            ):
                await call()
            assert narrow.down_reason.startswith(f"Redis refused {named} ")
            assert not await narrow.ping()  # not ready until the ACL is fixed and it restarts
    assert "secret-value" not in caplog.text
    assert len(caplog.records) == len(refusals)
    await narrow.set("a5", "fine")  # what the user may do still works


async def test_a_refusal_is_not_retried(narrow: Broker) -> None:
    attempts = 0

    async def read() -> str | None:
        nonlocal attempts
        attempts += 1
        return await narrow.get("b1")

    with pytest.raises(BrokerDenied):
        await persist("reading b1", read, logging.getLogger(__name__))
    assert attempts == 1
