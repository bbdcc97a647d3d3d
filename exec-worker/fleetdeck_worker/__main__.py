"""`fleetdeck-worker`: one exec worker."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from fleetdeck_common.broker import create_broker
from fleetdeck_common.cli import add_settings_arguments, load_settings
from fleetdeck_common.health import is_fresh
from fleetdeck_common.logs import setup_logging
from fleetdeck_common.service import run_until_signalled
from fleetdeck_common.settings import WorkerSettings

from .worker import Worker


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="fleetdeck-worker",
        description="Run queued fleetdeck exec jobs on their hosts over SSH and report each host's result.",
    )
    add_settings_arguments(parser, WorkerSettings)
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 0 if a running worker reached the broker within FLEETDECK_CLAIM_IDLE seconds",
    )
    args = parser.parse_args(argv)
    settings = load_settings(WorkerSettings, args, parser)
    if args.check:
        fresh = settings.health_file is not None and is_fresh(settings.health_file, settings.claim_idle)
        sys.exit(0 if fresh else 1)
    setup_logging(settings.log_level, settings.log_json)

    async def serve(stop: asyncio.Event) -> None:
        async with create_broker(settings.redis_url) as broker:
            await Worker(settings, broker).run(stop)

    run_until_signalled(serve)


if __name__ == "__main__":
    main()
