"""The agent loop: sample, publish, keep history and heartbeat; ride out broker outages.

With `--simulate N` the same loop publishes N simulated hosts instead of this machine.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.health import touch
from fleetdeck_common.hoststore import Observation
from fleetdeck_common.service import wait_or_stop

from . import sampler
from .publisher import Publisher
from .settings import AgentSettings
from .simulate import simulated_fleet, simulated_mounts, simulated_sample

logger = logging.getLogger(__name__)


BATCH_HOSTS = 200  # simulated hosts written in one round trip


async def run_agent(settings: AgentSettings, store: Publisher, stop: asyncio.Event) -> None:
    """Publish one sample every interval until `stop` is set; then write the history held."""
    if settings.simulate:
        publish = _simulated(settings, store)
        logger.info("agent publishing %d simulated hosts every %.2fs", settings.simulate, settings.interval)
    else:
        publish = _this_machine(settings, store)
        logger.info("agent %s publishing every %.2fs", settings.agent_name, settings.interval)
    loop = asyncio.get_running_loop()
    next_tick = loop.time() + settings.interval
    failing = False
    while not await wait_or_stop(stop, next_tick - loop.time()):
        # Schedule from the previous tick, not from now, so the interval does not drift.
        next_tick = max(next_tick + settings.interval, loop.time())
        try:
            await publish()
        except BrokerUnavailable as exc:
            if not failing:
                logger.warning("cannot publish samples (%s); will keep trying", exc)
            failing = True
            continue
        touch(settings.health_file)
        if failing:
            logger.info("publishing again after a broker outage")
            failing = False
    try:
        await store.finish(time.time())
    except BrokerUnavailable as exc:
        logger.warning("the last seconds of history were not written (%s)", exc)
    logger.info("agent %s stopped", settings.agent_name)


def _this_machine(settings: AgentSettings, store: Publisher) -> Callable[[], Awaitable[None]]:
    sampler.use_proc(settings.proc_path, settings.rootfs_path)  # before the first psutil call
    sampler.prime()

    numbers = itertools.count(1)  # a restart starts again at 1: charts can tell a gap

    async def publish() -> None:
        sample = sampler.take_sample(settings.agent_name, settings.interval)
        sample = sample.model_copy(update={"n": next(numbers)})
        observation = Observation(sample, settings.labels, settings.ssh_address(), sampler.mounts())
        await store.publish([observation], time.time())

    return publish


def _simulated(settings: AgentSettings, store: Publisher) -> Callable[[], Awaitable[None]]:
    fleet = simulated_fleet(settings.simulate)
    rng = random.Random()

    ticks = itertools.count(1)

    async def publish() -> None:
        now, n = time.time(), next(ticks)
        for start in range(0, len(fleet), BATCH_HOSTS):
            batch = [
                Observation(
                    simulated_sample(host, now, settings.interval, rng).model_copy(update={"n": n}),
                    host.labels | settings.labels,
                    host.address,
                    simulated_mounts(host, now),
                )
                for host in fleet[start : start + BATCH_HOSTS]
            ]
            await store.publish(batch, now)

    return publish
