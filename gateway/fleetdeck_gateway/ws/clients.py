"""The sockets connected to this process, and fan-out to them by topic.

Samples are latest-value-wins per host (a slow client skips stale ones); everything else is
queued and never dropped, up to the outbox's limit (see `outbox`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..auth.identity import Identity
from ..metrics import GatewayMetrics
from .outbox import Message, Outbox


@dataclass(eq=False)
class Client:
    """One socket: who it is, what it subscribed to, and its outgoing frames."""

    identity: Identity
    outbox: Outbox = field(default_factory=Outbox)
    topics: set[str] = field(default_factory=set)
    cpu_hosts: frozenset[str] | None = None  # with `cpu`: only these hosts' samples; None: every host
    hosts_changes: bool = False  # with `hosts`: the list once, then only what changed (v1.2)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # work on its behalf, ended with it

    def run(self, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class Clients:
    def __init__(self, metrics: GatewayMetrics) -> None:
        self._clients: set[Client] = set()
        self._metrics = metrics
        # Who gets which host's samples, so a sample costs only the clients that want it.
        self._every_sample: set[Client] = set()
        self._samples_of: dict[str, set[Client]] = {}

    def __iter__(self) -> Iterator[Client]:
        return iter(list(self._clients))

    def __len__(self) -> int:
        return len(self._clients)

    def add(self, client: Client) -> None:
        self._clients.add(client)
        self._metrics.clients.set(len(self._clients))

    def remove(self, client: Client) -> None:
        self._clients.discard(client)
        self.stop_samples(client)
        for task in client.tasks:
            task.cancel()
        self._metrics.clients.set(len(self._clients))

    def wants_samples(self) -> bool:
        """Whether any client is subscribed to `cpu` (of some host or every one)."""
        return bool(self._every_sample or self._samples_of)

    def wants_samples_of(self, host: str) -> bool:
        """Whether any client is subscribed to `cpu` with this host in its scope."""
        return bool(self._every_sample) or host in self._samples_of

    def sample_scope(self, client: Client, hosts: frozenset[str] | None) -> None:
        """Send `client` the samples of these hosts (None: of every host) from now on."""
        self.stop_samples(client)
        client.topics.add("cpu")
        client.cpu_hosts = hosts
        if hosts is None:
            self._every_sample.add(client)
        else:
            for host in hosts:
                self._samples_of.setdefault(host, set()).add(client)

    def stop_samples(self, client: Client) -> None:
        client.topics.discard("cpu")
        self._every_sample.discard(client)
        for host in client.cpu_hosts or ():
            clients = self._samples_of.get(host)
            if clients is not None:
                clients.discard(client)
                if not clients:
                    del self._samples_of[host]
        client.cpu_hosts = None

    def send_sample(self, host: str, frame: str) -> None:
        """Latest-value-wins: a newer sample of the host replaces one not sent yet."""
        key = f"cpu:{host}"
        sent = dropped = 0
        for client in (*self._every_sample, *self._samples_of.get(host, ())):
            before = client.outbox.dropped
            client.outbox.put_latest(key, frame)
            sent += 1
            dropped += client.outbox.dropped - before
        if sent:
            self._metrics.frames_relayed.labels("cpu").inc(sent)
        if dropped:
            self._metrics.frames_dropped.inc(dropped)

    def queued_bytes(self) -> int:
        return sum(c.outbox.queued_bytes for c in self._clients)

    def send(self, client: Client, kind: str, frame: str) -> None:
        """A frame that must arrive."""
        client.outbox.put(frame)
        self._metrics.frames_relayed.labels(kind).inc()

    def send_topic(self, topic: str, frame: str) -> None:
        for client in self._clients:
            if topic in client.topics:
                self.send(client, topic, frame)

    def send_keyed(self, client: Client, kind: str, key: str, frame: Message) -> None:
        """To one client, a frame that replaces any older one with the same key not yet sent."""
        before = client.outbox.dropped
        client.outbox.put_latest(key, frame)
        self._metrics.frames_relayed.labels(kind).inc()
        if client.outbox.dropped != before:
            self._metrics.frames_dropped.inc()
