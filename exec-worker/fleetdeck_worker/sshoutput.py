"""A command's stdout and stderr as read from its SSH session: kept up to a limit, and stderr
without the line that names the command's process group."""

from __future__ import annotations

import asyncio
import re

import asyncssh

READ_CHUNK = 65536
GROUP_LINE_MAX = 4096  # stderr bytes searched for the group line (shell start-up files may write first)


class Capped:
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


class Stderr(Capped):
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
