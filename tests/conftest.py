"""Session-wide fixtures: Redis, a token file, the live stacks and the SSH fleet (helpers: tests/support/)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import settings

from fleetdeck_gateway.auth.tokenedit import add_token
from testbed.opensshd import OpenSshd
from testbed.procs import start_agent, start_gateway
from tests.support.later import Backend, open_backend
from tests.support.redis_users import RedisUsers, session_redis
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
)

# Property tests check what holds, not how fast: a per-example deadline fails them on a busy machine.
settings.register_profile("fleetdeck", deadline=None)
settings.load_profile("fleetdeck")


@pytest.fixture(scope="session")
def redis_users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisUsers]:
    """The session Redis with the users `fleetdeck redis-users` generates (tests/support/redis_users.py);
    at the end it fails the run if Redis refused any service anything."""
    with session_redis(tmp_path_factory.mktemp("redis")) as users:
        yield users


@pytest.fixture(scope="session")
def redis_url(redis_users: RedisUsers) -> str:
    """The session Redis as the test-only admin: what the tests' own reads and writes use."""
    return redis_users.admin_url


@pytest.fixture(scope="session")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    path = tmp_path_factory.mktemp("tokens") / "tokens"
    return Tokens(path, add_token(path, "alice", "operator"), add_token(path, "bob", "viewer"))


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def stack(redis_users: RedisUsers, tokens: Tokens, logs: Path) -> Iterator[Stack]:
    """Two agents and a gateway on the session Redis, as real processes, each on its own user."""
    interval = 0.5
    agents = {name: start_agent(name, redis_users.url("agent"), logs, interval) for name in AGENT_NAMES}
    gateway = start_gateway(
        redis_users.url("gateway"), logs, tokens.file, FLEETDECK_JOB_KEY_FILE=redis_users.job_key
    )
    yield Stack(redis_users.admin_url, gateway, agents, interval, redis_users)
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
    from testbed.opensshd import start_sshd
    from testbed.procs import start_ssh_fleet

    workdir = tmp_path_factory.mktemp("fleet")
    more = ["--reject", REJECTS_KEY, "--unknown-key", UNKNOWN_HOST_KEY, "--changed-key", CHANGED_HOST_KEY]
    ssh_fleet = start_ssh_fleet(workdir, logs, FLEET_COUNT, FLEET_FIRST, *more, "--blackhole", BLACKHOLE)
    process, port, client_key = ssh_fleet.service, ssh_fleet.port, ssh_fleet.key
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
def exec_stack(redis_users: RedisUsers, tokens: Tokens, logs: Path, fleet: Fleet) -> Iterator[ExecStack]:
    """A worker and a gateway on the session Redis, each on its own user, jobs signed with the job key."""
    from testbed.procs import start_worker

    users = redis_users
    worker = start_worker(
        users.url("worker"), logs, "w-main", **fleet.worker_env(FLEETDECK_JOB_KEY_FILE=users.job_key)
    )
    gateway = start_gateway(
        users.url("gateway"), logs, tokens.file, name="gateway-exec", FLEETDECK_JOB_KEY_FILE=users.job_key
    )
    yield ExecStack(users.admin_url, gateway, worker, fleet, users)
    gateway.stop()
    worker.stop()


@pytest.fixture(scope="session")
def shell_host(tmp_path_factory: pytest.TempPathFactory, fleet: Fleet) -> Iterator[OpenSshd]:
    """A stock OpenSSH sshd (login shells, for terminals) the session's worker can reach."""
    from tests.support.terms import start_shell_host

    sshd = start_shell_host(tmp_path_factory.mktemp("term-sshd"), fleet)
    yield sshd
    sshd.stop()


def in_database(url: str, db: int) -> str:
    """`url` with another database: one no service uses, so the session's worker takes (and, having
    the job key, refuses and ends) no job a contract test queues unsigned."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """Each broker backend in turn, with a way to move its time on (the contract tests run on both)."""
    url = "" if request.param == "memory" else in_database(request.getfixturevalue("redis_url"), 1)
    async with open_backend(request.param, url) as the_backend:
        yield the_backend
