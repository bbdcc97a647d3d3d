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
from collections.abc import Callable
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
        """Subscribe to the mode's topic (and --also-topics), then count every frame until the server
        closes (what a stalled client reads is not counted); a batched message is a JSON array of
        frames."""
        await socket.send(json.dumps({"type": "subscribe", "topics": [self.args.mode, *self.also_topics]}))
        fleet, probe = self.args.mode == "fleet", session.index % self.args.probe_every == 0
        read = self._fleet_reader(session, probe) if fleet else self._sample_reader(session)
        while True:
            received = await socket.recv(decode=False)  # bytes: msgspec decodes them as they are
            if session.index in self.stalled:
                await self.resumed.wait()
                continue
            now, messages = time.time(), [received]
            if self.args.batch and received[:1] == b"[":
                try:
                    messages = [bytes(frame) for frame in self._decode_batch(received)]
                except msgspec.MsgspecError:
                    self.stats.bad += 1
                    continue
            for message in messages:
                if (hosts := read(now, message)) is not None:
                    await socket.send(json.dumps({"type": "subscribe", "topics": ["cpu"], "hosts": hosts}))

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

    def _fleet_reader(self, session: Session, probe: bool) -> Callable[[float, bytes], list[str] | None]:
        """What counts a `fleet` frame: probes time its entries, --light clients read only its head;
        with --cpu-hosts, the first full frame gives the hosts to follow (returned)."""
        decode_all = msgspec.json.Decoder(FleetFrame).decode
        decode = decode_all if probe else msgspec.json.Decoder(FleetCount).decode
        light, index, following = self.args.light and not probe, session.index, self.args.cpu_hosts > 0

        def read(now: float, message: bytes) -> list[str] | None:
            nonlocal following
            head = FLEET_HEAD.match(message) if light else None
            frame: FleetFrame | FleetCount
            if head is not None:  # --light: a fleet frame counted from its head, not parsed
                frame = FleetCount("fleet", float(head[1]), head[2] == b"true")
            else:
                try:
                    frame = decode(message)
                except msgspec.MsgspecError:
                    self.stats.bad += 1
                    return None
                if frame.type == "error":
                    self._count_error(message)
                if frame.type != "fleet" or frame.hosts is None:
                    return None
            self.became_ready(session)
            if self.args.reach:
                self.book.ticks.add(frame.ts)
            if self.window.holds(now):
                self.per_client[index] += 1
                self.stats.tick(now, frame.ts, len(message))
                self.stats.light_frames += head is not None
                self.stats.entries += len(frame.hosts or ())
                if isinstance(frame, FleetFrame):
                    self.book.time_entries(frame, now, index)
            elif self.args.reach and isinstance(frame, FleetFrame) and now > self.window.end:
                # a sample of the window's last moments arrives after it: reach only
                self.book.time_entries(frame, now, index, timed=False)
            if following and frame.full:
                following = False
                hosts = [entry.host for entry in decode_all(message).hosts or ()]
                return random.sample(hosts, min(len(hosts), self.args.cpu_hosts))
            return None

        return read

    def _count_error(self, message: bytes) -> None:
        try:
            code = str(json.loads(message).get("code"))
        except ValueError:
            code = "unreadable"
        self.stats.errors[code] += 1

    def _sample_reader(self, session: Session) -> Callable[[float, bytes], None]:
        """What counts a `cpu` frame: in the window, how old it is; once for each sample published in
        the window (an older one after a newer one of its host is a repeat), its latency."""
        last: dict[str, float] = {}

        def read(now: float, message: bytes) -> None:
            try:
                sample = self.book.decode_sample(message)
            except msgspec.MsgspecError:
                self.stats.bad += 1
                return
            if sample.type != "cpu":
                return
            self.became_ready(session)
            stats = self.stats
            if self.window.holds(now):
                self.per_client[session.index] += 1
                stats.frames += 1
                stats.frame_bytes += len(message)
                histogram_add(stats.age, now - sample.ts)
            if self.window.holds(sample.ts) and sample.ts > last.get(sample.host, 0.0):
                stats.reached += 1
                histogram_add(stats.latency, now - sample.ts)
            last[sample.host] = max(sample.ts, last.get(sample.host, 0.0))

        return read

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
