"""The `fleet` topic's frames (`feeds.fleet`), driven tick by tick with a fake clock: no loop, no sleep."""

from __future__ import annotations

import json
from typing import Any

from fleetdeck_common.messages import CpuSample
from fleetdeck_common.summaries import summary_of
from fleetdeck_gateway.feeds.fleet import FleetView
from fleetdeck_gateway.feeds.hosttable import HostTable
from fleetdeck_gateway.metrics import GatewayMetrics
from fleetdeck_gateway.ws.clients import Client, Clients
from tests.support.fakes import VIEWER, FakeClock


def sample(host: str, total: float) -> CpuSample:
    return CpuSample(host=host, ts=1.0, total=total, percpu=[total], mem=20.0, load=[0.5, 0.1, 0.1])


def setup() -> tuple[FleetView, HostTable, Clients, FakeClock]:
    clock, table = FakeClock(), HostTable()
    clients = Clients(GatewayMetrics(lambda: 0.0))
    return FleetView(table, clients, clock), table, clients, clock


def heard(table: HostTable, fleet: FleetView, host: str, total: float, now: float) -> None:
    table.observe(host, now, 1.0, 1, now)
    fleet.observe(summary_of(sample(host, total)))


async def taken(client: Client) -> list[dict[str, Any]]:
    """What the client's outbox holds now (nothing: it does not wait)."""
    return [json.loads(f) for f in await client.outbox.take()] if len(client.outbox) else []


async def test_a_follower_gets_everything_at_once_then_only_what_changed_once_a_tick() -> None:
    fleet, table, clients, clock = setup()
    heard(table, fleet, "web01", 10.0, clock.now)
    heard(table, fleet, "web02", 20.0, clock.now)
    fleet.tick()
    client = Client(VIEWER)
    clients.add(client)
    fleet.follow(client)
    [full] = await taken(client)
    assert full["full"] is True
    assert {h["host"]: h["total"] for h in full["hosts"]} == {"web01": 10.0, "web02": 20.0}
    fleet.tick()  # the tick it joined in: its full frame covers it
    assert await taken(client) == []
    heard(table, fleet, "web02", 30.0, clock.now)
    fleet.tick()
    assert [(f["full"], [h["host"] for h in f["hosts"]]) for f in await taken(client)] == [(False, ["web02"])]
    fleet.tick()  # nothing changed: nothing is sent
    assert await taken(client) == []
    heard(table, fleet, "web01", 40.0, clock.now)
    heard(table, fleet, "web01", 50.0, clock.now)  # two samples in one tick: one frame
    clock.now += 1
    fleet.tick()
    frames = await taken(client)
    assert [(f["full"], f["ts"], f["hosts"][0]["total"]) for f in frames] == [(False, 1001.0, 50.0)]


async def test_a_follower_who_joined_after_a_change_gets_two_ticks_of_changes_at_its_first() -> None:
    fleet, table, clients, clock = setup()
    heard(table, fleet, "web01", 10.0, clock.now)
    fleet.tick()
    client = Client(VIEWER)
    clients.add(client)
    fleet.follow(client)  # its full frame was built before the change below
    heard(table, fleet, "web02", 20.0, clock.now)
    fleet.tick()
    assert [f["full"] for f in await taken(client)] == [True]
    heard(table, fleet, "web01", 11.0, clock.now)
    fleet.tick()
    [both] = await taken(client)
    assert [h["host"] for h in both["hosts"]] == ["web01", "web02"]


async def test_a_follower_behind_has_its_waiting_frame_replaced_by_a_full_one() -> None:
    fleet, table, clients, _ = setup()
    client = Client(VIEWER)
    clients.add(client)
    heard(table, fleet, "web01", 10.0, 1000.0)
    fleet.follow(client)
    await taken(client)
    fleet.tick()
    fleet.tick()
    await taken(client)  # now a plain follower
    replaced = fleet.replaced
    for total in (20.0, 30.0, 40.0):  # it stops reading
        heard(table, fleet, "web02", total, 1000.0)
        fleet.tick()
    [waiting] = await taken(client)
    assert waiting["full"] is True and fleet.replaced == replaced + 2
    assert {h["host"]: h["total"] for h in waiting["hosts"]} == {"web01": 10.0, "web02": 40.0}


async def test_a_forgotten_host_is_sent_once_as_offline_and_an_unfollower_gets_nothing() -> None:
    fleet, table, clients, _ = setup()
    stays, leaves = Client(VIEWER), Client(VIEWER)
    heard(table, fleet, "web01", 10.0, 1000.0)
    for client in (stays, leaves):
        clients.add(client)
        fleet.follow(client)
    fleet.tick()
    fleet.tick()
    await taken(stays)
    await taken(leaves)
    fleet.unfollow(leaves)
    table.forget("web01")
    fleet.changed(["web01"])  # as presence says it
    assert fleet.latest("web01") is None
    fleet.tick()
    [gone] = await taken(stays)
    assert gone["hosts"] == [
        {
            "host": "web01",
            "online": False,
            "total": None,
            "mem": None,
            "load1": None,
            "labels": {},
            "disk": None,
        }
    ]
    assert await taken(leaves) == []


async def test_entries_carry_the_disk_of_the_latest_sample_and_none_for_an_old_agent() -> None:
    fleet, table, clients, clock = setup()
    table.observe("web01", clock.now, 1.0, 1, clock.now)
    fleet.observe(summary_of(sample("web01", 10.0).model_copy(update={"disk": 87.5})))
    heard(table, fleet, "old01", 5.0, clock.now)  # an agent from before v1.2 sends no disk
    client = Client(VIEWER)
    clients.add(client)
    fleet.follow(client)
    [full] = await taken(client)
    assert {h["host"]: h["disk"] for h in full["hosts"]} == {"web01": 87.5, "old01": None}
