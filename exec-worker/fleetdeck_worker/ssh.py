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
import contextlib
import io
import logging
import os
import re
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import asyncssh

from fleetdeck_common.messages import HostStatus, Outcome

from .sshpool import Connect, Lease, SshPool

logger = logging.getLogger(__name__)

READ_CHUNK = 65536
GROUP_LINE_WAIT = 3.0  # seconds a stop waits for the group line of a command that just started
STOP_SECONDS = 5.0  # the stop script takes 1.5 s at most on the host; the rest is slack
OUTPUT_GRACE = 1.0  # seconds for the channel to close once the group is gone
GROUP_LINE = b"fleetdeck-pgid "
GROUP_LINE_MAX = 4096  # stderr bytes searched for the group line (shell start-up files may write first)


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


def wrap_command(command: str) -> str:
    """The command as sent: its shell first names its process group on stderr (see the module doc)."""
    return f"printf '{GROUP_LINE.decode()}%s\\n' \"$$\" >&2; {command}"


_STOP_SCRIPT = r"""nap() { sleep 0.05 2>/dev/null || sleep 1; }
empty() { ! kill -s 0 -- "-$g" 2>/dev/null; }
alive() {
  empty && return 1
  s=$(ps -A -o pgid= -o stat= 2>/dev/null) || return 0
  printf '%s\n' "$s" | awk -v g="$g" '$1 == g && $2 !~ /^Z/ { n++ } END { exit n ? 0 : 1 }'
}
if kill -s 0 -- "-$p" 2>/dev/null; then g=$p
elif kill -s 0 "$p" 2>/dev/null; then
  g=$(ps -o pgid= -p "$p" 2>/dev/null | tr -d ' ')
  case $g in ''|*[!0-9]*|0|1) echo unknown; exit 0;; esac
else echo gone; exit 0
fi
alive || { echo gone; exit 0; }
kill -s TERM -- "-$g" 2>/dev/null
kill -s CONT -- "-$g" 2>/dev/null
n=0
while [ $n -lt 10 ]; do nap; alive || { echo term; exit 0; }; n=$((n+1)); done
kill -s KILL -- "-$g" 2>/dev/null
n=0
while alive; do [ $n -lt 20 ] || { echo left; exit 0; }; nap; n=$((n+1)); done
echo kill
"""


def stop_script(pid: int) -> str:
    """Shell that ends process group `pid` (TERM, 0.5 s, KILL) and prints what it found: `gone`
    (nothing left to stop), `term`, `kill`, `left` (a process outlived SIGKILL for 1 s) or
    `unknown`. Zombies do not count: they have ended and wait for their parent to reap them."""
    return f"p={pid}\n{_STOP_SCRIPT}"


class _Capped:
    """Keeps the first `limit` bytes of a stream and keeps reading (discarding) the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    async def drain(self, stream: asyncssh.SSHReader[bytes]) -> None:
        while chunk := await stream.read(READ_CHUNK):
            self.add(chunk)
        self.end()

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.truncated = True
        if room > 0:
            self.data += chunk[:room]

    def end(self) -> None:
        """The stream has ended."""

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


class _Stderr(_Capped):
    """stderr without the group line `wrap_command` adds; `group` is the id it names."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.group: int | None = None
        self.known = asyncio.Event()  # the line was read, or cannot come any more
        self._head = bytearray()

    def add(self, chunk: bytes) -> None:
        if self.known.is_set():
            super().add(chunk)
            return
        self._head += chunk
        found = re.search(rb"fleetdeck-pgid ([0-9]+)\n", self._head)
        if found is not None:
            self.group = int(found.group(1))
            rest = self._head[: found.start()] + self._head[found.end() :]
        elif len(self._head) > GROUP_LINE_MAX:
            rest = self._head
        else:
            return
        self._head = bytearray()
        self.known.set()
        super().add(bytes(rest))

    def end(self) -> None:
        if not self.known.is_set():
            self.known.set()
            super().add(bytes(self._head))
            self._head = bytearray()


async def _connect(host: str, options: SshOptions) -> asyncssh.SSHClientConnection:
    return await asyncio.wait_for(asyncssh.connect(host, **options.connect_kwargs()), options.connect_timeout)


def _connect_failure(exc: BaseException, host: str, options: SshOptions) -> tuple[HostStatus, str]:
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
                lease = await pool.acquire(key, _connector(host, options), fresh=True)
            except (OSError, asyncssh.Error, TimeoutError) as failure:
                raise _StartFailed(*_connect_failure(failure, host, options)) from failure
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


def _connector(host: str, options: SshOptions) -> Connect:
    async def connect() -> asyncssh.SSHClientConnection:
        return await _connect(host, options)

    return connect


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
        fresh = await pool.acquire(options.connection_key(host), _connector(host, options), fresh=True)
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        return f"could not reach the host to stop it: {_connect_failure(exc, host, options)[1]}"
    broken = False
    try:
        return await _run_stop(fresh.conn, pid)
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        broken = True
        return f"could not run the stop command: {exc or type(exc).__name__}"
    finally:
        await fresh.release(broken=broken)


@dataclass
class _Stopped:
    confirmed: bool
    detail: str


async def _stop(
    pool: SshPool,
    host: str,
    options: SshOptions,
    lease: Lease,
    process: asyncssh.SSHClientProcess[bytes],
    running: asyncio.Task[Any],
    err: _Stderr,
) -> _Stopped:
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
        return _Stopped(False, "the host did not name the command's process group")
    report = await _stop_group(pool, host, options, lease, err.group)
    if report not in ("gone", "term", "kill"):
        reasons = {"left": "a process outlived SIGKILL", "unknown": "its process group could not be found"}
        return _Stopped(False, reasons.get(report, report))
    await asyncio.wait({running}, timeout=OUTPUT_GRACE)
    if not running.done():
        return _Stopped(False, "its process group is gone, but a process it started still holds its output")
    if report == "gone":
        return _Stopped(True, "stopped (no process of the command is left)")
    return _Stopped(True, "stopped (the command's processes were killed)")


async def run_on_host(
    host: str, command: str, timeout: float, options: SshOptions, cancel: asyncio.Event
) -> Outcome:
    """Run `command` on `host`; never raises for anything the host does."""
    started = time.monotonic()
    pool = options.pool or SshPool(idle_timeout=0)  # no pool: a connection for this command only

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
        # Only connecting races the cancel: once a session is being opened it runs to its end (within
        # connect_timeout), since a session cut off after its command was sent would leave it running.
        acquiring = asyncio.create_task(pool.acquire(options.connection_key(host), _connector(host, options)))
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
            status, message = _connect_failure(exc, host, options)
            return outcome(status, error=message)
        try:
            lease, process = await _start(pool, host, wrap_command(command), options, lease)
        except _StartFailed as failure:
            return outcome(failure.status, error=failure.message)
        out, err = _Capped(options.output_limit), _Stderr(options.output_limit)
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
            stopped = await _stop(pool, host, options, lease, process, running, err)
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
    process: asyncssh.SSHClientProcess[bytes], out: _Capped, err: _Capped
) -> asyncssh.SSHCompletedProcess:
    await asyncio.gather(out.drain(process.stdout), err.drain(process.stderr))
    return await process.wait()
