"""What the client processes decode and count: the frames as msgspec structs, the window, the
figures added up, and the connection every client opens."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec  # type: ignore[import-not-found,unused-ignore]  # the bench extra
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

BIN_MS = 0.1  # latency histogram resolution
# `--light`: a fleet frame's head, as the gateway writes it (pydantic keeps the field order).
FLEET_HEAD = re.compile(rb'\{"type":"fleet","ts":([0-9.eE+-]+),"full":(true|false)')


# Decoded by msgspec into these dataclasses: the whole frame is parsed and its types checked;
# fields not named here are parsed and skipped.
@dataclass
class FleetEntry:
    host: str
    online: bool = False
    total: float | None = None
    mem: float | None = None
    load1: float | None = None


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


SampleKey = tuple[str, float, float, float]  # host, total, mem, load1: how an entry finds its sample


def histogram_add(histogram: Counter[int], seconds: float) -> None:
    histogram[round(seconds * 1000 / BIN_MS)] += 1


@dataclass
class Window:
    start: float = float("inf")
    end: float = float("-inf")

    def holds(self, t: float) -> bool:
        return self.start <= t <= self.end


HISTOGRAMS = ("latency", "tick_delay", "tick_wait", "age", "handshake")


@dataclass
class Stats:
    """What the process's clients saw in the window, added up."""

    frames: int = 0  # frames of the subscribed kind received in the window
    frame_bytes: int = 0
    entries: int = 0  # fleet: host entries received in the window
    latency: Counter[int] = field(default_factory=Counter)  # sample -> client
    tick_delay: Counter[int] = field(default_factory=Counter)  # fleet: frame ts -> client
    tick_wait: Counter[int] = field(default_factory=Counter)  # fleet probes: sample ts -> frame ts
    age: Counter[int] = field(default_factory=Counter)  # cpu: how old the samples received in the window were
    unmatched: int = 0  # fleet probes: entries whose sample the Redis subscriber did not see
    offline: int = 0  # fleet probes: entries of hosts the gateway says are offline
    reached: int = 0  # cpu: (client, sample) pairs received, for samples published in the window
    closed: int = 0  # clients whose connection ended before the result
    bad: int = 0  # frames that were not the JSON they should be
    light_frames: int = 0  # --light: fleet frames counted without parsing (no entries counted)
    errors: Counter[str] = field(default_factory=Counter)  # `error` frames received, by code
    # --churn-lifetime: sessions in the window
    connects: int = 0
    connect_failed: Counter[str] = field(default_factory=Counter)
    handshake: Counter[int] = field(default_factory=Counter)  # connect -> open (histogram)
    slow_handshakes: int = 0
    closed_clean: int = 0  # sessions the client ended with a closing handshake
    closed_abort: int = 0  # sessions the client ended by dropping the TCP connection
    server_closed: Counter[str] = field(default_factory=Counter)  # ended by the server, by close code

    def tick(self, now: float, ts: float, size: int) -> None:
        """A frame of the gateway's tick `ts`, received at `now` in the window."""
        self.frames += 1
        self.frame_bytes += size
        histogram_add(self.tick_delay, now - ts)

    def as_result(self) -> dict[str, Any]:
        """The figures as the `result` message carries them (histograms as `NAME_hist`; as JSON,
        their keys and the other counts' become strings)."""
        return {f"{name}_hist" if name in HISTOGRAMS else name: value for name, value in vars(self).items()}


async def resp_item(reader: asyncio.StreamReader) -> bytes:
    """One element of a RESP array: a bulk string's bytes, or an integer's digits."""
    line = await reader.readuntil(b"\r\n")
    if line[:1] != b"$":
        return line[1:-2]
    return (await reader.readexactly(int(line[1:-2]) + 2))[:-2]


async def open_socket(url: str, token: str, open_timeout: float) -> ClientConnection:
    """One client's WebSocket; the servers ping, and their pings are answered."""
    return await connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"} if token else {},
        compression=None,
        max_size=16 * 1024 * 1024,
        ping_interval=None,
        open_timeout=open_timeout,
        close_timeout=2,
    )


def how_it_ended(exc: BaseException) -> str:
    """The close code the server sent, or what ended the connection without one."""
    if isinstance(exc, ConnectionClosed):
        return str(exc.rcvd.code) if exc.rcvd is not None else "no close frame"
    return type(exc).__name__
