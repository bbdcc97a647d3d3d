"""What the session fixtures hand to tests: tokens, the live stacks, the SSH fleet, and a private stack."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from testbed.procs import ROOT, Gateway, RedisServer, Service, start_gateway, start_worker

if TYPE_CHECKING:
    from tests.support.redis_users import RedisUsers  # an annotation only: that module imports this one

ARTIFACTS = ROOT / "test-artifacts"


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class Tokens:
    file: Path
    operator: str
    viewer: str


@dataclass
class Stack:
    redis_url: str  # the test admin's: for the tests' own reads and writes
    gateway: Gateway
    agents: dict[str, Service]
    interval: float
    users: RedisUsers  # what a service a test starts beside the stack runs as


AGENT_NAMES = ("agent-a", "agent-b")


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
            "FLEETDECK_SSH_CONNECT_TIMEOUT": "5",  # room for handshakes on a busy machine
            "FLEETDECK_CLAIM_IDLE": "2",
            "FLEETDECK_ALLOWED_TARGETS": "127.0.0.0/8",
        }
        env.update(extra)
        return env


@dataclass
class ExecStack:
    redis_url: str  # the test admin's
    gateway: Gateway
    worker: Service
    fleet: Fleet
    users: RedisUsers


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
