"""SSH connections kept between commands: one worker reuses its connection to a host for the next
command instead of paying the key exchange and login again.

A connection is shared by the commands that run on its host at the same moment, up to
`sessions_per_connection` at once (OpenSSH's `MaxSessions` is 10 by default; each command may need
a second session to be stopped, so 4 commands leave room); more open another connection. A
connection nobody used for `idle_timeout` seconds is closed, and so are the least recently used idle
ones when more than `max_connections` are open. Connections are keyed by everything that decides
which server it is and who logs in (host, port, user, key, known_hosts, host key checking), so a
change of settings never reuses a connection made under the old ones; host keys are checked on
every new connection, at connect.

The pool never decides whether a command may be retried: it hands out and takes back connections,
and drops the ones the caller says are broken or that have closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

import asyncssh

logger = logging.getLogger(__name__)

SESSIONS_PER_CONNECTION = 4
CLOSE_WAIT_SECONDS = 5.0
MAX_ATTEMPTS = 8  # rounds of waiting for a connection someone else opens before opening one's own

Connect = Callable[[], Awaitable[asyncssh.SSHClientConnection]]


@dataclass
class PoolStats:
    """What the pool did since it was made: for tests, benchmarks and logs."""

    opened: int = 0  # new connections (each one a key exchange, a login and a host key check)
    reused: int = 0  # commands that got a connection that was already open
    replaced: int = 0  # reused connections that failed before the command started, replaced by new ones
    closed_idle: int = 0  # closed after idle_timeout
    evicted: int = 0  # closed because more than max_connections were open
    dropped: int = 0  # found closed by the server or the network, or reported broken


@dataclass(eq=False)
class _Entry:
    key: Hashable
    conn: asyncssh.SSHClientConnection
    sessions: int = 0
    capacity: int = SESSIONS_PER_CONNECTION
    kept: bool = True  # in the pool; False: single use, or retired (closed once nobody uses it)
    last_used: float = field(default_factory=time.monotonic)


class Lease:
    """One command's hold on a connection; give it back with `release` or `refused`."""

    def __init__(self, pool: SshPool, entry: _Entry, reused: bool) -> None:
        self._pool = pool
        self._entry = entry
        self.reused = reused  # the connection was open before this command asked for it
        self._released = False

    @property
    def conn(self) -> asyncssh.SSHClientConnection:
        return self._entry.conn

    async def release(self, broken: bool = False) -> None:
        """Give the connection back; `broken` closes it (and every other session on it)."""
        if not self._released:
            self._released = True
            await self._pool._release(self._entry, broken)

    async def refused(self) -> None:
        """Give the connection back after the server refused a session on it (its MaxSessions is
        lower than ours): it carries no more sessions than it does now."""
        if not self._released:
            self._released = True
            await self._pool._refused(self._entry)


