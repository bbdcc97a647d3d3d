"""Session-wide fixtures: Redis, a token file, the live stacks and the SSH fleet (helpers: tests/support/)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from fleetdeck_gateway.auth.tokenedit import add_token
from testbed.procs import RedisServer, Service, start_agent, start_gateway
from tests.support.compose import load_compose
from tests.support.later import Backend, open_backend
from tests.support.stacks import (
    AGENT_NAMES,
    ARTIFACTS,
    BLACKHOLE,
    CHANGED_HOST_KEY,
    FLEET_COUNT,
    FLEET_FIRST,
    OPENSSH_HOST,
    REJECTS_KEY,
    UNKNOWN_HOST_KEY,
    ExecStack,
    Fleet,
    Stack,
    Tokens,
    docker_engine_answers,
)

# Property tests check what holds, not how fast: a per-example deadline fails them on a busy machine.
settings.register_profile("fleetdeck", deadline=None)
settings.load_profile("fleetdeck")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when set, else a testcontainers Redis when a Docker engine answers, else redis-server."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    if docker_engine_answers():
        from testcontainers.community.redis import RedisContainer

        image = load_compose()["services"]["redis"]["image"]  # the Redis docker-compose.yml runs
        with RedisContainer(image) as container:
            host = container.get_container_host_ip()
            yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    path = tmp_path_factory.mktemp("tokens") / "tokens"
    return Tokens(path, add_token(path, "alice", "operator"), add_token(path, "bob", "viewer"))


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def stack(redis_url: str, tokens: Tokens, logs: Path) -> Iterator[Stack]:
    """Two agents and a gateway on the session Redis, as real processes."""
    interval = 0.5
    agents = {name: start_agent(name, redis_url, logs, interval) for name in AGENT_NAMES}
    gateway = start_gateway(redis_url, logs, tokens.file)
    yield Stack(redis_url, gateway, agents, interval)
    gateway.stop()
    for agent in agents.values():
        agent.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --- exec: SSH hosts on loopback, a worker, a gateway ------------------------------------------


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory, logs: Path) -> Iterator[Fleet]:
    """120 asyncssh hosts, the awkward hosts, and one real OpenSSH sshd, all on loopback."""
    import json
    import sys

    import asyncssh

    from testbed.opensshd import start_sshd
    from testbed.procs import wait_until

    workdir = tmp_path_factory.mktemp("fleet")
    key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = workdir / "id_ed25519"
    key.write_private_key(str(client_key))
    client_key.chmod(0o600)
    key.write_public_key(str(workdir / "id_ed25519.pub"))
    process = Service(
        "sshfleet",
        [
            sys.executable,
            "-m",
            "testbed.sshfleet",
            str(workdir),
            "--first",
            FLEET_FIRST,
            "--count",
            str(FLEET_COUNT),
            "--client-key",
            str(workdir / "id_ed25519.pub"),
            "--reject",
            REJECTS_KEY,
            "--unknown-key",
            UNKNOWN_HOST_KEY,
            "--changed-key",
            CHANGED_HOST_KEY,
            "--blackhole",
            BLACKHOLE,
        ],
        {"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        logs,
    )
    ready = workdir / "ready.json"
    wait_until(ready.exists, 60, what="the SSH fleet")
    port = json.loads(ready.read_text())["port"]
    sshd = start_sshd(
        workdir / "sshd", OPENSSH_HOST, workdir / "id_ed25519.pub", workdir / "commands.jsonl", port
    )
    known_hosts = workdir / "known_hosts"
    with known_hosts.open("a") as handle:
        handle.write(sshd.known_hosts_line)
    yield Fleet(workdir, port, known_hosts, client_key, workdir / "commands.jsonl", process)
    sshd.stop()
    process.stop()


@pytest.fixture(scope="session")
def exec_stack(redis_url: str, tokens: Tokens, logs: Path, fleet: Fleet) -> Iterator[ExecStack]:
    from testbed.procs import start_worker

    worker = start_worker(redis_url, logs, "w-main", **fleet.worker_env())
    gateway = start_gateway(redis_url, logs, tokens.file, name="gateway-exec")
    yield ExecStack(redis_url, gateway, worker, fleet)
    gateway.stop()
    worker.stop()


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """Each broker backend in turn, with a way to move its time on (the contract tests run on both)."""
    url = "" if request.param == "memory" else request.getfixturevalue("redis_url")
    async with open_backend(request.param, url) as the_backend:
        yield the_backend
