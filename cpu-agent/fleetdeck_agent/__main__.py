"""`fleetdeck-agent`: one CPU agent."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fleetdeck_common.broker import create_broker
from fleetdeck_common.cli import parse_settings
from fleetdeck_common.logs import setup_logging
from fleetdeck_common.service import run_until_signalled
from fleetdeck_common.settings import AgentSettings

from .agent import run_agent


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(
        AgentSettings,
        "fleetdeck-agent",
        "Publish this host's CPU, memory and load to the fleetdeck broker every interval.",
        argv,
    )
    setup_logging(settings.log_level, settings.log_json)

    async def serve(stop: asyncio.Event) -> None:
        async with create_broker(settings.redis_url) as broker:
            await run_agent(settings, broker, stop)

    run_until_signalled(serve)


if __name__ == "__main__":
    main()
