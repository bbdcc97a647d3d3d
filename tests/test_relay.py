"""The gateway's relay in-process on the memory broker: fan-out by topic, job watches, presence."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from fleetdeck_common import hoststore, topics
from fleetdeck_common.broker import GAP, Event, PubSub
from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.hoststore import Heartbeat, HostStore, Observation
from fleetdeck_common.jobs import Fenced, JobStore
from fleetdeck_common.messages import Chat, CpuSample, Done, Job, Result, dump
from fleetdeck_common.summaries import Summary
from fleetdeck_gateway.feeds.fleet import FleetView
from fleetdeck_gateway.feeds.hosthistory import HistoryCache
from fleetdeck_gateway.feeds.hosttable import HostTable
from fleetdeck_gateway.feeds.jobresults import JobWatches
from fleetdeck_gateway.feeds.presence import PresenceSync
from fleetdeck_gateway.feeds.relay import Relay
from fleetdeck_gateway.feeds.samples import LiveSamples, host_of
from fleetdeck_gateway.metrics import GatewayMetrics
from fleetdeck_gateway.ws.clients import Client, Clients
from tests.support.fakes import VIEWER, ok_result
from tests.support.history import reader


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@dataclass
class Feeds:
    """A relay and the parts it drives, wired as `build_gateway` wires them."""

    relay: Relay
    clients: Clients
    watches: JobWatches
    presence: PresenceSync
    samples: LiveSamples
    fleet: FleetView


def feeds(subscription: PubSub, broker: MemoryBroker) -> Feeds:
    """The relay hearing `subscription`, its stores on `broker`."""
    clients = Clients(GatewayMetrics(lambda: 0.0))
    hosts = HostStore(broker)
    watches = JobWatches(JobStore(broker), clients)
    table = HostTable()
    fleet = FleetView(table, clients)
    presence = PresenceSync(hosts, table, clients, 86400.0, on_change=fleet.changed)
    history = HistoryCache(reader(broker).recent)

    def older_agents_sample(summary: Summary) -> None:
        presence.observe(summary)
        fleet.observe(summary)

    samples = LiveSamples(subscription, clients, history, presence, older_agents_sample)
    relay = Relay(subscription, clients, watches, presence, fleet, history, samples)
    return Feeds(relay, clients, watches, presence, samples, fleet)


@pytest.fixture
async def relay(broker: MemoryBroker) -> AsyncIterator[Feeds]:
    parts = feeds(broker, broker)
    await parts.relay.start()
    await parts.relay.subscribed.wait()  # nothing published before the subscription is missed
    yield parts
    await parts.relay.stop()


async def settled(*clients: Client) -> None:
    """Until the replays running for these clients have finished."""
    for client in clients:
        while client.tasks:
            await asyncio.wait(set(client.tasks))


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Until `condition` holds (the relay handles what was published in a task of its own)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def frames_until(client: Client, last: str, timeout: float = 2.0) -> list[dict[str, object]]:
    """Every frame the client gets until one of type `last` (inclusive)."""
    got: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout
    while not got or got[-1]["type"] != last:
        batch = await asyncio.wait_for(client.outbox.take(), max(deadline - time.monotonic(), 0.01))
        got.extend(json.loads(frame) for frame in batch)
        got = got[: next((i + 1 for i, f in enumerate(got) if f["type"] == last), len(got))]
    return got


def sample(host: str, ts: float) -> CpuSample:
    return CpuSample(host=host, ts=ts, total=10.0, percpu=[10.0, 10.0], mem=20.0, load=[0.1, 0.1, 0.1])


async def test_samples_reach_cpu_subscribers_only_and_a_new_host_updates_presence(
    broker: MemoryBroker, relay: Feeds
) -> None:
    watching, other = Client(VIEWER, topics={"hosts"}), Client(VIEWER, topics={"chat"})
    relay.relay.add(watching)
    relay.relay.add(other)
    relay.clients.sample_scope(watching, None)
    await relay.samples.live()  # as the `subscribe` handler does before it answers
    await HostStore(broker).publish([Observation(sample("web01", time.time()))])
    frames = await frames_until(watching, "hosts")  # presence is told once a tick, samples at once
    assert [f["type"] for f in frames] == ["cpu", "hosts"]
    assert frames[1]["hosts"][0]["host"] == "web01"  # type: ignore[index]
    assert len(other.outbox) == 0
    assert relay.presence.hosts() == ["web01"]


async def test_a_slow_client_gets_only_the_latest_sample_per_host(broker: MemoryBroker, relay: Feeds) -> None:
    client, reader = Client(VIEWER), Client(VIEWER)
    for each in (client, reader):
        relay.relay.add(each)
        relay.clients.sample_scope(each, None)
    await relay.samples.live()
    hosts = HostStore(broker)
    for n in range(5):
        await hosts.publish([Observation(sample("web01", 1000.0 + n))])
    # One dispatch queues a sample for every client: once the reader has the last, so has `client`.
    while 1004.0 not in [json.loads(f)["ts"] for f in await asyncio.wait_for(reader.outbox.take(), 2)]:
        pass
    frames = [json.loads(f) for f in await client.outbox.take()]
    assert [f["ts"] for f in frames] == [1004.0]


async def test_full_samples_are_taken_in_only_while_someone_watches_them(
    broker: MemoryBroker, relay: Feeds
) -> None:
    """The fleet view and presence live on the summaries; the full samples' channel is subscribed
    while a client follows `cpu` (or a history is cached) and let go once none is left."""
    hosts = HostStore(broker)
    await hosts.publish([Observation(sample("web01", 1000.0))])
    await hosts.publish([Observation(sample("web02", 1001.0))])  # after web01's, in the same order
    await until(lambda: relay.fleet.latest("web02") is not None)
    assert relay.presence.hosts() == ["web01", "web02"]
    assert relay.samples.taken == 0 and not relay.samples.wanted()

    client = Client(VIEWER)
    relay.relay.add(client)
    relay.clients.sample_scope(client, frozenset({"web02"}))
    await relay.samples.live()
    await hosts.publish([Observation(sample("web01", 1002.0)), Observation(sample("web02", 1002.0))])
    frames = await frames_until(client, "cpu")
    assert [(f["host"], f["ts"]) for f in frames] == [("web02", 1002.0)]
    # One channel carries every host: web01's sample came too, but was dropped unparsed.
    assert (relay.samples.taken, relay.samples.passed_over) == (1, 1)

    relay.clients.stop_samples(client)
    await relay.samples.check()  # what each tick does
    assert not relay.samples.wanted()
    await hosts.publish([Observation(sample("web01", 1003.0))])
    await until(lambda: getattr(relay.fleet.latest("web01"), "ts", None) == 1003.0)
    assert (relay.samples.taken, relay.samples.passed_over) == (1, 1)  # heard in the summary alone


async def test_a_host_whose_older_agent_sends_no_summaries_still_shows_its_values(
    broker: MemoryBroker, relay: Feeds
) -> None:
    """An agent from before summaries writes its heartbeat (without `summaries`) and full samples
    only: the gateway takes the samples in for it, and lets them go once no such host is left."""
    older = sample("old01", time.time())
    beat = Heartbeat.of(older, {}, "old01").model_dump(exclude={"summaries"})
    await broker.hash_set(hoststore._HOSTS_KEY, "old01", json.dumps(beat))
    await relay.presence.reload()  # what presence does every few seconds
    assert relay.presence.without_summaries("old01") and relay.samples.wanted()
    await relay.samples.check()  # what each tick does: the samples are taken in
    await relay.samples.live()
    await broker.publish(topics.CPU_CHANNEL, dump(older))
    await until(lambda: getattr(relay.fleet.latest("old01"), "total", None) == 10.0)
    assert relay.presence.hosts() == ["old01"] and relay.samples.taken == 1

    await HostStore(broker).publish([Observation(sample("old01", time.time()))])  # upgraded
    await relay.presence.reload()
    assert not relay.presence.without_summaries("old01")
    await relay.samples.check()
    assert not relay.samples.wanted()


def test_a_samples_host_is_read_off_the_front_of_the_json_agents_write() -> None:
    assert host_of(dump(sample("web01", 1.0))) == "web01"
    assert host_of(dump(sample('we"b', 1.0))) is None  # an escape: parsed to find out
    assert host_of('{"host":"web01","type":"cpu"}') is None  # another form: parsed to find out
    assert host_of('{"type":"cpu","host":"web01') is None  # cut short
    assert host_of("") is None


def numbered(job: str, seq: int) -> Result:
    return ok_result(job, seq, f"127.0.0.{seq + 1}")


async def test_a_watch_replays_after_its_seq_then_fills_a_gap_from_the_record(broker: MemoryBroker) -> None:
    """Not started: nothing arrives live except what the test hands to the watches itself."""
    store = JobStore(broker)
    relay = feeds(broker, broker)
    job = Job(job="j1", targets="127.0.0.2-5", command="x", hosts=4, by="t", ts=1.0, state="running")
    await store.announce(job)
    assert await store.hold_lease(job.job, "w", 30)
    for seq in (1, 2, 3):
        assert await store.append(numbered(job.job, seq), "w", seq) is Fenced.WRITTEN
    client = Client(VIEWER)
    relay.relay.add(client)
    relay.watches.watch(client, job.job, after=1)
    replayed: list[int] = []
    while len(replayed) < 2:
        replayed += [json.loads(f)["seq"] for f in await asyncio.wait_for(client.outbox.take(), 2)]
    assert replayed == [2, 3]
    # Result 4 and `done` are stored, but `done` is seen live before 4 is: a gap, filled from the record.
    assert await store.append(numbered(job.job, 4), "w", 4) is Fenced.WRITTEN
    finished = Done(job=job.job, summary={"ok": 4}, duration_ms=9)
    assert await store.append(finished, "w", 5) is Fenced.WRITTEN
    relay.watches.deliver(finished)
    frames = await frames_until(client, "done")
    relay.watches.deliver(numbered(job.job, 4))  # arriving late, it is not sent again
    await settled(client)  # any replay it started has run
    assert [(f["type"], f.get("seq")) for f in frames] == [("result", 4), ("done", None)]
    assert len(client.outbox) == 0


async def test_job_states_go_to_jobs_subscribers_and_watchers(broker: MemoryBroker, relay: Feeds) -> None:
    subscriber, watcher, bystander = Client(VIEWER, topics={"jobs"}), Client(VIEWER), Client(VIEWER)
    for client in (subscriber, watcher, bystander):
        relay.relay.add(client)
    relay.watches.watch(watcher, "j2", 0)
    job = Job(job="j2", targets="127.0.0.2", command="x", hosts=1, by="t", ts=1.0, state="running")
    await JobStore(broker).announce(job)
    assert (await frames_until(subscriber, "job"))[-1]["state"] == "running"
    assert (await frames_until(watcher, "job"))[-1]["job"] == "j2"
    assert len(bystander.outbox) == 0  # one dispatch sent it to everyone it was for


class FedSubscription:
    """Pub/sub whose messages the test hands over itself: here, none but a GAP."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    async def publish(self, channel: str, data: str) -> None:
        await self.queue.put(Event(channel, data))

    @asynccontextmanager
    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[AsyncIterator[Event]]:
        async def events() -> AsyncIterator[Event]:
            while True:
                yield await self.queue.get()

        yield events()