class SshPool:
    """SSH connections to recently used hosts, for one event loop (one worker)."""

    def __init__(
        self,
        idle_timeout: float = 60.0,
        max_connections: int = 512,
        sessions_per_connection: int = SESSIONS_PER_CONNECTION,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.sessions_per_connection = sessions_per_connection
        self.stats = PoolStats()
        self._entries: dict[Hashable, list[_Entry]] = {}
        self._opening: dict[Hashable, asyncio.Future[_Entry]] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closers: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def keeps(self) -> bool:
        """Whether connections outlive the command they were opened for."""
        return self.idle_timeout > 0 and not self._closed

    def open_connections(self, key: Hashable | None = None) -> int:
        """Connections the pool holds (to `key`, or to every host)."""
        if key is not None:
            return len(self._entries.get(key, []))
        return sum(len(entries) for entries in self._entries.values())

    async def acquire(self, key: Hashable, connect: Connect, *, fresh: bool = False) -> Lease:
        """A connection for one command: an open one with a free session, else a new one.

        `fresh` always opens a new one (to replace a connection that just failed). Raises what
        `connect` raises (the host is unreachable, refuses the login or its host key).
        """
        if fresh or not self.keeps:
            return Lease(self, await self._open(key, connect, sessions=1), reused=False)
        for _attempt in range(MAX_ATTEMPTS):
            entry = self._available(key)
            if entry is not None:
                entry.sessions += 1
                self.stats.reused += 1
                return Lease(self, entry, reused=True)
            opening = self._opening.get(key)
            if opening is None:
                opening = asyncio.ensure_future(self._open(key, connect, sessions=0))
                self._opening[key] = opening
                opening.add_done_callback(lambda done: self._opened(key, done))
            # Shielded: a command cancelled while waiting must not stop the connect others wait for.
            entry = await asyncio.shield(opening)
            # Not kept (the pool closed or went over its cap meanwhile): still used, then closed.
            if entry.sessions < entry.capacity and not entry.conn.is_closed():
                entry.sessions += 1
                return Lease(self, entry, reused=False)
        # Others keep taking the free sessions: open one of our own.
        return Lease(self, await self._open(key, connect, sessions=1), reused=False)

    async def close(self) -> None:
        """Close every connection (at worker shutdown); later commands get single-use connections.
        A connection still in use is closed when its command gives it back."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
            self._reaper = None
        self._retire_all()
        if self._closers:
            await asyncio.wait(set(self._closers), timeout=CLOSE_WAIT_SECONDS)

    # --- inside --------------------------------------------------------------------------------

    def _opened(self, key: Hashable, done: asyncio.Future[_Entry]) -> None:
        self._opening.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every waiter was cancelled meanwhile

    async def _open(self, key: Hashable, connect: Connect, sessions: int) -> _Entry:
        conn = await connect()
        entry = _Entry(key, conn, sessions=sessions, capacity=self.sessions_per_connection)
        self.stats.opened += 1
        if self.keeps:
            self._entries.setdefault(key, []).append(entry)
            self._evict_over_cap()
            self._start_reaper()
        else:
            entry.kept = False
        return entry

    def _available(self, key: Hashable) -> _Entry | None:
        """The open connection to `key` with the most free sessions, if one has any."""
        best: _Entry | None = None
        for entry in list(self._entries.get(key, [])):
            if entry.conn.is_closed():
                self.stats.dropped += 1
                self._forget(entry)
                continue
            if entry.sessions < entry.capacity and (best is None or entry.sessions < best.sessions):
                best = entry
        return best

    async def _release(self, entry: _Entry, broken: bool) -> None:
        entry.sessions -= 1
        entry.last_used = time.monotonic()
        if broken or entry.conn.is_closed():
            if entry.kept:
                self.stats.dropped += 1
                self._forget(entry)
            self._close(entry)
        elif not entry.kept:
            if entry.sessions <= 0:  # single use, or retired: close it now that nobody uses it
                await self._close_now(entry.conn)
        else:
            self._evict_over_cap()

    async def _refused(self, entry: _Entry) -> None:
        entry.capacity = max(entry.sessions - 1, 0)
        await self._release(entry, broken=entry.capacity == 0)

    def _forget(self, entry: _Entry) -> None:
        entry.kept = False
        entries = self._entries.get(entry.key)
        if entries is not None and entry in entries:
            entries.remove(entry)
            if not entries:
                del self._entries[entry.key]

    def _evict_over_cap(self) -> None:
        """Over max_connections: close the least recently used idle connections."""
        excess = self.open_connections() - self.max_connections
        if excess <= 0:
            return
        idle = sorted(
            (e for entries in self._entries.values() for e in entries if e.sessions == 0),
            key=lambda e: e.last_used,
        )
        for entry in idle[:excess]:
            self.stats.evicted += 1
            self._forget(entry)
            self._close(entry)

    def _close(self, entry: _Entry) -> None:
        """Close in the background: a connection's close handshake must not hold up a command."""
        task = asyncio.ensure_future(self._close_now(entry.conn))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    @staticmethod
    async def _close_now(conn: asyncssh.SSHClientConnection) -> None:
        conn.close()
        with contextlib.suppress(OSError, asyncssh.Error, TimeoutError):
            await asyncio.wait_for(conn.wait_closed(), CLOSE_WAIT_SECONDS)

    def _retire_all(self) -> None:
        """Take every connection out of the pool; close the idle ones now, the others on release."""
        for entries in list(self._entries.values()):
            for entry in list(entries):
                self._forget(entry)
                if entry.sessions <= 0:
                    self._close(entry)

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.ensure_future(self._reap())

    async def _reap(self) -> None:
        """Close idle and dead connections while the pool holds any. Cancelled (by `close`, or by
        asyncio.run at the end of the program when nobody called `close`), it closes them all."""
        tick = min(max(self.idle_timeout / 4, 0.05), 1.0)
        try:
            while self._entries:
                await asyncio.sleep(tick)
                now = time.monotonic()
                for entries in list(self._entries.values()):
                    for entry in list(entries):
                        if entry.conn.is_closed():
                            self.stats.dropped += 1
                            self._forget(entry)
                        elif entry.sessions <= 0 and now - entry.last_used >= self.idle_timeout:
                            self.stats.closed_idle += 1
                            self._forget(entry)
                            self._close(entry)
        except asyncio.CancelledError:
            self._retire_all()
            if self._closers:
                await asyncio.wait(set(self._closers), timeout=CLOSE_WAIT_SECONDS)
            raise
