"""Presence kept in step with the broker (`feeds.presence`), on the memory broker with a fake clock:
heartbeats read, hosts gone quiet, retired hosts forgotten, changes told once a flush."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleetdeck_common import hoststore
from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.hoststore import HostStore, Observation
from fleetdeck_common.messages import CpuSample
from fleetdeck_common.summaries import summary_of
from fleetdeck_gateway.feeds.hosttable import HostTable
from fleetdeck_gateway.feeds.presence import PresenceSync
from fleetdeck_gateway.metrics import GatewayMetrics
from fleetdeck_gateway.ws.clients import Client, Clients
from tests.support.fakes import VIEWER, FakeClock
from tests.support.history import publisher, reader


def sample(host: str, ts: float) -> CpuSample:
    return CpuSample(
        host=host, ts=ts, total=1.0, percpu=[1.0, 1.0], mem=1.0, load=[0.0, 0.0, 0.0], interval=1.0
    )


class Setup:
    def __init__(self) -> None:
        self.broker = MemoryBroker()
        self.store = HostStore(self.broker)
        self.clock = FakeClock(1000.0)
        self.clients = Clients(GatewayMetrics(lambda: 0.0))
        self.changes: list[list[str]] = []
        self.feed = PresenceSync(
            self.store,
            HostTable(),
            self.clients,
            forget_after=60.0,
            on_change=self.changes.append,
            clock=self.clock,
        )
        self.follower = Client(VIEWER, topics={"hosts"})
        self.clients.add(self.follower)

    async def hosts_frame(self) -> list[dict[str, object]]:
        """The `hosts` frame waiting for the follower (none: an empty list)."""
        if not len(self.follower.outbox):
            return []
        [frame] = await self.follower.outbox.take()
        hosts: list[dict[str, object]] = json.loads(frame)["hosts"]
        return hosts


async def test_heartbeats_read_bring_hosts_with_labels_and_addresses_told_once() -> None:
    s = Setup()
    await s.store.publish([Observation(sample("web01", 999.5), {"role": "web"}, "127.0.1.2")])
    await s.feed.reload()
    s.feed.flush()
    assert s.changes == [["web01"]]
    [host] = await s.hosts_frame()
    assert (host["host"], host["online"], host["labels"], host["address"]) == (
        "web01",
        True,
        {"role": "web"},
        "127.0.1.2",
    )
    assert s.feed.knows("web01") and s.feed.hosts() == ["web01"]
    s.feed.flush()  # nothing new: nothing told
    assert s.changes == [["web01"]] and await s.hosts_frame() == []


async def test_a_host_heard_live_goes_quiet_after_three_intervals() -> None:
    s = Setup()
    s.feed.observe(summary_of(sample("web01", 1000.0)))
    s.feed.flush()
    assert [h["online"] for h in await s.hosts_frame()] == [True]
    s.clock.now += 3.0  # three intervals: still online
    s.feed.flush()
    assert await s.hosts_frame() == []
    s.clock.now += 0.5
    s.feed.flush()
    assert [h["online"] for h in await s.hosts_frame()] == [False]
    assert s.changes == [["web01"], ["web01"]]


async def test_a_host_not_heard_from_for_forget_after_is_forgotten_but_its_history_stays() -> None:
    s = Setup()
    await publisher(s.broker).publish([Observation(sample("old01", 900.0))], 900.0)
    await publisher(s.broker).publish([Observation(sample("web01", 999.0))], 999.0)
    s.clock.now = 950.0
    await s.feed.reload()
    s.feed.flush()
    assert s.feed.hosts() == ["old01", "web01"]
    s.clock.now = 1021.0  # old01 last seen at 900: more than 60 s ago
    await s.feed.reload()
    s.feed.flush()
    assert s.feed.hosts() == ["web01"]
    assert sorted(await s.store.heartbeats()) == ["web01"]
    # The history expires by itself once older than the longest tier; a retired host's stays readable.
    assert [x.ts for x in await reader(s.broker, s.clock).recent("old01", 900)] == [900.0]
    assert s.changes[-1] == ["old01", "web01"]  # old01 gone, web01 gone quiet


async def test_a_known_hosts_heartbeat_is_read_again_only_when_it_says_something_new(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Heartbeats are re-read every few seconds: one that differs only in its time is skipped."""
    s = Setup()
    read: list[str] = []
    real_parse = hoststore.parse

    def parse(host: str, raw: str) -> hoststore.Heartbeat | None:
        read.append(host)
        return real_parse(host, raw)

    monkeypatch.setattr(hoststore, "parse", parse)
    await s.store.publish([Observation(sample("web01", 999.0), {"role": "web"})])
    await s.feed.reload()
    assert read == ["web01"]
    await s.store.publish([Observation(sample("web01", 1005.0), {"role": "web"})])  # a later time only
    await s.feed.reload()
    assert read == ["web01"]
    await s.store.publish([Observation(sample("web01", 1010.0), {"role": "db"})])  # new labels
    await s.feed.reload()
    assert read == ["web01", "web01"]
    assert s.feed.snapshot()[0].labels == {"role": "db"}


