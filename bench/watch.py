"""What the reliability benchmarks watch while they run: a process's RSS, files and CPU over time,
the kernel's socket queues to a gateway, its metrics, and Redis's counters. Everything it reads is
on 127.0.0.1 (the gateways' `/metrics`, Redis's `INFO`) or in /proc.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, Self, TypeVar

import httpx
import psutil
import redis

from testbed.tcpqueues import established

from .measure import cpu_seconds, rss_kib
from .stack import Gateway


class _Timed(Protocol):
    t: float


R = TypeVar("R", bound=_Timed)


def fd_count(pid: int) -> int:
    """Open file descriptors of a process (entries of /proc/PID/fd)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_over(pids: Sequence[int], seconds: float) -> dict[int, float]:
    """Each process's CPU over the next `seconds`, in % of one core."""
    start = {p: cpu_seconds(p) for p in pids}
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    return {p: (cpu_seconds(p) - start[p]) / elapsed * 100 for p in pids}


def gateway_metrics(gateway: Gateway, timeout: float = 5.0) -> dict[str, float]:
    """The gateway's Prometheus metrics (`/metrics`, no token), by name with labels."""
    text = httpx.get(gateway.url + "/metrics", timeout=timeout).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    return values


@dataclass
class Reading:
    t: float  # seconds since the watch started
    rss_kib: int
    fds: int
    cpu_s: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Queues:
    t: float
    unread: int  # bytes in the clients' kernel receive buffers, not read by them yet
    unread_max: int  # the most one client had
    behind: int  # clients with more than two seconds of frames unread (see QueueWatch)
    unsent: int  # bytes in the gateway's kernel send buffers, not taken by the clients yet


class Background:
    """A daemon thread running `_run` from entering the context until leaving it (it watches `_stop`)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        if self._wanted():
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(15)

    def _wanted(self) -> bool:
        return True

    def _run(self) -> None:
        raise NotImplementedError


class _Poller(Background, Generic[R]):
    """A thread appending `read()` to `readings` every `every` seconds until stopped; a reading
    that fails is skipped, never fatal."""

    def __init__(self, every: float) -> None:
        super().__init__()
        self.every = every
        self.readings: list[R] = []

    def read(self) -> R:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            with contextlib.suppress(OSError, ValueError, httpx.HTTPError):
                self.readings.append(self.read())
            self._stop.wait(max(0.0, self.every - (time.monotonic() - began)))

    def between(self, start: float, end: float) -> list[R]:
        return [r for r in self.readings if start <= r.t <= end]


class Watch(_Poller[Reading]):
    """A process's RSS, open files and CPU (and its gateway's metrics) over time."""

    def __init__(self, pid: int, every: float, gateway: Gateway | None = None) -> None:
        super().__init__(every)
        self.pid, self.gateway, self.started = pid, gateway, time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.started

    def read(self) -> Reading:
        metrics = gateway_metrics(self.gateway, timeout=max(1.0, self.every)) if self.gateway else {}
        return Reading(self.now(), rss_kib(self.pid), fd_count(self.pid), cpu_seconds(self.pid), metrics)


class QueueWatch(_Poller[Queues]):
    """What waits in the kernel on the connections to a gateway's port (`/proc/net/tcp`): on the
    clients' side what they have not read yet, on the gateway's what they have not taken yet. Tells
    a gateway that is slow to send from clients that are slow to read. Connections from `exclude`
    (client ports) are left out."""

    def __init__(
        self, port: int, clock: Callable[[], float], every: float = 1.0, frame_bytes: int = 0
    ) -> None:
        super().__init__(every)
        self.port, self.clock, self.exclude = port, clock, set[int]()
        # What a client is sent a second: "behind" is more than twice that (one frame that has just
        # arrived is not a backlog).
        self.frame_bytes = frame_bytes

    def read(self) -> Queues:
        unread: list[int] = []
        unsent = 0
        for queue in established():
            if queue.remote_port == self.port and queue.local_port not in self.exclude:
                unread.append(queue.receive_queue)
            elif queue.local_port == self.port and queue.remote_port not in self.exclude:
                unsent += queue.send_queue
        behind = sum(1 for q in unread if q > 2 * self.frame_bytes) if self.frame_bytes else 0
        return Queues(self.clock(), sum(unread), max(unread, default=0), behind, unsent)


def mean(values: Iterable[float]) -> float:
    listed = list(values)
    return statistics.fmean(listed) if listed else math.nan


def _connections(pid: int) -> list[Any]:
    """A process's TCP connections; none when it is gone."""
    with contextlib.suppress(psutil.Error):
        return list(psutil.Process(pid).net_connections(kind="tcp"))
    return []


def sockets_of(pid: int, redis_port: int, own_port: int) -> dict[str, int]:
    """A server's TCP sockets: to Redis, of its own listening port's clients, and the rest."""
    kinds = {"redis": 0, "clients": 0, "other": 0}
    for conn in _connections(pid):
        if conn.raddr and conn.raddr.port == redis_port:
            kinds["redis"] += 1
        else:
            kinds["clients" if conn.raddr and conn.laddr.port == own_port else "other"] += 1
    return kinds


def held_ports(pid: int, ports: Iterable[int]) -> set[int]:
    """Which of these (client) ports the process still has a TCP socket to."""
    return {c.raddr.port for c in _connections(pid) if c.raddr} & set(ports)


def redis_cpu_and_commands(url: str, pid: int) -> tuple[float, dict[str, dict[str, float]]]:
    """Redis's CPU seconds so far and its per-command `calls` and `usec` (INFO commandstats)."""
    with contextlib.closing(redis.Redis.from_url(url)) as client:
        stats = client.info("commandstats")
    commands = {
        key.removeprefix("cmdstat_"): {"calls": float(v["calls"]), "usec": float(v["usec"])}
        for key, v in stats.items()
        if isinstance(v, dict)
    }
    return cpu_seconds(pid), commands


def redis_out_bytes(url: str) -> int:
    """Bytes Redis has written to its clients so far (INFO stats `total_net_output_bytes`)."""
    with contextlib.closing(redis.Redis.from_url(url)) as client:
        return int(client.info("stats")["total_net_output_bytes"])


def command_rates(
    before: Mapping[str, Mapping[str, float]], after: Mapping[str, Mapping[str, float]], seconds: float
) -> dict[str, dict[str, float]]:
    """Calls per second and µs of Redis time per second, per command, between two readings."""
    rates = {}
    for name, now in after.items():
        then = before.get(name, {"calls": 0.0, "usec": 0.0})
        calls = now["calls"] - then["calls"]
        if calls > 0:
            rates[name] = {
                "calls_per_s": calls / seconds,
                "usec_per_s": (now["usec"] - then["usec"]) / seconds,
            }
    return rates


def subscribers(url: str, channel: str) -> int:
    with contextlib.closing(redis.Redis.from_url(url)) as client:
        numsub = client.pubsub_numsub(channel)
    return int(numsub[0][1]) if numsub else 0
