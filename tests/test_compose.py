"""docker-compose.yml and the Dockerfiles: valid for a real compose, following our conventions, and
proven by running each service's own command and environment as local processes (no Docker engine)."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

import fleetdeck_common
from tests.support.compose import (
    ROOT,
    load_compose,
    parse_dockerfile,
    service_dockerfile,
    service_environment,
)
from tests.support.procs import BIN, RedisServer, Service, free_port, wait_until
from tests.support.stacks import ExecStack, Tokens
from tests.support.wsclient import Frame, WsClient

FLEETDECK_SERVICES = ("gateway", "cpu-agent", "exec-worker")


def test_compose_file_is_valid_for_docker_compose(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    env = {"PATH": "/usr/bin:/bin", "FLEETDECK_TOKENS_DIR": str(tokens)}
    for profile in ([], ["--profile", "demo"]):
        run = subprocess.run(
            ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), *profile, "config", "-q"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr


def test_compose_follows_the_conventions() -> None:
    compose = load_compose()
    assert "version" not in compose
    services: dict[str, Any] = compose["services"]
    redis = services["redis"]
    assert (
        "--appendonly" in redis["command"]
        and redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    )
    assert any(v.endswith(":/data") for v in redis["volumes"])
    for name, service in services.items():
        if name != "demo-keys":  # a one-shot job that exits, not a server
            assert "healthcheck" in service, name
    for name in FLEETDECK_SERVICES:
        service = services[name]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:")
    assert any(str(p).endswith(":8000") for p in services["gateway"]["ports"])
    assert any(v.endswith("/run/fleetdeck/tokens:ro") for v in services["gateway"]["volumes"])
    assert any(v.endswith("/run/fleetdeck/ssh:ro") for v in services["exec-worker"]["volumes"])
    assert services["exec-worker"]["environment"]["FLEETDECK_ALLOWED_TARGETS"]
    assert "demo" in services["demo-target-1"]["profiles"]
    assert (ROOT / ".env.example").is_file() and (ROOT / ".dockerignore").is_file()


@pytest.mark.parametrize("name", FLEETDECK_SERVICES)
def test_each_dockerfile_is_slim_non_root_exec_form_and_healthchecked(name: str) -> None:
    service = load_compose()["services"][name]
    dockerfile = service_dockerfile(service)
    assert "slim" in dockerfile.base
    assert dockerfile.user not in (None, "root", "0")
    assert isinstance(dockerfile.cmd, list), "CMD must be exec form"
    assert (BIN / dockerfile.cmd[0]).exists(), f"{dockerfile.cmd[0]} is not an installed console script"
    assert dockerfile.healthcheck is not None and "curl" not in dockerfile.healthcheck
    assert "wget" not in dockerfile.healthcheck
    for source in dockerfile.copies:
        assert (ROOT / source).exists(), f"COPY source {source} missing"
    assert "tokens" not in " ".join(dockerfile.copies)  # the token file is mounted, never baked in
    copied_projects = {c for c in dockerfile.copies if (ROOT / c / "pyproject.toml").exists()}
    own = {"gateway": "gateway", "cpu-agent": "cpu-agent", "exec-worker": "exec-worker"}[name]
    assert copied_projects == {"common", own}, "each image installs only common and its own service"
    probe = service["healthcheck"]["test"]
    assert probe[0] == "CMD" and (probe[1] == "python" or (BIN / probe[1]).exists()), probe


def _probe_path(probe: str) -> str:
    found = re.search(r"https?://[^/\s'\"]+(/[^\s'\"]*)", probe)
    assert found, probe
    return found.group(1)


def test_gateway_image_and_compose_probe_the_same_health_path() -> None:
    service = load_compose()["services"]["gateway"]
    image_probe = service_dockerfile(service).healthcheck
    assert image_probe is not None
    compose_probe = " ".join(service["healthcheck"]["test"])
    assert _probe_path(image_probe) == _probe_path(compose_probe)
    # Ready, not merely alive: a gateway that cannot reach its broker is no use to what depends on it.
    assert _probe_path(compose_probe) == "/readyz"


def _copy_destinations(path: Path) -> dict[str, str]:
    """Each COPY source of a Dockerfile and where it lands in the image."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip().upper().startswith("COPY "):
            *sources, dest = [a for a in shlex.split(line.strip())[1:] if not a.startswith("--")]
            for source in sources:
                out[source] = dest
    return out


