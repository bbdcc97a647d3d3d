"""Many WebSocket clients in one process, for the gateway and fan-out benchmarks.

    python -m bench.wsclients --url ws://127.0.0.1:PORT/ws --token T --count 500 --mode fleet \\
        --redis redis://127.0.0.1:P/0

Every client connects (with `Authorization: Bearer T` when a token is given), subscribes to
`fleet` or to `cpu` (every host), then reads every frame and decodes it as JSON (msgspec, into
typed structs: the whole frame is parsed and checked). One Redis subscriber in the process watches
the samples the publisher sends, for the publish times.

- `fleet`: every client counts frames and host entries; every `--probe-every`-th client also
  decodes each host entry and measures its latency: receive time minus the agent's `ts` of the
  sample that carried those values (total, mem, load1), matched through the Redis subscriber.
- `cpu`: every client measures each sample's latency (receive time minus its `ts`), counts what
  arrived in the window (for CPU per delivered sample) and which of the samples published in the
  window reached it (reach).

Driven over stdin/stdout, one JSON object a line: it prints `ready` once every client is
subscribed and has had its first frame; `{"cmd":"window","start":T0,"end":T1,"grace":G}` (wall
clock) makes it print `result` at T1 + G; `{"cmd":"close"}` or the end of stdin makes it close
every client and exit. It exits by itself after `--max-seconds` whatever happens, and it only ever
connects to the loopback addresses it is given.

For the reliability benchmarks (bench/reliability_*.py), all off by default:

- `--light`: clients that are not probes count `fleet` frames and read the tick's `ts` from the
  frame's first bytes instead of parsing it (thousands of clients on one machine);
- `--exact-match` (`fleet`): an entry is matched to the newest sample with its values whose `ts`
  is before the frame's tick, once the Redis subscriber has seen past that tick (entries wait for
  it). Without it an entry takes the newest sample with those values seen so far, which is an
  older sample of the same host with the same values when the subscriber lags behind the
  gateway (idle hosts repeat `0.0` readings), and shows as a latency of tens of seconds;
- `--reach` (`fleet`): probe clients also count which published samples reached them, and the
  process works out which samples were superseded by a newer one of the same host before the
  gateway's next tick (latest-wins, not a loss): `reach_*` in the result;
- `{"cmd":"stall","count":N}`: N connected clients stop reading (their transports are paused,
  the sockets stay open) and it prints `stalled` with their local ports;
  `{"cmd":"resume","wait":S}` reads again and prints `resumed` with how their connections ended;
- `--churn-lifetime S`: every client connects, follows for about S seconds (0.5 to 1.5 S; the
  first time 0 to 1.5 S), closes (cleanly or by dropping the TCP connection, `--churn-abort-share`),
  waits `--churn-pause` and connects again, until `close`; the result counts connects,
  handshake and first-frame times, failures and closes by the server;
- `--batch`: open `/ws?batch=1` as the dashboard does and split the batched messages (JSON
  arrays of frames) into frames; `--also-topics chat,...` follows those topics too (their frames
  are read and not counted);
- `--cpu-hosts K` (`fleet`): after its first full frame, a client also follows the samples of K
  random hosts of it (`cpu` narrowed to them, with their history), as the dashboard does for the
  hosts a person opens.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec  # type: ignore[import-not-found,unused-ignore]  # the bench extra
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from fleetdeck_common import topics

from .measure import raise_fd_limit

BIN_MS = 0.1  # latency histogram resolution
SLOW_HANDSHAKE_S = 30.0  # churn: handshakes slower than this are counted apart
# `--light`: a fleet frame's head, as the gateway writes it (pydantic keeps the field order).
_FLEET_HEAD = re.compile(rb'\{"type":"fleet","ts":([0-9.eE+-]+),"full":(true|false)')


# Decoded by msgspec into these dataclasses: the whole frame is parsed and its types checked;
# fields not named here are parsed and skipped.
@dataclass
class FleetEntry:
    host: str
    online: bool = False
    total: float | None = None
    mem: float | None = None
    load1: float | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class FleetFrame:
    """A `fleet` frame, every host entry decoded (probe clients)."""

    type: str
    ts: float = 0.0
    full: bool = False
    hosts: list[FleetEntry] | None = None


@dataclass
class FleetCount:
    """A frame with its host entries parsed and checked but not turned into objects."""

    type: str
    ts: float = 0.0
    full: bool = False
    hosts: list[msgspec.Raw] | None = None


@dataclass
class SampleHead:
    """A `cpu` frame: the fields the benchmark needs."""

    type: str = ""
    host: str = ""
    ts: float = 0.0
    total: float = 0.0
    mem: float = 0.0
    load: list[float] = field(default_factory=list)


async def _resp_item(reader: asyncio.StreamReader) -> bytes:
    """One element of a RESP array: a bulk string's bytes, or an integer's digits."""
    line = await reader.readuntil(b"\r\n")
    if line[:1] != b"$":
        return line[1:-2]
    return (await reader.readexactly(int(line[1:-2]) + 2))[:-2]


def _histogram_add(histogram: Counter[int], seconds: float) -> None:
    histogram[round(seconds * 1000 / BIN_MS)] += 1


@dataclass
class Window:
    start: float = float("inf")
    end: float = float("-inf")

    def holds(self, t: float) -> bool:
        return self.start <= t <= self.end


@dataclass
class Stats:
    """What the process's clients saw in the window, added up."""

    frames: int = 0  # frames of the subscribed kind received in the window
    frame_bytes: int = 0
    full_frames: int = 0
    entries: int = 0  # fleet: host entries received in the window
    latency: Counter[int] = field(default_factory=Counter)  # sample -> client
    tick_delay: Counter[int] = field(default_factory=Counter)  # fleet: frame ts -> client
    tick_wait: Counter[int] = field(default_factory=Counter)  # fleet probes: sample ts -> frame ts
    age: Counter[int] = field(default_factory=Counter)  # cpu: how old the samples received in the window were
    unmatched: int = 0  # fleet probes: entries whose sample the Redis subscriber did not see
    offline: int = 0  # fleet probes: entries of hosts the gateway says are offline
    timeline: dict[int, float] = field(default_factory=dict)  # second of the window -> worst delay
    reached: int = 0  # cpu: (client, sample) pairs received, for samples published in the window
    repeated: int = 0  # cpu: a sample received again, or an older one after a newer
    closed: int = 0  # clients whose connection ended before the result
    bad: int = 0  # frames that were not the JSON they should be
    light_frames: int = 0  # --light: fleet frames counted without parsing (no entries counted)
    errors: Counter[str] = field(default_factory=Counter)  # `error` frames received, by code
    # --churn-lifetime: sessions in the window
    connects: int = 0
    connect_failed: Counter[str] = field(default_factory=Counter)
    handshake: Counter[int] = field(default_factory=Counter)  # connect -> open (histogram)
    first_frame: Counter[int] = field(default_factory=Counter)  # open -> first fleet frame
    slow_handshakes: int = 0
    closed_clean: int = 0  # sessions the client ended with a closing handshake
    closed_abort: int = 0  # sessions the client ended by dropping the TCP connection
    server_closed: Counter[str] = field(default_factory=Counter)  # ended by the server, by close code