def change_follower(s: Setup) -> Client:
    """A second follower, with `hosts_format: "changes"`, handed the whole list as it subscribes."""
    follower = Client(VIEWER, topics={"hosts"})
    s.clients.add(follower)
    s.feed.follow(follower, changes=True)
    return follower


async def taken(client: Client) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in await client.outbox.take()]


async def test_a_change_follower_gets_the_list_once_then_only_what_changed_and_what_was_forgotten() -> None:
    s = Setup()
    await publisher(s.broker).publish([Observation(sample("old01", 900.0))], 900.0)
    for host in ("web01", "web02"):
        s.feed.observe(summary_of(sample(host, 1000.0)))
    s.clock.now = 950.0
    await s.feed.reload()
    s.feed.flush()
    follower = change_follower(s)
    [whole] = await taken(follower)
    assert (whole["full"], [h["host"] for h in whole["hosts"]]) == (True, ["old01", "web01", "web02"])
    assert "gone" not in whole
    s.clock.now = 1010.0  # web01 and web02 last heard at 950 (this process's clock): quiet now
    s.feed.observe(summary_of(sample("web02", 1010.0)))  # web02 is heard again
    s.feed.flush()
    [changes] = await taken(follower)
    assert changes["full"] is False and changes["gone"] == []
    assert [(h["host"], h["online"]) for h in changes["hosts"]] == [("web01", False)]
    s.clock.now = 1021.0  # old01 last seen at 900: forgotten
    await s.feed.reload()
    s.feed.flush()
    [forgotten] = await taken(follower)
    assert forgotten["gone"] == ["old01"] and "old01" not in [h["host"] for h in forgotten["hosts"]]
    # The v1 follower, which has taken nothing, holds one frame: the whole list as it is now.
    v1 = await taken(s.follower)
    assert [sorted(h["host"] for h in f["hosts"]) for f in v1] == [["web01", "web02"]]
    assert all("full" not in f and "gone" not in f for f in v1)


async def test_a_change_list_its_follower_has_not_taken_is_replaced_by_the_whole_list() -> None:
    """Latest wins, and nothing is lost: a slow follower holds one frame, the current whole list."""
    s = Setup()
    follower = change_follower(s)
    await taken(follower)
    s.feed.observe(summary_of(sample("web01", 1000.0)))
    s.feed.flush()  # a change list: web01 came
    s.feed.observe(summary_of(sample("web02", 1000.0)))
    s.feed.flush()  # web02 came, while web01's change list still waits
    [frame] = await taken(follower)
    assert frame["full"] is True and [h["host"] for h in frame["hosts"]] == ["web01", "web02"]
    s.clock.now += 4.0
    s.feed.observe(summary_of(sample("web02", 1004.0)))
    s.feed.flush()  # taken up to date: a change list again
    [frame] = await taken(follower)
    assert frame["full"] is False and [(h["host"], h["online"]) for h in frame["hosts"]] == [("web01", False)]
