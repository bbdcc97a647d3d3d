"""One host of a copy job: push the file over SFTP on a pooled connection, atomically.

The bytes go to a unique temporary name beside `dest` (`.NAME.fleetdeck-RANDOM`: hosts sharing one
file system, NFS homes, never write the same temporary file), get their mode, are checked to hold
exactly the file's size, and are renamed over `dest` with OpenSSH's posix-rename, so a reader sees
the old file or the new one and never half of one. On any failure, a timeout or a cancel the
temporary file is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import secrets
import time

import asyncssh

from fleetdeck_common.messages import FileCopy, HostStatus, Outcome

from .jobrun import HostRunner
from .sshlogin import SshOptions, connect_failure, connector
from .sshpool import SshPool


class CopyFailed(Exception):
    """What went wrong on the host, as a sentence."""


def _why(exc: asyncssh.SFTPError, doing: str, path: str) -> str:
    if isinstance(exc, asyncssh.SFTPNoSuchFile):
        return f"no such directory: {posixpath.dirname(path) or '/'} (while {doing})"
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return f"permission denied {doing} {path}"
    if isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded):
        return f"no space left on the host's file system {doing} {path}"
    # OpenSSH's sftp-server reports ENOSPC (and most other errors) as a plain "Failure".
    return f"the host failed {doing} {path} ({exc.reason or 'no reason given'}; is its disk full?)"


async def _push(sftp: asyncssh.SFTPClient, copy: FileCopy, data: bytes) -> None:
    dest = copy.dest
    with contextlib.suppress(asyncssh.SFTPNoSuchFile):
        if await sftp.isdir(dest):
            raise CopyFailed(f"the destination {dest} is a directory on this host")
    folder, name = posixpath.split(dest)
    temporary = posixpath.join(folder, f".{name}.fleetdeck-{secrets.token_hex(8)}")
    created = False
    try:
        try:
            async with sftp.open(temporary, "wb") as remote:
                created = True
                await remote.write(data)
        except asyncssh.SFTPError as exc:
            raise CopyFailed(_why(exc, "writing", temporary)) from exc
        try:
            await sftp.chmod(temporary, copy.mode_bits)
            size = (await sftp.stat(temporary)).size
        except asyncssh.SFTPError as exc:
            raise CopyFailed(_why(exc, "setting the mode of", temporary)) from exc
        if size != len(data):
            raise CopyFailed(f"the host holds {size} of the file's {len(data)} bytes (is its disk full?)")
        try:
            await sftp.posix_rename(temporary, dest)
        except asyncssh.SFTPError as exc:
            raise CopyFailed(_why(exc, "renaming the file into", dest)) from exc
        created = False
    finally:
        if created:
            # Shielded: a cancel must not leave the temporary file behind.
            with contextlib.suppress(asyncssh.Error, OSError):
                await asyncio.shield(sftp.remove(temporary))


async def copy_to_host(
    host: str, copy: FileCopy, data: bytes, timeout: float, options: SshOptions, cancel: asyncio.Event
) -> Outcome:
    """Put `data` at `copy.dest` on `host`; never raises for anything the host does."""
    started = time.monotonic()

    def outcome(status: HostStatus, error: str | None = None) -> Outcome:
        return Outcome(
            status=status,
            exit_code=None if error else 0,
            stdout="",
            stderr="",
            duration_ms=int((time.monotonic() - started) * 1000),
            truncated=False,
            error=error,
        )

    if cancel.is_set():
        return outcome("cancelled", "cancelled before the copy started")
    pool = options.pool or SshPool(idle_timeout=0)
    try:
        lease = await pool.acquire(options.connection_key(host), connector(host, options))
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        return outcome(*connect_failure(exc, host, options))
    broken = False
    try:
        work = asyncio.create_task(_session(lease.conn, copy, data))
        waiter = asyncio.create_task(cancel.wait())
        done, _ = await asyncio.wait({work, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if work not in done:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            why = "cancelled while copying" if waiter in done else f"the copy took longer than {timeout:g}s"
            return outcome(
                "cancelled" if waiter in done else "timeout", f"{why}; the partial file was removed"
            )
        try:
            work.result()
        except CopyFailed as exc:
            return outcome("failed", str(exc))
        except (OSError, asyncssh.Error) as exc:
            broken = True
            return outcome("error", f"connection lost while copying: {exc}")
        return outcome("ok")
    finally:
        await lease.release(broken=broken or lease.conn.is_closed())


async def _session(conn: asyncssh.SSHClientConnection, copy: FileCopy, data: bytes) -> None:
    async with conn.start_sftp_client() as sftp:
        await _push(sftp, copy, data)


def copy_runner(copy: FileCopy, data: bytes) -> HostRunner:
    """A job's host runner that copies the file instead of running `command`."""

    async def run(
        host: str, command: str, timeout: float, options: SshOptions, cancel: asyncio.Event
    ) -> Outcome:
        return await copy_to_host(host, copy, data, timeout, options, cancel)

    return run
