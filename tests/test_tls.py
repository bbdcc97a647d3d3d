"""Redis over TLS: every service on `rediss://…?ssl_ca_certs=CA` (also as the users `fleetdeck redis-users`
generates), and a client that does not trust the CA is refused with a sentence saying so (in its log and
in /readyz), never a quiet retry loop."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from fleetdeck_common.acl import SERVICES
from fleetdeck_common.broker import check_url
from testbed.procs import BIN, ROOT, Service, free_port, start_agent, start_gateway, start_worker, wait_until
from testbed.tls import Certificates, TlsRedisServer, make_ca, make_certificates
from tests.support.jobs import run_job
from tests.support.redis_users import ADMIN, RedisUsers, admin_url, with_admin
from tests.support.stacks import Fleet, Tokens
from tests.support.wsclient import WsClient
from tests.test_cli import fleetdeck

NOT_TRUSTED = "TLS certificate is not trusted"
UNNAMED = "127.0.1.250"  # Redis listens here too, but its certificate names only 127.0.0.1 and localhost


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedisServer]:
    """A TLS-only redis-server on loopback, its certificate signed by a CA made here."""
    workdir = tmp_path_factory.mktemp("redis-tls")
    server = TlsRedisServer(workdir, make_certificates(workdir / "certs"), also=(UNNAMED,))
    server.start()
    yield server
    server.stop()


def plain_url(server: TlsRedisServer, scheme: str = "rediss") -> str:
    return f"{scheme}://127.0.0.1:{server.port}/0"


def readyz(gateway_url: str) -> httpx.Response:
    return httpx.get(gateway_url + "/readyz", timeout=5)


@pytest.mark.redis
@pytest.mark.ssh
async def following_cpu(ws_url: str, token: str, host: str, started: contextlib.AsyncExitStack) -> WsClient:
    """An operator's socket subscribed to `cpu`, once a live sample of `host` has come through it."""
    client = await WsClient.open(ws_url, token)
    started.push_async_callback(client.close)
    await client.expect_type("hello")
    await client.send({"type": "subscribe", "topics": ["cpu"], "ref": "s"})
    await client.expect(lambda f: f["type"] == "cpu" and f["host"] == host, 30)
    return client


async def test_every_service_works_over_rediss_with_the_ca(
    tls_redis: TlsRedisServer, tmp_path: Path, tokens: Tokens, fleet: Fleet
) -> None:
    url = tls_redis.url
    assert url.startswith("rediss://") and "ssl_ca_certs=" in url
    async with contextlib.AsyncExitStack() as started:
        agent = start_agent("tls-host", url, tmp_path, 0.5)
        started.callback(agent.stop)
        worker = start_worker(url, tmp_path, "w-tls", **fleet.worker_env())
        started.callback(worker.stop)
        gateway = start_gateway(url, tmp_path, tokens.file, name="gateway-tls", within=60)
        started.callback(gateway.stop)
        assert readyz(gateway.url).json() == {"status": "ready"}
        client = await following_cpu(gateway.ws_url, tokens.operator, "tls-host", started)
        tag = f"tls-{uuid.uuid4().hex[:8]}"
        _job, results, done = await run_job(client, "127.0.0.2-6,127.0.1.10", f"echo {tag}")
        assert sorted(r["host"] for r in results) == [*(f"127.0.0.{n}" for n in range(2, 7)), "127.0.1.10"]
        assert all(r["status"] == "ok" and tag in r["stdout"] for r in results), results
        assert done["summary"] == {"ok": 6}
        for service in (agent, worker, gateway.service):
            assert "Redis unreachable" not in service.log() and NOT_TRUSTED not in service.log()


