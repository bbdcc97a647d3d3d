"""An ACL missing a grant, on a real redis-server: the refusal is named (command and key, never a
value) once in the service's log, in the gateway's /readyz and in the agent's and worker's
`--check` (what docker and Kubernetes health show), and the call fails at once, not in a retry
loop; the same for pipelines, scripts and publishes."""

from __future__ import annotations

import logging
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from fleetdeck.redis_users import write_users
from fleetdeck_common import auditstore, hoststore
from fleetdeck_common.broker import Broker, BrokerDenied, HashSet, create_broker
from fleetdeck_common.broker.redis import RedisBroker
from fleetdeck_common.broker.retry import persist
from fleetdeck_common.jobs import keys as job_keys
from testbed.procs import (
    BIN,
    Gateway,
    RedisServer,
    Service,
    free_port,
    start_agent,
    start_gateway,
    start_worker,
    wait_until,
)
from tests.support.redis_users import setuser
from tests.support.stacks import Fleet, Tokens

pytestmark = [pytest.mark.redis]

MISSING = f"~{auditstore._STREAM}"  # the grant taken from the gateway's user
REFUSED = f"Redis refused XREVRANGE {auditstore._STREAM} to this service's user"


def short_acl(tmp_path: Path, cut: dict[str, str]) -> tuple[RedisServer, dict[str, str], redis.Redis]:
    """A started redis-server with the generated users, less the grant `cut[user]` of each user
    named there (plus a test admin); the services' URLs and the admin's client."""
    port = free_port()
    urls = write_users(tmp_path / "users", f"redis://127.0.0.1:{port}/0")
    lines = (tmp_path / "users" / "users.acl").read_text().splitlines()
    for user, grant in cut.items():
        assert any(f"user {user} " in line and f" {grant} " in line for line in lines), (user, grant)
    short = [
        line.replace(f" {cut[user]} ", " ") if (user := line.split()[1]) in cut else line for line in lines
    ]
    password = uuid.uuid4().hex
    aclfile = tmp_path / "short.acl"
    aclfile.write_text("\n".join([*short, f"user test-admin on >{password} ~* &* +@all"]) + "\n")
    admin_url = f"redis://test-admin:{password}@127.0.0.1:{port}/0"
    server = RedisServer(tmp_path, port, aclfile=aclfile, admin_url=admin_url)
    server.start()
    return (
        server,
        {str(s): url for s, url in urls.items()},
        redis.Redis.from_url(admin_url, decode_responses=True),
    )


def check(command: str, health_file: Path) -> subprocess.CompletedProcess[str]:
    """The service's own health check, as the images and deploy/k8s run it."""
    return subprocess.run(
        [str(BIN / command), "--check"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"FLEETDECK_HEALTH_FILE": str(health_file), "PATH": "/usr/bin:/bin"},
    )


def test_a_missing_grant_fails_the_agent_and_worker_checks_with_the_sentence(
    tmp_path: Path, fleet: Fleet
) -> None:
    agent_refused = f"Redis refused HSET {hoststore._HOSTS_KEY} to this service's user"
    worker_refused = f"Redis refused HSET {job_keys.WORKERS} to this service's user"
    server, urls, admin = short_acl(
        tmp_path,
        {"fleetdeck-agent": f"%W~{hoststore._HOSTS_KEY}", "fleetdeck-worker": f"%W~{job_keys.WORKERS}"},
    )
    health = {name: tmp_path / f"{name}.health" for name in ("agent", "worker")}
    started: list[Service] = []
    try:
        started.append(
            start_agent(
                "short-agent", urls["agent"], tmp_path, 0.2, FLEETDECK_HEALTH_FILE=str(health["agent"])
            )
        )
        started.append(
            start_worker(
                urls["worker"],
                tmp_path,
                "short-worker",
                **fleet.worker_env(FLEETDECK_HEALTH_FILE=str(health["worker"])),
            )
        )
        agent, worker = started
        wait_until(lambda: agent_refused in agent.log(), 30, what="the agent's log to name the refusal")
        wait_until(lambda: worker_refused in worker.log(), 30, what="the worker's log to name the refusal")
        for command, refused, service in (
            ("fleetdeck-agent", agent_refused, agent),
            ("fleetdeck-worker", worker_refused, worker),
        ):
            checked = check(command, health[service.name.split("-", 1)[0]])
            assert checked.returncode == 1, (command, checked.stderr)
            assert f"{command} --check: {refused}" in checked.stderr, checked.stderr
            assert "fleetdeck redis-users" in checked.stderr  # and what to do about it
            assert service.alive()  # refused, not crashed: the log and the check say why

        # The grant given back and the agent restarted: the check passes again (a restart forgets).
        setuser(admin, "fleetdeck-agent", f"%W~{hoststore._HOSTS_KEY}")
        agent.stop()
        assert check("fleetdeck-agent", health["agent"]).returncode == 1  # until it works again
        started[0] = start_agent(
            "short-agent", urls["agent"], tmp_path, 0.2, FLEETDECK_HEALTH_FILE=str(health["agent"])
        )
        wait_until(lambda: check("fleetdeck-agent", health["agent"]).returncode == 0, 30, what="a good check")
    finally:
        for service in started:
            service.stop()
        admin.close()
        server.stop()


@pytest.fixture
def short_gateway(tmp_path: Path, tokens: Tokens) -> Iterator[tuple[Gateway, redis.Redis]]:
    server, urls, admin = short_acl(tmp_path, {"fleetdeck-gateway": MISSING})
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