@pytest.mark.parametrize("name", FLEETDECK_SERVICES)
def test_each_image_builds_its_projects_with_the_one_version(name: str) -> None:
    version = (ROOT / "VERSION").read_text().strip()
    assert version
    copies = _copy_destinations(service_dockerfile(load_compose()["services"][name]).path)
    projects = [c for c in copies if (ROOT / c / "pyproject.toml").exists()]
    for project in projects:
        link = ROOT / project / "VERSION"
        assert link.is_symlink() and link.read_text().strip() == version, project
        pyproject = tomllib.loads((ROOT / project / "pyproject.toml").read_text())
        assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
        assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"file": "VERSION"}
        # setuptools builds a dangling VERSION as 0.0.0 without a word, so the image must copy the
        # file to where the symlink points once the project is copied in.
        in_image = posixpath.normpath(posixpath.join(copies[project], os.readlink(link)))
        assert copies.get("VERSION") == in_image, (project, in_image)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not any(fnmatch.fnmatch("VERSION", pattern) for pattern in ignored)


def test_installed_projects_carry_the_version_file() -> None:
    """The venv's installs say VERSION too: scripts/bootstrap reinstalls them when it changes."""
    version = (ROOT / "VERSION").read_text().strip()
    assert fleetdeck_common.__version__ == version
    projects = ("fleetdeck", "fleetdeck-common", "fleetdeck-gateway", "fleetdeck-agent", "fleetdeck-worker")
    for distribution in projects:
        assert importlib.metadata.version(distribution) == version, distribution


def test_demo_image_sources_exist() -> None:
    dockerfile = parse_dockerfile(ROOT / "deploy/demo-target/Dockerfile")
    for source in dockerfile.copies:
        assert (ROOT / source).exists(), source


def _local(value: str, mapping: dict[str, str]) -> str:
    for container_path, local_path in mapping.items():
        value = value.replace(container_path, local_path)
    return value


def _service_process(
    name: str, tmp: Path, mapping: dict[str, str], overrides: dict[str, str], label: str | None = None
) -> Service:
    """Run a compose service's own CMD with its Dockerfile ENV and compose environment, locally."""
    service = load_compose()["services"][name]
    dockerfile = service_dockerfile(service)
    env = {**dockerfile.env, **service_environment(service)}
    env = {k: _local(v, mapping) for k, v in env.items()}
    env.update(overrides)
    assert isinstance(dockerfile.cmd, list)
    return Service(label or f"compose-{name}", [str(BIN / dockerfile.cmd[0]), *dockerfile.cmd[1:]], env, tmp)