@pytest.mark.redis
@pytest.mark.ssh
async def test_each_service_works_over_rediss_as_its_own_generated_user(
    tls_redis: TlsRedisServer, tmp_path: Path, tokens: Tokens, fleet: Fleet
) -> None:
    (tmp_path / "redis").mkdir()
    server = TlsRedisServer(tmp_path / "redis", tls_redis.certificates)
    made = fleetdeck("redis-users", str(tmp_path / "users"), "--redis", server.url)
    assert made.returncode == 0, made.stderr
    password = secrets.token_hex(16)
    users = RedisUsers(tmp_path / "users", admin_url(server.url, password))
    for name in SERVICES:
        assert users.url(name).startswith(f"rediss://fleetdeck-{name}:"), name
        assert users.url(name).endswith(f"?ssl_ca_certs={tls_redis.certificates.ca_cert}"), name
    server.aclfile = with_admin(tmp_path / "users" / "users.acl", password)  # the admin only inspects
    server.admin_url = users.admin_url
    server.start()
    async with contextlib.AsyncExitStack() as started:
        started.callback(server.stop)
        admin = redis.Redis.from_url(users.admin_url, decode_responses=True)
        started.callback(admin.close)
        agent = start_agent("tls-user-host", users.url("agent"), tmp_path, 0.5)
        started.callback(agent.stop)
        worker = start_worker(
            users.url("worker"),
            tmp_path,
            "w-tls-users",
            **fleet.worker_env(FLEETDECK_JOB_KEY_FILE=users.job_key),
        )
        started.callback(worker.stop)
        gateway = start_gateway(
            users.url("gateway"),
            tmp_path,
            tokens.file,
            name="gateway-tls-users",
            within=60,
            FLEETDECK_JOB_KEY_FILE=users.job_key,
        )
        started.callback(gateway.stop)
        client = await following_cpu(gateway.ws_url, tokens.operator, "tls-user-host", started)
        tag = f"tls-users-{uuid.uuid4().hex[:8]}"
        _job, results, done = await run_job(client, "127.0.0.2", f"echo {tag}")
        assert [(r["host"], r["status"], r["stdout"]) for r in results] == [("127.0.0.2", "ok", f"{tag}\n")]
        assert done["summary"] == {"ok": 1}

        # Every connection is a service on its own user, or the test's admin (a connection caught before
        # its AUTH would show `default`: waited out, not failed on).
        expected = {f"fleetdeck-{s}" for s in SERVICES} | {ADMIN}
        seen: list[set[str]] = []

        def only_the_services_users() -> bool:
            seen.append({str(c["user"]) for c in admin.client_list()})
            return seen[-1] == expected

        try:
            wait_until(only_the_services_users, 10, what="every service connected as its own user")
        except TimeoutError:
            pytest.fail(f"CLIENT LIST users: {seen[-1]}, expected {expected}")
        assert admin.acl_log() == []  # Redis refused no service anything, nor a login
        for service in (agent, worker, gateway.service):
            assert "Redis unreachable" not in service.log() and NOT_TRUSTED not in service.log()


@pytest.mark.redis
@pytest.mark.parametrize("trust", ["no CA", "another CA"])
def test_a_service_that_does_not_trust_the_ca_says_so_once_and_readyz_says_why(
    tls_redis: TlsRedisServer, tmp_path: Path, tokens: Tokens, trust: str
) -> None:
    url = plain_url(tls_redis)
    if trust == "another CA":
        other_ca, _ = make_ca(tmp_path / "other", "other")
        url += f"?ssl_ca_certs={other_ca}"
    agent = start_agent("untrusting", url, tmp_path, 0.2)
    worker = start_worker(url, tmp_path, "w-untrusting")
    try:
        gateway = start_gateway(url, tmp_path, tokens.file, name="gateway-untrusting", ready=False)
        try:
            answer = readyz(gateway.url)
            assert answer.status_code == 503
            assert answer.json()["status"] == "broker unreachable"
            reason = answer.json()["reason"]
            assert NOT_TRUSTED in reason and "ssl_ca_certs=PATH" in reason, reason
            assert "CERTIFICATE_VERIFY_FAILED" in reason, reason
            wait_until(lambda: NOT_TRUSTED in gateway.service.log(), 20, what="the gateway's log to say why")
            for _ in range(3):  # each probe fails again; the log says it once
                assert readyz(gateway.url).json()["reason"] == reason
            assert gateway.service.log().count(NOT_TRUSTED) == 1, gateway.service.log()
        finally:
            gateway.stop()
        wait_until(lambda: NOT_TRUSTED in agent.log(), 20, what="the agent's log to say why")
        assert agent.alive()  # it keeps sampling (and failing) every 0.2 s meanwhile
        wait_until(lambda: NOT_TRUSTED in worker.log(), 20, what="the worker's log to say why")
    finally:
        worker.stop()
        agent.stop()
    # Said once as an ERROR by the broker (and once more by the agent's own outage note), not per try.
    lines = [line for line in agent.log().splitlines() if NOT_TRUSTED in line]
    assert len(lines) <= 2 and sum(" ERROR " in line for line in lines) == 1, lines


