"""One (rule, host)'s alert state: pending while its condition has held for less than `for`,
firing once it has, gone (resolved) once it no longer holds. Pure.

Time is the readings' own (a sample's `ts`; for `offline`, the evaluation's): how long a
condition has held is the sum of the steps between the readings that saw it hold, each step
counted as at most `max_step` seconds and never less than 0. A clock stepped back on a host
does not undo what was held, one stepped forward does not fire a rule at once, and a gap in the
readings (a broker outage, a gateway taking over) does not count as time held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..messages import AlertState

Phase = Literal["pending", "firing"]
MAX_STEP_SECONDS = 10.0


@dataclass(frozen=True)
class Track:
    """What is remembered of one (rule, host) whose condition holds: kept in the broker."""

    phase: Phase
    since: float  # pending: the first reading that held; firing: when it began to fire
    value: float | None  # the value at `since`
    held: float = 0.0  # seconds the condition has held so far (pending)
    last: float = 0.0  # the time of the last reading counted


@dataclass(frozen=True)
class Reading:
    """One look at a host for one rule: the time it was taken at and whether the condition held."""

    ts: float
    holds: bool
    value: float | None = None


@dataclass(frozen=True)
class Change:
    """A transition to report: the (rule, host) began to fire, or resolved, at `since`."""

    state: AlertState
    since: float
    value: float | None


def step(
    track: Track | None,
    reading: Reading | None,
    for_seconds: float,
    now: float,
    max_step: float = MAX_STEP_SECONDS,
) -> tuple[Track | None, Change | None]:
    """The next state of one (rule, host) and the transition it makes, if any.

    `reading` None: the host is no longer selected or known, so a firing alert resolves (at `now`).
    """
    if reading is None:
        if track is not None and track.phase == "firing":
            return None, Change("resolved", now, None)
        return None, None
    if not reading.holds:
        if track is not None and track.phase == "firing":
            return None, Change("resolved", reading.ts, reading.value)
        return None, None
    if track is None:
        track = Track("pending", reading.ts, reading.value, 0.0, reading.ts)
    elif track.phase == "firing":
        return track, None
    else:
        gained = min(max(reading.ts - track.last, 0.0), max_step)
        track = Track("pending", track.since, track.value, track.held + gained, reading.ts)
    if track.held >= for_seconds:
        return Track("firing", reading.ts, reading.value, track.held, reading.ts), Change(
            "firing", reading.ts, reading.value
        )
    return track, None