async def test_compose_services_run_as_local_processes_end_to_end(
    tmp_path: Path, tokens: Tokens, exec_stack: ExecStack
) -> None:
    compose = load_compose()
    # Redis with the compose file's own arguments (AOF on), bound to loopback.
    redis_port = free_port()
    redis_args = [a for a in compose["services"]["redis"]["command"] if a != "redis-server"]
    redis = Service(
        "compose-redis",
        [
            shutil.which("redis-server") or "redis-server",
            *redis_args,
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp_path),
        ],
        {},
        tmp_path,
    )
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    ssh_dir = tmp_path / "ssh"
    ssh_dir.mkdir()
    shutil.copy(exec_stack.fleet.client_key, ssh_dir / "id_ed25519")
    shutil.copy(exec_stack.fleet.known_hosts, ssh_dir / "known_hosts")
    token_dir = tmp_path / "tokens"
    token_dir.mkdir()
    shutil.copy(tokens.file, token_dir / "tokens.txt")
    mapping = {
        "/app/web": str(ROOT / "web"),
        "/run/fleetdeck/tokens": str(token_dir),
        "/run/fleetdeck/ssh": str(ssh_dir),
    }
    port = free_port()
    common = {"REDIS_URL": redis_url}
    processes = []
    try:
        wait_until(lambda: RedisServer.ping(redis_url), 10, what="compose redis")
        gateway = _service_process(
            "gateway",
            tmp_path,
            mapping,
            {**common, "FLEETDECK_HOST": "127.0.0.1", "FLEETDECK_PORT": str(port)},
        )
        processes.append(gateway)
        agents = [
            _service_process(
                "cpu-agent",
                tmp_path,
                mapping,
                {
                    **common,
                    "FLEETDECK_AGENT_NAME": host,
                    "FLEETDECK_INTERVAL": "0.5",
                    "FLEETDECK_HEALTH_FILE": str(tmp_path / f"{host}.health"),
                },
                label=f"compose-{host}",
            )
            for host in ("host-1", "host-2")
        ]
        processes += agents
        worker_env = {
            **common,
            "FLEETDECK_SSH_PORT": str(exec_stack.fleet.port),
            "FLEETDECK_HEALTH_FILE": str(tmp_path / "worker.health"),
        }
        processes.append(_service_process("exec-worker", tmp_path, mapping, worker_env))
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(base + "/readyz").status_code == 200, 20, what="compose gateway")

        client = await WsClient.open(f"ws://127.0.0.1:{port}/ws", tokens.operator)
        await client.send({"type": "subscribe", "topics": ["cpu", "hosts"]})

        def both_online(frame: Frame) -> bool:
            return frame["type"] == "hosts" and {h["host"] for h in frame["hosts"] if h["online"]} >= {
                "host-1",
                "host-2",
            }

        await client.expect(both_online, 15)
        await client.expect(lambda f: f["type"] == "cpu" and f["host"] == "host-2", 10)

        # The healthchecks the images declare pass against these processes.
        agent_check = subprocess.run(
            [str(BIN / "fleetdeck-agent"), "--check"],
            timeout=30,
            env={"FLEETDECK_HEALTH_FILE": str(tmp_path / "host-1.health"), "FLEETDECK_INTERVAL": "0.5"},
        )
        assert agent_check.returncode == 0
        wait_until(
            lambda: (
                subprocess.run(
                    [str(BIN / "fleetdeck-worker"), "--check"],
                    timeout=30,
                    env={"FLEETDECK_HEALTH_FILE": str(tmp_path / "worker.health")},
                ).returncode
                == 0
            ),
            15,
            what="worker health",
        )
        gateway_test = load_compose()["services"]["gateway"]["healthcheck"]["test"]
        probe = [
            sys.executable if part == "python" else part.replace("8000", str(port))
            for part in gateway_test[1:]
        ]
        assert subprocess.run(probe, timeout=30).returncode == 0

        # Exec through the compose-configured worker on loopback SSH hosts.
        await client.send({"type": "exec", "targets": "127.0.0.2-11", "command": "echo compose", "ref": "c"})
        job = await client.expect(lambda f: f.get("ref") == "c")
        assert job["type"] == "job", job
        done = await client.expect(lambda f: f["type"] == "done" and f["job"] == job["job"], 30)
        assert done["summary"] == {"ok": 10}

        # One of the two "hosts" stops: it is shown offline, the other stays online.
        assert agents[0].stop() == 0
        stopped = time.monotonic()

        def first_offline(frame: Frame) -> bool:
            if frame["type"] != "hosts":
                return False
            states = {h["host"]: h["online"] for h in frame["hosts"]}
            return states.get("host-1") is False and states.get("host-2") is True

        await client.expect(first_offline, 10)
        assert time.monotonic() - stopped < 3 * 0.5 + 1.0
        await client.close()
    finally:
        for process in processes:
            process.stop()
        redis.stop()
    assert (tmp_path / "appendonlydir").is_dir() or (tmp_path / "appendonly.aof").exists()
