"""The firing/resolved state machine, pure, on a fake clock: for, flapping, restarts, clock steps,
a host forgotten."""

from __future__ import annotations

import json
from dataclasses import asdict

from fleetdeck_common.alerts.machine import Change, Reading, Track, step


class Run:
    """Feeds one (rule, host) a reading per second of fake time, collecting the transitions."""

    def __init__(self, for_seconds: float) -> None:
        self.for_seconds = for_seconds
        self.track: Track | None = None
        self.changes: list[Change] = []

    def feed(self, ts: float, holds: bool, value: float | None = None) -> Change | None:
        self.track, change = step(self.track, Reading(ts, holds, value), self.for_seconds, now=ts)
        if change is not None:
            self.changes.append(change)
        return change


def test_for_zero_fires_on_the_first_reading_and_resolves_once() -> None:
    run = Run(0)
    assert run.feed(100, True, 95) == Change("firing", 100, 95)
    assert run.feed(101, True, 99) is None  # still firing: nothing new to say
    assert run.feed(102, False, 10) == Change("resolved", 102, 10)
    assert run.feed(103, False, 10) is None and run.track is None


def test_fires_once_the_condition_has_held_for_its_duration_by_the_samples_clock() -> None:
    run = Run(5)
    for ts in range(100, 105):
        assert run.feed(ts, True, 91) is None
    assert run.track is not None and run.track.phase == "pending" and run.track.since == 100
    assert run.feed(105, True, 93) == Change("firing", 105, 93)
    assert run.changes == [Change("firing", 105, 93)]


def test_flapping_under_the_duration_never_fires() -> None:
    run = Run(3)
    for ts in range(100, 140):
        run.feed(ts, ts % 3 != 0, 91)  # holds two seconds of every three
    assert run.changes == []


def test_flapping_once_firing_gives_one_transition_per_change() -> None:
    run = Run(0)
    for ts, holds in enumerate([True, False, True, True, False, False, True]):
        run.feed(ts, holds)
    assert [c.state for c in run.changes] == ["firing", "resolved", "firing", "resolved", "firing"]


def test_a_restart_from_the_stored_track_neither_fires_again_nor_forgets() -> None:
    run = Run(2)
    run.feed(100, True, 91)
    run.feed(101, True, 91)
    assert run.track is not None
    stored = json.dumps(asdict(run.track))  # what the broker keeps across a restart
    restored = Run(2)
    restored.track = Track(**json.loads(stored))
    assert restored.feed(102, True, 92) == Change("firing", 102, 92)
    assert restored.track is not None
    stored = json.dumps(asdict(restored.track))
    again = Run(2)
    again.track = Track(**json.loads(stored))
    assert again.feed(103, True, 95) is None  # already firing: a restart does not fire it again
    assert again.feed(104, False, 50) == Change("resolved", 104, 50)


def test_a_clock_stepped_forward_does_not_fire_at_once() -> None:
    run = Run(60)
    run.feed(1000, True)
    assert run.feed(1000 + 3600, True) is None  # an hour's jump counts as one step at most
    assert run.track is not None and run.track.held <= 10


def test_a_clock_stepped_back_keeps_what_was_held_and_counts_on() -> None:
    run = Run(5)
    for ts in (1000, 1001, 1002, 1003):
        run.feed(ts, True)
    assert run.feed(500, True) is None  # stepped back an age: no time gained, nothing lost
    assert run.track is not None and run.track.held == 3
    run.feed(501, True)
    assert run.feed(502, True) == Change("firing", 502, None)


def test_the_same_sample_seen_twice_adds_no_time() -> None:
    run = Run(2)
    for _ in range(5):
        run.feed(100, True)
    assert run.changes == [] and run.track is not None and run.track.held == 0


def test_a_host_forgotten_or_no_longer_selected_resolves_what_fired_and_drops_what_was_pending() -> None:
    track, change = step(Track("firing", 10, 95.0), None, 0, now=50)
    assert track is None and change == Change("resolved", 50, None)
    track, change = step(Track("pending", 10, 95.0, 3, 13), None, 5, now=50)
    assert track is None and change is None


def test_pending_ends_quietly_when_the_condition_stops_holding() -> None:
    run = Run(10)
    run.feed(100, True)
    run.feed(101, True)
    assert run.feed(102, False) is None and run.track is None and run.changes == []
