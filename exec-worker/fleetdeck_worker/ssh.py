"""One host: run the command over SSH, stop it for good on a timeout or a cancel, and classify the
outcome into a protocol status.

Connections come from the worker's `SshPool` (sshpool.py) when `SshOptions.pool` is set: a host
run again soon reuses its connection. A kept connection that fails before the command started
(the server restarted, the network dropped it) is replaced by a new one once; after the command
may have started nothing is retried, so a command never runs twice.

Stopping. sshd runs a command without a terminal in a new session (setsid), so the shell that runs
the command leads a process group holding everything the command starts, pipelines and background
jobs included. The command is sent as `printf 'fleetdeck-pgid %s\\n' "$$" >&2; COMMAND`: the shell
first names its process id, which is that group's id, and fleetdeck takes that line out of stderr.
On a timeout or a cancel a second session on the same connection runs `stop_script`: SIGTERM (and
SIGCONT) to the group, up to half a second for it to end, then SIGKILL, and it reports whether any
process of the group is left. Closing the channel alone does not stop a command (no terminal, so no
hangup), and OpenSSH refuses `signal` requests for root logins and forced commands. The outcome
says `stopped` only when the group is empty and the channel has closed (no process holds the
command's output any more).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import Any, cast

import asyncssh

from fleetdeck_common.messages import HostStatus, Outcome

from .sshlogin import SshOptions, connect_failure, connector
from .sshoutput import Capped, Stderr
from .sshpool import Lease, SshPool
from .sshstop import stop_running
from .stopscript import wrap_command

logger = logging.getLogger(__name__)


async def _settle(task: asyncio.Task[Any]) -> None:
    """Wait for a task we cancelled to end; our own cancellation still propagates."""
    await asyncio.gather(task, return_exceptions=True)


class _NotOpened(Exception):
    """The server never opened the session: the command was not sent, so it did not start."""

    def __init__(self, cause: BaseException) -> None:
        silent = "no answer" if isinstance(cause, TimeoutError) else type(cause).__name__
        super().__init__(str(cause) or silent)
        self.cause = cause


class _StartFailed(Exception):
    """The command could not be started; what to report."""

    def __init__(self, status: HostStatus, message: str) -> None:
        super().__init__(message)
        self.status: HostStatus = status
        self.message = message


async def _open_session(
    conn: asyncssh.SSHClientConnection, command: str, timeout: float
) -> asyncssh.SSHClientProcess[bytes]:
    """Start `command` in a new session; _NotOpened if it failed before the command was sent."""
    opened = False

    def session() -> asyncssh.SSHClientProcess[bytes]:
        # asyncssh makes the session object once the server has opened the channel, and only then
        # sends the command.
        nonlocal opened
        opened = True
        return asyncssh.SSHClientProcess()

    try:
        _channel, made = await asyncio.wait_for(conn.create_session(session, command, encoding=None), timeout)
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        if not opened:
            raise _NotOpened(exc) from exc
        raise
    process = cast(asyncssh.SSHClientProcess[bytes], made)
    await process.redirect(asyncssh.DEVNULL, asyncssh.PIPE, asyncssh.PIPE, io.DEFAULT_BUFFER_SIZE)
    return process


async def _start(
    pool: SshPool, host: str, command: str, options: SshOptions, lease: Lease
) -> tuple[Lease, asyncssh.SSHClientProcess[bytes]]:
    """A session running the command on the lease's connection. A kept connection that fails
    before the command is sent is replaced by a new one, once; _StartFailed otherwise."""
    for attempt in (1, 2):
        try:
            return lease, await _open_session(lease.conn, command, options.connect_timeout)
        except _NotOpened as exc:
            if isinstance(exc.cause, asyncssh.ChannelOpenError) and not lease.conn.is_closed():
                await lease.refused()  # the connection lives; its server wants fewer sessions on it
            else:
                await lease.release(broken=True)
            if attempt == 2 or not lease.reused:
                raise _StartFailed("error", f"could not start the command: {exc}") from exc
            logger.info("%s: a kept connection failed (%s); opening a new one", host, exc)
            pool.stats.replaced += 1
            try:
                key = options.connection_key(host)
                lease = await pool.acquire(key, connector(host, options), fresh=True)
            except (OSError, asyncssh.Error, TimeoutError) as failure:
                raise _StartFailed(*connect_failure(failure, host, options)) from failure
        except asyncssh.ChannelOpenError as exc:  # the server refused the command itself
            await lease.release()
            raise _StartFailed("error", f"could not start the command: {exc}") from exc
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            await lease.release(broken=True)
            why = str(exc) or "no answer from the host"
            raise _StartFailed("error", f"could not start the command: {why}") from exc
        except BaseException:
            await lease.release()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


async def run_on_host(
    host: str, command: str, timeout: float, options: SshOptions, cancel: asyncio.Event
) -> Outcome:
    """Run `command` on `host`; never raises for anything the host does."""
    started = time.monotonic()
    pool = options.pool or SshPool(idle_timeout=0)  # no pool: a connection for this command only

    def outcome(
        status: HostStatus,
        code: int | None = None,
        out: Capped | None = None,
        err: Capped | None = None,
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
        # Only connecting races the cancel: once a session is being opened it runs to its end (within
        # connect_timeout), since a session cut off after its command was sent would leave it running.
        acquiring = asyncio.create_task(pool.acquire(options.connection_key(host), connector(host, options)))
        await asyncio.wait({acquiring, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        if not acquiring.done() or cancel.is_set():
            acquiring.cancel()
            await _settle(acquiring)
            if not acquiring.cancelled() and acquiring.exception() is None:
                await acquiring.result().release()
            return outcome("cancelled", error="cancelled before the command started")
        try:
            lease = acquiring.result()
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            status, message = connect_failure(exc, host, options)
            return outcome(status, error=message)
        try:
            lease, process = await _start(pool, host, wrap_command(command), options, lease)
        except _StartFailed as failure:
            return outcome(failure.status, error=failure.message)
        out, err = Capped(options.output_limit), Stderr(options.output_limit)
        broken = False
        running = asyncio.create_task(_finish(process, out, err))
        try:
            done, _ = await asyncio.wait(
                {running, cancelled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if running in done:
                try:
                    completed = running.result()
                except (OSError, asyncssh.Error) as exc:
                    broken = True
                    return outcome("error", None, out, err, f"connection lost: {exc}")
                code = completed.exit_status
                if code is None or code < 0:
                    signal = completed.exit_signal[0] if completed.exit_signal else "unknown"
                    return outcome("failed", None, out, err, f"killed by signal {signal}")
                return outcome("ok" if code == 0 else "failed", code, out, err)
            why = "cancelled while running" if cancelled in done else f"no exit after {timeout:g}s"
            stopped = await stop_running(pool, host, options, lease, process, running, err)
            if stopped.confirmed:
                note = f"{why}; {stopped.detail}"
            else:
                note = f"{why}; could not confirm it ended ({stopped.detail})"
                logger.warning("%s: %s", host, note)
            return outcome("cancelled" if cancelled in done else "timeout", None, out, err, note)
        finally:
            if not running.done():
                running.cancel()
            process.close()
            await _settle(running)
            await lease.release(broken=broken or lease.conn.is_closed())
    finally:
        cancelled.cancel()


async def _finish(
    process: asyncssh.SSHClientProcess[bytes], out: Capped, err: Capped
) -> asyncssh.SSHCompletedProcess:
    await asyncio.gather(out.drain(process.stdout), err.drain(process.stderr))
    return await process.wait()
