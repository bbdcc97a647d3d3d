"""docker-compose.yml's Redis users, checked statically (no Docker engine): a one-shot writes them
once, Redis loads them, each service mounts and reads only its own files, no password is inline.
Likewise with deploy/compose.sentinel.yml on top: both servers load the users and the replication
user, the sentinels Sentinel's password and their user, the services their Sentinel URLs."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

import pytest

from fleetdeck.redis_acl import REPLICA_USER, SENTINEL_USER
from fleetdeck_common.broker.sentinel import parse_sentinel_url
from tests.support.compose import (
    COMPOSE_FILE,
    SENTINEL_FILE,
    compose_config,
    directive,
    load_compose,
    local_mounts,
    make_sentinel_config,
    one_shot_installs,
    one_shot_script,
    read_sentinel_config,
    run_one_shot,
    server_config,
    server_options,
    service_environment,
    service_mounts,
)

ONE_SHOT = "redis-users"
OWN_FILES = {
    "gateway": {"gateway.url", "job.key"},
    "exec-worker": {"worker.url", "job.key", "job.key.previous"},
    "cpu-agent": {"agent.url"},
    "redis": {"users.acl"},
}
URL_FILES = {"gateway": "gateway.url", "exec-worker": "worker.url", "cpu-agent": "agent.url"}


def _volume_files(services: dict[str, Any]) -> dict[str, set[str]]:
    """Named volume -> the files the one-shot copies into it."""
    copies = one_shot_installs(one_shot_script(services[ONE_SHOT]))
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
    first, *copies = one_shot_script(one_shot)
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


@pytest.mark.parametrize("path", [COMPOSE_FILE, SENTINEL_FILE], ids=["compose", "sentinel"])
def test_no_password_is_written_into_the_compose_file(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"rediss?(\+sentinel)?://[^/\s]*@", text), "a URL with credentials"
    assert not re.search(r"(?i)(password|requirepass|masterauth|auth-pass)\s*[:=]", text)
    assert not re.search(r"(?i)(requirepass|masterauth|auth-pass|REDISCLI_AUTH=)\s*[0-9a-f]{16}", text)
    assert "REDIS_URL:" not in text  # every service's URL comes from its file


# --- with deploy/compose.sentinel.yml on top -------------------------------------------------------

SENTINEL_OWN_FILES = {**OWN_FILES, "redis": {"users.acl", "replication.conf"}}
SERVERS = ("redis", "redis-replica")
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
REDIS_UID = "999"  # the redis image's own user, which runs the servers and (`user: redis`) sentinels


def _sentinel_services() -> dict[str, Any]:
    services: dict[str, Any] = compose_config(COMPOSE_FILE, SENTINEL_FILE)["services"]
    return services


def test_behind_sentinel_the_one_shot_gets_the_sentinel_url_and_hands_out_each_file_once() -> None:
    services = _sentinel_services()
    first, *copies = one_shot_script(services[ONE_SHOT])
    assert first[:3] == ["fleetdeck", "redis-users", "/secrets"] and "--rotate" not in first
    url = parse_sentinel_url(first[first.index("--redis") + 1])
    assert url.password is None and url.sentinel_password is None  # redis-users puts them in
    assert [host for host, _ in url.sentinels] == list(SENTINELS)
    for name in SENTINELS:  # the service name they watch is the one the URL asks for
        script = services[name]["command"][2]
        assert f"sentinel monitor {url.service} redis 6379 2" in script, name
    volumes = _volume_files(services)
    for line in copies:
        words = line[line.index("install") :]
        owner = words[words.index("-o") + 1] if "-o" in words else None
        mode = words[words.index("-m") + 1]
        files = {w.rsplit("/", 1)[-1] for w in words if w.startswith("/secrets/")}
        if files & {"replication.conf", "sentinel-auth.conf"}:
            assert (owner, mode) == (REDIS_UID, "0600"), words  # passwords, for Redis's user only
        else:
            assert (owner, mode) in ((None, "0644"), ("10001", "0600")), words
    # Each of the new files in exactly one volume, and that volume mounted only where it is needed.
    holders = {
        f: [v for v, files in volumes.items() if f in files]
        for f in ("replication.conf", "sentinel-auth.conf")
    }
    assert all(len(found) == 1 for found in holders.values()), holders
    for file, (volume,) in holders.items():
        users = sorted(
            n for n, s in services.items() if n != ONE_SHOT and volume in {m[0] for m in service_mounts(s)}
        )
        assert users == sorted(SERVERS if file == "replication.conf" else SENTINELS), (file, users)


def test_behind_sentinel_both_servers_load_the_users_and_the_replication_user() -> None:
    services = _sentinel_services()
    for name in SERVERS:
        service = services[name]
        folder, files = _own_mount(services, name)
        assert files == SENTINEL_OWN_FILES["redis"], name
        command = service["command"]
        assert server_config(command) == posixpath.join(folder, "replication.conf"), name
        assert server_options(command)["aclfile"] == [posixpath.join(folder, "users.acl")], name
        assert service["depends_on"][ONE_SHOT]["condition"] == "service_completed_successfully", name
        assert "NOAUTH" in " ".join(service["healthcheck"]["test"]), name  # `default` is off


def test_behind_sentinel_the_sentinels_take_their_password_and_user_on_every_start(tmp_path: Path) -> None:
    services = _sentinel_services()
    volumes = run_one_shot(services, tmp_path / "volumes")
    for name in SENTINELS:
        service = services[name]
        folder, files = _own_mount(services, name)
        assert files == {"sentinel-auth.conf"}, name
        assert service["depends_on"][ONE_SHOT]["condition"] == "service_completed_successfully", name
        mounts = local_mounts(service, volumes)
        auth = read_sentinel_config(mounts[folder] / "sentinel-auth.conf")
        data = tmp_path / name
        config = read_sentinel_config(make_sentinel_config(service, data, mounts))
        for line in auth:
            assert config.count(line) == 1, line
        service_name = directive(config, "sentinel", "monitor")[0]
        assert directive(config, "sentinel", "auth-user") == [service_name, SENTINEL_USER]
        # Sentinel keeps the passwords in its file when it rewrites it; after a --rotate the next
        # start has the new ones only (requirepass also as the `user default` Sentinel writes).
        path = data / "sentinel.conf"
        path.write_text(
            path.read_text()
            .replace("requirepass ", 'requirepass "old-')
            .replace("auth-pass fleetdeck ", "auth-pass fleetdeck old")
            + "user default on #0123 ~* &* +@all\n"
        )
        again = read_sentinel_config(make_sentinel_config(service, data, mounts))
        assert not any("old" in " ".join(words) for words in again), name
        assert not any(words[:2] == ["user", "default"] for words in again), name
        assert [w for w in again if w[0] == "requirepass"] == [w for w in auth if w[0] == "requirepass"]
        assert directive(again, "sentinel", "auth-pass") == directive(auth, "sentinel", "auth-pass")
        health = " ".join(service["healthcheck"]["test"])
        assert f"{folder}/sentinel-auth.conf" in health and "REDISCLI_AUTH=" in health, health


def test_behind_sentinel_every_service_reads_its_own_sentinel_url_from_its_file(tmp_path: Path) -> None:
    services = _sentinel_services()
    volumes = run_one_shot(services, tmp_path / "volumes")
    auth = (volumes["sentinel-redis"] / "sentinel-auth.conf").read_text().split()
    requirepass = auth[auth.index("requirepass") + 1]
    for name, url_file in URL_FILES.items():
        folder, files = _own_mount(services, name)
        assert files == SENTINEL_OWN_FILES[name], name
        env = service_environment(services[name])
        assert "REDIS_URL" not in env and env["REDIS_URL_FILE"] == posixpath.join(folder, url_file), name
        url = (local_mounts(services[name], volumes)[folder] / url_file).read_text().strip()
        parsed = parse_sentinel_url(url)
        assert parsed.username == f"fleetdeck-{url_file.removesuffix('.url')}", name
        assert parsed.sentinel_password == requirepass, name
    acl = (volumes["redis-acl"] / "users.acl").read_text()
    assert [line.split()[1] for line in acl.splitlines()][-2:] == [REPLICA_USER, SENTINEL_USER]