async def test_after_a_gap_in_the_subscription_watchers_get_what_they_missed(broker: MemoryBroker) -> None:
    """The results and `done` were published while the gateway's subscription was away (it never
    hears them): the gap that follows makes it read them from the record."""
    store = JobStore(broker)
    feed = FedSubscription()
    relay = feeds(feed, broker)
    await relay.relay.start()
    chatty = Client(VIEWER, topics={"chat"})  # hears a chat line fed last: all before it was handled
    relay.relay.add(chatty)

    async def handled_so_far() -> None:
        await feed.queue.put(Event(topics.CHAT_CHANNEL, dump(Chat(from_="t", text="after", ts=1.0, id="1"))))
        assert [f["type"] for f in await frames_until(chatty, "chat")] == ["chat"]

    try:
        job = Job(job="j3", targets="127.0.0.2-3", command="x", hosts=2, by="t", ts=1.0, state="running")
        await store.announce(job)
        watcher, finished_watcher = Client(VIEWER), Client(VIEWER)
        for client in (watcher, finished_watcher):
            relay.relay.add(client)
            relay.watches.watch(client, job.job, after=0)
        await settled(watcher, finished_watcher)  # their first replays found nothing stored yet
        assert await store.hold_lease(job.job, "w", 30)
        for seq in (1, 2):
            assert await store.append(numbered(job.job, seq), "w", seq) is Fenced.WRITTEN
        finished = Done(job=job.job, summary={"ok": 2}, duration_ms=9)
        assert await store.append(finished, "w", 3) is Fenced.WRITTEN
        await handled_so_far()
        await settled(watcher)
        assert len(watcher.outbox) == 0  # nothing was heard live

        await feed.queue.put(GAP)
        frames = await frames_until(watcher, "done")
        assert [(f["type"], f.get("seq")) for f in frames] == [("result", 1), ("result", 2), ("done", None)]
        assert [f["type"] for f in await frames_until(finished_watcher, "done")][-1] == "done"

        await feed.queue.put(GAP)  # a second gap: nothing new is stored, nothing is sent again
        await handled_so_far()
        await settled(watcher, finished_watcher)
        assert len(watcher.outbox) == 0
    finally:
        await relay.relay.stop()
