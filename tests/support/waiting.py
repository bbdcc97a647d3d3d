"""Waiting on a condition inside the event loop: polled until it holds or a deadline passes."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], object | Awaitable[object]],
    timeout: float = 10.0,
    what: str = "",
    interval: float = 0.02,
) -> None:
    """Return as soon as `check()` (sync or async) is true; TimeoutError after `timeout` seconds.

    For what has no event to await (a row in a store, a process in `ps`); the loop keeps running
    between checks, so the code under test does too.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what or check}")
        await asyncio.sleep(interval)  # a poll's pace; it returns as soon as the check holds
