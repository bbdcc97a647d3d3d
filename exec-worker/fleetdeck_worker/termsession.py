"""One terminal on one host: a shell on a PTY over the worker's SSH connection, its output sent
in order to the gateway (and recorded) with at most a window of it unacknowledged, input and
resizes passed on at once, and an end with a reason a person understands.

Flow control: output is read from the channel only while less than `WINDOW_CHARS` of it is in
flight (sent to the gateway, not yet acknowledged as taken by the browser's socket); past that
the channel's reading pauses, so SSH's own window stops the host. Input is written straight to
the channel whatever the output does, so Ctrl-C reaches the host at once.

asyncssh reopens the whole SSH window as soon as it delivers any data, even with more still
buffered from a paused channel; pausing again halfway through that backlog would let the host
send another window on top of it, each time reading resumes (megabytes held by the worker under a
flood). So reading pauses only while asyncssh holds nothing back: what a resume delivers is all
taken, and at most `SSH_WINDOW` waits in asyncssh at any time."""

from __future__ import annotations

import asyncio
import codecs
import logging
import time
from collections.abc import Callable

import asyncssh

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.terms import cast
from fleetdeck_common.terms.store import TermStore
from fleetdeck_common.terms.wire import WINDOW_CHARS, TermMessage, TermRequest

from .sshlogin import SshOptions, connect_failure, connector
from .sshpool import SshPool

logger = logging.getLogger(__name__)

READ_PAUSE_BYTES = 64 * 1024  # read from the channel but not yet sent: past this, reading pauses
CHUNK_BYTES = 32 * 1024  # output per message to the gateway
SSH_WINDOW = 512 * 1024  # the shell channel's SSH receive window: what the host may send unread


class _Pty(asyncssh.SSHClientSession[bytes]):
    """asyncssh's callbacks for the shell's channel, handed to its terminal."""

    def __init__(self, owner: TermSession) -> None:
        self._owner = owner

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._owner.received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.channel_closed(exc)


