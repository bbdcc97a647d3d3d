"""Local fan-out: one backend subscription per process, a bounded queue per local subscriber.

Both backends hand every message they receive to a `Fanout`; it is the one place that copies a
message to each subscriber of its channel. A subscriber that does not keep up loses messages
(counted and logged) rather than growing without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable

from .base import Event

logger = logging.getLogger(__name__)

SUBSCRIBER_QUEUE_SIZE = 10_000


class Subscriber:
    """One local subscription: the channels it asked for and its queue of events."""

    def __init__(self, channels: Iterable[str], queue_size: int) -> None:
        self.channels = frozenset(channels)
        self.queue: asyncio.Queue[Event] = asyncio.Queue(queue_size)
        self.dropped = 0

    async def events(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()


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
                subscriber.dropped += 1
                if subscriber.dropped == 1 or subscriber.dropped % 1000 == 0:
                    logger.warning(
                        "a subscriber to %s is not keeping up; %d messages dropped",
                        event.channel,
                        subscriber.dropped,
                    )
