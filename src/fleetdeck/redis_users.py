"""`fleetdeck redis-users DIR --redis URL [--rotate]`: one Redis user per service, the job key, env files.

Writes DIR/users.acl (for `redis-server --aclfile`), DIR/job.key, DIR/{gateway,worker,agent}.env and
DIR/{gateway,worker,agent}.url (the URL alone, for REDIS_URL_FILE); `--rotate` keeps the key it
replaces as DIR/job.key.previous. With a `redis+sentinel://` URL it also writes what a replicated
Redis behind Sentinel needs: users for the replicas and the sentinels in users.acl,
DIR/replication.conf (the servers' `masteruser`/`masterauth`) and DIR/sentinel-auth.conf (each
sentinel's `requirepass` and `sentinel auth-user`/`auth-pass`); the services' URLs carry
Sentinel's password as `sentinel_password`. With `--tls NAMES` (a `rediss://` URL) it also writes a
private CA and Redis's certificate for NAMES and the URL's host into DIR/tls/ (`redis_tls`), and
URLs without `ssl_ca_certs` get DIR/tls/ca.crt.
The passwords live only in the env files and those two files (the ACL file holds their hashes);
running it again reads them back from there and keeps them, and the key, unless `--rotate`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from fleetdeck_common.acl import SERVICES, Service, username
from fleetdeck_common.broker.sentinel import SCHEME as SENTINEL_SCHEME
from fleetdeck_common.broker.sentinel import TLS_OPTIONS, parse_sentinel_url
from fleetdeck_common.jobs.previouskey import previous_key_path

from .redis_acl import REPLICA_USER, SENTINEL_USER, ReplicationPasswords, acl_file
from .redis_tls import parse_names, write_certificates

SCHEMES = ("redis", "rediss")
KEY_BYTES = 32
REPLICATION_FILE = "replication.conf"
SENTINEL_AUTH_FILE = "sentinel-auth.conf"


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
        help="how the services reach Redis, e.g. redis://redis:6379/0, "
        "rediss://host:6380/0?ssl_ca_certs=PATH or redis+sentinel://s1:26379,s2:26379/SERVICE/0",
    )
    users.add_argument(
        "--rotate", action="store_true", help="new passwords and a new job key (and CA, with --tls)"
    )
    users.add_argument(
        "--tls",
        nargs="?",
        const="",
        metavar="HOSTNAME[,HOSTNAME...]",
        help="also write DIR/tls/: a private CA and Redis's certificate for these names (IP addresses "
        "or DNS names) and the --redis URL's host, for a Redis that speaks only TLS",
    )


def _sentinel_url(base: str, user: str, password: str, sentinel_password: str) -> str:
    """A `redis+sentinel://` `base` with the user, its password and Sentinel's password in it."""
    rest, _, query = base[len(SENTINEL_SCHEME) :].partition("?")
    netloc, slash, path = rest.partition("/")
    hosts = netloc.rpartition("@")[2]
    options = [(k, v) for k, v in parse_qsl(query) if k not in ("sentinel_password", "sentinel_username")]
    options.append(("sentinel_password", sentinel_password))
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return f"{SENTINEL_SCHEME}{credentials}@{hosts}{slash}{path}?{urlencode(options, safe='')}"


def user_url(base: str, service: Service, password: str, sentinel_password: str = "") -> str:
    """`base` (scheme, host, port, db, query) with `service`'s user and password in it; behind
    Sentinel also Sentinel's own password."""
    if base.startswith(SENTINEL_SCHEME):
        return _sentinel_url(base, username(service), password, sentinel_password)
    parts = urlsplit(base)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{username(service)}:{quote(password, safe='')}@{host}{port}{parts.path}{query}"


def _check_sentinel_url(url: str) -> None:
    try:
        parsed = parse_sentinel_url(url)
    except ValueError as exc:
        raise UsageError(f"--redis {url!r}: {exc}") from None
    if any(option in url.partition("?")[2] for option in TLS_OPTIONS):
        raise UsageError(f"--redis {url!r}: TLS behind Sentinel is not supported")
    if not parsed.service.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise UsageError(
            f"--redis {url!r}: the Sentinel service name {parsed.service!r} may have only letters, "
            "digits, '-', '_' and '.'"
        )


