"""`fleetdeck redis-users`: the files it writes, their modes, kept secrets, --rotate and bad URLs."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fleetdeck.redis_acl import REPLICA_USER, SENTINEL_USER
from fleetdeck.redis_users import user_url
from fleetdeck_common.acl import password_hash
from fleetdeck_common.broker.sentinel import parse_sentinel_url
from tests.test_cli import fleetdeck

FILES = ("users.acl", "job.key", "gateway.env", "worker.env", "agent.env")


def _env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in FILES}


def test_it_writes_the_acl_the_key_and_one_env_file_per_service(tmp_path: Path) -> None:
    folder = tmp_path / "users"
    done = fleetdeck(
        "redis-users", str(folder), "--redis", "rediss://redis.internal:6380/2?ssl_ca_certs=/ca.pem"
    )
    assert done.returncode == 0, done.stderr
    modes = {name: stat.S_IMODE((folder / name).stat().st_mode) for name in FILES}
    assert modes == {
        "users.acl": 0o644,
        "job.key": 0o600,
        "gateway.env": 0o600,
        "worker.env": 0o600,
        "agent.env": 0o600,
    }
    assert len((folder / "job.key").read_bytes()) == 32
    acl = (folder / "users.acl").read_text()
    for service in ("gateway", "worker", "agent"):
        env = _env(folder / f"{service}.env")
        url = urlsplit(env["REDIS_URL"])
        assert (url.scheme, url.hostname, url.port, url.path, url.query) == (
            "rediss",
            "redis.internal",
            6380,
            "/2",
            "ssl_ca_certs=/ca.pem",
        )
        assert url.username == f"fleetdeck-{service}" and url.password and url.password not in acl
        key_file = env.get("FLEETDECK_JOB_KEY_FILE")
        assert key_file == (None if service == "agent" else str((folder / "job.key").resolve()))


def test_running_again_keeps_the_secrets_and_rotate_replaces_them(tmp_path: Path) -> None:
    folder = tmp_path / "users"
    assert fleetdeck("redis-users", str(folder), "--redis", "redis://127.0.0.1:6379/0").returncode == 0
    first = _snapshot(folder)
    assert fleetdeck("redis-users", str(folder), "--redis", "redis://127.0.0.1:6379/0").returncode == 0
    assert _snapshot(folder) == first
    moved = fleetdeck("redis-users", str(folder), "--redis", "redis://10.0.0.5:6379/0")
    assert moved.returncode == 0
    assert (folder / "users.acl").read_bytes() == first["users.acl"]  # same passwords, new host
    assert "@10.0.0.5:6379/0" in (folder / "agent.env").read_text()
    assert (
        fleetdeck("redis-users", str(folder), "--redis", "redis://10.0.0.5:6379/0", "--rotate").returncode
        == 0
    )
    rotated = _snapshot(folder)
    assert all(rotated[name] != first[name] for name in FILES)


def test_rotate_keeps_the_replaced_key_beside_the_new_one(tmp_path: Path) -> None:
    folder = tmp_path / "users"
    assert fleetdeck("redis-users", str(folder), "--redis", "redis://127.0.0.1:6379/0").returncode == 0
    first = (folder / "job.key").read_bytes()
    assert not (folder / "job.key.previous").exists()
    for _ in range(2):
        before = (folder / "job.key").read_bytes()
        rotated = fleetdeck("redis-users", str(folder), "--redis", "redis://127.0.0.1:6379/0", "--rotate")
        assert rotated.returncode == 0, rotated.stderr
        assert "job.key.previous" in rotated.stderr
        assert (folder / "job.key.previous").read_bytes() == before
        assert stat.S_IMODE((folder / "job.key.previous").stat().st_mode) == 0o600
        assert (folder / "job.key").read_bytes() not in (before, first)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:6379/0", "must start with redis://, rediss:// or redis+sentinel://"),
        ("127.0.0.1:6379", "must start with redis://, rediss:// or redis+sentinel://"),
        ("redis+sentinel://127.0.0.1:26379", "name the Sentinel service"),
        ("redis+sentinel://127.0.0.1:x/mymaster/0", "port must be a number"),
        ("redis+sentinel://s1/mymaster/0?ssl_ca_certs=/ca.pem", "TLS behind Sentinel is not supported"),
        ("redis+sentinel://s1/my%20master/0", "may have only letters, digits"),
        ("redis:///0", "names no host"),
        ("redis://127.0.0.1:port/0", "Port could not be cast"),
        ("redis://127.0.0.1:6379/zero", "the database 'zero' must be a number"),
    ],
)
def test_a_bad_redis_url_is_a_clear_error_and_writes_nothing(tmp_path: Path, url: str, says: str) -> None:
    done = fleetdeck("redis-users", str(tmp_path / "users"), "--redis", url)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "users").exists()


def test_a_user_url_keeps_everything_but_the_credentials() -> None:
    assert (
        user_url("redis://:old@[::1]:7000/3", "agent", "p/w") == "redis://fleetdeck-agent:p%2Fw@[::1]:7000/3"
    )


def test_each_service_also_gets_its_url_alone_for_redis_url_file(tmp_path: Path) -> None:
    folder = tmp_path / "users"
    assert fleetdeck("redis-users", str(folder), "--redis", "redis://redis:6379/0").returncode == 0
    for service in ("gateway", "worker", "agent"):
        url_file = folder / f"{service}.url"
        assert stat.S_IMODE(url_file.stat().st_mode) == 0o600
        assert url_file.read_text() == _env(folder / f"{service}.env")["REDIS_URL"] + "\n"


SENTINEL_URL = "redis+sentinel://:old@s1:26379,s2:26380,[::1]:26381/fleetdeck/2"
SENTINEL_FILES = (*FILES, "replication.conf", "sentinel-auth.conf")


def _words(path: Path) -> dict[str, list[str]]:
    """A config file's lines by their first words (`sentinel auth-pass` by both)."""
    lines = [line.split() for line in path.read_text().splitlines()]
    return {" ".join(w[:2] if w[0] == "sentinel" else w[:1]): w for w in lines}


