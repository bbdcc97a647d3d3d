"""The terminal benchmark's clients: terminals over the gateway's /ws and straight over asyncssh,
seen the same way (`Terminal`), and the timings taken on either.

Everything connects to 127.0.0.1-addresses only.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncssh
from websockets.asyncio.client import ClientConnection, connect

PROMPT = "fd$ "
KEY = "k"  # the keystroke typed; `cat` on a canonical PTY echoes exactly it


class Terminal:
    """One shell on a PTY as its client sees it: how much output came, and its last characters."""

    def __init__(self, send: Callable[[str], Awaitable[None]]) -> None:
        self.send = send
        self.received = 0  # characters of output so far
        self.tail = ""  # the last output, enough to find a short marker in
        self.closed: dict[str, Any] | None = None
        self._changed = asyncio.Event()
        self._marker: str | None = None
        self._found = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None  # the direct peer's output reader

    def feed(self, data: str) -> None:
        self.received += len(data)
        self.tail = self.tail[-200:] + data
        if self._marker is not None and self._marker in self.tail:
            self._consume(self._marker)
            self._marker = None
            self._found.set()
        self._changed.set()

    def end(self, frame: dict[str, Any]) -> None:
        self.closed = frame
        self._changed.set()
        self._found.set()

    def _consume(self, marker: str) -> None:
        self.tail = self.tail[self.tail.index(marker) + len(marker) :]

    async def until(self, marker: str, timeout: float = 30.0) -> None:
        """Until `marker` is in the output since the last marker found."""
        if marker in self.tail:
            self._consume(marker)
            return
        self._marker, self._found = marker, asyncio.Event()
        await asyncio.wait_for(self._found.wait(), timeout)
        if self._marker is not None:
            raise RuntimeError(f"terminal closed while waiting for {marker!r}: {self.closed}")

    async def ended(self, timeout: float) -> dict[str, Any]:
        """Until the terminal is closed; its closing frame."""
        while self.closed is None:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), timeout)
        return self.closed

    async def output_reaches(self, count: int, timeout: float = 30.0) -> None:
        """Until `count` characters of output have come in all."""
        while self.received < count:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), timeout)
            if self.closed is not None:
                raise RuntimeError(f"terminal closed: {self.closed}")


class Socket:
    """One /ws connection with its terminals; output is read at most at `rate` characters a second
    when `rate` is set (a slow client)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.terms: dict[str, Terminal] = {}
        self._refs: dict[str, asyncio.Future[Terminal]] = {}
        self._rate = 0.0
        self._paced = 0
        self._pace_start = 0.0
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, token: str) -> Socket:
        ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=2**25)
        return cls(ws)

    def pace(self, rate: float) -> None:
        """Read output at most at `rate` characters a second from now on (0: as fast as it comes)."""
        self._rate, self._paced, self._pace_start = rate, 0, time.monotonic()

    async def _read(self) -> None:
        async for raw in self.ws:
            frame: dict[str, Any] = json.loads(raw)
            kind, ref = frame.get("type"), frame.get("ref")
            if ref in self._refs:
                waiter = self._refs.pop(ref)
                if kind != "term_opened":
                    waiter.set_exception(RuntimeError(f"terminal not opened: {frame}"))
                    continue
                self.terms[frame["term"]] = term = Terminal(self._sender(frame["term"]))
                waiter.set_result(term)
            term_ = self.terms.get(frame.get("term", ""))
            if term_ is not None and kind == "term_output":
                term_.feed(frame["data"])
                if self._rate:
                    self._paced += len(frame["data"])
                    ahead = self._paced / self._rate - (time.monotonic() - self._pace_start)
                    await asyncio.sleep(max(0.0, ahead))
            elif term_ is not None and kind == "term_closed":
                term_.end(frame)

    def _sender(self, term: str) -> Callable[[str], Awaitable[None]]:
        async def send(data: str) -> None:
            await self.ws.send(json.dumps({"type": "term_input", "term": term, "data": data}))

        return send

    async def terminal(self, host: str) -> Terminal:
        """A new terminal on `host`, once its prompt is shown."""
        ref = uuid.uuid4().hex[:8]
        waiter: asyncio.Future[Terminal] = asyncio.get_running_loop().create_future()
        self._refs[ref] = waiter
        await self.ws.send(
            json.dumps({"type": "term_open", "host": host, "cols": 80, "rows": 24, "ref": ref})
        )
        term = await asyncio.wait_for(waiter, 60)
        await term.until(PROMPT, 60)
        return term

    async def close_term(self, term: Terminal, timeout: float = 120) -> None:
        term_id = next(key for key, value in self.terms.items() if value is term)
        await self.ws.send(json.dumps({"type": "term_close", "term": term_id}))
        await term.ended(timeout)

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()


async def direct(
    host: str, port: int, key: Path, known_hosts: Path
) -> tuple[asyncssh.SSHClientConnection, Terminal]:
    """A shell on a PTY straight over asyncssh (the peer), once its prompt is shown."""
    conn = await asyncssh.connect(
        host, port, username="root", client_keys=[str(key)], known_hosts=str(known_hosts)
    )
    process = await conn.create_process(term_type="xterm-256color", term_size=(80, 24), encoding=None)

    async def send(data: str) -> None:
        process.stdin.write(data.encode())

    term = Terminal(send)

    async def read() -> None:
        while chunk := await process.stdout.read(65536):
            term.feed(chunk.decode(errors="replace"))
        term.end({"reason": "channel closed"})

    term.reader = asyncio.create_task(read())
    await term.until(PROMPT, 60)
    return conn, term


async def echo_latencies(term: Terminal, keystrokes: int) -> list[float]:
    """Milliseconds from each keystroke sent to its echo, typed into `cat` one after the other."""
    await term.send("echo READY-$((6*7)); cat\r")
    # bash gives the tty back (canonical, echo) before it runs the line: from here the PTY echoes.
    await term.until("READY-42")
    latencies = []
    for _ in range(keystrokes):
        expected = term.received + len(KEY)
        start = time.perf_counter()
        await term.send(KEY)
        await term.output_reaches(expected)
        latencies.append((time.perf_counter() - start) * 1000)
    await term.send("\x03")
    await term.until(PROMPT)
    return latencies


async def cat_seconds(term: Terminal, path: Path) -> tuple[float, int]:
    """Seconds to show the whole of `path` with `cat`, and the characters that came."""
    before = term.received
    start = time.perf_counter()
    await term.send(f"cat {path}; echo END-$((6*7))\r")
    await term.until("END-42", 900)
    return time.perf_counter() - start, term.received - before
