"""Alerts in Alertmanager's formats, pure: the webhook payload (version "4") a receiver built for
Alertmanager reads unchanged, and the body of Alertmanager's own `POST /api/v2/alerts`.

Labels are `alertname`, `host`, `severity` and the host's labels (names cleaned as Prometheus
requires); the fingerprint is Alertmanager's own (FNV-1a over the sorted labels), so the same alert
has the same fingerprint here, in Alertmanager and at every receiver, firing and resolved alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ..messages import Alert
from ..promlabels import prometheus_labels

WEBHOOK_VERSION = "4"
RECEIVER = "fleetdeck"
# Alertmanager's "not ended yet" (Go's zero time), sent as endsAt while an alert fires.
ZERO_TIME = "0001-01-01T00:00:00Z"
# Names fleetdeck sets itself; a host label of the same name is sent as `label_NAME`.
RESERVED = frozenset({"alertname", "host", "severity"})

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1
_SEPARATOR = 0xFF  # prometheus/common's SeparatorByte: never found in UTF-8


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: FNV-1a 64 over each name and value in name
    order, each followed by 0xff, as 16 hex digits."""
    digest = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                digest = ((digest ^ byte) * _FNV_PRIME) & _MASK
            digest = ((digest ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{digest:016x}"


def rfc3339(ts: float) -> str:
    """Unix seconds as RFC 3339 in UTC with milliseconds, as Alertmanager writes times."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_labels(alert: Alert) -> dict[str, str]:
    """The alert's Alertmanager labels: alertname, host, severity and the host's labels."""
    own = {"alertname": alert.rule, "host": alert.host, "severity": alert.severity}
    return prometheus_labels(own, alert.labels, RESERVED)


def generator_url(external_url: str, rule: str) -> str:
    """Where a person follows an alert back to: the dashboard, naming the rule."""
    return f"{external_url.rstrip('/')}/?alert={quote(rule, safe='')}"


def webhook_alert(alert: Alert, external_url: str, started: float | None = None) -> dict[str, Any]:
    """One entry of a webhook payload's `alerts`. A resolved alert's `since` is when it ended;
    `started` is when it began to fire (its `since` then), when known."""
    labels = alert_labels(alert)
    if alert.state == "firing":
        starts, ends = rfc3339(alert.since), ZERO_TIME
    else:
        starts, ends = rfc3339(alert.since if started is None else started), rfc3339(alert.since)
    return {
        "status": alert.state,
        "labels": labels,
        "annotations": {"summary": alert.summary},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": generator_url(external_url, alert.rule),
        "fingerprint": fingerprint(labels),
    }


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every one of `maps` holds."""
    if not maps:
        return {}
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def webhook_payload(
    alerts: Sequence[Alert], external_url: str, started: Mapping[tuple[str, str], float] | None = None
) -> dict[str, Any]:
    """The body of one webhook POST holding `alerts` (an evaluation's transitions): status
    `firing` while any of them fires. fleetdeck groups nothing, so the group is Alertmanager's
    root group with no group_by: empty group labels, group key `{}:{}`. `started` maps (rule,
    host) to when a resolved alert began to fire."""
    starts = started or {}
    entries = [webhook_alert(a, external_url, starts.get((a.rule, a.host))) for a in alerts]
    return {
        "version": WEBHOOK_VERSION,
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": "firing" if any(a.state == "firing" for a in alerts) else "resolved",
        "receiver": RECEIVER,
        "groupLabels": {},
        "commonLabels": _common([e["labels"] for e in entries]),
        "commonAnnotations": _common([e["annotations"] for e in entries]),
        "externalURL": external_url,
        "alerts": entries,
    }


def alertmanager_alert(
    alert: Alert, external_url: str, now: float, valid_for: float, started: float | None = None
) -> dict[str, Any]:
    """One alert of a `POST /api/v2/alerts` body, as Prometheus sends it: a firing alert ends
    `valid_for` seconds from `now` unless sent again (so Alertmanager resolves it by itself if
    fleetdeck stops sending), a resolved one at the time it resolved."""
    labels = alert_labels(alert)
    if alert.state == "firing":
        starts, ends = alert.since, now + valid_for
    else:
        starts, ends = (alert.since if started is None else started), alert.since
    return {
        "labels": labels,
        "annotations": {"summary": alert.summary},
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
        "generatorURL": generator_url(external_url, alert.rule),
    }
