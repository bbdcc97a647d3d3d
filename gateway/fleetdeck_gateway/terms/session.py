"""One terminal as the gateway holds it: whose socket it is on, which worker runs it, and its
output on the way to the socket, acknowledged to the worker only once the socket has it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fleetdeck_common.messages import TermOutput, dump

from ..ws.clients import Client

FRAME_CHARS = 64 * 1024  # output sent to the socket in frames of at most this many characters


@dataclass(eq=False)
class Term:
    id: str
    client: Client
    host: str
    cols: int
    rows: int
    ref: str | None
    worker: str | None = None  # who took it; None while no worker has
    opened: bool = False
    created: float = field(default_factory=time.monotonic)
    last_active: float = field(default_factory=time.monotonic)  # input or output
    last_beat: float = field(default_factory=time.monotonic)  # the worker said it holds it
    _pending: list[str] = field(default_factory=list)
    _pump: asyncio.Task[None] | None = None

    @property
    def pending_chars(self) -> int:
        return sum(len(chunk) for chunk in self._pending)

    def send(self, frame: str) -> None:
        """A frame to this terminal's socket."""
        self.client.outbox.put(frame)

    def output(self, data: str, ack: Callable[[int], Awaitable[None]]) -> None:
        """Queue output for the socket; `ack` tells the worker how much the socket has taken."""
        self._pending.append(data)
        self.last_active = time.monotonic()
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._drain(ack), name=f"term-{self.id}")

    async def _drain(self, ack: Callable[[int], Awaitable[None]]) -> None:
        outbox = self.client.outbox
        while self._pending and not outbox.overflowed:
            data = self._take(FRAME_CHARS)
            outbox.put(dump(TermOutput(term=self.id, data=data)))
            await outbox.taken()
            await ack(len(data))

    def _take(self, limit: int) -> str:
        parts: list[str] = []
        size = 0
        while self._pending and size < limit:
            chunk = self._pending[0]
            room = limit - size
            if len(chunk) > room:
                parts.append(chunk[:room])
                self._pending[0] = chunk[room:]
                size = limit
            else:
                parts.append(self._pending.pop(0))
                size += len(chunk)
        return "".join(parts)

    def flush(self) -> None:
        """At the end: what is left goes to the socket at once (at most one window), before `term_closed`."""
        if self._pump is not None:
            self._pump.cancel()
        if self._pending:
            self.client.outbox.put(dump(TermOutput(term=self.id, data="".join(self._pending))))
            self._pending.clear()
