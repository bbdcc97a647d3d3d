"""The one retry policy for broker calls that must not be given up (`broker/retry.py`)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.broker.retry import Stopped, persist

LOG = logging.getLogger("test_retry")


class Flaky:
    """An action that fails with the broker unreachable a number of times, then answers."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or BrokerUnavailable("down")
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "answer"


async def test_an_answer_at_once_is_returned_at_once() -> None:
    action = Flaky(0)
    assert await persist("reading", action, LOG) == "answer"
    assert action.calls == 1


async def test_an_unreachable_broker_is_retried_until_it_answers() -> None:
    action = Flaky(1)
    assert await persist("reading", action, LOG) == "answer"
    assert action.calls == 2


async def test_other_errors_are_not_retried() -> None:
    action = Flaky(1, ValueError("a bug, not an outage"))
    with pytest.raises(ValueError):
        await persist("reading", action, LOG)
    assert action.calls == 1


async def test_a_set_stop_ends_the_retrying_with_stopped() -> None:
    stop = asyncio.Event()
    stop.set()
    action = Flaky(10)
    with pytest.raises(Stopped):
        await persist("reading", action, LOG, stop)
    assert action.calls == 1


async def test_without_a_stop_the_outage_itself_is_never_raised_while_it_lasts() -> None:
    stop = asyncio.Event()
    action = Flaky(2)
    assert await persist("reading", action, LOG, stop) == "answer"
    assert action.calls == 3