class TermSession:
    def __init__(
        self,
        request: TermRequest,
        store: TermStore,
        options: SshOptions,
        record_limit: int = cast.DEFAULT_LIMIT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.request = request
        self.id = request.term
        self._store = store
        self._options = options
        self._clock = clock
        self._cast = cast.CastWriter(clock(), record_limit)
        self._cast_pending: list[str] = []  # resizes, recorded with the next output
        self._buffer = bytearray()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._chan: asyncssh.SSHClientChannel[bytes] | None = None
        self._paused = False
        self._resuming = False  # asyncssh is delivering what it held while reading was paused
        self._closed = asyncio.Event()
        self._lost: Exception | None = None
        self._reason: str | None = None  # why the gateway (or this worker) closed it

    # --- from the channel --------------------------------------------------------------------

    def received(self, data: bytes) -> None:
        self._buffer += data
        if not self._resuming:
            self._pause_if_full()
        self._wake.set()

    def _pause_if_full(self) -> None:
        if len(self._buffer) >= READ_PAUSE_BYTES and self._chan is not None and not self._paused:
            self._chan.pause_reading()
            self._paused = True

    def _resume(self) -> None:
        """Read again: take everything asyncssh held back, then pause again if that fills the buffer."""
        self._paused = False
        if self._chan is None:
            return
        self._resuming = True
        try:
            self._chan.resume_reading()  # delivers asyncssh's backlog to `received` before returning
        finally:
            self._resuming = False
        self._pause_if_full()

    def channel_closed(self, exc: Exception | None) -> None:
        self._lost = exc
        self._closed.set()
        self._wake.set()

    # --- from the gateway ----------------------------------------------------------------------

    def input(self, data: str) -> None:
        if self._chan is not None and not self._closed.is_set():
            self._chan.write(data.encode())

    def resize(self, cols: int, rows: int) -> None:
        if self._chan is not None and not self._closed.is_set():
            self._chan.change_terminal_size(cols, rows)
            self._cast_pending += self._cast.resize(self._clock(), cols, rows)

    def ack(self, n: int) -> None:
        self._in_flight = max(0, self._in_flight - n)
        self._wake.set()

    def close(self, reason: str) -> None:
        """End the shell: closing the channel hangs up its PTY, which ends what runs in it."""
        if self._reason is None:
            self._reason = reason
        if self._chan is not None:
            self._chan.close()
        self._closed.set()
        self._wake.set()

    # --- its life --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Open, relay until the end, say how it ended; never raises for what the host does."""
        request = self.request
        options = self._options
        pool = options.pool or SshPool(idle_timeout=0)
        exit_code: int | None = None
        try:
            lease = await pool.acquire(
                options.connection_key(request.address), connector(request.address, options)
            )
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            await self._finish(None, connect_failure(exc, request.address, options)[1])
            return
        broken = False
        try:
            if self._reason is not None:
                await self._finish(None, self._reason)
                return
            try:
                chan, _session = await asyncio.wait_for(
                    lease.conn.create_session(
                        lambda: _Pty(self),
                        term_type="xterm-256color",
                        term_size=(request.cols, request.rows),
                        encoding=None,
                        window=SSH_WINDOW,
                    ),
                    options.connect_timeout,
                )
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                broken = not isinstance(exc, asyncssh.ChannelOpenError)
                await self._finish(None, f"could not start a shell on {request.host}: {exc or 'no answer'}")
                return
            self._chan = chan
            if self._reason is not None:  # closed while the shell was starting
                chan.close()
            await self._store.start_cast(
                self.id, cast.header(request.cols, request.rows, request.ts, request.host)
            )
            await self._store.to_gateway(request.gateway, TermMessage(k="opened", term=self.id))
            await self._pump()
            await chan.wait_closed()
            exit_code, reason = self._ending(chan)
            broken = self._lost is not None
            await self._finish(exit_code, reason)
        except BrokerUnavailable as exc:
            logger.warning("terminal %s: the broker is unreachable (%s); ending it", self.id, exc)
            if self._chan is not None:
                self._chan.close()
        finally:
            await lease.release(broken=broken or lease.conn.is_closed())

    async def _pump(self) -> None:
        """Send output while the window allows, until the channel has closed and all is sent."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._buffer and self._in_flight < WINDOW_CHARS:
                chunk = bytes(self._buffer[:CHUNK_BYTES])
                del self._buffer[:CHUNK_BYTES]
                await self._send(self._decoder.decode(chunk))
            if self._paused and len(self._buffer) < READ_PAUSE_BYTES and self._in_flight < WINDOW_CHARS:
                self._resume()
            if self._closed.is_set() and (not self._buffer or self._reason is not None):
                rest = self._decoder.decode(b"", final=True)
                if rest and self._reason is None:
                    await self._send(rest)
                return

    async def _send(self, text: str) -> None:
        if not text:
            return
        lines = self._cast_pending + self._cast.output(self._clock(), text)
        self._cast_pending = []
        self._in_flight += len(text)
        await self._store.output(
            self.request.gateway, TermMessage(k="output", term=self.id, data=text), lines
        )

    def _ending(self, chan: asyncssh.SSHClientChannel[bytes]) -> tuple[int | None, str]:
        if self._reason is not None:
            return None, self._reason
        code = chan.get_exit_status()
        if code is not None and code >= 0:
            return code, f"the shell exited with status {code}"
        signal = chan.get_exit_signal()
        if signal is not None:
            return None, f"the shell was killed by signal {signal[0]}"
        if self._lost is not None:
            return None, f"the SSH connection to {self.request.host} was lost: {self._lost}"
        return None, f"the SSH session on {self.request.host} ended without an exit status"

    async def _finish(self, exit_code: int | None, reason: str) -> None:
        if self._cast_pending:
            await self._store.output(
                self.request.gateway, TermMessage(k="output", term=self.id, data=""), self._cast_pending
            )
            self._cast_pending = []
        logger.info("terminal %s on %s ended: %s", self.id, self.request.host, reason)
        await self._store.end(self.id, exit_code, reason, round(self._clock(), 3), cut=self._cast.cut)
        closed = TermMessage(k="closed", term=self.id, exit_code=exit_code, reason=reason)
        await self._store.to_gateway(self.request.gateway, closed)
