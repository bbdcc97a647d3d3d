"""One evaluation of every rule against the fleet as this gateway sees it: the next state of each
(rule, host) and the transitions to publish. Pure.

A metric rule reads a host's latest sample, timed by the sample's own `ts`; a host with no sample
here yet (a gateway just started) keeps its state untouched, and an offline host no longer meets
a metric condition (its `offline` rule speaks for it). An `offline` rule reads presence, timed by
the evaluation. A (rule, host) no longer selected (the host forgotten, the targets or the rule
changed or gone) resolves what fired.

Only what must survive a takeover is written back: a state that begins (pending, or firing at
once), one whose phase changes, and one that ends. A pending state's progress (`held`, `last`)
stays in memory, so a gateway taking over counts a pending state's `for` again from the takeover.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from fleetdeck_common.alerts.expr import OPERATORS
from fleetdeck_common.alerts.machine import Change, Reading, Track, step
from fleetdeck_common.alerts.rules import Rule
from fleetdeck_common.alerts.summary import render
from fleetdeck_common.messages import Alert

from ..feeds.fleet import Latest
from .selection import Watched, selected

# Which of the known hosts a rule's targets (None: all) select.
Choose = Callable[[str | None, Sequence[Watched]], Sequence[Watched]]

Key = tuple[str, str]  # (rule, host)


@dataclass(frozen=True)
class Tracked:
    """A (rule, host)'s state, and while it fires the alert it raised."""

    track: Track
    alert: Alert | None = None


@dataclass
class Outcome:
    tracks: dict[Key, Tracked]  # the whole state after this evaluation
    written: dict[Key, Tracked] = field(default_factory=dict)  # new, or a phase that changed
    removed: list[Key] = field(default_factory=list)
    changes: list[Alert] = field(default_factory=list)  # the transitions, in order

    def firing(self) -> list[Alert]:
        return [t.alert for t in self.tracks.values() if t.alert is not None and t.track.phase == "firing"]


def _alert(rule: Rule, host: Watched, change: Change) -> Alert:
    return Alert(
        rule=rule.name,
        host=host.host,
        state=change.state,
        value=change.value,
        since=round(change.since, 3),
        severity=rule.severity,
        summary=render(rule.summary, rule.name, host.host, change.value),
        labels=dict(host.labels),
    )


def evaluate(
    rules: Iterable[Rule],
    known: Sequence[Watched],
    latest: Callable[[str], Latest | None],
    tracks: Mapping[Key, Tracked],
    now: float,
    choose: Choose = selected,
) -> Outcome:
    """Every rule against every host it selects: the next state and this evaluation's transitions."""
    outcome = Outcome(tracks=dict(tracks))
    seen: set[Key] = set()  # of the tracked (rule, host), those still selected
    for rule in rules:
        metric, holds = rule.expr.metric, OPERATORS[rule.expr.op]
        threshold = rule.expr.threshold
        for host in choose(rule.targets, known):
            key = (rule.name, host.host)
            before = tracks.get(key)
            if before is not None:
                seen.add(key)
            if metric is None:
                reading = Reading(now, not host.online)
            elif not host.online:
                reading = Reading(now, False)
            else:
                sample = latest(host.host)
                value = getattr(sample, metric) if sample is not None else None
                if sample is None or sample.ts is None or value is None:
                    continue  # no sample here yet: left as it is
                if before is None and not holds(value, threshold):
                    continue  # the usual case, decided without a step
                reading = Reading(sample.ts, holds(value, threshold), value)
            if before is None and not reading.holds:
                continue
            track, change = step(before.track if before else None, reading, rule.for_, now)
            alert = before.alert if before else None
            if change is not None:
                alert = _alert(rule, host, change)
                outcome.changes.append(alert)
            _keep(outcome, key, before, Tracked(track, alert) if track is not None else None)
    for key, before in tracks.items():
        if key in seen:
            continue
        _, change = step(before.track, None, 0.0, now)
        if change is not None and before.alert is not None:
            resolved = {"state": "resolved", "since": round(change.since, 3)}
            outcome.changes.append(before.alert.model_copy(update=resolved))
        _keep(outcome, key, before, None)
    return outcome


def _durable(tracked: Tracked) -> tuple[object, ...]:
    """What of a state must survive a takeover: a pending state's progress (`held`, `last`) is not."""
    return tracked.track.phase, tracked.track.since, tracked.track.value, tracked.alert


def _keep(outcome: Outcome, key: Key, before: Tracked | None, after: Tracked | None) -> None:
    if after is None:
        if before is not None:
            outcome.tracks.pop(key, None)
            outcome.removed.append(key)
    elif after != before:
        outcome.tracks[key] = after
        if before is None or _durable(after) != _durable(before):
            outcome.written[key] = after
