"""A host's labels as Prometheus label names, pure: the fleet export and the alerts sent to a webhook
or Alertmanager (which refuses names Prometheus would not accept) clean them the same way."""

from __future__ import annotations

import re
from collections.abc import Mapping

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def _clean(name: str, reserved: frozenset[str]) -> str:
    cleaned = _INVALID.sub("_", name)
    if not cleaned or cleaned[0].isdigit() or cleaned.startswith("__") or cleaned in reserved:
        cleaned = "label_" + cleaned  # not a name Prometheus accepts, reserves, or fleetdeck sets itself
    return cleaned


def prometheus_labels(
    own: Mapping[str, str], labels: Mapping[str, str], reserved: frozenset[str] = frozenset()
) -> dict[str, str]:
    """`own` (fleetdeck's labels, kept as they are) and the host's `labels` under names valid for
    Prometheus, each name once: a host label whose cleaned name is in `own` or `reserved` is
    prefixed with `label_`, and two keys cleaned to one name (`a-b`, `a.b`) number the later one."""
    out = dict(own)
    taken = reserved | frozenset(own)
    for key in sorted(labels):
        name = _clean(key, taken)
        unique, n = name, 2
        while unique in out:
            unique, n = f"{name}_{n}", n + 1
        out[unique] = labels[key]
    return out