class Clients:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.window = Window()
        self.stats = Stats()
        self.ready = 0
        self.failed = 0
        self.failures: Counter[str] = Counter()
        self.all_ready = asyncio.Event()
        self.sockets: list[ClientConnection] = []
        self.samples: dict[tuple[str, float, float, float], float] = {}  # values -> agent ts
        self.published: set[tuple[str, float]] = set()  # cpu: samples published in the window
        self.pending: list[tuple[tuple[str, float, float, float], float, float]] = []
        self.per_client = [0] * args.count  # frames each client received in the window
        self._decode_sample = msgspec.json.Decoder(SampleHead).decode
        self._decode_batch = msgspec.json.Decoder(list[msgspec.Raw]).decode
        # the URL (`?batch=1` with --batch) and the topics followed besides the mode's own
        self.url = args.url + ("&" if "?" in args.url else "?") + "batch=1" if args.batch else args.url
        self.also_topics = [t for t in args.also_topics.split(",") if t]
        # stall / resume
        self.stalled: set[int] = set()
        self.resumed = asyncio.Event()
        self.by_index: dict[int, ClientConnection] = {}
        self.ended: dict[int, str] = {}  # how a client's connection ended: close code or exception
        self.ready_at: dict[int, float] = {}
        self.session_opened: dict[int, float] = {}  # churn: when a client's current session opened
        self.ended_at: dict[int, float] = {}
        # --reach
        self.arrivals: dict[str, list[tuple[float, float]]] = {}  # host -> (sample ts, seen at)
        self.ticks: set[float] = set()  # the `ts` of every fleet frame received (the gateway's ticks)
        self.reach_counts: Counter[tuple[str, float]] = Counter()  # (host, ts) -> probes it reached
        self.reach_last: dict[int, dict[str, float]] = {}  # probe -> host -> newest sample ts
        self.reach_pending: list[tuple[int, tuple[str, float, float, float]]] = []
        # --exact-match
        self.sample_times: dict[tuple[str, float, float, float], list[float]] = {}
        self.seen_until = 0.0  # the newest sample `ts` the subscriber has seen
        self.deferred: list[tuple[tuple[str, float, float, float], float, float, int, bool]] = []

    # --- the Redis side: what was published, and when -------------------------------------

    async def watch_samples(self, subscribed: asyncio.Event) -> None:
        """Every sample published, read with a few lines of RESP: redis-py's pure-Python parser
        would cost these processes a third of their CPU at 1,000 samples a second (and hiredis
        would also speed up the gateway, which shares this environment)."""
        where = urlsplit(self.args.redis)
        reader, writer = await asyncio.open_connection(where.hostname or "127.0.0.1", where.port or 6379)
        channel = topics.CPU_CHANNEL.encode()
        writer.write(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(channel), channel))
        await writer.drain()
        pruned = time.time()
        try:
            while True:
                items = [
                    await _resp_item(reader) for _ in range(int((await reader.readuntil(b"\r\n"))[1:-2]))
                ]
                if items[0] == b"subscribe":
                    subscribed.set()
                    continue
                if items[0] != b"message":
                    continue
                sample = self._decode_sample(items[2])
                if self.args.mode == "fleet":
                    key = (sample.host, sample.total, sample.mem, sample.load[0] if sample.load else 0.0)
                    self.samples[key] = sample.ts
                    if self.args.reach:
                        self.arrivals.setdefault(sample.host, []).append((sample.ts, time.time()))
                    if self.args.exact_match:
                        self.sample_times.setdefault(key, []).append(sample.ts)
                        if sample.ts > self.seen_until:
                            self.seen_until = sample.ts
                            self._resolve_deferred(final=False)
                    if sample.ts - pruned > 30:
                        pruned = sample.ts
                        self.samples = {k: v for k, v in self.samples.items() if v > pruned - 60}
                        if self.args.exact_match:
                            self.sample_times = {
                                k: kept
                                for k, v in self.sample_times.items()
                                if (kept := [t for t in v if t > pruned - 60])
                            }
                        if self.args.reach:
                            keep = min(pruned - 60, self.window.start - 5)
                            for host, seen in self.arrivals.items():
                                self.arrivals[host] = [a for a in seen if a[0] > keep]
                elif self.window.holds(sample.ts):
                    self.published.add((sample.host, sample.ts))
        finally:
            writer.close()

    # --- the WebSocket side -----------------------------------------------------------------

    async def run_client(self, index: int, gate: asyncio.Semaphore) -> None:
        headers = {"Authorization": f"Bearer {self.args.token}"} if self.args.token else {}
        probe = self.args.mode == "fleet" and index % self.args.probe_every == 0
        became_ready = [False]
        try:
            async with gate:
                socket = await connect(
                    self.url,
                    additional_headers=headers,
                    compression=None,
                    max_size=16 * 1024 * 1024,
                    ping_interval=None,  # the servers ping; their pings are answered
                    open_timeout=60,
                    close_timeout=2,
                )
                self.sockets.append(socket)
                self.by_index[index] = socket
                topic = "fleet" if self.args.mode == "fleet" else "cpu"
                await socket.send(json.dumps({"type": "subscribe", "topics": [topic, *self.also_topics]}))
            if self.args.mode == "fleet":
                await self._read_fleet(socket, index, probe, became_ready)
            else:
                await self._read_samples(socket, index, became_ready)
            raise ConnectionError("closed by the server")
        except (OSError, TimeoutError, ConnectionClosed) as exc:
            self.ended[index] = _how_it_ended(exc)
            self.ended_at[index] = time.time()
            if became_ready[0]:
                self.stats.closed += 1
            else:
                self.failed += 1
                self.failures[type(exc).__name__] += 1
                self._check_ready()

    def _became_ready(self, flag: list[bool], index: int | None = None) -> None:
        if not flag[0]:
            flag[0] = True
            if index is not None:
                self.ready_at.setdefault(index, time.time())
            if len(flag) > 1:  # a churning client's session: timed; only its first counts as ready
                opened = self.session_opened.pop(index, None) if index is not None else None
                if opened is not None:
                    _histogram_add(self.stats.first_frame, time.monotonic() - opened)
                return
            self.ready += 1
            self._check_ready()

    def _check_ready(self) -> None:
        if self.ready + self.failed >= self.args.count:
            self.all_ready.set()

    async def _read_fleet(
        self, socket: ClientConnection, index: int, probe: bool, became_ready: list[bool]
    ) -> None:
        decode_all = msgspec.json.Decoder(FleetFrame).decode
        decode_count = msgspec.json.Decoder(FleetCount).decode
        light = self.args.light and not probe
        follow_hosts = self.args.cpu_hosts > 0
        while True:
            received = await socket.recv(decode=False)  # bytes: msgspec decodes them as they are
            if index in self.stalled:
                await self.resumed.wait()  # what it read while stalled is not counted
                continue
            now = time.time()
            for message in self._split(received):
                if light and (full := self._count_light(message, now, index, became_ready)) is not None:
                    if follow_hosts and full:
                        follow_hosts = False
                        await self._follow_some_hosts(socket, decode_all(message))
                    continue
                try:
                    frame = decode_all(message) if probe else decode_count(message)
                except msgspec.MsgspecError:
                    self.stats.bad += 1
                    continue
                if frame.type == "error":
                    self._count_error(message)
                    continue
                if frame.type != "fleet" or frame.hosts is None:
                    continue
                self._became_ready(became_ready, index)
                if self.args.reach:
                    self.ticks.add(frame.ts)
                if follow_hosts and frame.full:
                    follow_hosts = False
                    await self._follow_some_hosts(socket, decode_all(message))
                if not self.window.holds(now):
                    if self.args.reach and isinstance(frame, FleetFrame) and now > self.window.end:
                        # a sample of the window's last moments arrives after it: reach only
                        self._time_entries(frame, now, index, timed=False)
                    continue
                stats = self.stats
                self.per_client[index] += 1
                stats.frames += 1
                stats.frame_bytes += len(message)
                stats.full_frames += frame.full
                stats.entries += len(frame.hosts)
                _histogram_add(stats.tick_delay, now - frame.ts)
                second = int(now - self.window.start)
                stats.timeline[second] = max(stats.timeline.get(second, 0.0), now - frame.ts)
                if isinstance(frame, FleetFrame):
                    self._time_entries(frame, now, index)

    def _time_entries(self, frame: FleetFrame, now: float, index: int, timed: bool = True) -> None:
        """A probe's frame: the latency of every host entry with a new sample (with --reach and
        not `timed`, only which samples reached it)."""
        stats = self.stats
        for entry in frame.hosts or ():
            if not entry.online:
                stats.offline += timed  # a presence change: it carries no new sample
                continue
            if entry.total is None or entry.mem is None or entry.load1 is None:
                continue
            key = (entry.host, entry.total, entry.mem, entry.load1)
            if self.args.exact_match:
                self.deferred.append((key, now, frame.ts, index, timed))
                continue
            sent = self.samples.get(key)
            if sent is None:
                if timed:
                    self.pending.append((key, now, frame.ts))  # not seen by the subscriber yet
                if self.args.reach:
                    self.reach_pending.append((index, key))
            elif not timed:
                self._reached(index, entry.host, sent)
            else:
                _histogram_add(stats.latency, now - sent)
                _histogram_add(stats.tick_wait, frame.ts - sent)
                if self.args.reach:
                    self._reached(index, entry.host, sent)

    def _split(self, message: bytes) -> list[bytes]:
        """--batch: the frames of a batched message (a JSON array of frames), else the message."""
        if self.args.batch and message[:1] == b"[":
            try:
                return [bytes(frame) for frame in self._decode_batch(message)]
            except msgspec.MsgspecError:
                self.stats.bad += 1
                return []
        return [message]

    def _resolve_deferred(self, final: bool) -> None:
        """--exact-match: time the entries of frames whose tick the subscriber has seen past (all
        of them when `final`): each is the newest sample with its values from before the tick."""
        stats = self.stats
        waiting = []
        for key, received, tick, index, timed in self.deferred:
            if not final and tick >= self.seen_until:
                waiting.append((key, received, tick, index, timed))
                continue
            times = self.sample_times.get(key, [])
            position = bisect.bisect_right(times, tick)
            if position == 0:
                stats.unmatched += timed
                continue
            sent = times[position - 1]
            if timed:
                _histogram_add(stats.latency, received - sent)
                _histogram_add(stats.tick_wait, tick - sent)
            if self.args.reach:
                self._reached(index, key[0], sent)
        self.deferred = waiting

    def _count_light(self, message: bytes, now: float, index: int, became_ready: list[bool]) -> bool | None:
        """--light: a fleet frame counted from its head, not parsed; whether it was a full frame
        (None: not a fleet frame)."""
        head = _FLEET_HEAD.match(message)
        if head is None:
            return None
        ts, full = float(head[1]), head[2] == b"true"
        self._became_ready(became_ready, index)
        if self.args.reach:
            self.ticks.add(ts)
        if not self.window.holds(now):
            return full
        stats = self.stats
        self.per_client[index] += 1
        stats.frames += 1
        stats.light_frames += 1
        stats.frame_bytes += len(message)
        stats.full_frames += full
        _histogram_add(stats.tick_delay, now - ts)
        second = int(now - self.window.start)
        stats.timeline[second] = max(stats.timeline.get(second, 0.0), now - ts)
        return full

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

    def _reached(self, index: int, host: str, sent: float) -> None:
        """--reach: a probe received this sample of this host (counted once per probe)."""
        last = self.reach_last.setdefault(index, {})
        if sent > last.get(host, 0.0):
            last[host] = sent
            if self.window.holds(sent):
                self.reach_counts[(host, sent)] += 1

    async def _read_samples(self, socket: ClientConnection, index: int, became_ready: list[bool]) -> None:
        decode = self._decode_sample
        window = self.window
        last: dict[str, float] = {}
        while True:
            received = await socket.recv(decode=False)  # bytes: msgspec decodes them as they are
            if index in self.stalled:
                await self.resumed.wait()  # what it read while stalled is not counted
                continue
            now = time.time()
            for message in self._split(received):
                try:
                    sample = decode(message)
                except msgspec.MsgspecError:
                    self.stats.bad += 1
                    continue
                if sample.type != "cpu":
                    continue
                self._became_ready(became_ready)
                stats = self.stats
                if window.start <= now <= window.end:
                    self.per_client[index] += 1
                    stats.frames += 1
                    stats.frame_bytes += len(message)
                    _histogram_add(stats.age, now - sample.ts)
                if window.start <= sample.ts <= window.end:
                    if sample.ts > last.get(sample.host, 0.0):
                        stats.reached += 1
                        _histogram_add(stats.latency, now - sample.ts)
                        second = int(now - window.start)
                        stats.timeline[second] = max(stats.timeline.get(second, 0.0), now - sample.ts)
                    else:
                        stats.repeated += 1
                last[sample.host] = max(sample.ts, last.get(sample.host, 0.0))

    def open_window(self, start: float, end: float) -> None:
        self.stats = Stats()
        self.published = set()
        self.pending = []
        self.per_client = [0] * self.args.count
        self.window.start, self.window.end = start, end
        self.reach_counts = Counter()
        self.reach_pending = []

    # --- stalled clients ----------------------------------------------------------------------

    def stall(self, count: int) -> dict[str, Any]:
        """The last `count` connected clients stop reading; their sockets stay open."""
        chosen = [i for i in sorted(self.by_index, reverse=True) if i not in self.ended][:count]
        self.resumed.clear()
        ports = []
        for index in chosen:
            socket = self.by_index[index]
            self.stalled.add(index)
            socket.transport.pause_reading()
            ports.append(socket.transport.get_extra_info("sockname")[1])
        return {"event": "stalled", "count": len(chosen), "ports": ports}

    async def resume(self, wait: float) -> dict[str, Any]:
        """The stalled clients read again; after `wait` s, how each one's connection ended."""
        stalled = sorted(self.stalled)
        for index in stalled:
            with contextlib.suppress(Exception):
                self.by_index[index].transport.resume_reading()
        self.stalled = set()
        self.resumed.set()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(i not in self.ended for i in stalled):
            await asyncio.sleep(0.2)
        ended: Counter[str] = Counter(self.ended.get(i, "still open") for i in stalled)
        return {"event": "resumed", "count": len(stalled), "ended": dict(ended)}

    # --- churn --------------------------------------------------------------------------------

    async def run_churning_client(self, index: int, gate: asyncio.Semaphore, closing: asyncio.Event) -> None:
        """--churn-lifetime: connect, follow a while, leave, come back, until the process closes."""
        rng = random.Random(index)
        mean = self.args.churn_lifetime
        first_ever = [False]  # this client's first session was followed or failed (for `ready`)
        life = rng.uniform(0.0, 1.5 * mean)
        while not closing.is_set():
            socket = await self._churn_connect(index, gate, first_ever)
            if socket is not None:
                session = [False, True]  # [1]: a churn session (timed, not counted as ready again)
                reader = asyncio.create_task(self._churn_session(socket, index, session))
                try:
                    await asyncio.wait_for(asyncio.shield(reader), life)
                except TimeoutError:
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
                    await self._churn_leave(socket, rng)
                except (OSError, ConnectionClosed, ConnectionError) as exc:
                    self.stats.server_closed[_how_it_ended(exc)] += 1
                finally:
                    self.session_opened.pop(index, None)
                    with contextlib.suppress(ValueError):
                        self.sockets.remove(socket)
                if not first_ever[0]:
                    first_ever[0] = True
                    if session[0]:
                        self.ready += 1
                    else:
                        self.failed += 1
                        self.failures["closed before its first frame"] += 1
                    self._check_ready()
            life = rng.uniform(0.5 * mean, 1.5 * mean)
            await asyncio.sleep(self.args.churn_pause)

    async def _churn_connect(
        self, index: int, gate: asyncio.Semaphore, first_ever: list[bool]
    ) -> ClientConnection | None:
        headers = {"Authorization": f"Bearer {self.args.token}"} if self.args.token else {}
        started = time.monotonic()
        try:
            async with gate:
                socket = await connect(
                    self.url,
                    additional_headers=headers,
                    compression=None,
                    max_size=16 * 1024 * 1024,
                    ping_interval=None,
                    open_timeout=self.args.open_timeout,
                    close_timeout=2,
                )
        except (OSError, TimeoutError, ConnectionClosed, ValueError) as exc:
            self.stats.connect_failed[type(exc).__name__] += 1
            if not first_ever[0]:
                first_ever[0] = True
                self.failed += 1
                self.failures[type(exc).__name__] += 1
                self._check_ready()
            return None
        opened = time.monotonic()
        stats = self.stats
        stats.connects += 1
        _histogram_add(stats.handshake, opened - started)
        stats.slow_handshakes += opened - started > SLOW_HANDSHAKE_S
        self.session_opened[index] = opened
        self.sockets.append(socket)
        return socket

    async def _churn_session(self, socket: ClientConnection, index: int, session: list[bool]) -> None:
        await socket.send(json.dumps({"type": "subscribe", "topics": ["fleet", *self.also_topics]}))
        await self._read_fleet(socket, index, index % self.args.probe_every == 0, session)
        raise ConnectionError("closed by the server")

    async def _churn_leave(self, socket: ClientConnection, rng: random.Random) -> None:
        if rng.random() < self.args.churn_abort_share:
            socket.transport.abort()
            self.stats.closed_abort += 1
        else:
            with contextlib.suppress(Exception):
                await socket.close()
            self.stats.closed_clean += 1

    # --- the result -------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        stats = self.stats
        if self.args.exact_match:
            self._resolve_deferred(final=True)
        for key, received, tick in self.pending:
            sent = self.samples.get(key)
            if sent is None:
                stats.unmatched += 1
            else:
                _histogram_add(stats.latency, received - sent)
                _histogram_add(stats.tick_wait, tick - sent)
        self.pending = []
        reach = self._reach_result() if self.args.reach else {}
        return {
            **reach,
            "light_frames": stats.light_frames,
            "errors": dict(stats.errors),
            "connects": stats.connects,
            "connect_failed": dict(stats.connect_failed),
            "handshake_hist": {str(k): v for k, v in stats.handshake.items()},
            "first_frame_hist": {str(k): v for k, v in stats.first_frame.items()},
            "slow_handshakes": stats.slow_handshakes,
            "closed_clean": stats.closed_clean,
            "closed_abort": stats.closed_abort,
            "server_closed": dict(stats.server_closed),
            "ended": dict(Counter(self.ended.values())),
            "event": "result",
            "clients": self.args.count,
            "ready": self.ready,
            "failed": self.failed,
            "closed": stats.closed,
            "frames": stats.frames,
            "frame_bytes": stats.frame_bytes,
            "full_frames": stats.full_frames,
            "entries": stats.entries,
            "frames_per_client": sorted(self.per_client),
            "failures": dict(self.failures),
            "latency_hist": {str(k): v for k, v in stats.latency.items()},
            "tick_delay_hist": {str(k): v for k, v in stats.tick_delay.items()},
            "tick_wait_hist": {str(k): v for k, v in stats.tick_wait.items()},
            "age_hist": {str(k): v for k, v in stats.age.items()},
            "unmatched": stats.unmatched,
            "bad": stats.bad,
            "offline": stats.offline,
            "timeline": {str(k): round(v, 3) for k, v in sorted(stats.timeline.items())},
            "reached": stats.reached,
            "repeated": stats.repeated,
            "published": len(self.published),
            "bin_ms": BIN_MS,
        }

    def _reach_result(self) -> dict[str, Any]:
        """--reach: of the samples published in the window, how many reached each probe client
        that was connected throughout, and how many were superseded at the gateway (the host's
        next sample reached Redis before the gateway's next tick, so latest-wins sent only it)."""
        for _index, key in self.reach_pending:
            sent = self.samples.get(key)
            if sent is not None and self.window.holds(sent):
                self.reach_counts[(key[0], sent)] += 1
        self.reach_pending = []
        window = self.window
        probes = sum(
            1
            for index, at in self.ready_at.items()
            if index % self.args.probe_every == 0
            and at <= window.start
            and self.ended_at.get(index, float("inf")) > window.end
        )
        ticks = sorted(self.ticks)
        samples = superseded = delivered = superseded_missed = 0
        for host, seen in self.arrivals.items():
            ordered = sorted(seen)
            for i, (ts, at) in enumerate(ordered):
                if not window.holds(ts):
                    continue
                samples += 1
                got = min(probes, self.reach_counts.get((host, ts), 0))
                delivered += got
                if i + 1 < len(ordered):
                    j = bisect.bisect_left(ticks, at)
                    if j < len(ticks) and ticks[j] > ordered[i + 1][1]:
                        superseded += 1
                        superseded_missed += probes - got
        return {
            "reach_probes": probes,
            "reach_samples": samples,
            "reach_delivered": delivered,
            "reach_superseded_samples": superseded,
            "reach_superseded_missed": superseded_missed,
            "reach_ticks": len([t for t in ticks if window.holds(t)]),
        }


