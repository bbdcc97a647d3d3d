"""The agent loop: sample, publish, keep history and heartbeat; ride out broker outages."""

from __future__ import annotations

import asyncio
import logging

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.health import touch
from fleetdeck_common.hoststore import HostStore
from fleetdeck_common.service import wait_or_stop

from . import sampler
from .settings import AgentSettings

logger = logging.getLogger(__name__)


async def run_agent(settings: AgentSettings, store: HostStore, stop: asyncio.Event) -> None:
    """Publish one sample every interval until `stop` is set."""
    loop = asyncio.get_running_loop()
    sampler.prime()
    logger.info("agent %s publishing every %.2fs", settings.agent_name, settings.interval)
    next_tick = loop.time() + settings.interval
    failing = False
    while not await wait_or_stop(stop, next_tick - loop.time()):
        # Schedule from the previous tick, not from now, so the interval does not drift.
        next_tick = max(next_tick + settings.interval, loop.time())
        sample = sampler.take_sample(settings.agent_name, settings.interval)
        try:
            await store.publish(sample, settings.history_size)
        except BrokerUnavailable as exc:
            if not failing:
                logger.warning("cannot publish samples (%s); will keep trying", exc)
            failing = True
            continue
        touch(settings.health_file)
        if failing:
            logger.info("publishing again after a broker outage")
            failing = False
    logger.info("agent %s stopped", settings.agent_name)
