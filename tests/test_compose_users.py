"""docker-compose.yml's Redis users, checked statically (no Docker engine): a one-shot writes them
once, Redis loads them, each service mounts and reads only its own files, no password is inline."""

from __future__ import annotations

import posixpath
import re
import shlex
from typing import Any

from tests.support.compose import COMPOSE_FILE, load_compose, service_environment, service_mounts

ONE_SHOT = "redis-users"
OWN_FILES = {
    "gateway": {"gateway.url", "job.key"},
    "exec-worker": {"worker.url", "job.key", "job.key.previous"},
    "cpu-agent": {"agent.url"},
    "redis": {"users.acl"},
}
URL_FILES = {"gateway": "gateway.url", "exec-worker": "worker.url", "cpu-agent": "agent.url"}


def _script(service: dict[str, Any]) -> list[list[str]]:
    """The one-shot's shell script (`sh -euc SCRIPT`), one word list per line."""
    command = service["command"]
    assert command[:2] == ["sh", "-euc"], command
    return [shlex.split(line) for line in command[2].splitlines() if line.strip()]


def _installs(script: list[list[str]]) -> dict[str, set[str]]:
    """Folder in the one-shot's container -> names of the files its `install` lines put there."""
    copies: dict[str, set[str]] = {}
    for line in script:
        if "install" not in line:
            continue
        # `[ ! -f FILE ] || install ...`: a copy made only when its source exists
        words = line[line.index("install") :]
        rest = words[1:]
        paths = [w for i, w in enumerate(rest) if not w.startswith("-") and rest[i - 1] not in ("-m", "-o")]
        *sources, folder = paths
        assert folder.endswith("/"), words  # copied into a folder, under the source's own name
        copies.setdefault(folder.rstrip("/"), set()).update(posixpath.basename(s) for s in sources)
    return copies


def _volume_files(services: dict[str, Any]) -> dict[str, set[str]]:
    """Named volume -> the files the one-shot copies into it."""
    copies = _installs(_script(services[ONE_SHOT]))
    mounts = {target: source for source, target, _ in service_mounts(services[ONE_SHOT])}
    assert set(copies) <= set(mounts), (copies, mounts)
    return {mounts[folder]: files for folder, files in copies.items()}


def _own_mount(services: dict[str, Any], name: str) -> tuple[str, set[str]]:
    """(where `name` sees its Redis files, which files they are): exactly one such volume, read-only."""
    volumes = _volume_files(services)
    mounts = [
        (target, ro, volumes[source])
        for source, target, ro in service_mounts(services[name])
        if source in volumes
    ]
    assert len(mounts) == 1, (name, mounts)
    ((target, read_only, files),) = mounts
    assert read_only, name
    return target, files


def test_the_one_shot_writes_users_and_key_once_into_its_own_volume() -> None:
    services = load_compose()["services"]
    one_shot = services[ONE_SHOT]
    first, *copies = _script(one_shot)
    assert first[:3] == ["fleetdeck", "redis-users", "/secrets"] and "--rotate" not in first
    assert first[first.index("--redis") + 1] == "redis://redis:6379/0"
    for words in copies:  # copies only, some only when their source is there
        assert words[0] == "install" or (
            words[:3] == ["[", "!", "-f"] and words[4:7] == ["]", "||", "install"]
        )
    # The mtimes come along: the worker counts the previous key's window from job.key's.
    assert all("-p" in words for words in copies)
    assert one_shot["build"]["dockerfile"] == services["gateway"]["build"]["dockerfile"]  # has the CLI
    (secrets,) = [source for source, target, _ in service_mounts(one_shot) if target == "/secrets"]
    users = [n for n, service in services.items() if secrets in {m[0] for m in service_mounts(service)}]
    assert users == [ONE_SHOT]  # everything it writes stays in a volume no server mounts
    # The copies belong to the services' user and only they may read them (the ACL file holds hashes).
    for line in copies:
        words = line[line.index("install") :]
        owner = words[words.index("-o") + 1] if "-o" in words else None
        mode = words[words.index("-m") + 1]
        assert (owner, mode) in ((None, "0644"), ("10001", "0600")), words
        assert mode == "0644" or not any(w.endswith("users.acl") for w in words)


def test_redis_starts_with_the_acl_file_after_the_one_shot() -> None:
    services = load_compose()["services"]
    redis = services["redis"]
    assert redis["depends_on"][ONE_SHOT]["condition"] == "service_completed_successfully"
    folder, files = _own_mount(services, "redis")
    assert files == OWN_FILES["redis"]
    command = redis["command"]
    assert command[command.index("--aclfile") + 1] == posixpath.join(folder, "users.acl")
    assert "NOAUTH" in " ".join(redis["healthcheck"]["test"])  # `default` is off: NOAUTH is up


def test_every_service_reads_its_own_url_file_and_only_its_own_files() -> None:
    services = load_compose()["services"]
    for name, url_file in URL_FILES.items():
        folder, files = _own_mount(services, name)
        assert files == OWN_FILES[name], name  # the agent gets its URL and nothing else
        env = service_environment(services[name])
        assert "REDIS_URL" not in env, name
        assert env["REDIS_URL_FILE"] == posixpath.join(folder, url_file), name
        key = env.get("FLEETDECK_JOB_KEY_FILE")
        assert key == (posixpath.join(folder, "job.key") if "job.key" in files else None), name


def test_no_password_is_written_into_the_compose_file() -> None:
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"rediss?(\+sentinel)?://[^/\s]*@", text), "a URL with credentials"
    assert not re.search(r"(?i)(password|requirepass|masterauth)\s*[:=]", text)
