"""The agent loop: sample, publish, keep history and heartbeat; ride out broker outages."""

from __future__ import annotations

import asyncio
import json
import logging

from fleetdeck_common import topics
from fleetdeck_common.broker import Broker, BrokerUnavailable
from fleetdeck_common.health import touch
from fleetdeck_common.messages import CpuSample, dump
from fleetdeck_common.service import wait_or_stop
from fleetdeck_common.settings import AgentSettings

from . import sampler

logger = logging.getLogger(__name__)


def heartbeat(sample: CpuSample) -> str:
    """What the gateway reads to know a host exists and when it was last heard from."""
    return json.dumps(
        {
            "host": sample.host,
            "last_seen": sample.ts,
            "interval": sample.interval,
            "cpus": len(sample.percpu),
        }
    )


async def publish_sample(broker: Broker, sample: CpuSample, history_size: int) -> None:
    frame = dump(sample)
    await broker.publish(topics.CPU_CHANNEL, frame)
    await broker.push_capped(topics.history_key(sample.host), frame, history_size)
    await broker.hash_set(topics.HOSTS_KEY, sample.host, heartbeat(sample))


async def run_agent(settings: AgentSettings, broker: Broker, stop: asyncio.Event) -> None:
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
            await publish_sample(broker, sample, settings.history_size)
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
