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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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
                    if sample.ts - pruned > 30:
                        pruned = sample.ts
                        self.samples = {k: v for k, v in self.samples.items() if v > pruned - 60}
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
                    self.args.url,
                    additional_headers=headers,
                    compression=None,
                    max_size=16 * 1024 * 1024,
                    ping_interval=None,  # the servers ping; their pings are answered
                    open_timeout=60,
                    close_timeout=2,
                )
                self.sockets.append(socket)
                topic = "fleet" if self.args.mode == "fleet" else "cpu"
                await socket.send(json.dumps({"type": "subscribe", "topics": [topic]}))
            if self.args.mode == "fleet":
                await self._read_fleet(socket, index, probe, became_ready)
            else:
                await self._read_samples(socket, index, became_ready)
            raise ConnectionError("closed by the server")
        except (OSError, TimeoutError, ConnectionClosed) as exc:
            if became_ready[0]:
                self.stats.closed += 1
            else:
                self.failed += 1
                self.failures[type(exc).__name__] += 1
                self._check_ready()

    def _became_ready(self, flag: list[bool]) -> None:
        if not flag[0]:
            flag[0] = True
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
        while True:
            message = await socket.recv(decode=False)  # bytes: msgspec decodes them as they are
            now = time.time()
            try:
                frame = decode_all(message) if probe else decode_count(message)
            except msgspec.MsgspecError:
                self.stats.bad += 1
                continue
            if frame.type != "fleet" or frame.hosts is None:
                continue
            self._became_ready(became_ready)
            if not self.window.holds(now):
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
                for entry in frame.hosts:
                    if not entry.online:
                        stats.offline += 1  # a presence change: it carries no new sample
                        continue
                    if entry.total is None or entry.mem is None or entry.load1 is None:
                        continue
                    key = (entry.host, entry.total, entry.mem, entry.load1)
                    sent = self.samples.get(key)
                    if sent is None:
                        self.pending.append((key, now, frame.ts))  # not seen by the subscriber yet
                    else:
                        _histogram_add(stats.latency, now - sent)
                        _histogram_add(stats.tick_wait, frame.ts - sent)

    async def _read_samples(self, socket: ClientConnection, index: int, became_ready: list[bool]) -> None:
        decode = self._decode_sample
        window = self.window
        last: dict[str, float] = {}
        while True:
            message = await socket.recv(decode=False)  # bytes: msgspec decodes them as they are
            now = time.time()
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

    # --- the result -------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        stats = self.stats
        for key, received, tick in self.pending:
            sent = self.samples.get(key)
            if sent is None:
                stats.unmatched += 1
            else:
                _histogram_add(stats.latency, received - sent)
                _histogram_add(stats.tick_wait, tick - sent)
        self.pending = []
        return {
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
    tasks = [asyncio.create_task(clients.run_client(i, gate)) for i in range(args.count)]
    ready = asyncio.create_task(clients.all_ready.wait())
    closed = asyncio.create_task(closing.wait())
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
    commands = asyncio.create_task(_serve_commands(clients, inbox))
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
    args = parser.parse_args()
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
