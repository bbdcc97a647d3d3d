"""docker-compose.yml (alone, and with deploy/compose.sentinel.yml on top) and the Dockerfiles: valid
for a real compose, following our conventions, and proven by running each service's own command and
environment as local processes (no Docker engine)."""

from __future__ import annotations

import fnmatch
import functools
import importlib.metadata
import os
import posixpath
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import venv
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import fleetdeck_common
from fleetdeck.redis_acl import SENTINEL_USER
from fleetdeck.redis_users import write_users
from fleetdeck_agent.settings import AgentSettings
from fleetdeck_common.broker import BrokerDenied, create_broker
from fleetdeck_common.broker.sentinel import parse_sentinel_url
from fleetdeck_common.settings import BrokerSettings
from fleetdeck_gateway.auth import sessions
from fleetdeck_gateway.auth.tokenstore import TokenStore
from testbed.procs import BIN, RedisServer, Service, free_port, wait_until
from tests.support.compose import (
    COMPOSE_FILE,
    ROOT,
    SENTINEL_FILE,
    compose_config,
    directive,
    load_compose,
    local_mounts,
    local_paths,
    make_sentinel_config,
    parse_dockerfile,
    read_sentinel_config,
    run_one_shot,
    sentinel_command,
    server_config,
    server_options,
    service_dockerfile,
    service_environment,
    service_mounts,
)
from tests.support.fakeproc import make_fake_proc
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
        if name not in ("demo-keys", "redis-users"):  # one-shot jobs that exit, not servers
            assert "healthcheck" in service, name
    for name in FLEETDECK_SERVICES:
        service = services[name]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert service["environment"]["REDIS_URL_FILE"].startswith("/run/fleetdeck/redis/")
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
    # Only common and its own service; the root project (the `fleetdeck` command) needs only common.
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
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    # What the redis-users one-shot writes (each service's own volume holds a subset of it).
    secrets = tmp_path / "secrets"
    write_users(secrets, redis_url)
    redis_mounts = {"/etc/fleetdeck": str(secrets)}
    redis_args = [
        _local(a, redis_mounts) for a in compose["services"]["redis"]["command"] if a != "redis-server"
    ]
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
    ssh_dir = tmp_path / "ssh"
    ssh_dir.mkdir()
    shutil.copy(exec_stack.fleet.client_key, ssh_dir / "id_ed25519")
    shutil.copy(exec_stack.fleet.known_hosts, ssh_dir / "known_hosts")
    token_dir = tmp_path / "tokens"
    token_dir.mkdir()
    shutil.copy(tokens.file, token_dir / "tokens.txt")
    machine = make_fake_proc(tmp_path / "machine-proc")  # what compose mounts from the machine's /proc
    mapping = {
        "/app/web": str(ROOT / "web"),
        "/run/fleetdeck/tokens": str(token_dir),
        "/run/fleetdeck/ssh": str(ssh_dir),
        "/run/fleetdeck/redis": str(secrets),
        _compose_proc_mount()[0]: str(machine.path),
    }
    port = free_port()
    common: dict[str, str] = {}  # each service reaches Redis as its own user, through its URL file
    processes = []
    try:
        agent_url = (secrets / "agent.url").read_text().strip()
        wait_until(lambda: RedisServer.ping(agent_url), 10, what="compose redis")
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
        # Four services start at once; beside another test run the gateway took over 20 s to listen.
        wait_until(lambda: httpx.get(base + "/readyz").status_code == 200, 60, what="compose gateway")

        client = await WsClient.open(f"ws://127.0.0.1:{port}/ws", tokens.operator)
        await client.send({"type": "subscribe", "topics": ["cpu", "hosts"]})

        def both_online(frame: Frame) -> bool:
            return frame["type"] == "hosts" and {h["host"] for h in frame["hosts"] if h["online"]} >= {
                "host-1",
                "host-2",
            }

        await client.expect(both_online, 15)
        sample = await client.expect(lambda f: f["type"] == "cpu" and f["host"] == "host-2", 10)
        # Measured through the mounted /proc: the machine's figures, not those of the agent's own.
        assert len(sample["percpu"]) == machine.cpus and sample["load"] == machine.load
        assert sample["mem"] == machine.mem_percent

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


