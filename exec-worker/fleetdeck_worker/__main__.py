"""`fleetdeck-worker`: one exec worker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fleetdeck_common.broker import create_broker
from fleetdeck_common.cli import parse_settings
from fleetdeck_common.logs import setup_logging
from fleetdeck_common.service import run_until_signalled
from fleetdeck_common.settings import WorkerSettings

from .worker import Worker


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(
        WorkerSettings,
        "fleetdeck-worker",
        "Run queued fleetdeck exec jobs on their hosts over SSH and report each host's result.",
        argv,
    )
    setup_logging(settings.log_level, settings.log_json)

    async def serve(stop: asyncio.Event) -> None:
        async with create_broker(settings.redis_url) as broker:
            await Worker(settings, broker).run(stop)

    run_until_signalled(serve)


if __name__ == "__main__":
    main()
