"""The session Redis under the users `fleetdeck redis-users` generates: the services each on their own
user, the tests' own reads and writes on a test-only admin, and proof that Redis refused no service."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import redis

from fleetdeck.redis_users import UsageError, write_users
from fleetdeck_common.acl import Service
from testbed.procs import RedisServer, free_port
from tests.support.compose import load_compose
from tests.support.stacks import docker_engine_answers

ADMIN = "test-admin"  # never a service's user: what the tests themselves read and write with
Refusals = dict[tuple[str, str, str, str], int]  # (user, reason, context, object) -> times refused


@dataclass(frozen=True)
class RedisUsers:
    """The folder `write_users` wrote (ACL file, job key, env files) and the test admin's URL."""

    folder: Path
    admin_url: str

    def env(self, service: Service) -> dict[str, str]:
        """The service's env file: its REDIS_URL, and FLEETDECK_JOB_KEY_FILE for gateway and worker."""
        lines = (self.folder / f"{service}.env").read_text().splitlines()
        env = dict(line.split("=", 1) for line in lines if line)
        # Tests start each service with these two; a new variable there must reach them too.
        assert set(env) <= {"REDIS_URL", "FLEETDECK_JOB_KEY_FILE"}, f"{service}.env: {sorted(env)}"
        return env

    def url(self, service: Service) -> str:
        return self.env(service)["REDIS_URL"]

    @property
    def job_key(self) -> str:
        """The job key file the gateway signs with and the worker checks, as their env files name it."""
        key = self.env("gateway")["FLEETDECK_JOB_KEY_FILE"]
        assert self.env("worker")[
            "FLEETDECK_JOB_KEY_FILE"
        ] == key and "FLEETDECK_JOB_KEY_FILE" not in self.env("agent")
        return key


def admin_url(base: str, password: str) -> str:
    """`base` (scheme, host, port, db, query) as the test admin."""
    parts = urlsplit(base)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{ADMIN}:{password}@{parts.hostname}:{parts.port or 6379}{parts.path}{query}"


def with_admin(users_acl: Path, password: str) -> Path:
    """The generated ACL file plus the test admin's line, for `redis-server --aclfile`."""
    path = users_acl.with_name("with-admin.acl")
    path.write_text(users_acl.read_text() + f"user {ADMIN} on >{password} ~* &* +@all\n")
    return path


def setuser(client: redis.Redis, name: str, *rules: str) -> None:
    """ACL SETUSER with the rules as an ACL file writes them (redis-py's acl_setuser wants them apart)."""
    client.execute_command("ACL", "SETUSER", name, *rules)  # type: ignore[no-untyped-call]


def set_users(client: redis.Redis, users_acl: Path, skip: frozenset[str] = frozenset()) -> None:
    """ACL SETUSER every line of the ACL file (but the users in `skip`), exactly as written there:
    for a Redis that was started without the file."""
    for line in users_acl.read_text().splitlines():
        _user, name, *rules = line.split()
        if name not in skip:
            setuser(client, name, "reset", *rules)


def service_refusals(client: redis.Redis) -> Refusals:
    """What Redis's ACL log holds for the services' users (it groups repeats into one entry)."""
    found: Refusals = {}
    for entry in client.acl_log(count=10_000):
        user = _text(entry["username"])
        if user.startswith("fleetdeck-"):
            key = (user, _text(entry["reason"]), _text(entry["context"]), _text(entry["object"]))
            found[key] = int(str(entry["count"]))
    return found


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextlib.contextmanager
def refusing_nothing(url: str) -> Iterator[None]:
    """Fail loudly at the end if Redis refused a service's user anything meanwhile."""
    with contextlib.closing(redis.Redis.from_url(url)) as client:
        with contextlib.suppress(redis.ResponseError):  # a server of someone else's may forbid it
            client.config_set("acllog-max-len", 1024)  # room for every distinct refusal
        before = service_refusals(client)
    yield
    with contextlib.closing(redis.Redis.from_url(url)) as client:
        after = service_refusals(client)
    new = {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}
    assert not new, (
        "Redis refused a service something its generated user lacks (user, reason, context, "
        f"key or command: times): {new}. Grant it in the owning store's ACCESS, or stop asking."
    )


def _generated(folder: Path, base: str) -> Path:
    """write_users into `folder` for services reaching Redis at `base`; the ACL file."""
    try:
        write_users(folder, base)
    except UsageError as exc:
        raise RuntimeError(f"the session Redis: cannot give the services their own users: {exc}") from None
    return folder / "users.acl"


@contextlib.contextmanager
def session_redis(folder: Path) -> Iterator[RedisUsers]:
    """REDIS_URL when set, else a testcontainers Redis when a Docker engine answers, else a
    redis-server of our own; each with the generated users, and checked for refusals at the end."""
    password = secrets.token_hex(16)
    users_dir = folder / "users"
    outside = os.environ.get("REDIS_URL")
    if outside:
        # Someone else's server: its `default` user (perhaps the very URL given) is left as it is.
        acl = _generated(users_dir, outside)
        with contextlib.closing(redis.Redis.from_url(outside)) as client:
            set_users(client, acl, skip=frozenset({"default"}))
        with refusing_nothing(outside):
            yield RedisUsers(users_dir, outside)
        return
    if docker_engine_answers():
        from testcontainers.community.redis import RedisContainer

        image = load_compose()["services"]["redis"]["image"]  # the Redis docker-compose.yml runs
        with RedisContainer(image) as container:
            base = f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"
            acl = _generated(users_dir, base)
            with contextlib.closing(redis.Redis.from_url(base)) as anyone:  # `default`, for now
                setuser(anyone, ADMIN, "on", f">{password}", "~*", "&*", "+@all")
            with contextlib.closing(redis.Redis.from_url(admin_url(base, password))) as admin:
                set_users(admin, acl)  # its first line turns `default` off
            with refusing_nothing(admin_url(base, password)):
                yield RedisUsers(users_dir, admin_url(base, password))
        return
    base = f"redis://127.0.0.1:{free_port()}/0"
    acl = _generated(users_dir, base)
    server = RedisServer(
        folder, urlsplit(base).port, aclfile=with_admin(acl, password), admin_url=admin_url(base, password)
    )
    server.start()
    try:
        with refusing_nothing(server.admin_url or ""):
            yield RedisUsers(users_dir, admin_url(base, password))
    finally:
        server.stop()