@pytest.mark.redis
def test_a_certificate_that_does_not_name_the_host_is_refused_saying_so(
    tls_redis: TlsRedisServer, tmp_path: Path, tokens: Tokens
) -> None:
    url = tls_redis.url.replace("127.0.0.1", UNNAMED)
    gateway = start_gateway(url, tmp_path, tokens.file, name="gateway-unnamed", ready=False)
    try:
        answer = readyz(gateway.url)
        assert answer.status_code == 503
        assert "does not name the host in REDIS_URL" in answer.json()["reason"], answer.json()
        assert "IP address mismatch" in answer.json()["reason"], answer.json()
    finally:
        gateway.stop()
    assert "ERROR" in gateway.service.log() and "does not name the host" in gateway.service.log()


@pytest.mark.redis
def test_a_plain_redis_url_to_a_tls_only_redis_hints_at_rediss(
    tls_redis: TlsRedisServer, tmp_path: Path, tokens: Tokens
) -> None:
    gateway = start_gateway(
        plain_url(tls_redis, "redis"), tmp_path, tokens.file, name="gateway-plain", ready=False
    )
    try:
        wait_until(lambda: "rediss://" in readyz(gateway.url).json().get("reason", ""), 20, what="a hint")
        assert readyz(gateway.url).status_code == 503
    finally:
        gateway.stop()


def test_tls_options_that_cannot_work_stop_a_service_before_it_starts(tmp_path: Path, tokens: Tokens) -> None:
    missing = tmp_path / "no-such-ca.crt"
    with pytest.raises(ValueError, match=f"ssl_ca_certs: no readable file at {missing}"):
        check_url(f"rediss://10.0.0.5:6379/0?ssl_ca_certs={missing}")
    ca = tmp_path / "ca.crt"
    ca.write_text("")
    with pytest.raises(ValueError, match="ssl_ca_certs needs TLS: start the URL with rediss://"):
        check_url(f"redis://10.0.0.5:6379/0?ssl_ca_certs={ca}")
    with pytest.raises(ValueError, match="TLS behind Sentinel is not supported"):
        check_url(f"redis+sentinel://10.0.0.5:26379/mymaster/0?ssl_ca_certs={ca}")
    assert check_url(f"rediss://10.0.0.5:6379/0?ssl_ca_certs={ca}").endswith(str(ca))
    # The same check refuses to start a service, with the sentence.
    port = free_port()
    gateway = Service(
        "gateway-missing-ca",
        [str(BIN / "fleetdeck-gateway"), "--port", str(port)],
        {"REDIS_URL": f"rediss://127.0.0.1:6379/0?ssl_ca_certs={missing}"},
        tmp_path,
    )
    assert gateway.proc.wait(30) != 0
    gateway.stop()
    assert f"no readable file at {missing}" in gateway.log()


def test_the_certificates_name_the_server_and_chain_to_the_ca(tmp_path: Path) -> None:
    certs: Certificates = make_certificates(tmp_path)
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(certs.ca_cert), str(certs.server_cert)],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stderr
    text = subprocess.run(
        ["openssl", "x509", "-in", str(certs.server_cert), "-noout", "-text"], capture_output=True, text=True
    ).stdout
    assert "IP Address:127.0.0.1" in text
    assert certs.server_key.stat().st_mode & 0o077 == 0


def test_the_deploy_guide_gives_the_steps_this_file_takes() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    section = guide.split("### Redis across machines: TLS", 1)[1].split("\n## ", 1)[0]
    assert "port 0" in [line.strip() for line in section.splitlines()]
    section = " ".join(section.split())
    for step in (
        "openssl req -x509 -new -nodes -newkey rsa:2048 -days 3650",
        "openssl req -new -nodes -newkey rsa:2048",
        "openssl x509 -req -in redis.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825",
        "-extfile redis.ext",
        "subjectAltName=",
        "tls-port ",
        "tls-cert-file ",
        "tls-key-file ",
        "tls-ca-cert-file ",
        "tls-auth-clients no",
        "REDIS_URL=rediss://",
        "?ssl_ca_certs=",
        "cannot use Redis: Redis's TLS certificate is not trusted",
    ):
        assert step in section, step
