"""docker-compose.yml on a real Docker engine through testcontainers: whether one answers, a
project of its own, waiting on the healthchecks, and what a project leaves behind."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from testbed.procs import wait_until
from tests.support.compose import load_compose
from tests.support.stacks import docker_engine_answers

# Healthchecks start after 10-15 s and probe every 10 s; a first build takes longer than that.
HEALTHY_WITHIN = 240.0


def engine_missing() -> str | None:
    """Why `docker compose up` cannot run here, or None when it can."""
    if not docker_engine_answers():
        return "no Docker engine answers (`docker info` fails): compose is proven by local processes only"
    try:
        version = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "`docker compose version` did not answer"
    if version.returncode != 0:
        return "a Docker engine answers but the `docker compose` plugin (v2) is missing"
    return None


def project_env(folder: Path, **settings: str) -> tuple[str, Path]:
    """A project name of its own and an env file that sets it with `settings` (compose reads this
    file instead of the checkout's .env)."""
    project = f"fleetdeck-test-{uuid.uuid4().hex[:8]}"
    lines = [f"COMPOSE_PROJECT_NAME={project}", *(f"{key}={value}" for key, value in settings.items())]
    path = folder / "compose.env"
    path.write_text("\n".join(lines) + "\n")
    return project, path


def containers(project: str, *extra: str) -> list[str]:
    """Lines of `docker ps -a` (with `extra` options) for the project's containers."""
    run = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={project}", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return run.stdout.splitlines()


def wait_healthy(project: str, profiles: tuple[str, ...] = ()) -> None:
    """Until every service with a healthcheck is healthy and each one-shot job exited 0."""
    services = load_compose()["services"]
    enabled = {n for n, s in services.items() if not s.get("profiles") or set(s["profiles"]) & set(profiles)}
    long_running = {n for n in enabled if "healthcheck" in services[n]}
    one_shot = enabled - long_running

    def states() -> dict[str, str]:
        fields = '{{.Label "com.docker.compose.service"}}={{.State}}:{{.Status}}'
        return dict(line.split("=", 1) for line in containers(project, "--format", fields))

    def ready() -> bool:
        now = states()
        for name in one_shot:
            assert not now.get(name, "").startswith("exited") or "(0)" in now[name], (name, now[name])
        healthy = all("(healthy)" in now.get(name, "") for name in long_running)
        return healthy and all(now.get(name, "").startswith("exited") for name in one_shot)

    wait_until(ready, HEALTHY_WITHIN, interval=1.0, what=f"every service of {project} healthy")


def leftovers(project: str) -> dict[str, list[str]]:
    """The project's containers, volumes and networks still there (each kind that has any)."""
    label = f"label=com.docker.compose.project={project}"
    found = {"containers": containers(project, "-q")}
    for kind in ("volume", "network"):
        run = subprocess.run(
            ["docker", kind, "ls", "-q", "--filter", label],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        found[f"{kind}s"] = run.stdout.split()
    return {kind: ids for kind, ids in found.items() if ids}
