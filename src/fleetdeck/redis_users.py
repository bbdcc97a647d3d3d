"""`fleetdeck redis-users DIR --redis URL [--rotate]`: one Redis user per service, the job key, env files.

Writes DIR/users.acl (for `redis-server --aclfile`), DIR/job.key, DIR/{gateway,worker,agent}.env and
DIR/{gateway,worker,agent}.url (the URL alone, for REDIS_URL_FILE); `--rotate` keeps the key it
replaces as DIR/job.key.previous.
The passwords live only in the env files (the ACL file holds their hashes); running it again reads
them back from there and keeps them, and the key, unless `--rotate`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from fleetdeck_common.acl import SERVICES, Service, username
from fleetdeck_common.jobs.previouskey import previous_key_path

from .redis_acl import acl_file

SCHEMES = ("redis", "rediss")
KEY_BYTES = 32


class UsageError(ValueError):
    """Something wrong with what the user asked for, with a sentence saying what."""


def add_redis_users_command(commands: Any) -> None:
    """Add `redis-users` to the `fleetdeck` command's subparsers."""
    users = commands.add_parser(
        "redis-users",
        help="write a Redis ACL file with one least-privilege user per service, the job key and env files",
    )
    users.add_argument("dir", type=Path, metavar="DIR", help="folder to write into (created if missing)")
    users.add_argument(
        "--redis",
        required=True,
        metavar="URL",
        help="how the services reach Redis, e.g. redis://redis:6379/0 or rediss://host:6380/0?ssl_ca_certs=PATH",
    )
    users.add_argument("--rotate", action="store_true", help="new passwords and a new job key")


def user_url(base: str, service: Service, password: str) -> str:
    """`base` (scheme, host, port, db, query) with `service`'s user and password in it."""
    parts = urlsplit(base)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{username(service)}:{quote(password, safe='')}@{host}{port}{parts.path}{query}"


def check_url(url: str) -> None:
    """UsageError unless `url` is a redis:// or rediss:// URL with a host (and a valid port and db)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise UsageError(f"--redis {url!r}: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise UsageError(f"--redis {url!r}: the URL must start with redis:// or rediss://")
    if not parts.hostname:
        raise UsageError(f"--redis {url!r}: the URL names no host")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise UsageError(f"--redis {url!r}: the database {db!r} must be a number")


def _kept_password(env_file: Path) -> str | None:
    """The password in an env file written before, if there is one."""
    try:
        lines = env_file.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("REDIS_URL="):
            password = urlsplit(line.removeprefix("REDIS_URL=")).password
            return unquote(password) if password else None
    return None


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write `data` with `mode` from the first byte on, replacing `path` in one rename."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_users(folder: Path, redis_url: str, rotate: bool = False) -> dict[Service, str]:
    """Write the ACL file, the job key and the env files into `folder`; each service's URL."""
    check_url(redis_url)
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    passwords: dict[Service, str] = {}
    for service in SERVICES:
        kept = None if rotate else _kept_password(folder / f"{service}.env")
        passwords[service] = kept or secrets.token_hex(32)
    key_file = folder / "job.key"
    if rotate or not key_file.is_file() or key_file.stat().st_size < KEY_BYTES:
        if rotate and key_file.is_file():
            # The worker accepts jobs signed with it for one queue timeout after the rotation.
            _write(previous_key_path(key_file), key_file.read_bytes(), 0o600)
        _write(key_file, secrets.token_bytes(KEY_BYTES), 0o600)
    # Hashes only: the ACL file is readable by the Redis server's own account.
    _write(folder / "users.acl", acl_file(passwords).encode(), 0o644)
    urls = {service: user_url(redis_url, service, passwords[service]) for service in SERVICES}
    for service in SERVICES:
        lines = [f"REDIS_URL={urls[service]}"]
        if service != "agent":
            lines.append(f"FLEETDECK_JOB_KEY_FILE={key_file}")
        _write(folder / f"{service}.env", ("\n".join(lines) + "\n").encode(), 0o600)
        _write(folder / f"{service}.url", f"{urls[service]}\n".encode(), 0o600)
    return urls


def run_redis_users_command(args: argparse.Namespace) -> int:
    try:
        write_users(args.dir, args.redis, args.rotate)
    except UsageError as exc:
        print(f"fleetdeck redis-users: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fleetdeck redis-users: cannot write {args.dir}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    done = (
        "new passwords and job key, the old key kept in job.key.previous"
        if args.rotate
        else "passwords and job key kept where present"
    )
    print(
        f"wrote {args.dir}/users.acl, job.key, gateway/worker/agent .env and .url ({done}); "
        "start redis-server with --aclfile users.acl, or run ACL LOAD after changing it",
        file=sys.stderr,
    )
    return 0
