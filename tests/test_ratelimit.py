"""The per-connection rate limit: bursts pass, a sustained flood is refused and then closed."""

from __future__ import annotations

import pytest

from fleetdeck_gateway.ws import ratelimit
from tests.support.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_burst_passes_then_frames_are_refused(clock: FakeClock) -> None:
    limiter = ratelimit.RateLimiter(rate=10, burst=5, tolerance=3, clock=clock)
    assert [limiter.allow() for _ in range(7)] == [True] * 5 + [False] * 2
    assert not limiter.flooding
    clock.now += 1.0  # ten more tokens, capped at the burst
    assert [limiter.allow() for _ in range(6)] == [True] * 5 + [False]


def test_a_flood_that_trickles_through_is_still_a_flood(clock: FakeClock) -> None:
    limiter = ratelimit.RateLimiter(rate=10, burst=1, tolerance=20, window=10, clock=clock)
    for _ in range(30):
        clock.now += 0.1  # one frame a tick gets through, the other nine are refused
        for _ in range(10):
            limiter.allow()
    assert limiter.flooding


def test_refusals_are_forgotten_after_the_window(clock: FakeClock) -> None:
    limiter = ratelimit.RateLimiter(rate=1, burst=1, tolerance=5, window=10, clock=clock)
    limiter.allow()
    for _ in range(5):
        limiter.allow()
    assert not limiter.flooding
    clock.now += 11
    limiter.allow()
    assert limiter.refused == 0
