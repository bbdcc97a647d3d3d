"""Host labels (`role=web,dc=eu`) and the `@key=value` selector that picks hosts by them. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

_LABEL_KEY = r"[A-Za-z0-9_.-]{1,63}"
_LABEL_VALUE = r"[A-Za-z0-9_.:/-]{1,253}"
SELECTOR = re.compile(rf"^@({_LABEL_KEY})=({_LABEL_VALUE})$")
_LABEL_PAIR = re.compile(rf"^({_LABEL_KEY})=({_LABEL_VALUE})$")

# Not a host label: `@alert=NAME` selects the hosts where alert rule NAME fires now.
ALERT_KEY = "alert"

# Answers a label selector: the addresses of the online hosts whose label `key` is `value` (for
# `@alert=NAME`, of the hosts where rule NAME fires; TargetError if there is no such rule).
LabelLookup = Callable[[str, str], Sequence[str]]


def parse_labels(text: str) -> dict[str, str]:
    """`role=web,dc=eu` -> {"role": "web", "dc": "eu"}; ValueError naming a malformed pair."""
    labels: dict[str, str] = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        match = _LABEL_PAIR.match(pair)
        if match is None:
            raise ValueError(
                f"{pair!r} is not key=value (keys: letters, digits, _.-; values may also hold : and /)"
            )
        labels[match.group(1)] = match.group(2)
    return labels


def check_host_labels(labels: dict[str, str]) -> dict[str, str]:
    """A host's own labels, or ValueError if one uses a reserved key."""
    if ALERT_KEY in labels:
        raise ValueError(
            f"the label key {ALERT_KEY!r} is reserved: @{ALERT_KEY}=NAME selects the hosts where alert "
            "rule NAME fires; give this label another key"
        )
    return labels
