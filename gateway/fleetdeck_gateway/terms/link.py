"""The gateway's end of its terminals in the broker: its own channel (what workers say about its
terminals), beats to their workers, and the sweep for silent workers and idle terminals."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pydantic import ValidationError

from fleetdeck_common.broker import GAP, BrokerUnavailable
from fleetdeck_common.terms.store import gateway_channel
from fleetdeck_common.terms.wire import BEAT_SECONDS, TermMessage

from .service import TermService

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0


class TermLink:
    def __init__(self, service: TermService) -> None:
        self._service = service
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()

    async def start(self) -> None:
        """Subscribed to this gateway's channel on return (or after 5 s without a broker)."""
        self._tasks = [
            asyncio.create_task(self._listen(), name="terms-listen"),
            asyncio.create_task(self._beat(), name="terms-beat"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), 5)

    async def stop(self) -> None:
        await self._service.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _listen(self) -> None:
        channel = gateway_channel(self._service.gateway_id)
        while True:
            try:
                async with self._service.store.listen(channel) as events:
                    self._listening.set()
                    async for event in events:
                        if event is GAP:
                            self._service.lost_messages()
                            continue
                        try:
                            message = TermMessage.decode(event.data)
                        except ValidationError:
                            logger.warning("ignored a malformed terminal message on %s", channel)
                            continue
                        self._service.heard(message)
            except BrokerUnavailable as exc:
                logger.warning("terminal channel unavailable (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def _beat(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self._service.sweep()
            ticks += 1
            if ticks * SWEEP_SECONDS >= BEAT_SECONDS:
                ticks = 0
                try:
                    await self._service.beat()
                except BrokerUnavailable as exc:
                    logger.warning("could not tell workers about terminals (%s)", exc)
