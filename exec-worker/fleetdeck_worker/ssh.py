"""One host: connect over SSH, run the command, classify the outcome into a protocol status."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from fleetdeck_common.messages import HostStatus, Outcome

READ_CHUNK = 65536


@dataclass(frozen=True)
class SshOptions:
    user: str
    port: int = 22
    key: Path | None = None
    known_hosts: Path | None = None
    check_host_keys: bool = True
    connect_timeout: float = 10.0
    output_limit: int = 65536

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


class _Capped:
    """Keeps the first `limit` bytes of a stream and keeps reading (discarding) the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    async def drain(self, stream: asyncssh.SSHReader[bytes]) -> None:
        while chunk := await stream.read(READ_CHUNK):
            room = self.limit - len(self.data)
            if len(chunk) > room:
                self.truncated = True
            if room > 0:
                self.data += chunk[:room]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


async def _connect(host: str, options: SshOptions) -> asyncssh.SSHClientConnection:
    return await asyncio.wait_for(asyncssh.connect(host, **options.connect_kwargs()), options.connect_timeout)


def _connect_failure(exc: BaseException) -> tuple[HostStatus, str]:
    if isinstance(exc, asyncssh.PermissionDenied):
        return "auth_failed", f"authentication failed: {exc.reason or exc}"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return (
            "error",
            f"host key not verifiable (unknown or changed; check known_hosts): {exc.reason}",
        )
    if isinstance(exc, TimeoutError):
        return "unreachable", "connection timed out"
    if isinstance(exc, asyncssh.DisconnectError):
        return "error", f"SSH disconnect: {exc.reason or exc}"
    if isinstance(exc, OSError):
        return "unreachable", exc.strerror or str(exc) or type(exc).__name__
    return "error", f"{type(exc).__name__}: {exc}"


async def _settle(task: asyncio.Task[Any]) -> None:
    """Wait for a task we cancelled to end; our own cancellation still propagates."""
    await asyncio.gather(task, return_exceptions=True)


async def run_on_host(
    host: str, command: str, timeout: float, options: SshOptions, cancel: asyncio.Event
) -> Outcome:
    """Run `command` on `host`; never raises for anything the host does."""
    started = time.monotonic()

    def outcome(
        status: HostStatus,
        code: int | None = None,
        out: _Capped | None = None,
        err: _Capped | None = None,
        error: str | None = None,
    ) -> Outcome:
        return Outcome(
            status=status,
            exit_code=code,
            stdout=out.text() if out else "",
            stderr=err.text() if err else "",
            truncated=bool((out and out.truncated) or (err and err.truncated)),
            duration_ms=int((time.monotonic() - started) * 1000),
            error=error,
        )

    cancelled = asyncio.create_task(cancel.wait())
    try:
        connecting = asyncio.create_task(_connect(host, options))
        await asyncio.wait({connecting, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        if not connecting.done():
            connecting.cancel()
            await _settle(connecting)
            return outcome("cancelled", error="cancelled before the command started")
        try:
            conn = connecting.result()
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            status, message = _connect_failure(exc)
            return outcome(status, error=message)
        out, err = _Capped(options.output_limit), _Capped(options.output_limit)
        try:
            try:
                process = await conn.create_process(command, encoding=None, stdin=asyncssh.DEVNULL)
            except (OSError, asyncssh.Error) as exc:
                return outcome("error", error=f"could not start the command: {exc}")
            running = asyncio.create_task(_finish(process, out, err))
            done, _ = await asyncio.wait(
                {running, cancelled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if running in done:
                try:
                    completed = running.result()
                except (OSError, asyncssh.Error) as exc:
                    return outcome("error", None, out, err, f"connection lost: {exc}")
                code = completed.exit_status
                if code is None or code < 0:
                    signal = completed.exit_signal[0] if completed.exit_signal else "unknown"
                    return outcome("failed", None, out, err, f"killed by signal {signal}")
                return outcome("ok" if code == 0 else "failed", code, out, err)
            running.cancel()
            with contextlib.suppress(OSError, asyncssh.Error):
                process.kill()
            await _settle(running)
            if cancelled in done:
                return outcome("cancelled", None, out, err, "cancelled while running")
            return outcome("timeout", None, out, err, f"no exit after {timeout:g}s")
        finally:
            conn.close()
            with contextlib.suppress(OSError, asyncssh.Error, TimeoutError):
                await asyncio.wait_for(conn.wait_closed(), 5)
    finally:
        cancelled.cancel()


async def _finish(
    process: asyncssh.SSHClientProcess[bytes], out: _Capped, err: _Capped
) -> asyncssh.SSHCompletedProcess:
    await asyncio.gather(out.drain(process.stdout), err.drain(process.stderr))
    return await process.wait()
