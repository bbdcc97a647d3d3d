"""Service plumbing: stopping promptly."""

from __future__ import annotations

import asyncio

from fleetdeck_common.service import wait_or_stop


async def test_wait_or_stop_sees_a_stop_even_when_behind_schedule() -> None:
    stop = asyncio.Event()
    assert await wait_or_stop(stop, 0.01) is False
    stop.set()
    assert await wait_or_stop(stop, -1.0) is True
    assert await wait_or_stop(stop, 0) is True
