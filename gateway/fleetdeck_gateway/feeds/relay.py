"""One broker subscription per process, turned into frames for the connected clients.

The relay drives, and is given, the parts that act on what the broker says: the clients (fan-out
by topic and host), the job watches (results in `seq` order), presence (which hosts are online,
with their labels), the fleet view (one summary frame per tick for every follower), fed by the
agents' sample summaries, and the full samples (`samples.py`, taken in only while someone watches
them); alert transitions go to the alerts view.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from pydantic import ValidationError

from fleetdeck_common import topics
from fleetdeck_common.broker import GAP, Event, PubSub
from fleetdeck_common.messages import Alert, Chat, Done, Job, Result, dump
from fleetdeck_common.summaries import decode as decode_summaries

from ..ws.clients import Client, Clients
from .fleet import FleetView
from .hosthistory import HistoryCache
from .jobresults import JobWatches
from .presence import PresenceSync
from .samples import LiveSamples

logger = logging.getLogger(__name__)


class Relay:
    def __init__(
        self,
        broker: PubSub,
        clients: Clients,
        watches: JobWatches,
        presence: PresenceSync,
        fleet: FleetView,
        history: HistoryCache,
        samples: LiveSamples,
        on_job: Callable[[Job], None] = lambda job: None,
        fleet_tick: float = 1.0,
        on_alert: Callable[[Alert], None] = lambda alert: None,
    ) -> None:
        self._broker = broker
        self._clients = clients
        self._watches = watches
        self._presence = presence
        self._fleet = fleet
        self._history = history
        self._samples = samples
        self._on_job = on_job
        self._on_alert = on_alert
        self._fleet_tick = fleet_tick
        self.subscribed = asyncio.Event()  # set once the subscription is made (tests wait for it)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._relay(), name="relay"),
            asyncio.create_task(self._presence.run(), name="presence"),
            asyncio.create_task(self._tick_fleet(), name="fleet"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._samples.stop()
        for client in self._clients:
            self.remove(client)

    def add(self, client: Client) -> None:
        self._clients.add(client)

    def remove(self, client: Client) -> None:
        self._clients.remove(client)
        self._watches.forget(client)
        self._fleet.unfollow(client)

    async def _tick_fleet(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self._fleet_tick
        while True:
            await asyncio.sleep(max(next_tick - loop.time(), 0.0))
            fired = loop.time()
            self._fleet.tick()
            self._history.sweep()
            await self._samples.check()
            # A tick that came late does not pull the next one closer: ticks stay a tick apart.
            next_tick = max(next_tick + self._fleet_tick, fired + self._fleet_tick)

    async def _relay(self) -> None:
        async with self._broker.subscribe(topics.GATEWAY_CHANNELS) as events:
            self.subscribed.set()
            async for event in events:
                if event is GAP:
                    self._resync()
                    continue
                try:
                    self._dispatch(event)
                except (ValidationError, ValueError, KeyError) as exc:
                    logger.warning("ignored a malformed message on %s: %s", event.channel, exc)

    def _resync(self) -> None:
        """Messages may have been missed: what matters is re-read from where it is stored. Job
        watchers get what they missed (a `done` missed would otherwise never come); presence and
        the fleet view catch up at their next poll; samples are latest-wins anyway."""
        watched = self._watches.resync()
        logger.warning("the broker subscription had a gap; re-reading %d watched jobs", watched)

    def _dispatch(self, event: Event) -> None:
        if event.channel == topics.SUMMARY_CHANNEL:
            summaries, errors = decode_summaries(event.data)
            for summary in summaries:
                self._presence.observe(summary)
                self._fleet.observe(summary)
            for error in errors:
                logger.warning("ignored a malformed sample summary: %s", error)
        elif event.channel == topics.CHAT_CHANNEL:
            self._clients.send_topic("chat", dump(Chat.model_validate_json(event.data)))
        elif event.channel == topics.JOBS_CHANNEL:
            job = Job.model_validate_json(event.data)
            self._on_job(job)
            frame = dump(job)
            for client in self._clients:
                if "jobs" in client.topics or self._watches.watching(client, job.job):
                    self._clients.send(client, "job", frame)
        elif event.channel == topics.RESULTS_CHANNEL:
            kind = json.loads(event.data).get("type")
            parsed: Result | Done = (
                Done.model_validate_json(event.data)
                if kind == "done"
                else Result.model_validate_json(event.data)
            )
            self._watches.deliver(parsed)
        elif event.channel == topics.ALERTS_CHANNEL:
            self._on_alert(Alert.model_validate_json(event.data))
