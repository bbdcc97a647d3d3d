"""`fleetdeck-agent`: one CPU agent."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fleetdeck_common.broker import Broker
from fleetdeck_common.service import service_main

from .agent import run_agent
from .publisher import publisher_for
from .sampler import proc_problem
from .settings import AgentSettings


async def serve(settings: AgentSettings, broker: Broker, stop: asyncio.Event) -> None:
    await run_agent(settings, publisher_for(broker, settings.tiers(), settings.interval), stop)


def main(argv: Sequence[str] | None = None) -> None:
    service_main(
        AgentSettings,
        "fleetdeck-agent",
        "Publish this host's CPU, memory and load to the fleetdeck broker every interval.",
        serve,
        # Healthy while a sample was published within three intervals.
        lambda s: (s.health_file, max(3 * s.interval, 5.0)),
        argv,
        preflight=_preflight,
    )


def _preflight(settings: AgentSettings) -> tuple[list[str], list[str]]:
    """A FLEETDECK_PROC_PATH that is not a /proc stops the agent at start, naming the variable."""
    if settings.simulate or settings.proc_path is None:
        return [], []
    problem = proc_problem(settings.proc_path)
    return ([problem] if problem else []), []


if __name__ == "__main__":
    main()
