"""One broker subscription per process, fanned out to every connected client.

Samples are latest-value-wins per host; chat, job announcements and job results are never dropped.
Job results are delivered to watchers in `seq` order with no gaps and no repeats: live results go
straight out when they are the next expected `seq`; anything else is filled in from the job's
result stream, which is the record of truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field

from pydantic import ValidationError

from fleetdeck_common import topics
from fleetdeck_common.broker import Broker, BrokerUnavailable, Event
from fleetdeck_common.jobstore import read_results
from fleetdeck_common.messages import Chat, CpuSample, Done, Hosts, Job, Result, dump

from .metrics import GatewayMetrics
from .outbox import Outbox
from .presence import Presence
from .tokens import Identity

logger = logging.getLogger(__name__)

PRESENCE_TICK_SECONDS = 0.25
PRESENCE_RELOAD_SECONDS = 10.0


@dataclass
class Watch:
    """One client following one job's results."""

    job: str
    last_seq: int = 0
    last_id: str | None = None
    done_sent: bool = False
    dirty: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(eq=False)
class Client:
    identity: Identity
    outbox: Outbox = field(default_factory=Outbox)
    topics: set[str] = field(default_factory=set)
    watches: dict[str, Watch] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class Hub:
    def __init__(self, broker: Broker, metrics: GatewayMetrics, forget_after: float = 86400.0) -> None:
        self._broker = broker
        self._metrics = metrics
        self._forget_after = forget_after
        self._clients: set[Client] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.presence = Presence()

    @property
    def clients(self) -> set[Client]:
        return self._clients

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._relay(), name="relay"),
            asyncio.create_task(self._watch_presence(), name="presence"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in list(self._clients):
            self.remove(client)

    def add(self, client: Client) -> None:
        self._clients.add(client)
        self._metrics.clients.set(len(self._clients))

    def remove(self, client: Client) -> None:
        self._clients.discard(client)
        for task in client.tasks:
            task.cancel()
        self._metrics.clients.set(len(self._clients))

    # --- the subscription ------------------------------------------------------------------

    async def _relay(self) -> None:
        async with self._broker.subscribe(topics.GATEWAY_CHANNELS) as events:
            async for event in events:
                try:
                    self._dispatch(event)
                except (ValidationError, ValueError, KeyError) as exc:
                    logger.warning("ignored a malformed message on %s: %s", event.channel, exc)

    def _dispatch(self, event: Event) -> None:
        if event.channel == topics.CPU_CHANNEL:
            self._on_sample(CpuSample.model_validate_json(event.data))
        elif event.channel == topics.CHAT_CHANNEL:
            self._send_topic("chat", dump(Chat.model_validate_json(event.data)))
        elif event.channel == topics.JOBS_CHANNEL:
            job = Job.model_validate_json(event.data)
            frame = dump(job)
            for client in self._clients:
                if "jobs" in client.topics or job.job in client.watches:
                    self._put(client, "job", frame)
        elif event.channel == topics.RESULTS_CHANNEL:
            kind = json.loads(event.data).get("type")
            parsed: Result | Done = (
                Done.model_validate_json(event.data)
                if kind == "done"
                else Result.model_validate_json(event.data)
            )
            for client in self._clients:
                watch = client.watches.get(parsed.job)
                if watch is not None:
                    self._deliver_live(client, watch, parsed)

    def _on_sample(self, sample: CpuSample) -> None:
        now = time.time()
        if self.presence.observe(sample.host, now, sample.interval, len(sample.percpu), now):
            self.broadcast_hosts()
        frame = dump(sample)
        for client in self._clients:
            if "cpu" in client.topics:
                before = client.outbox.dropped
                client.outbox.put_latest(f"cpu:{sample.host}", frame)
                self._metrics.frames_relayed.labels("cpu").inc()
                if client.outbox.dropped != before:
                    self._metrics.frames_dropped.inc()

    def _put(self, client: Client, kind: str, frame: str) -> None:
        client.outbox.put(frame)
        self._metrics.frames_relayed.labels(kind).inc()

    def _send_topic(self, topic: str, frame: str) -> None:
        for client in self._clients:
            if topic in client.topics:
                self._put(client, topic, frame)

    def hosts_frame(self) -> str:
        return dump(Hosts(hosts=self.presence.snapshot()))

    def broadcast_hosts(self) -> None:
        frame = self.hosts_frame()
        for client in self._clients:
            if "hosts" in client.topics:
                client.outbox.put_latest("hosts", frame)
                self._metrics.frames_relayed.labels("hosts").inc()

    # --- presence --------------------------------------------------------------------------

    async def load_presence(self) -> None:
        """Hosts known to the broker that this process has not heard from itself yet."""
        beats = await self._broker.hash_get_all(topics.HOSTS_KEY)
        now = time.time()
        changed = False
        known = set(self.presence.hosts())
        for host, raw in beats.items():
            if host in known:
                continue
            try:
                beat = json.loads(raw)
                changed |= self.presence.observe(
                    host, float(beat["last_seen"]), float(beat["interval"]), int(beat["cpus"]), now
                )
            except (ValueError, KeyError, TypeError):
                logger.warning("ignored a malformed heartbeat for %r", host)
        if changed:
            self.broadcast_hosts()

    async def _forget_gone_hosts(self, now: float) -> None:
        gone = self.presence.gone(now, self._forget_after)
        for host in gone:
            logger.info("forgetting %s: not heard from for %.0fs", host, self._forget_after)
            await self._broker.hash_delete(topics.HOSTS_KEY, host)
            await self._broker.delete(topics.history_key(host))
            self.presence.forget(host)
        if gone:
            self.broadcast_hosts()

    async def _watch_presence(self) -> None:
        next_reload = 0.0
        while True:
            now = time.time()
            if now >= next_reload:
                with contextlib.suppress(BrokerUnavailable):
                    await self.load_presence()
                    await self._forget_gone_hosts(now)
                next_reload = now + PRESENCE_RELOAD_SECONDS
            if self.presence.evaluate(time.time()):
                self.broadcast_hosts()
            await asyncio.sleep(PRESENCE_TICK_SECONDS)

    # --- job results -----------------------------------------------------------------------

    def watch(self, client: Client, job: str, after: int) -> Watch:
        """Start (or restart) following a job: replay results after `after`, then live."""
        watch = Watch(job=job, last_seq=after)
        client.watches[job] = watch
        self._schedule_sync(client, watch)
        return watch

    def _deliver_live(self, client: Client, watch: Watch, frame: Result | Done) -> None:
        if watch.lock.locked() or watch.dirty:
            self._schedule_sync(client, watch)
            return
        if isinstance(frame, Result):
            if frame.seq <= watch.last_seq:
                return
            if frame.seq == watch.last_seq + 1:
                watch.last_seq = frame.seq
                self._put(client, "result", dump(frame))
                return
        elif not watch.done_sent and watch.last_seq >= sum(frame.summary.values()):
            watch.done_sent = True
            self._put(client, "done", dump(frame))
            return
        elif watch.done_sent:
            return
        self._schedule_sync(client, watch)

    def _schedule_sync(self, client: Client, watch: Watch) -> None:
        watch.dirty = True
        if watch.lock.locked():
            return  # the running sync sees `dirty` and reads again
        task = asyncio.create_task(self._sync(client, watch))
        client.tasks.add(task)
        task.add_done_callback(client.tasks.discard)

    async def _sync(self, client: Client, watch: Watch) -> None:
        async with watch.lock:
            while watch.dirty:
                watch.dirty = False
                try:
                    stored = await read_results(self._broker, watch.job, watch.last_id)
                except BrokerUnavailable:
                    logger.warning("cannot read results of job %s yet; retrying", watch.job)
                    watch.dirty = True
                    await asyncio.sleep(1.0)
                    continue
                for result in stored.results:
                    if client.watches.get(watch.job) is not watch:
                        return  # a newer `watch` of the same job took over
                    if result.seq > watch.last_seq:
                        if not await client.outbox.wait_room():
                            return  # too slow: the socket is being closed
                        watch.last_seq = result.seq
                        self._put(client, "result", dump(result))
                watch.last_id = stored.last_id
                if stored.done is not None and not watch.done_sent:
                    watch.done_sent = True
                    self._put(client, "done", dump(stored.done))
