"""Local fan-out (`broker/fanout.py`): one copy per subscriber of a channel, bounded queues, and a
`GAP` for a subscriber that fell behind or a subscription that was lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fleetdeck_common.broker import GAP, Event
from fleetdeck_common.broker.fanout import Fanout


async def _take(events: AsyncIterator[Event], count: int) -> list[Event]:
    return [await asyncio.wait_for(anext(events), 1) for _ in range(count)]


async def test_each_subscriber_of_a_channel_gets_each_message_once() -> None:
    fanout = Fanout()
    both = fanout.add(["a", "b"])
    only_a = fanout.add(["a"])
    fanout.deliver(Event("a", "1"))
    fanout.deliver(Event("b", "2"))
    fanout.deliver(Event("c", "nobody"))
    assert [e.data for e in await _take(both.events(), 2)] == ["1", "2"]
    assert [e.data for e in await _take(only_a.events(), 1)] == ["1"]
    assert only_a.queue.empty()


def test_channels_are_those_some_subscriber_still_wants() -> None:
    fanout = Fanout()
    first = fanout.add(["a", "b"])
    second = fanout.add(["b"])
    assert fanout.channels() == {"a", "b"}
    fanout.discard(first)
    assert fanout.channels() == {"b"}
    fanout.discard(second)
    fanout.discard(second)  # twice is harmless
    assert fanout.channels() == set()


async def test_a_subscriber_that_falls_behind_loses_messages_and_is_told_by_a_gap() -> None:
    fanout = Fanout(queue_size=2)
    slow = fanout.add(["a"])
    for i in range(5):
        fanout.deliver(Event("a", str(i)))
    assert slow.dropped == 3
    assert await _take(slow.events(), 3) == [Event("a", "0"), GAP, Event("a", "1")]


async def test_a_lost_subscription_puts_a_gap_in_every_stream() -> None:
    fanout = Fanout(queue_size=1)
    first, second = fanout.add(["a"]), fanout.add(["b"])
    fanout.deliver(Event("b", "x"))
    fanout.gap()
    assert await _take(first.events(), 1) == [GAP]
    # The second's queue was full: its gap comes right after what it held.
    assert await _take(second.events(), 2) == [Event("b", "x"), GAP]
