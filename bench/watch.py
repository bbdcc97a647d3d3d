"""What the reliability benchmarks watch while they run: a process's RSS and open files over time,
the kernel's socket queues to a gateway, its metrics, and Redis's counters. Everything it reads is
on 127.0.0.1 (the gateways' `/metrics`, Redis's `INFO`) or in /proc.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Self

import httpx
import psutil
import redis
from prometheus_client.parser import text_string_to_metric_families

from testbed.procs import Gateway
from testbed.tcpqueues import established

from .measure import rss_kib


def gateway_metrics(gateway: Gateway, timeout: float = 5.0) -> dict[str, float]:
    """The gateway's Prometheus metrics without labels (`/metrics`, no token), by name."""
    text = httpx.get(gateway.url + "/metrics", timeout=timeout).text
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


@dataclass
class Queues:
    """What waited in the kernel on the connections to a gateway's port at one reading."""

    unread: int  # bytes in the clients' kernel receive buffers, not read by them yet
    unread_max: int  # the most one client had
    behind: int  # clients with more than two frames' worth unread (one that has just arrived is no backlog)
    unsent: int  # bytes in the gateway's kernel send buffers, not taken by the clients yet


@dataclass
class Reading:
    t: float  # seconds since the watch started
    rss_kib: int
    fds: int
    metrics: dict[str, float] = field(default_factory=dict)
    queues: Queues | None = None


class Background:
    """A daemon thread running `_run` from entering the context until leaving it (it watches `_stop`)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        raise NotImplementedError


class Watch(Background):
    """A process's RSS and open files over time, every `every` seconds, with its gateway's metrics
    and, given `frame_bytes` (what a client is sent a second), the kernel queues on the gateway's
    port (`queues`). A reading that fails is skipped, never fatal."""

    def __init__(self, pid: int, every: float, gateway: Gateway, frame_bytes: int = 0) -> None:
        super().__init__()
        self.pid, self.every, self.gateway, self.frame_bytes = pid, every, gateway, frame_bytes
        self.started, self.readings, self.exclude = time.monotonic(), list[Reading](), set[int]()

    def now(self) -> float:
        return time.monotonic() - self.started

    def between(self, start: float, end: float) -> list[Reading]:
        return [r for r in self.readings if start <= r.t <= end]

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            with contextlib.suppress(OSError, ValueError, httpx.HTTPError):
                self.readings.append(self._read())
            self._stop.wait(max(0.0, self.every - (time.monotonic() - began)))

    def _read(self) -> Reading:
        metrics = gateway_metrics(self.gateway, timeout=max(1.0, self.every))
        queues = self._queues(self.gateway.port) if self.frame_bytes else None
        return Reading(
            self.now(), rss_kib(self.pid), len(os.listdir(f"/proc/{self.pid}/fd")), metrics, queues
        )

    def _queues(self, port: int) -> Queues:
        """On the clients' side what they have not read yet, on the gateway's what they have not taken
        yet (`/proc/net/tcp`): tells a gateway slow to send from clients slow to read. Connections
        from the client ports in `exclude` are left out."""
        unread: list[int] = []
        unsent = 0
        for queue in established():
            if queue.remote_port == port and queue.local_port not in self.exclude:
                unread.append(queue.receive_queue)
            elif queue.local_port == port and queue.remote_port not in self.exclude:
                unsent += queue.send_queue
        behind = sum(1 for q in unread if q > 2 * self.frame_bytes)
        return Queues(sum(unread), max(unread, default=0), behind, unsent)


def held_ports(pid: int, ports: Iterable[int]) -> set[int]:
    """Which of these (client) ports the process still has a TCP socket to (none when it is gone)."""
    with contextlib.suppress(psutil.Error):
        return {c.raddr.port for c in psutil.Process(pid).net_connections(kind="tcp") if c.raddr} & set(ports)
    return set()


def redis_counters(url: str, channel: str) -> dict[str, float]:
    """Redis's counters now: µs spent in each command (`INFO commandstats`), `out_bytes` written to
    its clients, the time `at`; and the `subscribers` of `channel`."""
    with contextlib.closing(redis.Redis.from_url(url)) as client:
        stats, out = client.info("commandstats"), client.info("stats")["total_net_output_bytes"]
        numsub = client.pubsub_numsub(channel)
    usec = {key.removeprefix("cmdstat_"): float(v["usec"]) for key, v in stats.items() if isinstance(v, dict)}
    subscribers = float(numsub[0][1]) if numsub else 0.0
    return usec | {"out_bytes": float(out), "at": time.monotonic(), "subscribers": subscribers}


def per_second(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """Redis's counters' growth a second from `before` to `after`; the subscribers as `after` found them."""
    seconds = after["at"] - before["at"]
    grown = {key: (value - before.get(key, 0.0)) / seconds for key, value in after.items()}
    return grown | {"subscribers": after["subscribers"]}