# --- the agent measures the machine and is named after it -----------------------------------------


def _compose_proc_mount() -> tuple[str, str]:
    """(where the agent's container sees the machine's /proc, FLEETDECK_PROC_PATH)."""
    agent = load_compose()["services"]["cpu-agent"]
    mounts = [v for v in agent.get("volumes", []) if str(v).startswith("/proc:")]
    assert len(mounts) == 1, agent.get("volumes")
    source, target, mode = str(mounts[0]).split(":")
    assert (source, mode) == ("/proc", "ro")
    return target, service_environment(agent)["FLEETDECK_PROC_PATH"]


def test_compose_agent_reads_the_machines_proc_and_keeps_one_name(monkeypatch: pytest.MonkeyPatch) -> None:
    target, setting = _compose_proc_mount()
    assert setting == target  # psutil and the load average read the mounted /proc
    agent = load_compose()["services"]["cpu-agent"]
    # /proc/stat, meminfo and loadavg are the machine's without sharing its process namespace.
    assert "pid" not in agent and "privileged" not in agent and "cap_add" not in agent
    assert service_dockerfile(agent).user not in (None, "root", "0")

    # The name: FLEETDECK_AGENT_NAME, else the container's host name, which compose sets from the
    # shell's HOSTNAME or a fixed default: nothing that changes when the container is recreated.
    cases = [
        ({}, "docker-host", ""),
        ({"HOSTNAME": "box1"}, "box1", ""),
        ({"HOSTNAME": "box1", "FLEETDECK_AGENT_NAME": "web01"}, "box1", "web01"),
    ]
    for shell, hostname, name in cases:
        service = compose_config(env=shell)["services"]["cpu-agent"]
        assert service["hostname"] == hostname, shell
        assert (service["environment"].get("FLEETDECK_AGENT_NAME") or "") == name, shell
        assert "container_name" not in service  # scaling would need distinct container names
    # An empty FLEETDECK_AGENT_NAME is no name: the agent takes its host name, as set above.
    monkeypatch.setenv("FLEETDECK_AGENT_NAME", "")
    assert AgentSettings(redis_url="memory://").agent_name == socket.gethostname()


# --- the images carry the `fleetdeck` command ------------------------------------------------------


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def _pip_install_arguments(run: str) -> list[str] | None:
    words = shlex.split(run.split("&&", maxsplit=1)[0])
    if words[:2] != ["pip", "install"]:
        return None
    return words[2:]


def _build_like_the_image(dockerfile: Path, image_root: Path) -> list[str]:
    """Lay out the files the Dockerfile copies before its pip install under `image_root` (standing for
    the image's /), and return that pip install's arguments with their paths moved there too."""
    ignored = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for instruction, rest in _instructions(dockerfile):
        if instruction == "COPY":
            *sources, dest = [a for a in shlex.split(rest) if not a.startswith("--")]
            target = image_root / dest.lstrip("/")
            for source in sources:
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, target, ignore=ignored, dirs_exist_ok=True)
                else:
                    into = target / Path(source).name if dest.endswith("/") else target
                    into.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / source, into)
        elif instruction == "RUN" and (arguments := _pip_install_arguments(rest)) is not None:
            return [str(image_root) + a if a.startswith("/") else a for a in arguments]
    raise AssertionError(f"{dockerfile}: no pip install")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", FLEETDECK_SERVICES)
