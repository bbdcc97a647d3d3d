"""The generated Redis users on a real redis-server: each service does its whole job on its own user,
Redis refuses nothing they ask (its ACL log stays empty), and the agent's credentials reach nothing
but its samples and presence. No user may run an administrative command; `default` cannot log in."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from fleetdeck.redis_acl import CHANNEL_GRANTS, KEY_GRANTS
from fleetdeck.redis_users import write_users
from fleetdeck_common import auditstore, hoststore, topics
from fleetdeck_common.history import Tier
from fleetdeck_common.history import store as history_store
from fleetdeck_common.terms import store as term_store
from fleetdeck_gateway.auth.authenticator import SESSION_COOKIE
from testbed.procs import (
    Gateway,
    RedisServer,
    Service,
    free_port,
    start_agent,
    start_gateway,
    start_worker,
    wait_until,
)
from tests.support.jobs import collect_job, run_job
from tests.support.redis_users import RedisUsers, admin_url, service_refusals, with_admin
from tests.support.stacks import Fleet, Tokens
from tests.support.wsclient import WsClient
from tests.test_signed_jobs import finished, refusals, stores

# One stack for the module, on one xdist worker and in file order: the later checks look at the
# keys, channels and audit entries the whole-job test leaves behind.
pytestmark = pytest.mark.xdist_group("acl_stack")

ADMIN_PASSWORD = uuid.uuid4().hex


@dataclass
class AclStack:
    server: RedisServer
    admin_url: str
    admin: redis.Redis
    urls: dict[str, str]
    gateway: Gateway
    worker: Service
    agent: Service


@pytest.fixture(scope="module")
def acl_stack(
    tmp_path_factory: pytest.TempPathFactory, tokens: Tokens, fleet: Fleet, logs: Path
) -> Iterator[AclStack]:
    workdir = tmp_path_factory.mktemp("acl")
    port = free_port()
    urls = write_users(workdir / "users", f"redis://127.0.0.1:{port}/0")
    # Its own server, not the session's: the agent's refused tries below would fail the session's check.
    users = RedisUsers(workdir / "users", admin_url(f"redis://127.0.0.1:{port}/0", ADMIN_PASSWORD))
    aclfile = with_admin(workdir / "users" / "users.acl", ADMIN_PASSWORD)  # to read the ACL log, scan keys
    server = RedisServer(workdir, port, aclfile=aclfile, admin_url=users.admin_url)
    server.start()
    admin = redis.Redis.from_url(users.admin_url, decode_responses=True)
    agent = start_agent("acl-agent", users.url("agent"), logs, interval=0.3)
    worker = start_worker(
        users.url("worker"), logs, "acl-worker", **fleet.worker_env(FLEETDECK_JOB_KEY_FILE=users.job_key)
    )
    try:
        gateway = start_gateway(
            users.url("gateway"), logs, tokens.file, name="gateway-acl", FLEETDECK_JOB_KEY_FILE=users.job_key
        )
        try:
            yield AclStack(
                server,
                users.admin_url,
                admin,
                {str(s): url for s, url in urls.items()},
                gateway,
                worker,
                agent,
            )
        finally:
            gateway.stop()
    finally:
        worker.stop()
        agent.stop()
        admin.close()
        server.stop()


async def test_every_service_does_its_whole_job_on_its_own_user(
    acl_stack: AclStack, tokens: Tokens, fleet: Fleet
) -> None:
    stack = acl_stack
    # History is sent on subscribing for the hosts the gateway already knows: wait until it knows the agent.
    as_viewer = {"Authorization": f"Bearer {tokens.viewer}"}
    wait_until(
        lambda: any(
            h["host"] == "acl-agent"
            for h in httpx.get(stack.gateway.url + "/api/hosts", headers=as_viewer).json()["hosts"]
        ),
        30,
        what="the gateway to know the agent",
    )
    operator = await WsClient.open(stack.gateway.ws_url, tokens.operator)
    await operator.expect_type("hello")
    await operator.send({"type": "subscribe", "topics": ["cpu", "chat", "jobs"], "ref": "s"})
    await operator.expect_type("subscribed", ref="s")
    await operator.expect(lambda f: f["type"] == "history" and f["host"] == "acl-agent")
    await operator.expect(lambda f: f["type"] == "cpu" and f["host"] == "acl-agent")  # live samples

    tag = uuid.uuid4().hex
    _job, results, done = await run_job(operator, "127.0.0.2-4", f"echo {tag}")
    assert done["summary"] == {"ok": 3} and all(r["stdout"] == f"{tag}\n" for r in results)

    await operator.send(
        {"type": "exec", "targets": "127.0.0.5", "command": f"echo {tag}-c; sleep 30", "ref": "c"}
    )
    job = await operator.expect(lambda f: f.get("ref") == "c")
    wait_until(lambda: fleet.commands(f"{tag}-c"), 20, what="the long command to start")
    await operator.send({"type": "cancel", "job": job["job"], "ref": "c2"})
    _results, cancelled = await collect_job(operator, job["job"], 20)
    assert cancelled["summary"] == {"cancelled": 1}

    await operator.send({"type": "chat", "text": f"hello {tag}"})
    await operator.expect(lambda f: f["type"] == "chat" and f["text"] == f"hello {tag}")
    await operator.close()

    with httpx.Client(base_url=stack.gateway.url) as http:
        login = http.post("/api/login", json={"token": tokens.viewer})
        assert login.status_code == 200
        cookie = login.cookies[SESSION_COOKIE]
        viewer = await WsClient.open(
            stack.gateway.ws_url, additional_headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}
        )
        assert (await viewer.expect_type("hello"))["user"] == "bob"
        await viewer.send({"type": "subscribe", "topics": ["chat"], "ref": "v"})
        await viewer.expect(lambda f: f["type"] == "chat" and f["text"] == f"hello {tag}")  # chat history
        await viewer.close()
        assert http.post("/api/logout").status_code == 200
        audit = http.get("/api/audit", headers={"Authorization": f"Bearer {tokens.operator}"}).json()[
            "entries"
        ]
        assert {"exec", "cancel", "login"} <= {entry["action"] for entry in audit}
        assert http.get("/readyz").status_code == 200

    # A job forged into Redis (a real one copied, no signature): the worker refuses and audits it.
    async with stores(stack.admin_url) as (store, audit):
        original = await store.load(_job["job"])
        assert original is not None
        now = time.time()
        forged = original.model_copy(
            update={
                "job": uuid.uuid4().hex[:16],
                "command": f"echo {tag}-forged",
                "state": "queued",
                "summary": None,
            }
        )
        await store.submit(forged.model_copy(update={"ts": now, "queued_until": now + 60, "finished": None}))
        assert (await finished(store, forged.job)).error == "refused by the worker: no signature"
        await refusals(audit, forged.job)
    assert fleet.commands(f"{tag}-forged") == []

    assert service_refusals(stack.admin) == {}  # Redis refused nothing any service asked for
    keys = list(stack.admin.scan_iter(count=1000))
    assert keys and [k for k in keys if not any(fnmatchcase(k, g.pattern) for g in KEY_GRANTS)] == []
    patterns = {g.channel for g in CHANNEL_GRANTS}
    subscribed = {str(c) for c in stack.admin.pubsub_channels()}
    assert [c for c in subscribed if not any(fnmatchcase(c, p) for p in patterns)] == []


def _as(stack: AclStack, service: str) -> redis.Redis:
    return redis.Redis.from_url(stack.urls[service], decode_responses=True)


def _read(client: redis.Redis, kind: str, key: str) -> object:
    """Read `key` the way its type is read."""
    if kind == "string":
        return client.get(key)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "hash":
        return client.hgetall(key)
    return client.xrange(key)


def _refused(call: Any, *args: Any) -> bool:
    try:
        call(*args)
    except redis.exceptions.NoPermissionError:
        return True
    return False


def test_the_agents_credentials_reach_nothing_but_its_samples(acl_stack: AclStack, tokens: Tokens) -> None:
    stack = acl_stack
    # A login of its own: xdist may run another module between this and the whole-job test, and the
    # module's stack (a fresh server) is then made again without that test's keys.
    assert httpx.post(stack.gateway.url + "/api/login", json={"token": tokens.viewer}).status_code == 200
    wait_until(lambda: stack.admin.exists(auditstore._STREAM), 30, what="an audit entry")
    # Its whole job (samples published, heartbeat, history tiers) done on its user, refused nothing.
    tiers = history_store.ACCESS[0].pattern
    wait_until(
        lambda: any(":acl-agent:" in k for k in stack.admin.scan_iter(match=tiers)),
        30,
        what="the agent's history tiers",
    )
    assert stack.admin.hget(hoststore._HOSTS_KEY, "acl-agent")
    assert [k for k in service_refusals(stack.admin) if k[0] == "fleetdeck-agent"] == []
    agent = _as(stack, "agent")
    try:
        assert agent.publish(topics.CPU_CHANNEL, "{}") >= 0
        assert agent.publish(topics.SUMMARY_CHANNEL, "{}") >= 0
        # Not even on its own keys may it use a command it does not send (lists: RPUSH, LTRIM).
        forged = history_store.chunk_key("acl-agent", Tier(60, 86400), 0)
        assert _refused(agent.rpush, forged, "x") and _refused(agent.ltrim, forged, 0, -1)
        assert _refused(agent.lrange, forged, 0, -1) and _refused(agent.hgetall, hoststore._HOSTS_KEY)
        others = [k for k in stack.admin.scan_iter(count=1000) if k != hoststore._HOSTS_KEY]
        others = [k for k in others if not fnmatchcase(k, history_store.ACCESS[0].pattern)]  # its tiers
        assert others
        for key in others:
            assert _refused(_read, agent, str(stack.admin.type(key)), key), key
            assert _refused(agent.delete, key) and _refused(agent.set, key, "forged"), key
            assert _refused(agent.rpush, key, "forged") and _refused(agent.xadd, key, {"job": "x"}), key
        for channel in {g.channel for g in CHANNEL_GRANTS} - {topics.CPU_CHANNEL, topics.SUMMARY_CHANNEL}:
            assert _refused(agent.publish, channel, "{}"), channel
        assert _refused(agent.hgetall, hoststore._HOSTS_KEY)  # it cannot even read the fleet
        # Terminals: no request, input, output, record or recording is the agent's to touch.
        for channel in (term_store.worker_channel("acl-worker"), term_store.gateway_channel("gw-1")):
            assert _refused(agent.publish, channel, "{}"), channel
        assert _refused(agent.xadd, term_store.QUEUE, {"request": "{}"})
        assert _refused(agent.hset, term_store._term_key("t1"), "record", "{}")
        assert _refused(agent.rpush, term_store._cast_key("t1"), "[]")
        assert _refused(agent.lrange, term_store._INDEX, 0, -1)
        assert _refused(agent.eval, "return 1", 0)
        assert service_refusals(stack.admin)  # refusals are logged: the empty log above means something
    finally:
        agent.close()


@pytest.mark.parametrize("service", ["gateway", "worker", "agent"])
def test_no_user_may_run_an_administrative_command(acl_stack: AclStack, service: str) -> None:
    client = _as(acl_stack, service)
    try:
        for command in (
            ("FLUSHALL",),
            ("FLUSHDB",),
            ("CONFIG", "GET", "*"),
            ("CONFIG", "SET", "appendonly", "no"),
            ("KEYS", "*"),
            ("MONITOR",),
            ("DEBUG", "SLEEP", "0"),
            ("SHUTDOWN", "NOSAVE"),
            ("ACL", "LIST"),
            ("ACL", "SETUSER", "intruder", "on", ">x", "+@all", "~*"),
            ("MODULE", "LIST"),
            ("SCRIPT", "FLUSH"),
        ):
            user = f"fleetdeck-{service}"
            dry = str(acl_stack.admin.acl_dryrun(user, *command))
            assert "no permissions" in dry, (service, command)
            if command[0] != "DEBUG":  # refused before the ACL is asked unless enabled
                assert _refused(client.execute_command, *command), command
        assert acl_stack.admin.ping()
    finally:
        client.close()


def test_the_default_user_cannot_log_in(acl_stack: AclStack) -> None:
    anonymous = redis.Redis(port=acl_stack.server.port)
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.ping()
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.auth("", "default")
    finally:
        anonymous.close()
