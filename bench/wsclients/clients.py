"""The WebSocket clients of one process: connect, follow `fleet` or `cpu`, count what arrives in the
window, stall and resume on command, and add it all up in a `result`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec  # type: ignore[import-not-found,unused-ignore]  # the bench extra
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .frames import (
    BIN_MS,
    FLEET_HEAD,
    FleetCount,
    FleetFrame,
    Stats,
    Window,
    histogram_add,
    how_it_ended,
    open_socket,
)
from .samples import SampleBook


@dataclass
class Session:
    """One connection of client `index`; its first frame makes the client ready (when `counts`: a
    churning client's first session only)."""

    index: int
    counts: bool = True
    had_frame: bool = False


class Clients:
    """`--count` clients following one topic, and the figures they gathered."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.window = Window()
        self.book = SampleBook(args, self.window)
        self.ready = 0
        self.failed = 0
        self.failures: Counter[str] = Counter()
        self.all_ready = asyncio.Event()
        self.per_client = [0] * args.count  # frames each client received in the window
        self._decode_batch = msgspec.json.Decoder(list[msgspec.Raw]).decode
        # the URL (`?batch=1` with --batch) and the topics followed besides the mode's own
        self.url = args.url + ("&" if "?" in args.url else "?") + "batch=1" if args.batch else args.url
        self.also_topics = [t for t in args.also_topics.split(",") if t]
        # stall / resume
        self.stalled: set[int] = set()
        self.resumed = asyncio.Event()
        self.sockets: dict[int, ClientConnection] = {}  # each client's open connection
        self.ended: dict[int, str] = {}  # how a client's connection ended: close code or exception
        self.ready_at: dict[int, float] = {}
        self.ended_at: dict[int, float] = {}

    @property
    def stats(self) -> Stats:
        return self.book.stats

    async def run(self, index: int, gate: asyncio.Semaphore, closing: asyncio.Event) -> None:
        """One client, from its connection to its end."""
        session = Session(index)
        try:
            async with gate:
                socket = await open_socket(self.url, self.args.token, 60)
                self.sockets[index] = socket
            await self.follow(socket, session)
        except (OSError, TimeoutError, ConnectionClosed) as exc:
            self.ended[index] = how_it_ended(exc)
            self.ended_at[index] = time.time()
            if session.had_frame:
                self.stats.closed += 1
            else:
                self.counted(False, type(exc).__name__)

    async def follow(self, socket: ClientConnection, session: Session) -> None:
        """Subscribe to the mode's topic (and --also-topics) and read until the server closes."""
        await socket.send(json.dumps({"type": "subscribe", "topics": [self.args.mode, *self.also_topics]}))
        if self.args.mode == "fleet":
            await self._read_fleet(socket, session)
        else:
            await self._read_samples(socket, session)
        raise ConnectionError("closed by the server")

    def counted(self, ready: bool, why: str = "") -> None:
        """A client had its first frame, or never will (`why`)."""
        if ready:
            self.ready += 1
        else:
            self.failed += 1
            self.failures[why] += 1
        if self.ready + self.failed >= self.args.count:
            self.all_ready.set()

    def became_ready(self, session: Session) -> None:
        if not session.had_frame:
            session.had_frame = True
            self.ready_at.setdefault(session.index, time.time())
            if session.counts:
                self.counted(True)

    async def _read_fleet(self, socket: ClientConnection, session: Session) -> None:
        """Count every `fleet` frame; probes time their entries, --light clients read only heads."""
        index = session.index
        probe = index % self.args.probe_every == 0
        decode_all = msgspec.json.Decoder(FleetFrame).decode
        decode = decode_all if probe else msgspec.json.Decoder(FleetCount).decode
        light = self.args.light and not probe
        follow_hosts = self.args.cpu_hosts > 0
        async for now, message in self._messages(socket, index):
            head = FLEET_HEAD.match(message) if light else None
            frame: FleetFrame | FleetCount
            if head is not None:  # --light: a fleet frame counted from its head, not parsed
                frame = FleetCount("fleet", float(head[1]), head[2] == b"true")
            else:
                try:
                    frame = decode(message)
                except msgspec.MsgspecError:
                    self.stats.bad += 1
                    continue
                if frame.type == "error":
                    self._count_error(message)
                if frame.type != "fleet" or frame.hosts is None:
                    continue
            self.became_ready(session)
            if self.args.reach:
                self.book.ticks.add(frame.ts)
            if follow_hosts and frame.full:
                follow_hosts = False
                await self._follow_some_hosts(socket, decode_all(message))
            if not self.window.holds(now):
                if self.args.reach and isinstance(frame, FleetFrame) and now > self.window.end:
                    # a sample of the window's last moments arrives after it: reach only
                    self.book.time_entries(frame, now, index, timed=False)
                continue
            self.per_client[index] += 1
            self.stats.tick(now, frame.ts, len(message))
            self.stats.light_frames += head is not None
            self.stats.entries += len(frame.hosts or ())
            if isinstance(frame, FleetFrame):
                self.book.time_entries(frame, now, index)

    async def _messages(self, socket: ClientConnection, index: int) -> AsyncIterator[tuple[float, bytes]]:
        """Each frame the client receives, with its time (a stalled client's are not counted)."""
        while True:
            received = await socket.recv(decode=False)  # bytes: msgspec decodes them as they are
            if index in self.stalled:
                await self.resumed.wait()  # what it read while stalled is not counted
                continue
            now, messages = time.time(), [received]
            if self.args.batch and received[:1] == b"[":  # a batched message: a JSON array of frames
                try:
                    messages = [bytes(frame) for frame in self._decode_batch(received)]
                except msgspec.MsgspecError:
                    self.stats.bad += 1
                    continue
            for message in messages:
                yield now, message

    def _count_error(self, message: bytes) -> None:
        try:
            code = str(json.loads(message).get("code"))
        except ValueError:
            code = "unreadable"
        self.stats.errors[code] += 1

    async def _follow_some_hosts(self, socket: ClientConnection, frame: FleetFrame) -> None:
        """--cpu-hosts: follow the samples of a few hosts of the fleet, as a person opening them."""
        hosts = [entry.host for entry in frame.hosts or ()]
        if hosts:
            chosen = random.sample(hosts, min(len(hosts), self.args.cpu_hosts))
            await socket.send(json.dumps({"type": "subscribe", "topics": ["cpu"], "hosts": chosen}))

    async def _read_samples(self, socket: ClientConnection, session: Session) -> None:
        window = self.window
        last: dict[str, float] = {}
        async for now, message in self._messages(socket, session.index):
            try:
                sample = self.book.decode_sample(message)
            except msgspec.MsgspecError:
                self.stats.bad += 1
                continue
            if sample.type != "cpu":
                continue
            self.became_ready(session)
            stats = self.stats
            if window.holds(now):
                self.per_client[session.index] += 1
                stats.frames += 1
                stats.frame_bytes += len(message)
                histogram_add(stats.age, now - sample.ts)
            if window.holds(sample.ts) and sample.ts > last.get(sample.host, 0.0):
                stats.reached += 1
                histogram_add(stats.latency, now - sample.ts)
            last[sample.host] = max(sample.ts, last.get(sample.host, 0.0))

    def open_window(self, start: float, end: float) -> None:
        self.book.reset()
        self.per_client = [0] * self.args.count
        self.window.start, self.window.end = start, end

    def stall(self, count: int) -> dict[str, Any]:
        """The last `count` connected clients stop reading; their sockets stay open."""
        chosen = [i for i in sorted(self.sockets, reverse=True) if i not in self.ended][:count]
        self.resumed.clear()
        ports = []
        for index in chosen:
            socket = self.sockets[index]
            self.stalled.add(index)
            socket.transport.pause_reading()
            ports.append(socket.transport.get_extra_info("sockname")[1])
        return {"event": "stalled", "count": len(chosen), "ports": ports}

    async def resume(self, wait: float) -> dict[str, Any]:
        """The stalled clients read again; after `wait` s, how each one's connection ended."""
        stalled = sorted(self.stalled)
        for index in stalled:
            with contextlib.suppress(Exception):
                self.sockets[index].transport.resume_reading()
        self.stalled = set()
        self.resumed.set()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(i not in self.ended for i in stalled):
            await asyncio.sleep(0.2)
        ended: Counter[str] = Counter(self.ended.get(i, "still open") for i in stalled)
        return {"event": "resumed", "count": len(stalled), "ended": dict(ended)}

    def result(self) -> dict[str, Any]:
        """Everything the clients saw in the window, for the benchmark."""
        self.book.resolve_deferred(final=True)  # every entry still waiting for the subscriber
        window = self.window
        probes = sum(
            1
            for index, at in self.ready_at.items()
            if index % self.args.probe_every == 0
            and at <= window.start
            and self.ended_at.get(index, float("inf")) > window.end
        )
        return {
            **(self.book.reach_result(probes) if self.args.reach else {}),
            **self.stats.as_result(),
            "ended": dict(Counter(self.ended.values())),
            "event": "result",
            "clients": self.args.count,
            "ready": self.ready,
            "failed": self.failed,
            "frames_per_client": sorted(self.per_client),
            "failures": dict(self.failures),
            "published": len(self.book.published),
            "bin_ms": BIN_MS,
        }
