"""One evaluation of every rule against the fleet as this gateway sees it: the next state of each
(rule, host) and the transitions to publish. Pure.

A metric rule reads a host's latest sample, timed by the sample's own `ts`; a host with no sample
here yet (a gateway just started) keeps its state untouched, and an offline host no longer meets
a metric condition (its `offline` rule speaks for it). An `offline` rule reads presence, timed by
the evaluation. A (rule, host) no longer selected (the host forgotten, the targets or the rule
changed or gone) resolves what fired.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from fleetdeck_common.alerts.machine import Change, Reading, Track, step
from fleetdeck_common.alerts.rules import Rule
from fleetdeck_common.alerts.summary import render
from fleetdeck_common.messages import Alert, HostInfo

from ..feeds.fleet import Latest
from ..history.select import select_hosts

Key = tuple[str, str]  # (rule, host)


@dataclass(frozen=True)
class Tracked:
    """A (rule, host)'s state, and while it fires the alert it raised."""

    track: Track
    alert: Alert | None = None


@dataclass
class Outcome:
    tracks: dict[Key, Tracked]  # the whole state after this evaluation
    written: dict[Key, Tracked] = field(default_factory=dict)  # new or changed
    removed: list[Key] = field(default_factory=list)
    changes: list[Alert] = field(default_factory=list)  # the transitions, in order

    def firing(self) -> list[Alert]:
        return [t.alert for t in self.tracks.values() if t.alert is not None and t.track.phase == "firing"]


def selected(rule: Rule, known: Sequence[HostInfo]) -> list[HostInfo]:
    """The known hosts a rule watches (its targets match offline hosts too)."""
    if rule.targets is None:
        return list(known)
    try:
        names = set(select_hosts(rule.targets, known))
    except ValueError:
        return []  # checked when loaded; a label that names nobody now selects nobody
    return [h for h in known if h.host in names]


def _reading(rule: Rule, host: HostInfo, latest: Latest | None, now: float) -> Reading | None:
    """What the rule sees of the host now; None to leave its state as it is."""
    if rule.expr.offline:
        return Reading(now, not host.online)
    if not host.online:
        return Reading(now, False)
    value = getattr(latest, rule.expr.metric or "", None) if latest is not None else None
    if latest is None or latest.ts is None or value is None:
        return None
    return Reading(latest.ts, rule.expr.holds(value), value)


def _alert(rule: Rule, host: HostInfo, change: Change) -> Alert:
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
    known: Sequence[HostInfo],
    latest: Callable[[str], Latest | None],
    tracks: Mapping[Key, Tracked],
    now: float,
) -> Outcome:
    """Every rule against every host it selects: the next state and this evaluation's transitions."""
    outcome = Outcome(tracks=dict(tracks))
    seen: set[Key] = set()
    for rule in rules:
        for host in selected(rule, known):
            key = (rule.name, host.host)
            seen.add(key)
            reading = _reading(rule, host, latest(host.host), now)
            if reading is None:
                continue
            before = tracks.get(key)
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


def _keep(outcome: Outcome, key: Key, before: Tracked | None, after: Tracked | None) -> None:
    if after is None:
        if before is not None:
            outcome.tracks.pop(key, None)
            outcome.removed.append(key)
    elif after != before:
        outcome.tracks[key] = after
        outcome.written[key] = after
