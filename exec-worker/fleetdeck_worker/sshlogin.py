"""Logging in to a host: the worker's SSH options, opening a connection with them, and what a
failed login means as a protocol status."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from fleetdeck_common.messages import HostStatus

from .sshpool import Connect, SshPool


@dataclass(frozen=True)
class SshOptions:
    user: str
    port: int = 22
    key: Path | None = None
    known_hosts: Path | None = None
    check_host_keys: bool = True
    connect_timeout: float = 10.0
    output_limit: int = 65536
    # Keeps connections between commands; None opens a connection per command and closes it after.
    pool: SshPool | None = field(default=None, compare=False, repr=False)

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "port": self.port,
            "username": self.user,
            "config": [],  # never let ~/.ssh/config send us to a host the allowlist did not check
            "agent_forwarding": False,
            "x11_forwarding": False,
            "login_timeout": self.connect_timeout,
            "connect_timeout": self.connect_timeout,
            "preferred_auth": "publickey",
        }
        if self.key is not None:
            kwargs["client_keys"] = [str(self.key)]
            kwargs["agent_path"] = None
        if not self.check_host_keys:
            kwargs["known_hosts"] = None
        elif self.known_hosts is not None:
            kwargs["known_hosts"] = str(self.known_hosts)
        return kwargs

    def connection_key(self, host: str) -> Hashable:
        """What a kept connection must match to be reused: the server, and who logs in how."""
        return (host, self.port, self.user, self.key, self.known_hosts, self.check_host_keys)


async def open_connection(host: str, options: SshOptions) -> asyncssh.SSHClientConnection:
    """A new SSH connection to `host`, given up after `connect_timeout`."""
    return await asyncio.wait_for(asyncssh.connect(host, **options.connect_kwargs()), options.connect_timeout)


def connect_failure(exc: BaseException, host: str, options: SshOptions) -> tuple[HostStatus, str]:
    """The status and a sentence for a host we could not log in to, saying what was tried."""
    tried = f"(tried {options.user}@{host} port {options.port})"
    if isinstance(exc, asyncssh.PermissionDenied):
        return "auth_failed", f"authentication failed: {exc.reason or exc} {tried}"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return (
            "error",
            f"host key not verifiable (unknown or changed; check known_hosts): {exc.reason} {tried}",
        )
    if isinstance(exc, TimeoutError):
        return "unreachable", f"connection timed out after {options.connect_timeout:g}s {tried}"
    if isinstance(exc, asyncssh.DisconnectError):
        return "error", f"SSH disconnect: {exc.reason or exc} {tried}"
    if isinstance(exc, OSError):
        # asyncio's text names the address ("Connect call failed ('10.0.0.7', 22)"); the errno's
        # text does not, so hosts failing the same way group together.
        reason = (
            os.strerror(exc.errno).lower() if exc.errno else (exc.strerror or str(exc) or type(exc).__name__)
        )
        return "unreachable", f"{reason} {tried}"
    return "error", f"{type(exc).__name__}: {exc} {tried}"


def connector(host: str, options: SshOptions) -> Connect:
    """How the pool opens a new connection to `host` when it has none to lend."""

    async def connect() -> asyncssh.SSHClientConnection:
        return await open_connection(host, options)

    return connect
