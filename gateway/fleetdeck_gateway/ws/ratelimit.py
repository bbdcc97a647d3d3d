"""Token bucket per connection: bursts are fine, floods are refused and then closed."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        rate: float = 20.0,
        burst: float = 60.0,
        tolerance: int = 200,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._clock = clock
        self._stamp = clock()
        self._tolerance = tolerance
        self._window = window
        self._window_start = self._stamp
        self.refused = 0  # refusals in the current window

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if now - self._window_start > self._window:
            self._window_start, self.refused = now, 0
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self.refused += 1
        return False

    @property
    def flooding(self) -> bool:
        """More refusals than `tolerance` within one window: close the connection."""
        return self.refused > self._tolerance
