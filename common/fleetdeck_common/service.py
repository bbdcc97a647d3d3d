"""Run a service coroutine until SIGTERM or SIGINT asks it to stop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from .broker import Broker, create_broker
from .cli import add_settings_arguments, add_version_argument, load_settings
from .health import forget_refusal, note_refusal, problem
from .logs import setup_logging
from .settings import BrokerSettings

logger = logging.getLogger(__name__)


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)`; the first SIGTERM/SIGINT sets `stop`, the service then winds down itself."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, _request_stop, stop, sig)
        await main(stop)

    asyncio.run(runner())


def _request_stop(stop: asyncio.Event, sig: signal.Signals) -> None:
    logger.info("received %s; stopping", sig.name)
    stop.set()


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True if `stop` was set meanwhile (or already)."""
    if stop.is_set():
        return True
    if seconds <= 0:
        await asyncio.sleep(0)
        return stop.is_set()
    try:
        await asyncio.wait_for(stop.wait(), max(seconds, 0.0))
    except TimeoutError:
        return False
    return True


S = TypeVar("S", bound=BrokerSettings)


def service_main(
    model: type[S],
    prog: str,
    description: str,
    serve: Callable[[S, Broker, asyncio.Event], Awaitable[None]],
    health: Callable[[S], tuple[Path | None, float]],
    argv: Sequence[str] | None = None,
    preflight: Callable[[S], tuple[list[str], list[str]]] | None = None,
) -> None:
    """The command line of a broker-backed service: flags from settings, `--check`, signals.

    `preflight` returns (errors, warnings) about the settings: errors stop the service before it
    starts, with their messages; warnings are logged once.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_version_argument(parser)
    add_settings_arguments(parser, model)
    parser.add_argument(
        "--check",
        action="store_true",
        help="health check: exit 0 if a running service is working (its health file is fresh), else 1 "
        "saying why (a command Redis refused this service's user, named)",
    )
    args = parser.parse_args(argv)
    settings = load_settings(model, args, parser)
    path, max_age = health(settings)
    if args.check:
        failing = problem(path, max_age)
        if failing is not None:
            parser.exit(1, f"{prog} --check: {failing}\n")
        sys.exit(0)
    setup_logging(settings.log_level, settings.log_json)
    if preflight is not None:
        errors, warnings = preflight(settings)
        for warning in warnings:
            logger.warning("%s", warning)
        if errors:
            parser.exit(2, "".join(f"{prog}: {error}\n" for error in errors))

    forget_refusal(path)  # a restart is how a fixed ACL takes effect

    async def main(stop: asyncio.Event) -> None:
        broker = create_broker(
            settings.redis_url,
            settings.redis_connections,
            settings.broker_timeout,
            on_refusal=lambda why: note_refusal(path, why),
        )
        async with broker:
            await serve(settings, broker, stop)

    run_until_signalled(main)
