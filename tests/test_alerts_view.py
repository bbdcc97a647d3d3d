"""The gateway's view of what fires: a transition or a silence that arrives while a refresh is
reading the broker is not undone by that refresh's older snapshot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fleetdeck_common.alerts.machine import Track
from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.messages import Alert
from fleetdeck_gateway.alerts.evaluation import Tracked
from fleetdeck_gateway.alerts.silences import Silence
from fleetdeck_gateway.alerts.store import AlertStore
from fleetdeck_gateway.alerts.view import AlertsView
from fleetdeck_gateway.metrics import GatewayMetrics
from fleetdeck_gateway.ws.clients import Clients

T = TypeVar("T")


class HeldStore(AlertStore):
    """A store on the memory broker whose reads wait until the test lets them finish, so a
    transition can arrive in the middle of a refresh."""

    def __init__(self, broker: MemoryBroker) -> None:
        super().__init__(broker)
        self.reading = asyncio.Event()
        self.finish = asyncio.Event()

    async def _held(self, read: Callable[[], Awaitable[T]]) -> T:
        found = await read()  # the snapshot is taken here, before what arrives meanwhile
        self.reading.set()
        await self.finish.wait()
        return found

    async def silences(self) -> list[Silence]:
        return await self._held(super().silences)


def _alert(host: str, state: str) -> Alert:
    return Alert(
        rule="hot", host=host, state=state, value=95.0, since=time.time(), severity="critical",
        summary=f"{host} is hot", labels={},
    )  # fmt: skip


def _view(store: AlertStore) -> AlertsView:
    return AlertsView(store, Clients(GatewayMetrics(lambda: 0.0)), known=list, rules=lambda: {"hot"})


async def test_a_transition_heard_during_a_refresh_outlives_its_older_snapshot() -> None:
    store = HeldStore(MemoryBroker())
    view = _view(store)
    view.observe(_alert("a", "firing"))
    refreshing = asyncio.create_task(view.refresh())  # reads an empty store: nothing fires there
    await store.reading.wait()
    view.observe(_alert("b", "firing"))
    store.finish.set()
    await refreshing
    assert [a.host for a in view.firing()] == ["b"]  # "a" was never stored; "b" came after the read
    assert [a.host for a in view.recent()] == ["b"]
    assert view.hosts_firing("hot") == ["b"]


async def test_a_silence_saved_during_a_refresh_stays_in_effect() -> None:
    store = HeldStore(MemoryBroker())
    view = _view(store)
    refreshing = asyncio.create_task(view.refresh())
    await store.reading.wait()
    now = time.time()
    silence = Silence(id="s1", rule="hot", until=now + 3600, comment="maintenance", by="alice", created=now)
    view.silence_saved(silence)
    view.observe(_alert("a", "firing"))
    store.finish.set()
    await refreshing
    assert view.silences == [silence]
    assert [(a.host, a.silenced) for a in view.firing()] == [("a", True)]


async def test_a_resolution_heard_during_a_refresh_is_not_brought_back() -> None:
    store = HeldStore(MemoryBroker())
    view = _view(store)
    fired = _alert("a", "firing")
    assert await store.hold_lease("me", 30)
    track = Track(phase="firing", since=fired.since, value=fired.value)
    assert await store.commit(
        "me", await store.commits(), 30, {("hot", "a"): Tracked(track, fired)}, [], [fired]
    )
    store.finish.set()
    await view.refresh()
    assert [a.host for a in view.firing()] == ["a"]
    store.reading.clear()
    store.finish.clear()
    refreshing = asyncio.create_task(view.refresh())
    await store.reading.wait()
    view.observe(_alert("a", "resolved"))
    store.finish.set()
    await refreshing  # its snapshot still has "a" firing
    assert view.firing() == []
    assert [a.state for a in view.recent()] == ["firing", "resolved"]