def _how_it_ended(exc: BaseException) -> str:
    """The close code the server sent, or what ended the connection without one."""
    if isinstance(exc, ConnectionClosed):
        return str(exc.rcvd.code) if exc.rcvd is not None else "no close frame"
    return type(exc).__name__


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _commands(
    loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[dict[str, Any]], closing: asyncio.Event
) -> None:
    """Read stdin on a thread; the end of stdin is a `close`."""
    for line in sys.stdin:
        with contextlib.suppress(ValueError):
            command = json.loads(line)
            loop.call_soon_threadsafe(inbox.put_nowait, command)
            if command.get("cmd") == "close":
                loop.call_soon_threadsafe(closing.set)
    loop.call_soon_threadsafe(closing.set)


async def _serve_commands(clients: Clients, inbox: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        command = await inbox.get()
        if command.get("cmd") == "window":
            clients.open_window(float(command["start"]), float(command["end"]))
            await asyncio.sleep(max(0.0, clients.window.end + float(command.get("grace", 2)) - time.time()))
            _say(clients.result())
        elif command.get("cmd") == "stall":
            _say(clients.stall(int(command["count"])))
        elif command.get("cmd") == "resume":
            _say(await clients.resume(float(command.get("wait", 10))))


async def main_async(args: argparse.Namespace) -> None:
    clients = Clients(args)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    closing = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_commands, args=(loop, inbox, closing), daemon=True).start()
    subscribed = asyncio.Event()
    watcher = asyncio.create_task(clients.watch_samples(subscribed))
    await asyncio.wait_for(subscribed.wait(), 10)
    gate = asyncio.Semaphore(args.connect_concurrency)
    started = time.monotonic()
    if args.churn_lifetime > 0:
        tasks = [
            asyncio.create_task(clients.run_churning_client(i, gate, closing)) for i in range(args.count)
        ]
    else:
        tasks = [asyncio.create_task(clients.run_client(i, gate)) for i in range(args.count)]
    ready = asyncio.create_task(clients.all_ready.wait())
    closed = asyncio.create_task(closing.wait())
    # Commands are served from the start (a soak opens its window while clients still connect).
    commands = asyncio.create_task(_serve_commands(clients, inbox))
    await asyncio.wait({ready, closed}, timeout=args.ready_timeout, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    _say(
        {
            "event": "ready",
            "ready": clients.ready,
            "failed": clients.failed,
            "failures": dict(clients.failures),
            "seconds": round(time.monotonic() - started, 2),
        }
    )
    await closed
    for socket in clients.sockets:
        socket.transport.abort()  # no closing handshakes: the server sees the sockets drop
    for task in [*tasks, watcher, commands]:
        task.cancel()
    await asyncio.gather(*tasks, watcher, commands, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/ws")
    parser.add_argument("--token", default="")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--mode", choices=("fleet", "cpu"), required=True)
    parser.add_argument("--redis", required=True, help="redis://127.0.0.1:PORT/0 (the publisher's)")
    parser.add_argument("--probe-every", type=int, default=20)
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--ready-timeout", type=float, default=120)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--light", action="store_true", help="non-probe fleet clients count, not parse")
    parser.add_argument("--reach", action="store_true", help="fleet: which published samples reached probes")
    parser.add_argument(
        "--exact-match", action="store_true", help="fleet: match entries to samples from before the tick"
    )
    parser.add_argument("--open-timeout", type=float, default=60, help="churn: seconds for a handshake")
    parser.add_argument("--churn-lifetime", type=float, default=0, help="churn: mean seconds connected")
    parser.add_argument("--churn-pause", type=float, default=1.0, help="churn: seconds between sessions")
    parser.add_argument("--churn-abort-share", type=float, default=0.5, help="churn: sessions dropped")
    parser.add_argument("--cpu-hosts", type=int, default=0, help="fleet: also follow K hosts' samples")
    parser.add_argument("--batch", action="store_true", help="open /ws?batch=1, as the dashboard does")
    parser.add_argument("--also-topics", default="", help="comma list of topics followed besides the mode's")
    args = parser.parse_args()
    if args.churn_lifetime > 0 and args.mode != "fleet":
        parser.error("--churn-lifetime follows `fleet`")
    for url in (args.url, args.redis):
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            parser.error(f"{url}: the benchmark clients only connect to 127.0.0.1")
    raise_fd_limit()

    async def bounded() -> None:
        try:
            await asyncio.wait_for(main_async(args), args.max_seconds)
        except TimeoutError:
            _say({"event": "error", "error": f"stopped after --max-seconds {args.max_seconds}"})

    try:
        import uvloop

        uvloop.run(bounded())
    except ImportError:
        asyncio.run(bounded())


if __name__ == "__main__":
    main()
