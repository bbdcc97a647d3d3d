"""Stopping a command that is still running on a host, for good: its process group ended by the
stop script, and whether that is confirmed (see ssh.py's module doc)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import asyncssh

from .sshlogin import SshOptions, connect_failure, connector
from .sshoutput import Stderr
from .sshpool import Lease, SshPool
from .stopscript import stop_script

logger = logging.getLogger(__name__)

GROUP_LINE_WAIT = 3.0  # seconds a stop waits for the group line of a command that just started
STOP_SECONDS = 5.0  # the stop script takes 1.5 s at most on the host; the rest is slack
OUTPUT_GRACE = 1.0  # seconds for the channel to close once the group is gone


async def _run_stop(conn: asyncssh.SSHClientConnection, pid: int) -> str:
    result = await asyncio.wait_for(
        conn.run(stop_script(pid), stdin=asyncssh.DEVNULL, check=False), STOP_SECONDS
    )
    words = str(result.stdout or "").split()
    return words[-1] if words else f"the stop command said nothing (exit status {result.exit_status})"


async def _stop_group(pool: SshPool, host: str, options: SshOptions, lease: Lease, pid: int) -> str:
    """Run the stop script on the command's connection, else on a new one; its one-word report."""
    try:
        return await _run_stop(lease.conn, pid)
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        logger.info("%s: could not stop over the command's connection (%s); trying a new one", host, exc)
    try:
        fresh = await pool.acquire(options.connection_key(host), connector(host, options), fresh=True)
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        return f"could not reach the host to stop it: {connect_failure(exc, host, options)[1]}"
    broken = False
    try:
        return await _run_stop(fresh.conn, pid)
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        broken = True
        return f"could not run the stop command: {exc or type(exc).__name__}"
    finally:
        await fresh.release(broken=broken)


@dataclass
class Stopped:
    """What a stop found: whether the command surely ended, and a sentence saying so."""

    confirmed: bool
    detail: str


async def stop_running(
    pool: SshPool,
    host: str,
    options: SshOptions,
    lease: Lease,
    process: asyncssh.SSHClientProcess[bytes],
    running: asyncio.Task[Any],
    err: Stderr,
) -> Stopped:
    """End every process of a command that is still running, and say whether that is confirmed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(err.known.wait(), GROUP_LINE_WAIT)
    if err.group is None:
        # Not run by a POSIX shell, or a forced command ran something else: signals are all that
        # is left (OpenSSH refuses them for root logins and forced commands).
        for signal in ("TERM", "KILL"):
            with contextlib.suppress(OSError, asyncssh.Error):
                process.send_signal(signal)
            await asyncio.wait({running}, timeout=OUTPUT_GRACE / 2)
        return Stopped(False, "the host did not name the command's process group")
    report = await _stop_group(pool, host, options, lease, err.group)
    if report not in ("gone", "term", "kill"):
        reasons = {"left": "a process outlived SIGKILL", "unknown": "its process group could not be found"}
        return Stopped(False, reasons.get(report, report))
    await asyncio.wait({running}, timeout=OUTPUT_GRACE)
    if not running.done():
        return Stopped(False, "its process group is gone, but a process it started still holds its output")
    if report == "gone":
        return Stopped(True, "stopped (no process of the command is left)")
    return Stopped(True, "stopped (the command's processes were killed)")