def test_each_image_installs_the_fleetdeck_command(name: str, tmp_path: Path) -> None:
    dockerfile = service_dockerfile(load_compose()["services"][name])
    copies = _copy_destinations(dockerfile.path)
    # The root project is copied next to the one VERSION file and installed with the service.
    assert {"pyproject.toml", "src"} <= set(copies), copies
    assert posixpath.dirname(copies["VERSION"]) == copies["pyproject.toml"].rstrip("/")

    # Install the same way into a fresh virtualenv, from a copy laid out as in the image.
    image_root = tmp_path / "image"
    arguments = _build_like_the_image(dockerfile.path, image_root)
    umbrella = str(image_root) + copies["pyproject.toml"].rstrip("/")
    assert any(re.fullmatch(re.escape(umbrella) + r"(\[[a-z,]+\])?", a) for a in arguments), arguments
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = str(target / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *arguments],
        capture_output=True,
        text=True,
        timeout=800,
    )
    assert install.returncode == 0, install.stderr
    assert subprocess.run([python, "-m", "pip", "check"], capture_output=True).returncode == 0
    # Every service reads Redis replies with hiredis's C parser (issue 24: half the CPU per message).
    check = "from redis.utils import HIREDIS_AVAILABLE; print(HIREDIS_AVAILABLE)"
    parser = subprocess.run([python, "-c", check], capture_output=True, text=True, timeout=60)
    assert parser.stdout.strip() == "True", parser.stderr

    fleetdeck = str(target / "bin" / "fleetdeck")
    env = {"PATH": f"{target / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    version = subprocess.run([fleetdeck, "--version"], capture_output=True, text=True, env=env)
    assert version.stdout.strip() == f"fleetdeck {(ROOT / 'VERSION').read_text().strip()}", version.stderr
    tokens = tmp_path / "tokens" / "tokens.txt"
    tokens.parent.mkdir()
    add = subprocess.run(
        [fleetdeck, "token", "add", "alice", "--role", "operator", "--file", str(tokens)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if name == "gateway":  # `docker compose run --rm gateway fleetdeck token add ...`
        assert add.returncode == 0, add.stderr
        identity = TokenStore(tokens).verify(add.stdout.strip())
        assert identity is not None and (identity.name, identity.role) == ("alice", "operator")
        unreachable = f"http://127.0.0.1:{free_port()}"
        run = subprocess.run(
            [fleetdeck, "exec", "127.0.0.2", "--url", unreachable, "--token", "x", "--", "true"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert run.returncode == 3, run.stderr  # exec runs here too: it only cannot reach a gateway
    else:  # the agent's and worker's images stay lean: the command says where `token` runs
        assert add.returncode == 2 and not tokens.exists()
        assert "fleetdeck[token]" in add.stderr and "gateway image" in add.stderr, add.stderr


def test_the_documented_token_command_writes_where_the_gateway_reads() -> None:
    """README: `docker compose run ... gateway fleetdeck token add ... --file F` mounts a writable
    folder over F's folder (the gateway's own mount is read-only) from the folder compose mounts."""
    readme = " ".join((ROOT / "README.md").read_text().replace("\\\n", " ").split())
    found = re.search(r"docker compose run ([^`]*?) gateway fleetdeck token add ([^`#]*)", readme)
    assert found, "README shows token add in the gateway image"
    options, arguments = shlex.split(found.group(1)), shlex.split(found.group(2))
    assert "--rm" in options and "--no-deps" in options
    mount = options[options.index("-v") + 1]
    source, target = mount.split(":")[:2]
    assert not mount.endswith(":ro")
    assert source == "$PWD/tokens"  # the folder compose mounts by default (FLEETDECK_TOKENS_DIR)
    gateway = load_compose()["services"]["gateway"]
    assert any(v.startswith("./tokens:") for v in gateway["volumes"])
    file = arguments[arguments.index("--file") + 1]
    assert posixpath.dirname(file) == target and posixpath.basename(file) == "tokens.txt"
    assert "--user" in options  # the folder belongs to whoever made it, not to the image's uid 10001


# --- images are built, never pulled; the worker says which folder to fill --------------------------


def test_every_image_is_built_by_each_service_that_runs_it_never_pulled() -> None:
    services = load_compose()["services"]
    ours = {name: s for name, s in services.items() if str(s.get("image", "")).startswith("fleetdeck/")}
    assert {"demo-keys", "demo-target-1", "demo-target-2", "demo-target-3", *FLEETDECK_SERVICES} <= set(ours)
    builds: dict[str, list[Any]] = {}
    for name, service in ours.items():
        assert service.get("pull_policy") == "build", name  # a fleetdeck/* tag is never pulled
        build = service["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
        builds.setdefault(service["image"], []).append(build)
    for image, same in builds.items():
        assert all(b == same[0] for b in same), image  # one image, one way to build it


def test_compose_worker_without_ssh_files_says_which_folder_to_fill(tmp_path: Path) -> None:
    empty = tmp_path / "ssh"  # what an unfilled FLEETDECK_SSH_DIR (or the demo's volume) looks like
    empty.mkdir()
    secrets = tmp_path / "secrets"
    write_users(secrets, "redis://127.0.0.1:1/0")  # a Redis that is not there
    for shell, folder in (({}, "fleetdeck-ssh"), ({"FLEETDECK_SSH_DIR": "./keys"}, "./keys")):
        service = load_compose(shell)["services"]["exec-worker"]
        dockerfile = service_dockerfile(service)
        env = {**dockerfile.env, **service_environment(service)}
        mounts = {"/run/fleetdeck/ssh": str(empty), "/run/fleetdeck/redis": str(secrets)}
        env = {k: _local(v, mounts) for k, v in env.items()}
        env |= {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        assert isinstance(dockerfile.cmd, list)
        run = subprocess.run(
            [str(BIN / dockerfile.cmd[0])], capture_output=True, text=True, env=env, timeout=30
        )
        assert run.returncode == 2, run.stderr
        message = " ".join(run.stderr.split())
        assert f"FLEETDECK_SSH_DIR names in .env (now: {folder})" in message, message
        assert "id_ed25519" in message and "known_hosts" in message and "--profile demo" in message
        assert f"readable by uid {os.getuid()}" in message


def test_readme_says_the_ssh_files_must_be_readable_by_the_containers_user() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Running commands on real hosts") :]
    section = " ".join(section[: section.index("\n## ")].split())
    compose = section[section.index("In compose") :]
    assert "known_hosts" in compose and "uid 10001" in compose and "readable" in compose


# --- Redis behind Sentinel: docker-compose.yml with deploy/compose.sentinel.yml on top ------------

REDIS_PORT = "6379"  # redis-server's own default: the servers in compose set no --port


@pytest.fixture(scope="module")
def sentinel_services() -> dict[str, Any]:
    services: dict[str, Any] = compose_config(COMPOSE_FILE, SENTINEL_FILE)["services"]
    return services


def _redis_servers(services: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Each service that runs redis-server, with its options, the master(s) first."""
    found = {
        name: server_options(s["command"])
        for name, s in services.items()
        if isinstance(s.get("command"), list) and s["command"][:1] == ["redis-server"]
    }
    return dict(sorted(found.items(), key=lambda item: "replicaof" in item[1]))


def _sentinels(services: dict[str, Any]) -> list[str]:
    return sorted(
        name
        for name, s in services.items()
        if isinstance(s.get("command"), list) and "redis-sentinel" in " ".join(s["command"])
    )


def test_sentinel_compose_file_is_valid_and_compose_file_variable_gives_the_same() -> None:
    files = ["-f", str(COMPOSE_FILE), "-f", str(SENTINEL_FILE)]
    for profile in ([], ["--profile", "demo"]):
        run = subprocess.run(
            ["docker-compose", *files, *profile, "config", "-q"],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
            cwd=ROOT,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
    # The command docs/deploy.md and the file's own header give names these two files, in this order.
    files_shown = [str(path.relative_to(ROOT)) for path in (COMPOSE_FILE, SENTINEL_FILE)]
    guide = (ROOT / "docs" / "deploy.md").read_text()
    for text in (guide, SENTINEL_FILE.read_text()):
        shown = re.findall(r"docker compose((?: -f \S+)+) up", text)
        assert shown and all(s.split()[1::2] == files_shown for s in shown), shown
    # Or COMPOSE_FILE in .env, for plain `docker compose`: the same configuration.
    variable = ":".join(files_shown)
    assert f"COMPOSE_FILE={variable}" in guide
    assert compose_config(env={"COMPOSE_FILE": variable}) == compose_config(COMPOSE_FILE, SENTINEL_FILE)


def _service_url(service: dict[str, Any], volumes: dict[str, Path]) -> str:
    """The URL a service reads from its REDIS_URL_FILE, as the one-shot (run here) wrote it."""
    (path,) = local_paths([service_environment(service)["REDIS_URL_FILE"]], local_mounts(service, volumes))
    return Path(path).read_text().strip()


def test_sentinel_compose_points_every_fleetdeck_service_at_the_sentinels(
    sentinel_services: dict[str, Any], tmp_path: Path
) -> None:
    services = sentinel_services
    sentinels = _sentinels(services)
    assert sentinels == ["sentinel-1", "sentinel-2", "sentinel-3"]
    volumes = run_one_shot(services, tmp_path / "volumes")
    found = set()
    for name in FLEETDECK_SERVICES:
        assert "REDIS_URL" not in service_environment(services[name]), name  # their file's URL
        url = _service_url(services[name], volumes)
        assert BrokerSettings(REDIS_URL=url).redis_url == url  # the setting every service loads
        parsed = parse_sentinel_url(url)
        assert parsed.username and parsed.password and parsed.sentinel_password, name
        found.add((parsed.sentinels, parsed.service, parsed.db))
        for sentinel in sentinels:  # started only once the sentinels agree
            assert services[name]["depends_on"][sentinel]["condition"] == "service_healthy", name
    (sentinel_addresses, service_name, db) = found.pop()  # one Sentinel setup for all three
    assert db == 0 and not found
    # The URLs name each sentinel by its service name and the port it listens on...
    assert [host for host, _ in sentinel_addresses] == sentinels
    for host, port in sentinel_addresses:
        config_file = make_sentinel_config(
            services[host], tmp_path / host, local_mounts(services[host], volumes)
        )
        config = read_sentinel_config(config_file)
        assert directive(config, "port") == [str(port)], host
        # ...and the service name the URLs ask for is the one each sentinel monitors.
        assert directive(config, "sentinel", "monitor")[0] == service_name, host
    # Only the sentinels run redis-sentinel; the base file's single Redis stays the first master.
    assert list(_redis_servers(services)) == ["redis", "redis-replica"]
    assert load_compose()["services"]["redis"]["image"] == services["redis"]["image"]


def test_sentinel_compose_replica_and_sentinels_follow_the_master_by_service_name(
    sentinel_services: dict[str, Any], tmp_path: Path
) -> None:
    services = sentinel_services
    servers = _redis_servers(services)
    (master,) = [name for name, options in servers.items() if "replicaof" not in options]
    replicas = [name for name, options in servers.items() if "replicaof" in options]
    assert (master, replicas) == ("redis", ["redis-replica"])
    # The master keeps docker-compose.yml's arguments (the append-only file, the ACL file) and
    # adds its name and the replication user's config file.
    base = server_options(load_compose()["services"]["redis"]["command"])
    for option, values in base.items():
        assert servers[master][option] == values, option
    for name, options in servers.items():
        assert "port" not in options, name  # all on REDIS_PORT, as the sentinel config says
        # Every server announces its service name, so a replica (the old master after a failover
        # too) is known by a name that survives recreating its container, never by its address.
        assert options.get("replica-announce-ip") == [name], name
        assert options["appendonly"] == ["yes"], name
        assert options["aclfile"] == base["aclfile"], name
        assert server_config(services[name]["command"]) == server_config(services[master]["command"])
        assert "healthcheck" in services[name] and services[name]["image"] == services[master]["image"]
        assert any(target == "/data" and not ro for _, target, ro in service_mounts(services[name])), name
    assert servers["redis-replica"]["replicaof"] == [master, REDIS_PORT]
    assert services["redis-replica"]["depends_on"][master]["condition"] == "service_healthy"

    volumes = run_one_shot(services, tmp_path / "volumes")
    sentinels = _sentinels(services)
    config_volumes = set()
    for name in sentinels:
        service = services[name]
        mounts = local_mounts(service, volumes)
        path = make_sentinel_config(service, tmp_path / name, mounts)
        config = read_sentinel_config(path)
        service_name, host, port, quorum = directive(config, "sentinel", "monitor")
        assert (host, port, quorum) == (master, REDIS_PORT, "2"), name
        assert int(quorum) > len(sentinels) // 2  # a majority: two sides of a split cannot both act
        assert directive(config, "sentinel", "resolve-hostnames") == ["yes"]
        assert directive(config, "sentinel", "announce-hostnames") == ["yes"]  # clients get names too
        assert directive(config, "sentinel", "announce-ip") == [name]
        for setting in ("down-after-milliseconds", "failover-timeout", "parallel-syncs"):
            assert directive(config, "sentinel", setting)[0] == service_name, setting
        # Sentinel rewrites its file: it lives on the service's own writable volume, made once.
        command = sentinel_command(service)
        (volume,) = [(s, t) for s, t, ro in service_mounts(service) if command.config.startswith(t + "/")]
        assert directive(config, "dir") == [str(tmp_path / name)]  # where its volume was put here
        assert not any(ro for _, t, ro in service_mounts(service) if t == volume[1])
        config_volumes.add(volume[0])
        with path.open("a") as kept:
            kept.write("# learnt since the first start\n")
        assert (
            "# learnt since the first start\n"
            in make_sentinel_config(service, tmp_path / name, mounts).read_text()
        )
        assert service["user"] not in ("root", "0")
        assert services[name]["image"] == services[master]["image"]
        for server in servers:
            assert services[name]["depends_on"][server]["condition"] == "service_healthy", name
        health = " ".join(service["healthcheck"]["test"])
        assert f"-p {directive(config, 'port')[0]} sentinel ckquorum {service_name}" in health, health
    assert len(config_volumes) == len(sentinels)  # one volume each: their files differ (own ID, own name)


def _loopback(words: list[str], ports: dict[str, int], container_ports: dict[str, str]) -> list[str]:
    """Service names become 127.0.0.1, and a service's port after its name becomes its local port
    (the one given must be the port that service listens on)."""
    out: list[str] = []
    rest = iter(words)
    for word in rest:
        if word not in ports:
            out.append(word)
            continue
        out.append("127.0.0.1")
        following = next(rest, None)
        if following is not None and following.isdigit():
            assert following == container_ports[word], f"{word} listens on {container_ports[word]}"
            following = str(ports[word])
        if following is not None:
            out.append(following)
    return out


def _loopback_url(url: str, ports: dict[str, int], container_ports: dict[str, str]) -> str:
    """A service's Sentinel URL with the sentinels' names and ports made local, the rest kept."""
    scheme = "redis+sentinel://"
    credentials, _, rest = url[len(scheme) :].rpartition("@")
    tail = rest.partition("/")[2]
    local = []
    for host, port in parse_sentinel_url(url).sentinels:
        assert str(port) == container_ports[host], f"{host} listens on {container_ports[host]}"
        local.append(f"127.0.0.1:{ports[host]}")
    return f"{scheme}{credentials}@{','.join(local)}/{tail}"


def _sentinel_client(port: int, password: str | None) -> redis.Redis:
    return redis.Redis(port=port, password=password, decode_responses=True, socket_timeout=5)


def _answers(port: int, **auth: str) -> bool:
    with redis.Redis(port=port, socket_timeout=5, **auth) as client:  # type: ignore[arg-type]
        return bool(client.ping())


def _names_master(port: int, password: str, service_name: str, master: tuple[str, int]) -> bool:
    with _sentinel_client(port, password) as client:
        return bool(client.sentinel_get_master_addr_by_name(service_name) == master)


def _sentinel_sees_everyone(port: int, password: str, service_name: str, others: int) -> bool:
    with _sentinel_client(port, password) as client:
        replicas = client.sentinel_slaves(service_name)
        peers = client.sentinel_sentinels(service_name)
        return (
            len(replicas) == 1
            and "disconnected" not in replicas[0]["flags"]
            and replicas[0].get("master-link-status") == "ok"
            and len(peers) == others
        )


def _healthy(service: dict[str, Any], port: int, config_port: str, mounts: dict[str, Path]) -> bool:
    kind, command = service["healthcheck"]["test"]
    assert kind == "CMD-SHELL" and f"-p {config_port} " in command
    local = command.replace("$$", "$").replace(f"-p {config_port} ", f"-p {port} ")
    for target, folder in mounts.items():
        local = local.replace(target + "/", f"{folder}/")
    return subprocess.run(["sh", "-c", local], timeout=30).returncode == 0


@pytest.mark.timeout(300)
async def test_sentinel_compose_runs_and_fails_over_on_loopback(
    sentinel_services: dict[str, Any], tmp_path: Path
) -> None:
    """The one-shot's files and the servers' and sentinels' own commands and configs as local
    processes, names mapped to 127.0.0.1, ports to free ones and mounts to the one-shot's output:
    the replica copies the master as the replication user, the sentinels find each other and the
    replica as theirs and ask for Sentinel's password, the healthcheck passes only with a quorum,
    each service's own URL reaches the master as its own user, and a failover moves it."""
    services = sentinel_services
    servers = _redis_servers(services)
    master, replica = servers  # as the test above finds them
    sentinels = _sentinels(services)
    volumes = run_one_shot(services, tmp_path / "volumes")
    mounts = {name: local_mounts(services[name], volumes) for name in [*servers, *sentinels]}
    ports = {name: free_port() for name in [*servers, *sentinels]}
    configs = {
        name: make_sentinel_config(services[name], tmp_path / name, mounts[name]) for name in sentinels
    }
    container_ports = {name: REDIS_PORT for name in servers}
    container_ports |= {name: directive(read_sentinel_config(c), "port")[0] for name, c in configs.items()}
    (auth_file,) = {folder / "sentinel-auth.conf" for name in sentinels for folder in mounts[name].values()}
    auth = read_sentinel_config(auth_file)
    password = directive(auth, "requirepass")[0]
    # Sentinel's user on the servers: the test watches them as the sentinels do (INFO, PING).
    watcher = {"username": SENTINEL_USER, "password": directive(auth, "sentinel", "auth-pass")[1]}
    processes: list[Service] = []
    try:
        binary = shutil.which("redis-server") or "redis-server"
        for name in servers:
            folder = tmp_path / name
            folder.mkdir(exist_ok=True)
            # Each its own copy of its mount: Sentinel's CONFIG REWRITE writes a server's config file.
            own = {t: Path(shutil.copytree(f, folder / "mount")) for t, f in mounts[name].items()}
            argv = local_paths(_loopback(services[name]["command"][1:], ports, container_ports), own)
            argv += ["--port", str(ports[name]), "--bind", "127.0.0.1", "--dir", str(folder)]
            processes.append(Service(name, [binary, *argv], {}, tmp_path))
            wait_until(functools.partial(_answers, ports[name], **watcher), 10, what=name)
        replica_port = ports[replica]

        def replica_in_sync() -> bool:  # as fleetdeck-replica, the only user it has
            with redis.Redis(port=replica_port, decode_responses=True, **watcher) as client:  # type: ignore[arg-type]
                return bool(client.info("replication")["master_link_status"] == "up")

        wait_until(replica_in_sync, 30, interval=0.2, what="the replica to copy the master")
        for index, name in enumerate(sentinels):
            config = read_sentinel_config(configs[name])
            lines = [
                ["port", str(ports[name])] if words[0] == "port" else _loopback(words, ports, container_ports)
                for words in config
            ]
            configs[name].write_text("\n".join(shlex.join(w) for w in [*lines, ["bind", "127.0.0.1"]]) + "\n")
            binary = shutil.which("redis-sentinel") or "redis-sentinel"
            processes.append(Service(name, [binary, str(configs[name])], {}, tmp_path))
            wait_until(functools.partial(_answers, ports[name], password=password), 10, what=name)
            with pytest.raises(redis.AuthenticationError):  # Sentinel's own password is asked for
                _answers(ports[name])
            if index == 0:  # alone, a sentinel could not have a failover agreed: not healthy yet
                assert not _healthy(services[name], ports[name], container_ports[name], mounts[name])
        service_name = directive(auth, "sentinel", "auth-user")[0]
        for name in sentinels:
            wait_until(
                functools.partial(
                    _sentinel_sees_everyone, ports[name], password, service_name, len(sentinels) - 1
                ),
                60,
                interval=0.5,
                what=f"{name} to see the replica and the other sentinels",
            )
            assert _healthy(services[name], ports[name], container_ports[name], mounts[name]), name

        # Each service's own URL, on loopback, through fleetdeck's own broker.
        urls = {
            name: _loopback_url(_service_url(services[name], volumes), ports, container_ports)
            for name in FLEETDECK_SERVICES
        }
        key = sessions._session_key("compose-sentinel")  # one the gateway's user may write
        for name, url in urls.items():
            async with create_broker(url) as broker:
                assert await broker.ping(), name
                if name == "gateway":
                    await broker.set(key, "before")
                else:  # their own users: not the gateway's keys
                    with pytest.raises(BrokerDenied):
                        await broker.get(key)
        gateway = parse_sentinel_url(urls["gateway"])
        as_gateway = {"username": gateway.username, "password": gateway.password}
        with redis.Redis(port=ports[master], decode_responses=True, **as_gateway) as first:  # type: ignore[arg-type]
            assert first.get(key) == "before"

        def failover() -> bool:
            with _sentinel_client(ports[sentinels[0]], password) as client:
                return bool(client.execute_command("SENTINEL", "FAILOVER", service_name))

        wait_until(failover, 30, interval=0.5, what="a failover to start")
        for name in sentinels:
            wait_until(
                functools.partial(
                    _names_master, ports[name], password, service_name, ("127.0.0.1", replica_port)
                ),
                60,
                interval=0.5,
                what=f"{name} to name the replica as master",
            )

        def old_master_follows() -> bool:
            with redis.Redis(port=ports[master], decode_responses=True, **watcher) as old:  # type: ignore[arg-type]
                info = old.info("replication")
                return bool(info["role"] == "slave" and info["master_port"] == replica_port)

        wait_until(old_master_follows, 60, interval=0.5, what="the old master to follow the new one")
        async with create_broker(urls["gateway"]) as broker:
            assert await broker.get(key) == "before"  # replicated before the switch
            await broker.set(key, "after")
        with redis.Redis(port=replica_port, decode_responses=True, **as_gateway) as new_master:  # type: ignore[arg-type]
            assert new_master.get(key) == "after"
    finally:
        for process in reversed(processes):
            process.stop()
