"""Session-wide real servers: Redis, a token file, and a small live stack (two agents, a gateway)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleetdeck_gateway.tokens import add_token
from tests.support.procs import Gateway, RedisServer, Service, start_agent, start_gateway

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when set, else a testcontainers Redis when a Docker engine answers, else redis-server."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    if _docker_engine_answers():
        try:
            from testcontainers.redis import RedisContainer  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:
            with RedisContainer() as container:
                host = container.get_container_host_ip()
                yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
            return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@dataclass
class Tokens:
    file: Path
    operator: str
    viewer: str


@pytest.fixture(scope="session")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    path = tmp_path_factory.mktemp("tokens") / "tokens"
    return Tokens(path, add_token(path, "alice", "operator"), add_token(path, "bob", "viewer"))


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@dataclass
class Stack:
    redis_url: str
    gateway: Gateway
    agents: dict[str, Service]
    interval: float


AGENT_NAMES = ("agent-a", "agent-b")


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

FLEET_FIRST = "127.0.0.2"
FLEET_COUNT = 120  # 127.0.0.2 - 127.0.0.121
REJECTS_KEY = "127.0.1.2"
UNKNOWN_HOST_KEY = "127.0.1.3"
BLACKHOLE = "127.0.1.4"
UNREACHABLE = "127.0.1.5"  # nothing listens there
CHANGED_HOST_KEY = "127.0.1.6"
OPENSSH_HOST = "127.0.1.10"


@dataclass
class Fleet:
    workdir: Path
    port: int
    known_hosts: Path
    client_key: Path
    commands_log: Path
    process: Service

    def commands(self, marker: str) -> list[dict[str, str]]:
        """Every command containing `marker` that any host (asyncssh or OpenSSH) started."""
        import json

        if not self.commands_log.exists():
            return []
        rows = [json.loads(line) for line in self.commands_log.read_text().splitlines() if line.strip()]
        return [row for row in rows if marker in row["command"]]

    def worker_env(self, **extra: str) -> dict[str, str]:
        env = {
            "FLEETDECK_SSH_KEY": str(self.client_key),
            "FLEETDECK_KNOWN_HOSTS": str(self.known_hosts),
            "FLEETDECK_SSH_PORT": str(self.port),
            "FLEETDECK_SSH_USER": "root",
            "FLEETDECK_SSH_CONNECT_TIMEOUT": "2",
            "FLEETDECK_CLAIM_IDLE": "2",
            "FLEETDECK_ALLOWED_TARGETS": "127.0.0.0/8",
        }
        env.update(extra)
        return env


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory, logs: Path) -> Iterator[Fleet]:
    """120 asyncssh hosts, the awkward hosts, and one real OpenSSH sshd, all on loopback."""
    import json
    import sys

    import asyncssh

    from tests.support.opensshd import start_sshd
    from tests.support.procs import wait_until

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
            "tests.support.sshfleet",
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
    wait_until(ready.exists, 30, what="the SSH fleet")
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


@dataclass
class ExecStack:
    redis_url: str
    gateway: Gateway
    worker: Service
    fleet: Fleet


@pytest.fixture(scope="session")
def exec_stack(redis_url: str, tokens: Tokens, logs: Path, fleet: Fleet) -> Iterator[ExecStack]:
    from tests.support.procs import start_worker

    worker = start_worker(redis_url, logs, "w-main", **fleet.worker_env())
    gateway = start_gateway(redis_url, logs, tokens.file, name="gateway-exec")
    yield ExecStack(redis_url, gateway, worker, fleet)
    gateway.stop()
    worker.stop()


@dataclass
class PrivateStack:
    redis: RedisServer
    worker: Service
    gateway: Gateway


@contextlib.contextmanager
def private_stack(
    workdir: Path, tokens: Tokens, fleet: Fleet, worker_name: str, **worker_env: str
) -> Iterator[PrivateStack]:
    """Its own Redis, one worker and a gateway, for tests that kill or stop parts of the stack."""
    from tests.support.procs import start_worker

    redis = RedisServer(workdir)
    redis.start()
    worker = start_worker(redis.url, workdir, worker_name, **fleet.worker_env(**worker_env))
    try:
        gateway = start_gateway(redis.url, workdir, tokens.file, name=f"gateway-{worker_name}")
        try:
            yield PrivateStack(redis, worker, gateway)
        finally:
            gateway.stop()
    finally:
        worker.stop()
        redis.stop()
