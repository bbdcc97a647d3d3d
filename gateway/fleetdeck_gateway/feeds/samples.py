"""Full samples, taken in only while someone watches them in detail.

The fleet view, presence and alerts live on the agents' summaries (`relay.py`); a full sample
(per-core values and all) matters only to a client subscribed to `cpu` and to the per-host
history cache. So the gateway subscribes to the samples' channel when the first of those appears
and lets it go once none is left: a gateway nobody watches in detail never parses a full sample.
While only some hosts are watched, a sample of another is dropped unparsed: its host is read off
the front of the JSON agents write (a sample in any other form is parsed to find out).

Agents older than summaries publish full samples only (their heartbeats say so): while any such
host is known, the samples are taken in, and those hosts' samples feed the fleet view, presence
and alerts as their summaries would, so a fleet upgraded agent by agent never shows blank hosts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from pydantic import ValidationError

from fleetdeck_common import topics
from fleetdeck_common.broker import GAP, PubSub
from fleetdeck_common.messages import CpuSample
from fleetdeck_common.summaries import Summary, summary_of

from ..ws.clients import Clients
from .hosthistory import HistoryCache

logger = logging.getLogger(__name__)

_FRONT = '{"type":"cpu","host":"'  # how every sample an agent writes (`messages.dump`) begins


def host_of(data: str) -> str | None:
    """The host a sample is of, read off the front of its JSON; None when it is not in the form
    agents write (or the name has an escape in it)."""
    if not data.startswith(_FRONT):
        return None
    end = data.find('"', len(_FRONT))
    name = data[len(_FRONT) : end]
    return name if end > 0 and "\\" not in name else None


class OlderAgents(Protocol):
    """Which hosts' agents publish no summaries (presence knows it from their heartbeats)."""

    def without_summaries(self, host: str) -> bool: ...

    def any_without_summaries(self) -> bool: ...


class _NoOlderAgents:
    def without_summaries(self, host: str) -> bool:
        return False

    def any_without_summaries(self) -> bool:
        return False


NO_OLDER_AGENTS = _NoOlderAgents()


class LiveSamples:
    def __init__(
        self,
        broker: PubSub,
        clients: Clients,
        history: HistoryCache,
        older: OlderAgents = NO_OLDER_AGENTS,
        on_summary: Callable[[Summary], None] = lambda summary: None,
    ) -> None:
        self._broker = broker
        self._clients = clients
        self._history = history
        self._older = older
        self._on_summary = on_summary  # an older agent's sample, summarised here
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.taken = 0  # samples parsed and passed on, for tests and metrics
        self.passed_over = 0  # samples of hosts nobody watches, dropped unparsed

    def wanted(self) -> bool:
        """Whether anyone needs full samples: a `cpu` subscriber, a cached history, or a host
        whose agent sends nothing else."""
        return self._clients.wants_samples() or self._history.holding() or self._older.any_without_summaries()

    def _watched(self, host: str) -> bool:
        return (
            self._clients.wants_samples_of(host)
            or self._history.holds(host)
            or self._older.without_summaries(host)
        )

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._take(self._ready), name="samples")

    async def live(self) -> None:
        """Until full samples reach this process (a caller that needs them from now on)."""
        self._start()
        await self._ready.wait()

    async def check(self) -> None:
        """Once a tick: take the samples in while an older agent's host is known, and let them go
        when nobody needs them any more."""
        if self._older.any_without_summaries():
            self._start()
        elif self._task is not None and not self.wanted():
            await self.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _take(self, ready: asyncio.Event) -> None:
        try:
            async with self._broker.subscribe([topics.CPU_CHANNEL]) as events:
                ready.set()
                async for event in events:
                    if event is GAP:
                        continue  # samples are latest-wins: the next one of each host will do
                    try:
                        self._deliver(event.data)
                    except (ValidationError, ValueError) as exc:
                        logger.warning("ignored a malformed sample: %s", exc)
        finally:
            ready.set()  # a caller waiting is not left hanging, whatever happened

    def _deliver(self, data: str) -> None:
        host = host_of(data)
        if host is not None and not self._watched(host):
            self.passed_over += 1
            return
        sample = CpuSample.model_validate_json(data)
        self.taken += 1
        if self._older.without_summaries(sample.host):
            self._on_summary(summary_of(sample))
        self._history.observe(sample.host, data)
        self._clients.send_sample(sample.host, data)
