"""Check the worker's SSH setup before it takes jobs, and say exactly what is wrong and how to fix it.

A setting that names a file that is missing or unreadable is an error: the worker refuses to
start, naming the file. Defaults that are missing (no ~/.ssh/known_hosts, no key at all) are
warnings: every host would fail, so the operator hears it once at start, not once per host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from .settings import WorkerSettings

DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
# docker-compose.yml passes the worker its FLEETDECK_SSH_DIR (the folder, or volume, mounted as the
# SSH folder), so a missing key or known_hosts is reported with the folder to fill.
COMPOSE_SSH_DIR = "FLEETDECK_COMPOSE_SSH_DIR"


@dataclass
class Findings:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _readable(path: Path) -> str | None:
    """Why `path` cannot be read, or None if it can."""
    if not path.exists():
        return "does not exist"
    if not path.is_file():
        return "is not a file"
    if not os.access(path, os.R_OK):
        return f"is not readable by this process (uid {os.getuid()})"
    return None


def check_ssh_setup(settings: WorkerSettings, home: Path | None = None) -> Findings:
    home = home or Path.home()
    found = Findings()
    if settings.ssh_key is not None:
        problem = _readable(settings.ssh_key)
        if problem:
            found.errors.append(
                f"FLEETDECK_SSH_KEY: {settings.ssh_key} {problem}; point it at the private key the "
                f"targets' authorized_keys accept (e.g. ssh-keygen -t ed25519 -f {settings.ssh_key})"
            )
        else:
            try:
                asyncssh.read_private_key(str(settings.ssh_key))
            except (asyncssh.KeyImportError, ValueError) as exc:
                found.errors.append(
                    f"FLEETDECK_SSH_KEY: {settings.ssh_key} is not a usable private key ({exc}); "
                    "fleetdeck needs an unencrypted key file"
                )
    elif not os.environ.get("SSH_AUTH_SOCK") and not any((home / ".ssh" / k).is_file() for k in DEFAULT_KEYS):
        found.warnings.append(
            "no SSH key: FLEETDECK_SSH_KEY is not set, there is no ~/.ssh/id_ed25519 (or _ecdsa, _rsa) "
            "and no ssh-agent; every host will refuse the login until you set FLEETDECK_SSH_KEY"
        )
    if settings.ssh_host_key_check:
        known = settings.known_hosts or home / ".ssh" / "known_hosts"
        problem = _readable(known)
        if problem:
            scan = f"ssh-keyscan -p {settings.ssh_port} HOST ... >> {known}"
            fix = f"collect the targets' host keys with `{scan}` and verify their fingerprints"
            message = f"{'FLEETDECK_KNOWN_HOSTS: ' if settings.known_hosts else ''}{known} {problem}; {fix}"
            (found.errors if settings.known_hosts else found.warnings).append(
                message if settings.known_hosts else f"{message} (every host key will be refused until then)"
            )
    compose_dir = os.environ.get(COMPOSE_SSH_DIR)
    if compose_dir and found.errors:
        found.errors.append(_compose_hint(compose_dir))
    return found


def _compose_hint(folder: str) -> str:
    return (
        f"with docker compose, the key and known_hosts come from the folder FLEETDECK_SSH_DIR names in "
        f".env (now: {folder}): put the private key as id_ed25519 and the targets' host keys as "
        f"known_hosts in a folder such as ./ssh, readable by uid {os.getuid()} (the containers' user), "
        "and set FLEETDECK_SSH_DIR=./ssh; or run `docker compose --profile demo up`, which fills the "
        "default volume with demo keys for its demo hosts"
    )
