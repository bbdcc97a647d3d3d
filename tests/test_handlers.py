"""What each client frame does, in-process on the memory broker: no socket, no server."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.hoststore import Observation
from fleetdeck_common.jobs import JobStore
from fleetdeck_common.messages import CpuSample, Outcome, ProtocolError, parse_client_frame
from fleetdeck_gateway.auth.identity import Identity
from fleetdeck_gateway.auth.tokenstore import TokenStore
from fleetdeck_gateway.build import build_gateway
from fleetdeck_gateway.settings import GatewaySettings
from fleetdeck_gateway.state import Gateway
from fleetdeck_gateway.ws.clients import Client
from fleetdeck_gateway.ws.handlers import handle
from fleetdeck_worker.settings import WorkerSettings
from fleetdeck_worker.sshlogin import SshOptions
from fleetdeck_worker.worker import Worker
from testbed.procs import ROOT
from tests.support.history import publisher

OPERATOR = Identity("alice", "operator", "1" * 64)
VIEWER = Identity("bob", "viewer", "2" * 64)


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    settings = GatewaySettings(redis_url="memory://", web_dir=ROOT / "web", fleet_tick=0.1)
    the_gateway = build_gateway(settings, MemoryBroker(), TokenStore(None))
    await the_gateway.start()
    await the_gateway.relay.subscribed.wait()
    yield the_gateway
    await the_gateway.stop()


def connected(gateway: Gateway, identity: Identity) -> Client:
    client = Client(identity)
    gateway.relay.add(client)
    return client


async def send(gateway: Gateway, client: Client, frame: dict[str, Any]) -> None:
    try:
        await handle(parse_client_frame(json.dumps(frame)), client, gateway)
    except ProtocolError as exc:
        client.outbox.put(json.dumps({"type": "error", "code": exc.code, "ref": exc.ref}))


async def next_frames(client: Client, timeout: float = 2.0) -> list[dict[str, Any]]:
    return [json.loads(f) for f in await asyncio.wait_for(client.outbox.take(), timeout)]


async def frame_of(client: Client, kind: str, timeout: float = 3.0) -> dict[str, Any]:
    return await frame_where(client, lambda frame: frame["type"] == kind, timeout)


async def frame_where(
    client: Client, wanted: Callable[[dict[str, Any]], bool], timeout: float = 3.0
) -> dict[str, Any]:
    """The first frame `wanted` accepts; those before it are passed over."""
    deadline = time.monotonic() + timeout
    while True:
        for frame in await next_frames(client, max(deadline - time.monotonic(), 0.01)):
            if wanted(frame):
                return frame


async def test_chat_reaches_subscribers_with_the_senders_name(gateway: Gateway) -> None:
    bob, alice = connected(gateway, VIEWER), connected(gateway, OPERATOR)
    await send(gateway, alice, {"type": "subscribe", "topics": ["chat"], "ref": "s"})
    assert (await next_frames(alice)) == [{"type": "subscribed", "topics": ["chat"], "ref": "s"}]
    await send(gateway, bob, {"type": "chat", "text": "hello <b>team</b>"})
    chat = await frame_of(alice, "chat")
    assert (chat["from"], chat["text"]) == ("bob", "hello <b>team</b>")
    late = connected(gateway, VIEWER)
    await send(gateway, late, {"type": "subscribe", "topics": ["chat"]})
    assert [f["text"] for f in await next_frames(late) if f["type"] == "chat"] == ["hello <b>team</b>"]


async def test_viewers_cannot_run_or_cancel_and_unknown_jobs_are_not_found(gateway: Gateway) -> None:
    bob, alice = connected(gateway, VIEWER), connected(gateway, OPERATOR)
    await send(gateway, bob, {"type": "exec", "targets": "127.0.0.2", "command": "id", "ref": "e"})
    await send(gateway, bob, {"type": "cancel", "job": "0123456789abcdef", "ref": "c"})
    await send(gateway, alice, {"type": "watch", "job": "0123456789abcdef", "ref": "w"})
    assert [(f["code"], f["ref"]) for f in await next_frames(bob)] == [("forbidden", "e"), ("forbidden", "c")]
    assert [(f["code"], f["ref"]) for f in await next_frames(alice)] == [("not_found", "w")]
    assert await gateway.jobs.recent(10) == []


async def test_exec_queues_a_job_and_its_sender_watches_it(gateway: Gateway) -> None:
    alice = connected(gateway, OPERATOR)
    await send(gateway, alice, {"type": "exec", "targets": "127.0.0.[2-4]", "command": "uptime", "ref": "e"})
    job = await frame_of(alice, "job")
    assert (job["state"], job["hosts"], job["ref"]) == ("queued", 3, "e")
    assert gateway.watches.watching(alice, job["job"])
    assert [j.job for j in await gateway.jobs.recent(10)] == [job["job"]]


def sent_since(since: float, host: str) -> Callable[[dict[str, Any]], bool]:
    """A `fleet` frame built since then (give or take its rounding) with this host in it."""
    return lambda f: f["type"] == "fleet" and f["ts"] >= since and host in [h["host"] for h in f["hosts"]]


def sample(host: str, ts: float) -> CpuSample:
    return CpuSample(host=host, ts=ts, total=50.0, percpu=[40.0, 60.0], mem=30.0, load=[1.0, 0.5, 0.2])


async def publish(gateway: Gateway, *hosts: str, labels: dict[str, str] | None = None) -> None:
    """Heartbeats and samples of these hosts; returns once the relay has dispatched the samples
    (to every client at once: a probe client's copy says so)."""
    probe = connected(gateway, VIEWER)
    gateway.clients.sample_scope(probe, frozenset(hosts))
    await gateway.samples.live()  # as the `subscribe` handler does
    now = time.time()
    observations = [
        Observation(sample(h, now), labels or {}, f"127.0.1.{i + 2}") for i, h in enumerate(hosts)
    ]
    await publisher(gateway.broker).publish(observations, now)
    heard: set[str] = set()
    while heard != set(hosts):
        heard.update(frame["host"] for frame in await next_frames(probe))
    gateway.relay.remove(probe)


async def test_a_cpu_subscription_narrowed_to_hosts_gets_only_their_history_and_samples(
    gateway: Gateway,
) -> None:
    await publish(gateway, "web01", "web02", "db01")
    client = connected(gateway, VIEWER)
    await send(
        gateway, client, {"type": "subscribe", "topics": ["cpu"], "hosts": ["web01", "db01"], "ref": "n"}
    )
    frames = await next_frames(client)
    assert frames[0] == {"type": "subscribed", "topics": ["cpu"], "hosts": ["db01", "web01"], "ref": "n"}
    assert sorted(f["host"] for f in frames if f["type"] == "history") == ["db01", "web01"]
    await publish(gateway, "web01", "web02", "db01")
    live = [f["host"] for f in await next_frames(client) if f["type"] == "cpu"]
    assert sorted(live) == ["db01", "web01"]
    # Widening to every host sends the history it did not have yet, and no more.
    await send(gateway, client, {"type": "subscribe", "topics": ["cpu"]})
    frames = await next_frames(client)
    assert [f["host"] for f in frames if f["type"] == "history"] == ["web02"]
    await send(gateway, client, {"type": "unsubscribe", "topics": ["cpu"]})
    await next_frames(client)
    await publish(gateway, "web01")  # dispatched to every client it is for by the time this returns
    assert len(client.outbox) == 0


async def test_hosts_without_cpu_is_refused(gateway: Gateway) -> None:
    client = connected(gateway, VIEWER)
    await send(gateway, client, {"type": "subscribe", "topics": ["fleet"], "hosts": ["web01"], "ref": "x"})
    assert (await next_frames(client))[0]["code"] == "bad_request"


async def test_fleet_first_frame_is_complete_then_only_changes_at_most_once_a_tick(gateway: Gateway) -> None:
    await publish(gateway, "web01", "web02", "db01", labels={"role": "web"})
    await gateway.presence.reload()  # labels from the heartbeats
    client = connected(gateway, VIEWER)
    await send(gateway, client, {"type": "subscribe", "topics": ["fleet"]})
    first = await frame_of(client, "fleet")
    assert first["full"] is True
    assert {h["host"]: (h["online"], h["total"], h["labels"]) for h in first["hosts"]} == {
        "web01": (True, 50.0, {"role": "web"}),
        "web02": (True, 50.0, {"role": "web"}),
        "db01": (True, 50.0, {"role": "web"}),
    }
    # Then only changes, never more than one frame a tick, and nothing missed meanwhile.
    await publish(gateway, "web02")
    later = await frame_of(client, "fleet")
    assert later["full"] is False and "web02" in [h["host"] for h in later["hosts"]]
    stamps = [first["ts"], later["ts"]]
    only_web01 = 0
    for _ in range(12):  # once earlier changes are out, a frame holds only what changed since
        await publish(gateway, "web01")
        frame = await frame_of(client, "fleet")
        assert frame["full"] is False
        only_web01 += [h["host"] for h in frame["hosts"]] == ["web01"]
        stamps.append(frame["ts"])
    assert only_web01 >= 8
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.1 * 0.9  # never more than one frame per tick


async def test_label_selectors_pick_online_hosts_by_their_address(gateway: Gateway) -> None:
    await publish(gateway, "web01", "web02", labels={"role": "web"})
    await publish(gateway, "db01", labels={"role": "db"})
    await gateway.presence.reload()
    alice = connected(gateway, OPERATOR)
    await send(
        gateway, alice, {"type": "exec", "targets": "@role=web,!127.0.1.3", "command": "id", "ref": "e"}
    )
    job = await frame_of(alice, "job")
    assert (job["hosts"], job["resolved_targets"]) == (1, "127.0.1.2")
    await send(gateway, alice, {"type": "exec", "targets": "@role=nothing", "command": "id", "ref": "n"})
    error = await frame_of(alice, "error")
    assert (error["code"], error["ref"]) == ("invalid_targets", "n")


async def test_a_known_hosts_name_runs_at_its_address(gateway: Gateway) -> None:
    await publish(gateway, "vm", "web01")  # heartbeats with addresses 127.0.1.2 and 127.0.1.3
    await gateway.presence.reload()
    alice = connected(gateway, OPERATOR)
    await send(gateway, alice, {"type": "exec", "targets": "vm", "command": "id", "ref": "v"})
    job = await frame_of(alice, "job")
    assert (job["hosts"], job["targets"], job["resolved_targets"]) == (1, "vm", "127.0.1.2")
    await send(
        gateway, alice, {"type": "exec", "targets": "127.0.1.0/24,!web01", "command": "id", "ref": "x"}
    )
    job = await frame_of(alice, "job")
    assert job["hosts"] == 253 and "127.0.1.3" not in job["resolved_targets"]
    # A name no agent reported is still a name, checked against the allowlist as it is.
    await send(gateway, alice, {"type": "exec", "targets": "elsewhere", "command": "id", "ref": "e"})
    error = await frame_of(alice, "error")
    assert (error["code"], error["ref"]) == ("invalid_targets", "e")


async def test_a_reconnect_storm_reads_each_hosts_history_once(gateway: Gateway) -> None:
    hosts = [f"node{n:02d}" for n in range(51)]
    store = publisher(gateway.broker)
    start = time.time() - 300
    for i in range(300):
        await store.publish([Observation(sample(h, start + i)) for h in hosts], time.time())
    await gateway.presence.reload()
    clients = [connected(gateway, VIEWER) for _ in range(60)]
    received: dict[Client, list[str]] = {c: [] for c in clients}

    async def drain(client: Client) -> None:  # what each socket's send loop does
        while True:
            received[client].extend(f for f in await client.outbox.take() if isinstance(f, str))

    drains = [asyncio.create_task(drain(c)) for c in clients]
    await asyncio.gather(*(send(gateway, c, {"type": "subscribe", "topics": ["cpu"]}) for c in clients))
    for task in drains:
        task.cancel()
    await asyncio.gather(*drains, return_exceptions=True)
    for client in clients:  # what was queued after a drain's last take
        if len(client.outbox):
            received[client].extend(f for f in await client.outbox.take() if isinstance(f, str))
    assert gateway.history.loads == 51  # not 60 x 51
    assert {sum(f.startswith('{"type":"history"') for f in received[c]) for c in clients} == {51}
    for client in (clients[0], clients[-1]):
        histories = [json.loads(f) for f in received[client] if f.startswith('{"type":"history"')]
        assert sorted(f["host"] for f in histories) == hosts
        assert {len(f["samples"]) for f in histories} == {300}
        first = histories[0]["samples"]
        assert [s["ts"] for s in first] == sorted(s["ts"] for s in first)


async def test_a_job_no_worker_takes_expires_and_never_runs_afterwards() -> None:
    broker = MemoryBroker()
    settings = GatewaySettings(redis_url="memory://", web_dir=ROOT / "web", job_queue_timeout=1)
    gateway = build_gateway(settings, broker, TokenStore(None))
    await gateway.start()
    ran: list[str] = []

    async def runner(
        host: str, command: str, timeout: float, ssh: SshOptions, cancel: asyncio.Event
    ) -> Outcome:
        ran.append(host)
        return Outcome(status="ok", exit_code=0, stdout="", stderr="", duration_ms=1, truncated=False)

    try:
        await gateway.relay.subscribed.wait()
        alice = connected(gateway, OPERATOR)
        await send(gateway, alice, {"type": "subscribe", "topics": ["jobs"]})
        assert (await frame_of(alice, "workers"))["alive"] == 0
        await send(
            gateway, alice, {"type": "exec", "targets": "127.0.0.[2-3]", "command": "true", "ref": "e"}
        )
        job = await frame_of(alice, "job")
        assert job["state"] == "queued" and job["queued_until"] == pytest.approx(job["ts"] + 1, abs=0.01)
        done = await frame_of(alice, "done", timeout=5)
        assert done["summary"] == {"cancelled": 2} and "no exec worker took the job" in done["error"]
        record = await gateway.jobs.get(job["job"])
        assert record.state == "expired" and record.summary == {"cancelled": 2}
        # A worker that starts now finds the expired job in the queue and leaves it.
        worker_settings = WorkerSettings(redis_url="memory://", worker_name="late", claim_idle=0.6)
        stop = asyncio.Event()
        worker = asyncio.create_task(Worker(worker_settings, JobStore(broker), runner).run(stop))
        workers = await frame_of(alice, "workers", timeout=5)
        assert (workers["alive"], workers["names"]) == (1, ["late"])
        await send(gateway, alice, {"type": "exec", "targets": "127.0.0.4", "command": "true", "ref": "n"})
        later = await frame_of(alice, "job")
        await frame_where(
            alice, lambda f: f["type"] == "job" and f["job"] == later["job"] and f["state"] == "done", 5
        )
        assert (await gateway.jobs.get(later["job"])).state == "done"  # stored before it is announced
        assert ran == ["127.0.0.4"]  # the new job ran; the expired one never did
        stop.set()
        await asyncio.wait_for(worker, 10)
    finally:
        await gateway.stop()


async def test_a_client_behind_on_fleet_frames_gets_one_full_frame_with_the_latest_state(
    gateway: Gateway,
) -> None:
    await publish(gateway, "web01", "web02")
    client = connected(gateway, VIEWER)
    await send(gateway, client, {"type": "subscribe", "topics": ["fleet"]})
    assert (await frame_of(client, "fleet"))["full"] is True
    await publish(gateway, "web01")
    assert (await frame_of(client, "fleet"))["full"] is False
    # Now it stops reading for five ticks while web02 keeps changing and web03 appears; another
    # follower, reading, tells when a tick has sent each change.
    reader = connected(gateway, VIEWER)
    await send(gateway, reader, {"type": "subscribe", "topics": ["fleet"]})
    replaced = gateway.fleet.replaced
    for _ in range(5):
        await publish(gateway, "web02", "web03")
        await frame_where(reader, sent_since(time.time() - 0.01, "web02"))
    waiting = [json.loads(f) for f in await client.outbox.take() if json.loads(f)["type"] == "fleet"]
    assert len(waiting) == 1, "one fleet frame waits, not one per tick"
    assert waiting[0]["full"] is True
    assert sorted(h["host"] for h in waiting[0]["hosts"]) == ["web01", "web02", "web03"]
    assert gateway.fleet.replaced > replaced