def test_behind_sentinel_it_also_writes_the_replication_and_sentinel_credentials(tmp_path: Path) -> None:
    folder = tmp_path / "users"
    done = fleetdeck("redis-users", str(folder), "--redis", SENTINEL_URL)
    assert done.returncode == 0, done.stderr
    assert "replication.conf" in done.stderr and "sentinel-auth.conf" in done.stderr
    for name in ("replication.conf", "sentinel-auth.conf"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    replication = _words(folder / "replication.conf")
    assert replication["masteruser"] == ["masteruser", REPLICA_USER]
    replica_password = replication["masterauth"][1]
    auth = _words(folder / "sentinel-auth.conf")
    assert list(auth) == ["requirepass", "sentinel auth-user", "sentinel auth-pass"]
    assert auth["sentinel auth-user"] == ["sentinel", "auth-user", "fleetdeck", SENTINEL_USER]
    sentinel_user_password = auth["sentinel auth-pass"][3]
    requirepass = auth["requirepass"][1]
    assert len({replica_password, sentinel_user_password, requirepass}) == 3
    # The ACL file holds the two new users by their passwords' hashes; requirepass is Sentinel's.
    acl = (folder / "users.acl").read_text()
    users = [line.split()[1] for line in acl.splitlines()]
    assert users[-2:] == [REPLICA_USER, SENTINEL_USER]
    assert f"#{password_hash(replica_password)}" in acl and f"#{password_hash(sentinel_user_password)}" in acl
    assert not any(p in acl for p in (replica_password, sentinel_user_password, requirepass))
    passwords = set()
    for service in ("gateway", "worker", "agent"):
        url = _env(folder / f"{service}.env")["REDIS_URL"]
        assert (folder / f"{service}.url").read_text() == url + "\n"
        parsed = parse_sentinel_url(url)
        assert parsed.username == f"fleetdeck-{service}" and parsed.password not in (None, "old")
        assert parsed.sentinels == (("s1", 26379), ("s2", 26380), ("::1", 26381))
        assert (parsed.service, parsed.db) == ("fleetdeck", 2)
        assert parsed.sentinel_password == requirepass and parsed.sentinel_username is None
        passwords.add(parsed.password)
    assert len(passwords) == 3


def test_behind_sentinel_running_again_keeps_every_password_and_rotate_replaces_them(tmp_path: Path) -> None:
    folder = tmp_path / "users"
    assert fleetdeck("redis-users", str(folder), "--redis", SENTINEL_URL).returncode == 0
    first = {name: (folder / name).read_bytes() for name in SENTINEL_FILES}
    assert fleetdeck("redis-users", str(folder), "--redis", SENTINEL_URL).returncode == 0
    assert {name: (folder / name).read_bytes() for name in SENTINEL_FILES} == first
    # Another service name: the same passwords, the sentinels' lines name it.
    other = SENTINEL_URL.replace("/fleetdeck/", "/other/")
    assert fleetdeck("redis-users", str(folder), "--redis", other).returncode == 0
    assert (folder / "users.acl").read_bytes() == first["users.acl"]
    assert "auth-pass other " in (folder / "sentinel-auth.conf").read_text()
    assert fleetdeck("redis-users", str(folder), "--redis", other, "--rotate").returncode == 0
    auth = _words(folder / "sentinel-auth.conf")
    rotated = {name: (folder / name).read_bytes() for name in SENTINEL_FILES}
    assert all(rotated[name] != first[name] for name in SENTINEL_FILES)
    old_auth = first["sentinel-auth.conf"].decode()
    assert auth["requirepass"][1] not in old_auth and auth["sentinel auth-pass"][3] not in old_auth
    assert _words(folder / "replication.conf")["masterauth"][1] not in first["replication.conf"].decode()


def test_a_sentinel_user_url_replaces_credentials_and_keeps_the_rest() -> None:
    url = user_url(
        "redis+sentinel://:old@s1:26379,s2/mymaster/0?sentinel_password=old", "agent", "p/w", "s&p"
    )
    assert url == "redis+sentinel://fleetdeck-agent:p%2Fw@s1:26379,s2/mymaster/0?sentinel_password=s%26p"
    parsed = parse_sentinel_url(url)
    assert (parsed.password, parsed.sentinel_password) == ("p/w", "s&p")