def check_url(url: str) -> None:
    """UsageError unless `url` is a redis://, rediss:// or redis+sentinel:// URL with a host (and a
    valid port and db)."""
    if url.startswith(SENTINEL_SCHEME):
        _check_sentinel_url(url)
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise UsageError(f"--redis {url!r}: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise UsageError(f"--redis {url!r}: the URL must start with redis://, rediss:// or {SENTINEL_SCHEME}")
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
            url = line.removeprefix("REDIS_URL=")
            if url.startswith(SENTINEL_SCHEME):
                try:
                    return parse_sentinel_url(url).password
                except ValueError:
                    return None
            password = urlsplit(url).password
            return unquote(password) if password else None
    return None


def _kept_word(config: Path, *directive: str) -> str | None:
    """The last word of the line starting with `directive` in a config file written before."""
    try:
        lines = config.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        words = line.split()
        if tuple(words[: len(directive)]) == directive and len(words) > len(directive):
            return words[-1]
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


def _replication_passwords(folder: Path, rotate: bool) -> ReplicationPasswords:
    """The replication users' and Sentinel's passwords: kept from the files of a run before."""

    def kept(found: str | None) -> str:
        return (None if rotate else found) or secrets.token_hex(32)

    auth = folder / SENTINEL_AUTH_FILE
    return ReplicationPasswords(
        replica=kept(_kept_word(folder / REPLICATION_FILE, "masterauth")),
        sentinel_user=kept(_kept_word(auth, "sentinel", "auth-pass")),
        sentinel=kept(_kept_word(auth, "requirepass")),
    )


def _write_replication(folder: Path, service_name: str, passwords: ReplicationPasswords) -> None:
    """The servers' and the sentinels' own credentials, each in a config file they read."""
    replication = f"masteruser {REPLICA_USER}\nmasterauth {passwords.replica}\n"
    _write(folder / REPLICATION_FILE, replication.encode(), 0o600)
    auth = (
        f"requirepass {passwords.sentinel}\n"
        f"sentinel auth-user {service_name} {SENTINEL_USER}\n"
        f"sentinel auth-pass {service_name} {passwords.sentinel_user}\n"
    )
    _write(folder / SENTINEL_AUTH_FILE, auth.encode(), 0o600)


def _with_tls(folder: Path, redis_url: str, names: str, rotate: bool) -> str:
    """Write the CA and Redis's certificate into folder/tls/; the URL, given the CA if it names none."""
    if not redis_url.startswith("rediss://"):
        raise UsageError(
            f"--tls: Redis will speak only TLS, so --redis must be a rediss:// URL, not {redis_url!r}"
        )
    host = urlsplit(redis_url).hostname or ""
    try:
        parsed = parse_names([host, *names.split(",")])
    except ValueError as exc:
        raise UsageError(f"--tls {names!r}: {exc}") from None
    files = write_certificates(folder / "tls", parsed, rotate, _write)
    if "ssl_ca_certs" in dict(parse_qsl(urlsplit(redis_url).query)):
        return redis_url
    ca = quote(str(files.ca_cert), safe="/")
    return f"{redis_url}{'&' if '?' in redis_url else '?'}ssl_ca_certs={ca}"


def write_users(
    folder: Path, redis_url: str, rotate: bool = False, tls: str | None = None
) -> dict[Service, str]:
    """Write the ACL file, the job key and the env files into `folder` (with `tls`, the names for
    Redis's certificate, also folder/tls/); each service's URL."""
    check_url(redis_url)
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    if tls is not None:
        redis_url = _with_tls(folder, redis_url, tls, rotate)
    passwords: dict[Service, str] = {}
    for service in SERVICES:
        kept = None if rotate else _kept_password(folder / f"{service}.env")
        passwords[service] = kept or secrets.token_hex(32)
    replication = None
    if redis_url.startswith(SENTINEL_SCHEME):
        replication = _replication_passwords(folder, rotate)
        _write_replication(folder, parse_sentinel_url(redis_url).service, replication)
    key_file = folder / "job.key"
    if rotate or not key_file.is_file() or key_file.stat().st_size < KEY_BYTES:
        if rotate and key_file.is_file():
            # The worker accepts jobs signed with it for one queue timeout after the rotation.
            _write(previous_key_path(key_file), key_file.read_bytes(), 0o600)
        _write(key_file, secrets.token_bytes(KEY_BYTES), 0o600)
    # Hashes only: the ACL file is readable by the Redis server's own account.
    _write(folder / "users.acl", acl_file(passwords, replication).encode(), 0o644)
    sentinel_password = replication.sentinel if replication else ""
    urls = {s: user_url(redis_url, s, passwords[s], sentinel_password) for s in SERVICES}
    for service in SERVICES:
        lines = [f"REDIS_URL={urls[service]}"]
        if service != "agent":
            lines.append(f"FLEETDECK_JOB_KEY_FILE={key_file}")
        _write(folder / f"{service}.env", ("\n".join(lines) + "\n").encode(), 0o600)
        _write(folder / f"{service}.url", f"{urls[service]}\n".encode(), 0o600)
    return urls


def run_redis_users_command(args: argparse.Namespace) -> int:
    try:
        write_users(args.dir, args.redis, args.rotate, args.tls)
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
    sentinel = (
        f", {REPLICATION_FILE} for the servers and {SENTINEL_AUTH_FILE} for the sentinels"
        if args.redis.startswith(SENTINEL_SCHEME)
        else ""
    )
    tls = ", tls/ (ca.crt, ca.key, redis.crt, redis.key)" if args.tls is not None else ""
    print(
        f"wrote {args.dir}/users.acl, job.key, gateway/worker/agent .env and .url{sentinel}{tls} ({done}); "
        "start redis-server with --aclfile users.acl, or run ACL LOAD after changing it",
        file=sys.stderr,
    )
    return 0
