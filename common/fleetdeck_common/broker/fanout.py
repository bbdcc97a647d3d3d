"""Local fan-out: one backend subscription per process, a bounded queue per local subscriber.

Both backends hand every message they receive to a `Fanout`; it is the one place that copies a
message to each subscriber of its channel. A subscriber that does not keep up loses messages
(counted and logged, and told by a `GAP` in its stream) rather than growing without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable

from .base import GAP, Event

logger = logging.getLogger(__name__)

SUBSCRIBER_QUEUE_SIZE = 10_000


class Subscriber:
    """One local subscription: the channels it asked for and its queue of events."""

    def __init__(self, channels: Iterable[str], queue_size: int) -> None:
        self.channels = frozenset(channels)
        self.queue: asyncio.Queue[Event] = asyncio.Queue(queue_size)
        self.dropped = 0
        self.gap_pending = False  # a GAP is owed but the queue was full

    def gap(self) -> None:
        try:
            self.queue.put_nowait(GAP)
        except asyncio.QueueFull:
            self.gap_pending = True

    async def events(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()
            if self.gap_pending:
                self.gap_pending = False
                yield GAP


class Fanout:
    def __init__(self, queue_size: int = SUBSCRIBER_QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._by_channel: dict[str, set[Subscriber]] = defaultdict(set)

    def channels(self) -> set[str]:
        """Every channel some local subscriber wants."""
        return {channel for channel, subscribers in self._by_channel.items() if subscribers}

    def add(self, channels: Iterable[str]) -> Subscriber:
        subscriber = Subscriber(channels, self._queue_size)
        for channel in subscriber.channels:
            self._by_channel[channel].add(subscriber)
        return subscriber

    def discard(self, subscriber: Subscriber) -> None:
        for channel in subscriber.channels:
            subscribers = self._by_channel.get(channel)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._by_channel[channel]

    def deliver(self, event: Event) -> None:
        for subscriber in self._by_channel.get(event.channel, ()):
            try:
                subscriber.queue.put_nowait(event)
            except asyncio.QueueFull:
                subscriber.gap_pending = True
                subscriber.dropped += 1
                if subscriber.dropped == 1 or subscriber.dropped % 1000 == 0:
                    logger.warning(
                        "a subscriber to %s is not keeping up; %d messages dropped",
                        event.channel,
                        subscriber.dropped,
                    )

    def gap(self) -> None:
        """Tell every subscriber that messages may have been missed (the subscription was lost)."""
        for subscriber in {s for subscribers in self._by_channel.values() for s in subscribers}:
            subscriber.gap()
