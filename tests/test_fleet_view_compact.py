"""Compact `fleet` frames from the fleet view: JSON and compact followers, joining, falling behind,
switching format and leaving at random, always hold the same fleet (compact rounded to 0.1)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from fleetdeck_common.fleet_compact import Decoder, code
from fleetdeck_common.messages import CpuSample
from fleetdeck_common.summaries import summary_of
from fleetdeck_gateway.feeds.fleet import FleetView
from fleetdeck_gateway.feeds.hosttable import HostTable
from fleetdeck_gateway.metrics import GatewayMetrics
from fleetdeck_gateway.ws.clients import Client, Clients
from tests.support.fakes import VIEWER, FakeClock

HOSTS = [f"web{i:02d}" for i in range(12)]
LABELS = [{"role": "web"}, {"role": "db", "dc": "eu"}, {}]


@dataclass(eq=False)
class Follower:
    """A test client of the fleet view: what it holds, as a dashboard would."""

    client: Client
    compact: bool
    decoder: Decoder = field(default_factory=Decoder)
    view: dict[str, dict[str, Any]] = field(default_factory=dict)
    ticks: int = 0  # ticks since it (re)subscribed
    stalled: bool = False  # reads nothing for now
    binary: int = 0

    async def read(self) -> None:
        if not len(self.client.outbox):
            return
        for message in await self.client.outbox.take():
            if isinstance(message, bytes):
                assert self.compact
                self.binary += 1
                frame = self.decoder.feed(message)
            else:
                assert not self.compact
                frame = json.loads(message)
            if frame["full"]:
                self.view = {}
            self.view.update({h["host"]: h for h in frame["hosts"]})


def rounded(value: float | None) -> float | None:
    return None if value is None else (code(value) - 1) / 10


def truth(table: HostTable, values: dict[str, tuple[float, float]], compact: bool) -> dict[str, Any]:
    fleet = {}
    for host in table.hosts():
        total, mem = values.get(host, (None, None))
        fleet[host] = {
            "host": host,
            "online": table.online(host),
            "total": rounded(total) if compact else total,
            "mem": rounded(mem) if compact else mem,
            "load1": rounded(0.5) if compact else 0.5,
            "labels": table.labels(host),
            "disk": None,
        }
    return fleet


@pytest.mark.parametrize("seed", range(10))
async def test_json_and_compact_followers_hold_the_same_fleet_through_anything(seed: int) -> None:
    rng = random.Random(seed)
    clock, table = FakeClock(), HostTable()
    clients = Clients(GatewayMetrics(lambda: 0.0))
    fleet = FleetView(table, clients, clock)
    values: dict[str, tuple[float, float]] = {}
    followers: list[Follower] = []
    checked = {True: 0, False: 0}
    for _ in range(120):
        clock.now += 1
        for host in rng.sample(HOSTS, rng.randint(0, 8)):
            last = values.get(host, (50.0, 50.0))
            # Often a move smaller than the rounding: compact frames leave those hosts out.
            total = min(max(last[0] + rng.choice([0.0, 0.01, 0.04, 3.0, -7.3]), 0.0), 100.0)
            mem = last[1] if rng.random() < 0.7 else rng.uniform(0, 100)
            values[host] = (total, mem)
            table.observe(host, clock.now, 1.0, 1, clock.now)
            fleet.observe(
                summary_of(
                    CpuSample(host=host, ts=clock.now, total=total, percpu=[total], mem=mem, load=[0.5] * 3)
                )
            )
        if rng.random() < 0.2:
            host = rng.choice(HOSTS)
            if table.describe(host, rng.choice(LABELS), host):
                fleet.changed([host])
        if rng.random() < 0.05:
            host = rng.choice(table.hosts() or HOSTS)
            table.forget(host)
            fleet.changed([host])
        fleet.changed(table.evaluate(clock.now))  # quiet hosts go offline
        if rng.random() < 0.15 or not followers:
            follower = Follower(Client(VIEWER), compact=rng.random() < 0.6)
            clients.add(follower.client)
            fleet.follow(follower.client, compact=follower.compact)
            followers.append(follower)
        for follower in list(followers):
            roll = rng.random()
            if roll < 0.03:
                fleet.unfollow(follower.client)
                followers.remove(follower)
            elif roll < 0.06:
                follower.compact = not follower.compact
                follower.ticks = 0
                fleet.follow(follower.client, compact=follower.compact)
            elif roll < 0.12:
                follower.stalled = not follower.stalled
        fleet.tick()
        for follower in followers:
            follower.ticks += 1
            if follower.stalled:
                continue
            await follower.read()
            if follower.ticks >= 2:  # past its full frame and the tick after (catching up)
                held = {h: e for h, e in follower.view.items() if table.knows(h)}
                assert held == truth(table, values, follower.compact)
                checked[follower.compact] += 1
    assert checked[True] > 20 and checked[False] > 20
    assert any(f.binary for f in followers if f.compact)


async def test_subscribing_again_without_a_format_keeps_it_and_with_the_other_starts_anew() -> None:
    clock, table = FakeClock(), HostTable()
    clients = Clients(GatewayMetrics(lambda: 0.0))
    fleet = FleetView(table, clients, clock)
    table.observe("web01", clock.now, 1.0, 1, clock.now)
    client = Client(VIEWER)
    clients.add(client)
    fleet.follow(client, compact=True)
    [full] = await client.outbox.take()
    assert isinstance(full, bytes) and Decoder().feed(full)["full"] is True
    fleet.follow(client)  # e.g. `fleet` again beside another topic: nothing new
    fleet.follow(client, compact=True)
    assert len(client.outbox) == 0
    fleet.follow(client, compact=False)
    [again] = await client.outbox.take()
    assert isinstance(again, str) and json.loads(again)["full"] is True
