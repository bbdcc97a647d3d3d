"""Cutting a command's output to FLEETDECK_OUTPUT_LIMIT, measured in bytes as a frame carries it. Pure."""

from __future__ import annotations

import json
from typing import Any

from .messages import Outcome


def escaped_size(text: str) -> int:
    """Bytes `text` takes in a frame as sent: UTF-8 with JSON escapes (a control character takes
    6, a quote or backslash 2), as `dump` and the HTTP API write it."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2


def _fitting_start(text: str, limit: int) -> str:
    """The longest start of `text` whose escaped size is at most `limit` (by bisection)."""
    low, high = 0, min(len(text), limit)  # every character takes at least one byte
    while low < high:
        middle = (low + high + 1) // 2
        if escaped_size(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def fit_output(outcome: Outcome, limit: int) -> Outcome:
    """`outcome` with its stdout and its stderr each cut to at most `limit` bytes as sent (see
    `escaped_size`), and `truncated` set when anything was cut: FLEETDECK_OUTPUT_LIMIT bounds what
    a result costs to store and to send, whatever bytes the command printed. Pure."""
    cut: dict[str, Any] = {}
    for name in ("stdout", "stderr"):
        text: str = getattr(outcome, name)
        if len(text) * 6 > limit and escaped_size(text) > limit:  # 6: the most a character takes
            cut[name] = _fitting_start(text, limit)
    if not cut:
        return outcome
    return outcome.model_copy(update={**cut, "truncated": True})
