"""One retry policy for broker calls that must not be given up: jittered exponential backoff.

The broker itself logs an outage once when it starts and once when it ends; here each retried
call only notes, at debug level, what waited for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from .base import BrokerDenied, BrokerUnavailable

T = TypeVar("T")

BACKOFF = wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.2)


class Stopped(Exception):
    """The caller's stop event was set while the broker was still unreachable."""


async def persist(
    what: str,
    action: Callable[[], Awaitable[T]],
    logger: logging.Logger,
    stop: asyncio.Event | None = None,
) -> T:
    """Run `action` until the broker answers it; raise `Stopped` if `stop` is set meanwhile, and
    `BrokerDenied` at once."""

    def log_outage(state: RetryCallState) -> None:
        if state.attempt_number == 1 and state.outcome is not None:
            logger.debug("%s failed (%s); retrying until the broker answers", what, state.outcome.exception())

    retrying = AsyncRetrying(
        # A refusal by the ACL is a setup mistake: retrying it would only hang the caller.
        retry=retry_if_exception(
            lambda e: isinstance(e, BrokerUnavailable) and not isinstance(e, BrokerDenied)
        ),
        wait=BACKOFF,
        stop=lambda _state: stop is not None and stop.is_set(),
        before_sleep=log_outage,
        reraise=True,
    )
    attempts = 0
    try:
        async for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number
                result = await action()
    except BrokerUnavailable:
        if stop is not None and stop.is_set():
            raise Stopped(what) from None
        raise
    if attempts > 1:
        logger.debug("%s succeeded after %d attempts", what, attempts)
    return result
