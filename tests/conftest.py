"""Session-wide real servers: Redis, a token file, and a small live stack (two agents, a gateway)."""

from __future__ import annotations

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
