"""Small stand-ins the unit tests share: a clock that moves only when told, a viewer, a result."""

from __future__ import annotations

from fleetdeck_common.messages import Result
from fleetdeck_gateway.auth.identity import Identity

VIEWER = Identity("bob", "viewer", "0" * 64)


class FakeClock:
    """A clock (for `MemoryBroker(clock=...)`, throttles, fleet ticks) that moves only when told."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ok_result(job: str, seq: int, host: str) -> Result:
    """An `ok` result with empty output, number `seq` of `job`."""
    return Result(
        job=job,
        seq=seq,
        host=host,
        status="ok",
        exit_code=0,
        stdout="",
        stderr="",
        duration_ms=1,
        truncated=False,
    )
